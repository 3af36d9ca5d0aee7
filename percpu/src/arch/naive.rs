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
//! CPU for the calling thread ([`THE_CPU`]), so that only one thread at a time is inside such a
//! section, as on a machine with one CPU. A thread that wants the CPU while another holds it waits
//! (yielding) until the holder leaves its last section; a guard that is leaked keeps the CPU held for
//! good, and the other threads wait for ever, as a leaked preemption guard stops every other task on
//! a one-CPU kernel. The guard-less operations take no turn (they are atomic), in debug builds too:
//! the debug record of `with_current` has a lock of its own.

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
/// this mode are atomic and need no masking); on Unix and Windows a section holds the one CPU for this
/// thread ([`THE_CPU`]) unless the thread holds it already, as masking nests on a real CPU.
#[cfg(not(target_os = "none"))]
mod host_irq {
    /// Holds the CPU for this thread (Unix, Windows) unless it holds it already; returns 1 if it did,
    /// 0 if this call took it.
    #[inline]
    pub(crate) fn local_irq_save() -> usize {
        #[cfg(any(unix, windows))]
        return usize::from(!super::THE_CPU.hold_unless_held());
        #[cfg(not(any(unix, windows)))]
        0
    }

    /// Ends the hold that the matching [`local_irq_save`] took, if it took one.
    ///
    /// # Safety
    ///
    /// `flags` comes from the matching [`local_irq_save`] of this thread, restored once.
    #[inline]
    pub(crate) unsafe fn local_irq_restore(flags: usize) {
        #[cfg(any(unix, windows))]
        if flags == 0 {
            super::THE_CPU.release();
        }
        #[cfg(not(any(unix, windows)))]
        let _ = flags;
    }
}

#[cfg(all(not(target_os = "none"), any(unix, windows)))]
pub(crate) use turns::{Turns, THE_CPU};

/// [`Turns`] and [`THE_CPU`]: on a host with threads.
#[cfg(all(not(target_os = "none"), any(unix, windows)))]
mod turns {
    extern crate std;

    use core::cell::Cell;
    use core::sync::atomic::Ordering;

    // The word, and its bits: 64 where the target has 64-bit atomics.
    cfg_if::cfg_if! {
        if #[cfg(target_has_atomic = "64")] {
            use core::sync::atomic::AtomicU64 as Atomic;
            type Bits = u64;
        } else {
            use core::sync::atomic::AtomicUsize as Atomic;
            type Bits = usize;
        }
    }

    /// The one CPU of a hosted `sp-naive` program, held by one thread at a time: by the thread
    /// inside a section with "interrupts off" or with a checked-tier guard alive, for as long as
    /// the last of them lasts. Without it, two threads would each see themselves as the CPU at
    /// once, and the checked tier would lend a `!Sync` value (a `Cell` through an `IrqGuard`) to
    /// both, and the allocator's per-CPU state would be changed by both (an outside review).
    pub(crate) static THE_CPU: Turns = Turns::new();

    /// Something the threads of a hosted program hold one at a time, each as often as it likes (a
    /// count): one atomic word holds the holder's thread number (upper half) and its count of holds
    /// (lower half), 0 when free. Holds may end in any order. A hold is taken with one compare-and-
    /// swap, and ended by its holder with a load and a store (no other thread changes the word
    /// meanwhile), so a signal handler that holds and releases on the thread it interrupted, in the
    /// middle of either, finds a consistent state and leaves it as it was. Thread numbers are never
    /// reused (a thread that exits holding, by a leaked guard, keeps its hold for good): 2³² − 1
    /// threads in a process's life (2¹⁶ − 1 on a target without 64-bit atomics), after which a new
    /// thread's first hold panics.
    pub(crate) struct Turns {
        state: Atomic,
    }

    /// The bits of the word that count the holds.
    const COUNT_BITS: u32 = Bits::BITS / 2;
    /// The mask of the hold count.
    const COUNT: Bits = (1 << COUNT_BITS) - 1;

    /// The last thread number given out.
    static LAST_NUMBER: Atomic = Atomic::new(0);

    std::thread_local! {
        /// This thread's number (0: none yet).
        static NUMBER: Cell<Bits> = const { Cell::new(0) };
    }

    /// This thread's number, shifted to its place in the word.
    fn this_thread() -> Bits {
        NUMBER.with(|number| {
            if number.get() == 0 {
                let new = LAST_NUMBER.fetch_add(1, Ordering::Relaxed) + 1;
                assert!(
                    new < 1 << COUNT_BITS,
                    "percpu: more threads took a turn on the `sp-naive` CPU than it can tell apart"
                );
                number.set(new);
            }
            number.get() << COUNT_BITS
        })
    }

    impl Turns {
        /// Free.
        pub(crate) const fn new() -> Self {
            Self {
                state: Atomic::new(0),
            }
        }

        /// Holds it for this thread, once more: waits while another thread holds it.
        pub(crate) fn hold(&self) {
            self.take(true);
        }

        /// Holds it for this thread unless this thread holds it already; returns whether it did.
        pub(crate) fn hold_unless_held(&self) -> bool {
            !self.take(false)
        }

        /// Takes a hold (or, if `again` is false and this thread holds it already, nothing); returns
        /// whether this thread held it before.
        fn take(&self, again: bool) -> bool {
            let me = this_thread();
            let mut state = self.state.load(Ordering::Relaxed);
            loop {
                let next = if state == 0 {
                    me | 1
                } else if state & !COUNT == me {
                    if !again {
                        return true;
                    }
                    assert!(state & COUNT < COUNT, "percpu: held too often");
                    state + 1
                } else {
                    std::thread::yield_now();
                    state = self.state.load(Ordering::Relaxed);
                    continue;
                };
                // Acquire: what the previous holder did happens before what this one does.
                let acquired = self.state.compare_exchange_weak(
                    state,
                    next,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                );
                match acquired {
                    Ok(_) => return state != 0,
                    Err(now) => state = now,
                }
            }
        }

        /// Ends one of this thread's holds; the last one frees it. Only this thread (and its signal
        /// handlers, which leave the word as they found it) changes the word while it holds, so a
        /// load and a store suffice.
        pub(crate) fn release(&self) {
            let state = self.state.load(Ordering::Relaxed);
            debug_assert!(state & !COUNT == this_thread() && state & COUNT > 0);
            let next = if state & COUNT == 1 { 0 } else { state - 1 };
            // Release: pairs with the next holder's acquire.
            self.state.store(next, Ordering::Release);
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
