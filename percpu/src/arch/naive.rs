//! `sp-naive`: one CPU, per-CPU variables are plain globals, there is no register: a VMA is the
//! address of the only copy.
//!
//! Loads and stores are relaxed atomic accesses (plain instructions on every target), and the
//! read-modify-write operations are atomic read-modify-write operations of `core::sync::atomic`
//! where the target has them at the type's width: on one CPU that is safe against interrupts, and on
//! a host against signal handlers and against the threads that take turns being the CPU. Where the
//! target has no atomic operation of that width, local interrupts are disabled around a load and a
//! store.
//!
//! Local interrupts: in a kernel (`target_os = "none"`), the architecture's own instructions (from its
//! file of this module, or `kernel_guard`'s for an architecture without one). On a host (Unix,
//! Windows) no signal is blocked (the operations above need no masking), but the threads of the
//! program all run on the one CPU: disabling "interrupts", and every checked-tier guard, holds that
//! CPU for the calling thread ([`the_cpu`]), so that only one thread at a time is inside such a
//! section, as on a machine with one CPU. A thread that wants the CPU while another holds it waits
//! (yielding) until the holder leaves its last section; a guard that is leaked keeps the CPU held for
//! good, and the other threads wait for ever, as a leaked preemption guard stops every other task on
//! a one-CPU kernel.

/// With one CPU there is no migration: accesses need no guard.
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = true;

#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access {
    (addr_of, sym $s:path) => {
        &raw const $s as usize
    };
    (ptr, $T:ty, sym $s:path) => {
        &raw mut $s as *mut $T
    };
    (ptr, $T:ty, vma $vma:expr) => {
        ($vma) as *mut $T
    };
    (read, $T:ty, $kind:ident $a:tt) => {
        $crate::__priv::read_relaxed::<$T>($crate::__percpu_access!(ptr, $T, $kind $a))
    };
    (write, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__priv::write_relaxed::<$T>($crate::__percpu_access!(ptr, $T, $kind $a), $val)
    };
    ($op:ident, $T:ty, $kind:ident $a:tt $(, $val:expr)+) => {
        $crate::__percpu_rmw_result!($op, $crate::__priv::rmw_atomic::<$T>(
            $crate::__percpu_access!(ptr, $T, $kind $a),
            $crate::__percpu_rmw_op!($op, $T $(, $val)+),
        ))
    };
}

// Local interrupts: the architecture file's in a kernel, `kernel_guard`'s for an architecture without
// one, nothing on a host.
cfg_if::cfg_if! {
    if #[cfg(not(target_os = "none"))] {
        pub(crate) use host_irq::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "x86_64")] {
        pub(crate) use super::x86_64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "aarch64")] {
        pub(crate) use super::aarch64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "riscv64")] {
        pub(crate) use super::riscv64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "loongarch64")] {
        pub(crate) use super::loongarch64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "arm")] {
        pub(crate) use super::arm::{local_irq_restore, local_irq_save};
    } else {
        pub(crate) use kernel_guard_irq::{local_irq_restore, local_irq_save};
    }
}

/// Local interrupts through `kernel_guard`, for a kernel architecture without a file here.
#[cfg(all(
    target_os = "none",
    not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "arm"
    ))
))]
mod kernel_guard_irq {
    use kernel_guard::{BaseGuard, IrqSave};

    /// Disables local interrupts; returns the previous state.
    #[inline]
    pub(crate) fn local_irq_save() -> usize {
        IrqSave::acquire()
    }

    /// Restores the state that [`local_irq_save`] returned.
    ///
    /// # Safety
    ///
    /// `flags` must come from the matching [`local_irq_save`], the last one not yet restored.
    #[inline]
    pub(crate) unsafe fn local_irq_restore(flags: usize) {
        IrqSave::release(flags)
    }
}

/// Local interrupts on a host: there are none to disable and no signal is blocked (the operations of
/// this mode are atomic and need no masking); on Unix and Windows the section holds the one CPU for
/// this thread ([`the_cpu`]).
#[cfg(not(target_os = "none"))]
mod host_irq {
    /// Holds the CPU for this thread (Unix, Windows); returns 0.
    #[inline]
    pub(crate) fn local_irq_save() -> usize {
        #[cfg(any(unix, windows))]
        super::the_cpu::hold();
        0
    }

    /// Ends the section of the matching [`local_irq_save`].
    ///
    /// # Safety
    ///
    /// Called once per [`local_irq_save`] of this thread.
    #[inline]
    pub(crate) unsafe fn local_irq_restore(_flags: usize) {
        #[cfg(any(unix, windows))]
        super::the_cpu::release();
    }
}

/// The one CPU of a hosted `sp-naive` program, held by one thread at a time: by the thread inside a
/// section with "interrupts off" or with a checked-tier guard alive, for as long as the last of them
/// lasts. Without it, two threads would each see themselves as the CPU at once, and the checked tier
/// would lend a `!Sync` value (a `Cell` through an `IrqGuard`) to both, and the allocator's per-CPU
/// state would be changed by both (an outside review).
///
/// Holds nest, and may be ended in any order (a count). Every change is one atomic operation on one
/// word, so a signal handler that holds and releases the CPU on the thread it interrupted, in the
/// middle of either, finds a consistent state and leaves it as it was.
#[cfg(all(not(target_os = "none"), any(unix, windows)))]
pub(crate) mod the_cpu {
    extern crate std;

    use core::cell::Cell;
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// The bits of [`STATE`] that count the holds.
    const COUNT_BITS: u32 = usize::BITS / 2;
    /// The mask of the hold count in [`STATE`].
    const COUNT: usize = (1 << COUNT_BITS) - 1;

    /// The holder's thread number above [`COUNT_BITS`], and its count of holds below; 0 when free.
    static STATE: AtomicUsize = AtomicUsize::new(0);

    /// The last thread number given out.
    static LAST_NUMBER: AtomicUsize = AtomicUsize::new(0);

    std::thread_local! {
        /// This thread's number (0: none yet).
        static NUMBER: Cell<usize> = const { Cell::new(0) };
    }

    /// This thread's number, shifted to its place in [`STATE`].
    fn this_thread() -> usize {
        NUMBER.with(|number| {
            if number.get() == 0 {
                let new = LAST_NUMBER.fetch_add(1, Ordering::Relaxed) + 1;
                assert!(
                    new < 1 << (usize::BITS - COUNT_BITS),
                    "percpu: more threads used the `sp-naive` CPU than it can tell apart"
                );
                number.set(new);
            }
            number.get() << COUNT_BITS
        })
    }

    /// Holds the CPU for this thread, once more: waits while another thread holds it.
    pub(crate) fn hold() {
        let me = this_thread();
        let mut state = STATE.load(Ordering::Relaxed);
        loop {
            let next = if state == 0 {
                me | 1
            } else if state & !COUNT == me {
                assert!(
                    state & COUNT < COUNT,
                    "percpu: the `sp-naive` CPU held too often"
                );
                state + 1
            } else {
                std::thread::yield_now();
                state = STATE.load(Ordering::Relaxed);
                continue;
            };
            // Acquire: what the previous holder did happens before what this one does.
            match STATE.compare_exchange_weak(state, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    /// Ends one hold of this thread's; the last one frees the CPU.
    pub(crate) fn release() {
        let mut state = STATE.load(Ordering::Relaxed);
        loop {
            debug_assert!(state & !COUNT == this_thread() && state & COUNT > 0);
            let next = if state & COUNT == 1 { 0 } else { state - 1 };
            // Release: pairs with the next holder's acquire.
            match STATE.compare_exchange_weak(state, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }
}

/// There is no register: 0.
pub(crate) fn read_reg() -> usize {
    0
}

/// There is no register: nothing to do.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn write_reg(_value: usize) {}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn prepare_area(_area: usize) {}
