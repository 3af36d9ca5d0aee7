//! This CPU's side of the allocator: what keeps a task on its CPU while it uses the CPU's state, and
//! the flags that tell an interrupt handler (or, in a hosted program, a signal handler) what the code
//! it interrupted on this CPU was doing with the allocator.
//!
//! A handler runs to completion on the CPU it interrupted before that code goes on, so a flag that this
//! CPU sets, checks and clears only for itself needs no atomic read-modify-write: a handler that finds
//! a flag clear claims it and gives it back before the interrupted code sees it again, and one that
//! finds it set leaves the flagged state alone. The flags are atomics (with relaxed accesses, plain
//! loads and stores) only so that the handler's accesses are defined; the compiler fences keep the
//! flagged accesses between the claim and its release.

use core::sync::atomic::{compiler_fence, AtomicBool, Ordering};

/// The flags of this CPU.
#[percpu::def_percpu]
static FLAGS: Flags = Flags {
    cache: AtomicBool::new(false),
    space: AtomicBool::new(false),
};

struct Flags {
    /// The per-CPU cache of this CPU is being changed.
    cache: AtomicBool,
    /// This CPU holds, or waits for, the allocator core's lock.
    space: AtomicBool,
}

/// Runs `f` with the current task kept on this CPU (preemption disabled, as by
/// `percpu::checked::PreemptGuard`), or returns `None` if this CPU (hosted: thread) did not register
/// its per-CPU area: its per-CPU state is not its own then, and the caller goes to the allocator core.
#[inline]
pub(crate) fn pinned<R>(f: impl FnOnce() -> R) -> Option<R> {
    let _pinned = percpu::checked::PreemptGuard::try_new()?;
    Some(f())
}

/// One of this CPU's flags, claimed until dropped. Not `Send`: it belongs to its CPU.
pub(crate) struct Claim {
    flag: &'static AtomicBool,
    _not_send: core::marker::PhantomData<*mut ()>,
}

/// Which flag to claim.
#[derive(Clone, Copy)]
pub(crate) enum Flag {
    /// This CPU's cache (see `crate::cache`).
    Cache,
    /// The core's lock (see `crate::space`).
    Space,
}

impl Claim {
    /// Claims `flag` of this CPU, or returns `None` if code that this call interrupted on this CPU
    /// (or that encloses it) holds it. The caller must be pinned to this registered CPU (see
    /// [`pinned`], or `percpu::registered_cpu` with interrupts and preemption off) until the claim is
    /// dropped.
    #[inline]
    pub(crate) fn try_new(flag: Flag) -> Option<Self> {
        // SAFETY: `FLAGS` is an initialized per-CPU static of this CPU's own area (the caller checked
        // that this CPU registered it, and stays on it); it is only ever reached through shared
        // references, its fields being atomics.
        let flags = unsafe { &*FLAGS.current_ptr() };
        let flag = match flag {
            Flag::Cache => &flags.cache,
            Flag::Space => &flags.space,
        };
        if flag.load(Ordering::Relaxed) {
            return None;
        }
        flag.store(true, Ordering::Relaxed);
        // The flagged accesses stay after the claim (the handler's view is this CPU's program order).
        compiler_fence(Ordering::SeqCst);
        Some(Self {
            flag,
            _not_send: core::marker::PhantomData,
        })
    }
}

impl Drop for Claim {
    #[inline]
    fn drop(&mut self) {
        compiler_fence(Ordering::SeqCst);
        self.flag.store(false, Ordering::Relaxed);
    }
}
