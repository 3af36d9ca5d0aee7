//! By-address access to per-CPU data, for per-CPU data that is not a `#[def_percpu]` static: run-time
//! allocated data (the `percpu_alloc` crate) reaches its copies through these functions, with the same
//! instruction sequences as the statics, the address being in a register instead of an immediate.
//!
//! A **VMA** is an address in the template's address space: a static's
//! [`symbol_vma`](crate::EXAMPLE_PERCPU_DATA_WRAPPER::symbol_vma), or
//! [`vma_of_offset(offset)`](crate::vma_of_offset) for data at `offset` in every area. This CPU's copy
//! is at `per-CPU register + VMA`, CPU `cpu`'s copy at `percpu_area_base(cpu) + offset_of_vma(VMA)`.
//!
//! # Safety
//!
//! Every function here requires that `vma` designates a `T` in every initialized per-CPU area (the
//! offset lies inside the areas, suitably aligned, and the data there is initialized as a `T`), and
//! those about the current CPU require that this CPU's per-CPU register is initialized and that the
//! caller does not migrate to another CPU during the access (except where a function says otherwise).

use crate::{PerCpuInteger, PerCpuPrimitive};

/// A pointer to this CPU's copy of the `T` at `vma`.
///
/// # Safety
///
/// See the [module documentation](self); using the pointer also requires staying on this CPU.
#[inline]
#[cfg_attr(feature = "sp-naive", allow(unused_unsafe))] // there, the VMA is the pointer
pub unsafe fn current_ptr<T>(vma: usize) -> *mut T {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(ptr, T, vma vma) }
}

/// A pointer to CPU `cpu_id`'s copy of the `T` at `vma`.
///
/// # Safety
///
/// `cpu_id` must be below [`cpu_count()`](crate::cpu_count) (checked by `debug_assert!`), `vma` as in the
/// [module documentation](self); using the pointer requires ruling out data races with that CPU.
#[inline]
pub unsafe fn remote_ptr<T>(cpu_id: usize, vma: usize) -> *mut T {
    // SAFETY: forwarded to the caller.
    let base = unsafe { crate::area::area_base_unchecked(cpu_id) };
    base.wrapping_add(crate::offset_of_vma(vma)) as *mut T
}

/// Runs `f` on this CPU's copy of the `T` at `vma`, with preemption disabled (feature `preempt`).
///
/// # Safety
///
/// `vma` as in the [module documentation](self). The debug-build check against a nested call on the
/// same data applies, as for [`with_current`](crate::EXAMPLE_PERCPU_DATA_WRAPPER::with_current).
#[inline]
pub unsafe fn with_current<T, R>(vma: usize, f: impl FnOnce(&mut T) -> R) -> R {
    // SAFETY: forwarded to the caller.
    unsafe { crate::guard::with_current(vma, f) }
}

/// Reads this CPU's copy of the `T` at `vma` (one instruction on x86_64).
///
/// # Safety
///
/// See the [module documentation](self).
#[inline]
pub unsafe fn read_current<T: PerCpuPrimitive>(vma: usize) -> T {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(read, T, vma vma) }
}

/// Writes this CPU's copy of the `T` at `vma` (one instruction on x86_64).
///
/// # Safety
///
/// See the [module documentation](self); no reference to this CPU's copy may be live.
#[inline]
pub unsafe fn write_current<T: PerCpuPrimitive>(vma: usize, value: T) {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(write, T, vma vma, value) }
}

/// Adds `value` (wrapping) to this CPU's copy of the `T` at `vma`, safe against interrupts and
/// preemption without a guard: the caller may migrate at any time (see the crate documentation for
/// which CPU's copy the operation then lands on).
///
/// # Safety
///
/// `vma` as in the [module documentation](self), and this CPU's register initialized; no reference to
/// this CPU's copy may be live. (The same holds for every guard-less operation below.)
#[inline]
pub unsafe fn add_current<T: PerCpuInteger>(vma: usize, value: T) {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(add, T, vma vma, value) }
}

/// Subtracts `value` (wrapping) from this CPU's copy of the `T` at `vma`, as [`add_current`].
///
/// # Safety
///
/// As [`add_current`].
#[inline]
pub unsafe fn sub_current<T: PerCpuInteger>(vma: usize, value: T) {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(sub, T, vma vma, value) }
}

/// Adds `value` (wrapping) to this CPU's copy of the `T` at `vma` and returns the value it replaced,
/// guard-less as [`add_current`].
///
/// # Safety
///
/// As [`add_current`].
#[inline]
pub unsafe fn fetch_add_current<T: PerCpuInteger>(vma: usize, value: T) -> T {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(fetch_add, T, vma vma, value) }
}

/// Replaces this CPU's copy of the `T` at `vma` by `value` and returns the value it replaced,
/// guard-less as [`add_current`].
///
/// # Safety
///
/// As [`add_current`].
#[inline]
pub unsafe fn xchg_current<T: PerCpuPrimitive>(vma: usize, value: T) -> T {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(xchg, T, vma vma, value) }
}

/// Replaces this CPU's copy of the `T` at `vma` by `new` if it holds `current`, guard-less as
/// [`add_current`]: `Ok(previous)` if it did (then `previous == current`), `Err(actual)` with the value
/// it holds if not, as `compare_exchange` of the standard atomics.
///
/// # Safety
///
/// As [`add_current`].
#[inline]
pub unsafe fn cmpxchg_current<T: PerCpuPrimitive>(vma: usize, current: T, new: T) -> Result<T, T> {
    // SAFETY: forwarded to the caller.
    let previous = unsafe { crate::__percpu_access!(cmpxchg, T, vma vma, current, new) };
    cmpxchg_result(previous, current)
}

/// The result of a compare-and-swap that found `previous` where it expected `current`.
#[doc(hidden)]
#[inline(always)]
pub fn cmpxchg_result<T: PerCpuPrimitive>(previous: T, current: T) -> Result<T, T> {
    if previous == current {
        Ok(previous)
    } else {
        Err(previous)
    }
}

/// Replaces this CPU's copy of the `T` at `vma` by its bitwise and with `value`, guard-less as
/// [`add_current`].
///
/// # Safety
///
/// As [`add_current`].
#[inline]
pub unsafe fn and_current<T: PerCpuInteger>(vma: usize, value: T) {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(and, T, vma vma, value) }
}

/// Replaces this CPU's copy of the `T` at `vma` by its bitwise or with `value`, guard-less as
/// [`add_current`].
///
/// # Safety
///
/// As [`add_current`].
#[inline]
pub unsafe fn or_current<T: PerCpuInteger>(vma: usize, value: T) {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(or, T, vma vma, value) }
}

/// Replaces this CPU's copy of the `T` at `vma` by its bitwise exclusive or with `value`, guard-less
/// as [`add_current`].
///
/// # Safety
///
/// As [`add_current`].
#[inline]
pub unsafe fn xor_current<T: PerCpuInteger>(vma: usize, value: T) {
    // SAFETY: forwarded to the caller.
    unsafe { crate::__percpu_access!(xor, T, vma vma, value) }
}

/// Local interrupts and preemption disabled while alive, restored as they were when dropped: the
/// masking of the architecture files (in a hosted x86_64 Linux program: the thread's signals
/// blocked), for code that cannot use [`IrqGuard`](crate::checked::IrqGuard) because it may run on a
/// CPU (hosted: thread) that did not register. `!Send`.
pub struct LocalIrqsOff {
    // Dropped first: interrupts are restored, then preemption.
    _irqs: crate::arch::IrqsOff,
    _preempt: crate::guard::NoPreempt,
}

impl LocalIrqsOff {
    /// Disables preemption, then local interrupts.
    ///
    /// # Safety
    ///
    /// The value restores the state it found, so values of this type and the checked tier's
    /// [`IrqGuard`](crate::checked::IrqGuard)s must be dropped in the reverse order of their creation
    /// on their CPU: the caller drops this value before any such guard or value created before it,
    /// and no `IrqGuard` created while it lives outlives it (else interrupts could come back while a
    /// guard that relies on them being off is alive). Keeping it a local of one function, and
    /// creating no `IrqGuard` meanwhile, does it.
    #[inline]
    pub unsafe fn new() -> Self {
        let preempt = crate::guard::NoPreempt::new();
        Self {
            _irqs: crate::arch::IrqsOff::new(),
            _preempt: preempt,
        }
    }
}
