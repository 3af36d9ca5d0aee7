//! Guards around accesses to this CPU's copy: preemption (feature `preempt`), and, in debug builds, the
//! check that `with_current` never hands out two `&mut` to one copy.

use core::marker::PhantomData;

use crate::{arch, raw};

/// Keeps the current task on this CPU while alive: disables preemption through the kernel's
/// [`kernel_guard::KernelGuardIf`] with the `preempt` feature, does nothing without it.
pub(crate) struct NoPreempt {
    /// The guard belongs to the CPU that created it.
    _not_send: PhantomData<*mut ()>,
}

impl NoPreempt {
    #[inline]
    pub(crate) fn new() -> Self {
        #[cfg(feature = "preempt")]
        crate_interface::call_interface!(kernel_guard::KernelGuardIf::disable_preempt);
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Drop for NoPreempt {
    #[inline]
    fn drop(&mut self) {
        #[cfg(feature = "preempt")]
        crate_interface::call_interface!(kernel_guard::KernelGuardIf::enable_preempt);
    }
}

/// Keeps the task on this CPU for one `read_current` / `write_current` where that is needed: it
/// disables preemption (feature `preempt`) on architectures where such an access takes several
/// instructions (reading the register, then the memory), and is free where it is one instruction
/// (x86_64) or without the `preempt` feature.
pub struct AccessGuard {
    _not_send: PhantomData<*mut ()>,
}

/// Whether a single access needs preemption disabled.
const ACCESS_NEEDS_GUARD: bool = cfg!(feature = "preempt") && !arch::ONE_INSTRUCTION_ACCESS;

impl AccessGuard {
    /// Disables preemption if an access needs it.
    #[inline]
    pub fn new() -> Self {
        if ACCESS_NEEDS_GUARD {
            core::mem::forget(NoPreempt::new());
        }
        Self {
            _not_send: PhantomData,
        }
    }
}

impl Default for AccessGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for AccessGuard {
    #[inline]
    fn drop(&mut self) {
        if ACCESS_NEEDS_GUARD {
            drop(NoPreempt {
                _not_send: PhantomData,
            });
        }
    }
}

/// Runs `f` on this CPU's copy of the `T` at `vma`, with preemption disabled, and (debug builds) after
/// checking that no other `with_current` of the same data runs on this CPU.
///
/// # Safety
///
/// `vma` must designate a `T` in every area, and this CPU's register must be initialized.
#[doc(hidden)]
#[inline]
pub unsafe fn with_current<T, R>(vma: usize, f: impl FnOnce(&mut T) -> R) -> R {
    let _preempt = NoPreempt::new();
    #[cfg(debug_assertions)]
    let _borrow = borrow::Exclusive::new(vma);
    // SAFETY: this task stays on this CPU (preemption disabled with `preempt`; a kernel without it does
    // not migrate tasks in the middle of a call), and no other `&mut` to this copy exists: a second
    // `with_current` on it would have panicked above in debug builds, and is excluded by the documented
    // contract in release builds. The caller vouches for `vma`.
    f(unsafe { &mut *raw::current_ptr::<T>(vma) })
}

/// The debug-build record of the `with_current` calls running on each CPU.
#[cfg(debug_assertions)]
mod borrow {
    /// How many nested `with_current` calls (of distinct data) are checked; deeper ones are not.
    const DEPTH: usize = 16;

    /// The VMAs whose copies this CPU currently lends out as `&mut`.
    pub struct Stack {
        vmas: [usize; DEPTH],
        len: usize,
    }

    #[crate::def_percpu]
    static BORROWED: Stack = Stack {
        vmas: [0; DEPTH],
        len: 0,
    };

    /// Marks the data at a VMA as lent out on this CPU until dropped.
    pub struct Exclusive {
        tracked: bool,
    }

    impl Exclusive {
        /// # Panics
        ///
        /// If this CPU already lends out the data at `vma`.
        pub fn new(vma: usize) -> Self {
            let _irq = kernel_guard::IrqSave::new();
            // SAFETY: interrupts are off and the caller keeps preemption off: nothing else touches this
            // CPU's stack until the reference is dropped.
            let stack = unsafe { BORROWED.current_ref_mut_raw() };
            let live = &stack.vmas[..stack.len.min(DEPTH)];
            assert!(
                !live.contains(&vma),
                "percpu: `with_current` called while a `with_current` on the same per-CPU data is running \
                 on this CPU (nested call, or from an interrupt handler): this would create two `&mut`"
            );
            let tracked = stack.len < DEPTH;
            if tracked {
                stack.vmas[stack.len] = vma;
            }
            stack.len += 1;
            Self { tracked }
        }
    }

    impl Drop for Exclusive {
        fn drop(&mut self) {
            let _irq = kernel_guard::IrqSave::new();
            // SAFETY: as in `new`.
            let stack = unsafe { BORROWED.current_ref_mut_raw() };
            stack.len -= 1;
            if self.tracked {
                stack.vmas[stack.len] = 0;
            }
        }
    }
}
