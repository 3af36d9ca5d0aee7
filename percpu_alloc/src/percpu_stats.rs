//! `PerCpuStats<S>`: a run-time allocated per-CPU statistics struct (see `percpu::stats`).

use percpu::stats::{self, StatsCell, StatsStruct};

use crate::{AllocError, PerCpu};

/// One copy of the statistics struct `S` (`#[derive(PerCpuStats)]`) per CPU, allocated at run time:
/// what a driver allocates per device, where a `#[def_percpu]` static of `StatsCell<S>` serves a
/// single instance.
///
/// ```text
/// let stats = percpu_alloc::PerCpuStats::<NetStats>::new()?;
/// stats.fields().rx_packets.inc();        // this CPU's copy: 2 instructions on x86_64
/// let total: NetStats = stats.sum();
/// ```
///
/// The copies are only reached through [`fields`](Self::fields) (guard-less operations on this CPU's
/// copy) and the sums (atomic loads): the handle lends no reference to them. See `percpu::stats` for
/// what a sum is while CPUs increment, and for tearing.
pub struct PerCpuStats<S: StatsStruct> {
    /// The fields of the copies, each holding its VMA, so that an operation loads one VMA.
    fields: S::Fields<'static>,
    /// The copies.
    copies: PerCpu<StatsCell<S>>,
}

impl<S: StatsStruct> PerCpuStats<S> {
    /// Every CPU's copy at zero.
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new() -> Result<Self, AllocError> {
        let copies = PerCpu::new_with(|_| StatsCell::new())?;
        Ok(Self {
            // SAFETY: the VMA of `copies`, which designates a `StatsCell<S>` in every area while the
            // handle lives; `fields` hands the fields out only for a borrow of the handle.
            fields: unsafe { S::__fields(copies.vma()) },
            copies,
        })
    }

    /// The fields, whose operations act on this CPU's copy, for as long as the handle is borrowed.
    #[inline(always)]
    pub fn fields(&self) -> &S::Fields<'_> {
        let fields: *const S::Fields<'static> = &self.fields;
        // SAFETY: a type's layout does not depend on its lifetimes, so this is the same value seen
        // with a shorter lifetime, bounded by the borrow of the handle, which owns the copies.
        unsafe { &*fields.cast::<S::Fields<'_>>() }
    }

    /// The sum of every CPU's copy, field by field (see `percpu::stats`).
    pub fn sum(&self) -> S {
        // SAFETY: the VMA of the live copies.
        unsafe { stats::sum_at(self.copies.vma()) }
    }

    /// CPU `cpu_id`'s copy, every field read atomically.
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below `percpu::cpu_count()`.
    pub fn per_cpu(&self, cpu_id: usize) -> S {
        // SAFETY: the VMA of the live copies.
        unsafe { stats::copy_at(self.copies.vma(), cpu_id) }
    }
}

impl<S: StatsStruct + core::fmt::Debug> core::fmt::Debug for PerCpuStats<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerCpuStats")
            .field("sum", &self.sum())
            .finish()
    }
}
