//! `PerCpuCounter`: a counter that CPUs update without atomics or locks, summed on demand.

use core::sync::atomic::{AtomicI64, Ordering};

use crate::{AllocError, PerCpuCell};

/// A counter split across CPUs: [`add`](Self::add) changes this CPU's part with one guard-less
/// read-modify-write (one instruction on x86_64); [`sum`](Self::sum) adds up every CPU's part.
pub struct PerCpuCounter {
    parts: PerCpuCell<i64>,
}

impl PerCpuCounter {
    /// A counter at zero.
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new() -> Result<Self, AllocError> {
        Ok(Self {
            parts: PerCpuCell::new(0)?,
        })
    }

    /// Adds `delta` (wrapping) to this CPU's part.
    #[inline]
    pub fn add(&self, delta: i64) {
        self.parts.add_current(delta);
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// CPU `cpu_id`'s part: what was added on that CPU.
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below `percpu::cpu_count()`.
    pub fn per_cpu(&self, cpu_id: usize) -> i64 {
        let count = percpu::cpu_count();
        assert!(
            cpu_id < count,
            "percpu_alloc: CPU id {cpu_id} is out of range: {count} CPUs"
        );
        // SAFETY: in range; the part is an aligned i64 that is only ever updated by `add_current`, whose
        // every architecture's sequence stores it single-copy atomically (one instruction, an atomic
        // instruction or exclusive store, or, on 32-bit arm, `strexd` with interrupts off), and read
        // here with an atomic load: reader and writer agree, nothing tears (no reference to a part is
        // ever handed out).
        unsafe { AtomicI64::from_ptr(self.parts.remote_ptr(cpu_id)).load(Ordering::Relaxed) }
    }

    /// The exact sum of every CPU's part (wrapping). Updates that run concurrently may or may not be
    /// counted; once they are done, the sum is exact.
    pub fn sum(&self) -> i64 {
        (0..percpu::cpu_count()).fold(0i64, |sum, cpu| sum.wrapping_add(self.per_cpu(cpu)))
    }
}

impl core::fmt::Debug for PerCpuCounter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerCpuCounter")
            .field("sum", &self.sum())
            .finish()
    }
}
