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
    crate::validate_this_cpu();
    #[cfg(not(debug_assertions))]
    crate::registration::check_hosted_thread();
    // A zero-sized value has no bytes to alias (and may share its address with other data).
    #[cfg(debug_assertions)]
    let _lent = (size_of::<T>() != 0).then(|| borrow::Lent::new(vma));
    // SAFETY: this task stays on this CPU (preemption disabled with `preempt`; a kernel without it does
    // not migrate tasks in the middle of a call). No other reference to this copy is live: a second
    // `with_current` on it, or a one-value access from inside the closure or from an interrupt handler,
    // panics in debug builds (`Lent`, `check_not_lent`) and is excluded by the documented contract in
    // release builds. The caller vouches for `vma`.
    f(unsafe { &mut *raw::current_ptr::<T>(vma) })
}

/// In debug builds, panics if this CPU did not register its area ([`validate_this_cpu`]), or if it is
/// lending out the data at `vma` as `&mut` (inside a `with_current` on it): a one-value access
/// (`read_current`, `write_current`, `add_current`, ...) from inside the closure or from an interrupt
/// handler that interrupted it would alias that `&mut`. In release builds, free in a kernel; in
/// hosted mode (x86_64 Linux) it still panics if this thread did not register (two instructions and
/// a branch).
///
/// [`validate_this_cpu`]: crate::validate_this_cpu
#[inline(always)]
pub fn check_not_lent(vma: usize) {
    #[cfg(debug_assertions)]
    {
        crate::validate_this_cpu();
        borrow::assert_not_lent(vma, "a one-value access (read, write, add or sub)");
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = vma;
        crate::registration::check_hosted_thread();
    }
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

    /// Runs `f` on this CPU's stack, with local interrupts disabled so that no handler touches it
    /// meanwhile (an interrupt handler's own calls complete before it returns).
    #[cfg(not(all(feature = "sp-naive", not(target_os = "none"), any(unix, windows))))]
    fn with_stack<R>(f: impl FnOnce(&mut Stack) -> R) -> R {
        // SAFETY: `f` gets a reference bound to the closure; nothing in it relies on interrupts
        // staying off after it returns.
        unsafe {
            crate::arch::with_irqs_off(|| {
                // SAFETY: with interrupts off, nothing else on this CPU runs until the reference is
                // dropped, and no other CPU uses this CPU's copy; the stack is only ever reached
                // through this function.
                f(BORROWED.current_ref_mut_raw())
            })
        }
    }

    /// `sp-naive` on a host: the one stack of the threads, which take turns with it (a lock of its
    /// own, not the CPU's: a guard-less operation takes no turn on the CPU; an outside review). A
    /// signal handler that touches per-CPU data is the installer's responsibility, as there.
    #[cfg(all(feature = "sp-naive", not(target_os = "none"), any(unix, windows)))]
    fn with_stack<R>(f: impl FnOnce(&mut Stack) -> R) -> R {
        static TURNS: crate::arch::Turns = crate::arch::Turns::new();
        TURNS.hold();
        // SAFETY: while this thread holds `TURNS`, no other thread reaches the stack, which is only
        // ever reached through this function; `f` runs no code of the caller's.
        let result = f(unsafe { BORROWED.current_ref_mut_raw() });
        TURNS.release();
        result
    }

    /// Panics if this CPU lends out the data at `vma`; `what` names the offending access.
    pub fn assert_not_lent(vma: usize, what: &str) {
        let lent = with_stack(|stack| stack.vmas[..stack.len.min(DEPTH)].contains(&vma));
        assert!(
            !lent,
            "percpu: {what} on per-CPU data that a `with_current` running on this CPU lends out as \
             `&mut` (called from its closure, or from an interrupt handler): this would alias it"
        );
    }

    /// Marks the data at a VMA as lent out on this CPU until dropped.
    pub struct Lent {
        /// The VMA it lends, if the stack had room to record it.
        vma: Option<usize>,
    }

    impl Lent {
        /// # Panics
        ///
        /// If this CPU already lends out the data at `vma`.
        pub fn new(vma: usize) -> Self {
            assert_not_lent(vma, "`with_current` (nested, or from an interrupt handler)");
            let tracked = with_stack(|stack| {
                let tracked = stack.len < DEPTH;
                if tracked {
                    stack.vmas[stack.len] = vma;
                }
                stack.len += 1;
                tracked
            });
            Self {
                vma: tracked.then_some(vma),
            }
        }
    }

    impl Drop for Lent {
        fn drop(&mut self) {
            with_stack(|stack| {
                let tracked = stack.len.min(DEPTH);
                stack.len -= 1;
                // Its own entry, the last one of its VMA: the top one, unless `sp-naive` threads,
                // which share the stack, ended their `with_current`s out of order (an outside review
                // found the top one removed there: false panics, and a missed check).
                if let Some(at) = self
                    .vma
                    .and_then(|vma| stack.vmas[..tracked].iter().rposition(|&lent| lent == vma))
                {
                    stack.vmas.copy_within(at + 1..tracked, at);
                    stack.vmas[tracked - 1] = 0;
                }
            });
        }
    }
}
