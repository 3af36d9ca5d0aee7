//! Per-CPU statistics structs: a plain struct of integer fields, one copy per CPU, whose fields every
//! CPU increments in its own copy with one guard-less read-modify-write each, and which is summed
//! over all CPUs on demand (Linux's `pcpu_sw_netstats`, FreeBSD's `counter(9)` arrays).
//!
//! ```text
//! use percpu::stats::{StatsCell, StatsStatic};
//! use percpu::{def_percpu, PerCpuStats};
//!
//! #[derive(PerCpuStats, Debug, Clone, Copy, PartialEq)]
//! pub struct NetStats {
//!     pub rx_packets: u64,
//!     pub rx_bytes: u64,
//!     pub errors: u32,
//! }
//!
//! #[def_percpu]
//! static NET: StatsCell<NetStats> = StatsCell::new();
//!
//! let net = NET.fields();                 // one `Field` per field of `NetStats`
//! net.rx_packets.inc();                   // this CPU's copy: `add gs:[reg], 1` on x86_64
//! net.rx_bytes.add(1500);
//! let total: NetStats = NET.sum();        // every CPU's copy, field by field
//! //! ```
//!
//! `#[derive(PerCpuStats)]` (in `percpu_macros`, re-exported as `percpu::PerCpuStats`) implements
//! [`StatsStruct`] for the struct and generates `<Name>Fields<'a>`, a struct with the same field names
//! whose fields are [`Field`]s. A copy of the statistics lives in a [`StatsCell`]: a `#[def_percpu]`
//! static of that type (reached through [`StatsStatic`]), or a run-time allocated
//! `percpu_alloc::PerCpuStats<S>`.
//!
//! # Soundness: copies are never lent
//!
//! A field operation mutates this CPU's copy in place, guard-less, while another CPU may be summing
//! it; so no reference to the *data* of a copy may exist, ever. A [`StatsCell`] is opaque: its data
//! is in an [`UnsafeCell`], it has no method that reads or lends it, and it is not `Sync`. So:
//!
//! - a `#[def_percpu]` static of type `StatsCell<S>` gets no `remote(cpu)` and no `get` through a
//!   `PreemptGuard` (both need `Sync`); `get(&IrqGuard)` lends a `&StatsCell<S>`, through which
//!   nothing can be read or written (an `UnsafeCell`'s contents may change under a shared
//!   reference);
//! - a `#[def_percpu]` static of the plain struct type `S` is an ordinary reference-like static
//!   (`get` lends `&S`), and has no field operations: [`StatsStatic`] is only implemented for statics
//!   of type `StatsCell<S>` (`tests/ui/fail_stats_plain_static.rs`);
//! - a [`Field`] borrows the copies it designates (`Field<'a, T>`): it cannot outlive a run-time
//!   allocated instance (`tests/ui/fail_stats_field_outlives.rs`).
//!
//! The 0.4 tier's `with_current` and `reset_to_init` lend `&mut StatsCell<S>`; as for every static,
//! their contract excludes any other access to the copy meanwhile (debug builds catch a field
//! operation on a field at offset 0 inside it).
//!
//! # Summing, and tearing
//!
//! [`StatsStatic::sum`] and `PerCpuStats::sum` read every CPU's copy of every field with an atomic
//! load of the field's width and add them up (wrapping): each field's sum is exact in the sense of
//! `percpu_alloc::PerCpuCounter::sum` (every increment that completed before the call is counted,
//! none is counted twice; increments running concurrently may or may not be). The fields are read one
//! after the other, so a snapshot taken while CPUs increment is not consistent *across* fields (a
//! packet counted in `rx_packets` may not be in `rx_bytes` yet); once the increments are done, it is
//! exact.
//!
//! No field is ever read torn. Every field operation stores the field with one single-copy-atomic
//! store (the architectures' sequences in the crate documentation), and the sum loads it with one
//! atomic load. On 32-bit arm, whose plain loads and stores are 32 bits wide, a 64-bit field is
//! stored with `ldrexd`/`strexd` (interrupts off, the `arm` architecture file) and summed with the
//! 64-bit atomic load of `core::sync::atomic::AtomicU64` (`ldrexd`), so it cannot be seen half
//! updated; this is what Linux's `u64_stats_sync` seqcount achieves on 32-bit machines. A target
//! without 64-bit atomics (ARMv7-M, say) refuses 64-bit fields at compile time
//! ([`check_field`]).
//!
//! # Cost
//!
//! A field operation is [`raw::add_current`] on the field's VMA (`cargo xtask codegen`, u64 field at
//! offset 8). A run-time allocated instance stores every field's VMA (`PerCpuStats::fields`), so an
//! increment through it costs what `percpu_alloc::PerCpu<u64>::add_current` costs: on x86_64 2
//! instructions, the load of the VMA and `add gs:[reg], val`. A static's field costs 3 on x86_64
//! (the static's VMA, the field's offset added to it, `add gs:[reg], val`), where a `u64` static's
//! `add_current` is 1: `#[def_percpu]` names its storage in the instruction, which the derive cannot
//! do for a field, as it does not know the statics of its type. Keeping `NET.fields()` in a local
//! (or in a driver's own structure) hoists the first two out of a loop.
//! Copies of all fields of one CPU lie next to each other, so a driver updating several fields per
//! packet touches one cache line of its own.

use core::cell::UnsafeCell;
use core::marker::PhantomData;

use crate::{raw, PerCpuInteger, PerCpuStatic};

/// A plain struct of integer fields that is kept per CPU and summed: implemented by
/// `#[derive(PerCpuStats)]`, with [`Fields`](Self::Fields) a generated struct of the same field
/// names whose fields are [`Field`]s.
///
/// # Safety
///
/// Every field of `Self` is a [`PerCpuInteger`] that the target loads atomically ([`check_field`]);
/// [`ZERO`](Self::ZERO) is the struct with every field 0; `__fields(vma)` makes, for each field, the
/// [`Field`] at `vma + offset_of!(Self, field)` of the field's type; `__add_copy` adds, for each field,
/// what [`CopyReader::add_to`] reads at that field's offset to that field of `self`, and reads nothing
/// else. The derive guarantees all of this.
pub unsafe trait StatsStruct: Sized + Send + Sync + 'static {
    /// The struct with every field 0.
    const ZERO: Self;

    /// One [`Field`] per field of the struct, under the same names, for copies that live for `'a`.
    type Fields<'a>: Copy + Send + Sync;

    /// The fields of the copies of the [`StatsCell<Self>`] at `vma`.
    ///
    /// # Safety
    ///
    /// `vma` designates a `StatsCell<Self>` in every per-CPU area for at least `'a`.
    #[doc(hidden)]
    unsafe fn __fields<'a>(vma: usize) -> Self::Fields<'a>;

    /// Adds (wrapping) every field of the copy that `copy` reads to the same field of `self`.
    #[doc(hidden)]
    fn __add_copy(&mut self, copy: &CopyReader<'_, Self>);
}

/// One CPU's copy of the statistics `S`: the type of a `#[def_percpu]` static of statistics, and of the
/// copies of a run-time allocated `percpu_alloc::PerCpuStats<S>`.
///
/// Opaque: it lends nothing, and is only reached through the [`Field`]s of [`StatsStatic::fields`]
/// (guard-less operations on this CPU's copy) and the sums (atomic loads of every CPU's copy). See the
/// [module documentation](self) for why it is not `Sync`.
#[repr(transparent)]
pub struct StatsCell<S>(UnsafeCell<S>);

impl<S: StatsStruct> StatsCell<S> {
    /// A copy with every field 0 (the initializer of a `#[def_percpu]` static).
    pub const fn new() -> Self {
        Self(UnsafeCell::new(S::ZERO))
    }
}

impl<S: StatsStruct> Default for StatsCell<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// One integer field of the per-CPU copies of a statistics struct, for as long as `'a`: operations
/// on this CPU's copy of the field, each one guard-less read-modify-write (see the crate
/// documentation for each architecture's sequence, and for the CPU whose copy it lands on when the
/// task migrates in the middle).
pub struct Field<'a, T: PerCpuInteger> {
    /// The VMA of the field (the copies' VMA plus the field's offset).
    vma: usize,
    /// Borrows the copies for `'a`; reaches `T`s.
    _copies: PhantomData<(&'a (), T)>,
}

impl<T: PerCpuInteger> Clone for Field<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: PerCpuInteger> Copy for Field<'_, T> {}

impl<'a, T: PerCpuInteger> Field<'a, T> {
    /// The field at `offset` in the copies at `vma`.
    ///
    /// # Safety
    ///
    /// `vma` designates a [`StatsCell`] in every per-CPU area for at least `'a`, and a `T` field lies
    /// at `offset` in it.
    #[doc(hidden)]
    #[inline(always)]
    pub unsafe fn __at(vma: usize, offset: usize) -> Self {
        Self {
            vma: vma.wrapping_add(offset),
            _copies: PhantomData,
        }
    }

    /// Adds `value` (wrapping) to this CPU's copy of the field: `raw::add_current` on its VMA (one
    /// instruction on x86_64).
    #[inline]
    pub fn add(&self, value: T) {
        crate::check_not_lent(self.vma);
        // SAFETY: the VMA designates a `T` in every area for `'a` (`__at`); nothing references the
        // data of a copy (a `StatsCell` lends none); the operation is guard-less.
        unsafe { raw::add_current(self.vma, value) }
    }

    /// Subtracts `value` (wrapping) from this CPU's copy of the field, as [`add`](Self::add).
    #[inline]
    pub fn sub(&self, value: T) {
        crate::check_not_lent(self.vma);
        // SAFETY: as in `add`.
        unsafe { raw::sub_current(self.vma, value) }
    }

    /// Adds one, as [`add`](Self::add).
    #[inline]
    pub fn inc(&self) {
        // SAFETY: every bit pattern of an integer's size is a valid integer (`PerCpuInteger`).
        self.add(unsafe { T::from_bits(1) });
    }
}

/// Fails the compile-time evaluation for a field that the target cannot load atomically: a 64-bit
/// integer where the target has no 64-bit atomics. Called by `#[derive(PerCpuStats)]` for every
/// field, as `const _: () = check_field::<T>();`.
pub const fn check_field<T: PerCpuInteger>() {
    assert!(
        core::mem::size_of::<T>() < 8 || cfg!(target_has_atomic = "64"),
        "a per-CPU statistics field of 64 bits needs 64-bit atomic loads, which this target lacks: \
         summing it could read it torn; use a field of at most 32 bits"
    );
}

/// Reads the fields of one CPU's copy for [`StatsStruct::__add_copy`].
pub struct CopyReader<'a, S> {
    /// The copy.
    copy: *const StatsCell<S>,
    /// Borrows the copy.
    _copy: PhantomData<&'a StatsCell<S>>,
}

impl<S: StatsStruct> CopyReader<'_, S> {
    /// Adds (wrapping) the field of type `T` at `offset` of the copy to `sum`, read with one atomic
    /// load.
    ///
    /// # Safety
    ///
    /// A field of type `T` lies at `offset` in `S`.
    #[inline]
    pub unsafe fn add_to<T: PerCpuInteger>(&self, sum: &mut T, offset: usize) {
        // SAFETY: the reader's copy is initialized (`sum_at`, `copy_at`), the caller vouches for the
        // field; every field operation stores it single-copy atomically, so an atomic load at its
        // width races with nothing.
        let value = unsafe {
            crate::arch::read_relaxed(self.copy.cast::<u8>().add(offset).cast_mut().cast::<T>())
        };
        *sum = sum.wrapping_add(value);
    }
}

/// CPU `cpu_id`'s copy of the statistics at `vma`, every field read atomically.
///
/// # Panics
///
/// If `cpu_id` is not below [`cpu_count()`](crate::cpu_count).
///
/// # Safety
///
/// `vma` designates a [`StatsCell<S>`] in every per-CPU area.
pub unsafe fn copy_at<S: StatsStruct>(vma: usize, cpu_id: usize) -> S {
    crate::checked::check_remote_cpu(cpu_id);
    let mut copy = S::ZERO;
    // SAFETY: in range; the caller vouches for `vma`.
    unsafe { add_copy(&mut copy, vma, cpu_id) };
    copy
}

/// The sum (wrapping, field by field) of every CPU's copy of the statistics at `vma`; see the
/// [module documentation](self) for what it is while CPUs increment.
///
/// # Safety
///
/// `vma` designates a [`StatsCell<S>`] in every per-CPU area.
pub unsafe fn sum_at<S: StatsStruct>(vma: usize) -> S {
    let mut sum = S::ZERO;
    // Frozen first: an initialization in between would lay the areas out anew.
    for cpu in 0..crate::area::frozen_cpu_count() {
        // SAFETY: every CPU below the final `cpu_count()`; the caller vouches for `vma`.
        unsafe { add_copy(&mut sum, vma, cpu) };
    }
    sum
}

/// Adds CPU `cpu`'s copy of the statistics at `vma` to `sum`.
///
/// # Safety
///
/// `cpu` is below `cpu_count()`; `vma` designates a `StatsCell<S>` in every area.
unsafe fn add_copy<S: StatsStruct>(sum: &mut S, vma: usize, cpu: usize) {
    let reader = CopyReader {
        // SAFETY: forwarded to the caller.
        copy: unsafe { raw::remote_ptr::<StatsCell<S>>(cpu, vma) },
        _copy: PhantomData,
    };
    sum.__add_copy(&reader);
}

/// The statistics operations of a `#[def_percpu]` static of type [`StatsCell<S>`]: implemented for
/// every such static (and only for those), bring it into scope to use them.
pub trait StatsStatic<S: StatsStruct>: PerCpuStatic<Value = StatsCell<S>> {
    /// The fields of the static, whose operations act on this CPU's copy.
    #[inline(always)]
    fn fields(&self) -> S::Fields<'static> {
        // SAFETY: a static's VMA designates its `StatsCell<S>` in every area for good
        // (`PerCpuStatic`).
        unsafe { S::__fields(self.vma()) }
    }

    /// The sum of every CPU's copy (see the [module documentation](self)).
    fn sum(&self) -> S {
        // SAFETY: as in `fields`.
        unsafe { sum_at(self.vma()) }
    }

    /// CPU `cpu_id`'s copy, every field read atomically.
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below [`cpu_count()`](crate::cpu_count).
    fn per_cpu(&self, cpu_id: usize) -> S {
        // SAFETY: as in `fields`.
        unsafe { copy_at(self.vma(), cpu_id) }
    }
}

impl<S: StatsStruct, W: PerCpuStatic<Value = StatsCell<S>>> StatsStatic<S> for W {}
