//! `PerCpuCounter`: a counter that CPUs update without atomics or locks, summed on demand.

use crate::part::{self, Part};
use crate::AllocError;

/// `inc` and `dec` of a counter type with `add(&self, i64)`.
macro_rules! inc_dec {
    () => {
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
    };
}
pub(crate) use inc_dec;

/// A counter split across CPUs: [`add`](Self::add) changes this CPU's part with one guard-less
/// read-modify-write (one instruction on x86_64); [`sum`](Self::sum) adds up every CPU's part.
///
/// A CPU that goes offline keeps its part, which [`sum`](Self::sum) still reads (it reads every
/// possible CPU's): nothing needs folding, and a CPU that comes back counts on where it left off.
pub struct PerCpuCounter {
    parts: Part,
}

impl PerCpuCounter {
    /// A counter at zero.
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new() -> Result<Self, AllocError> {
        Ok(Self {
            parts: part::zeroed()?,
        })
    }

    /// Adds `delta` (wrapping) to this CPU's part.
    #[inline]
    pub fn add(&self, delta: i64) {
        part::add(&self.parts, delta);
    }

    inc_dec!();

    /// CPU `cpu_id`'s part: what was added on that CPU, read with an atomic load.
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below `percpu::cpu_count()`.
    pub fn per_cpu(&self, cpu_id: usize) -> i64 {
        part::remote_read(&self.parts, cpu_id)
    }

    /// The exact sum of every CPU's part (wrapping): every add that completed before the call is
    /// counted, once; adds that run concurrently may or may not be. Once they are done, the sum is
    /// exact.
    pub fn sum(&self) -> i64 {
        part::sum(&self.parts)
    }
}

impl core::fmt::Debug for PerCpuCounter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PerCpuCounter")
            .field("sum", &self.sum())
            .finish()
    }
}
