//! Waits and the all-CPU barrier.
//!
//! Under QEMU every vCPU is a host thread, and hundreds of them may share two
//! host cores: a CPU that spins while it waits takes host time from the CPUs
//! it waits for. So every CPU but CPU 0 sleeps while it waits
//! ([`arch::wait_for_wake`]), and whoever changes what others wait for wakes
//! them all ([`arch::wake_all`]). CPU 0 polls instead, with a time limit, so
//! that a CPU that never arrives is reported (naming what was awaited) rather
//! than hanging until the harness' timeout; one polling vCPU costs little.
//! The limit is measured with the architecture's free-running clock, which
//! needs no set-up beyond what the architecture does before `boot_main`.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch;

/// How long CPU 0 waits for anything before failing the run: longer than
/// any wait took in the runs measured (up to 512 vCPUs on 2 host cores), and
/// shorter than the matrix's time limit per run (120 s).
const WAIT_LIMIT_NS: u64 = 40_000_000_000;

/// Polls between two readings of the clock.
const POLLS_PER_CLOCK_READ: usize = 1000;

/// Spins until `done()` holds; after [`WAIT_LIMIT_NS`], calls `timed_out`,
/// which fails the run. For CPU 0, and for waits before the other CPUs can
/// be woken.
pub fn spin_until(mut done: impl FnMut() -> bool, timed_out: impl FnOnce()) {
    let start = arch::clock_ns();
    while arch::clock_ns().wrapping_sub(start) < WAIT_LIMIT_NS {
        for _ in 0..POLLS_PER_CLOCK_READ {
            if done() {
                return;
            }
            core::hint::spin_loop();
        }
    }
    timed_out()
}

/// Waits on CPU `cpu` until `done()` holds, which another CPU makes true
/// before calling [`arch::wake_all`]: CPU 0 polls ([`spin_until`], failing
/// through `timed_out` after the time limit), the others sleep between
/// checks.
pub fn wait_until(cpu: usize, mut done: impl FnMut() -> bool, timed_out: impl FnOnce()) {
    if cpu == 0 {
        return spin_until(done, timed_out);
    }
    while !done() {
        arch::wait_for_wake();
    }
}

/// A reusable barrier for a number of CPUs given at each wait.
pub struct Barrier {
    /// CPUs that reached the current round.
    arrived: AtomicUsize,
    /// Completed rounds: waiting CPUs leave when it changes.
    round: AtomicUsize,
}

impl Barrier {
    /// A barrier no CPU has reached yet.
    pub const fn new() -> Self {
        Self {
            arrived: AtomicUsize::new(0),
            round: AtomicUsize::new(0),
        }
    }

    /// Waits until `cpus` CPUs (this one included) reached the barrier;
    /// `what` names the barrier in the failure message if some never do.
    /// The CPUs of one round must pass the same `cpus`, and CPU 0 must be
    /// among them (it reports a CPU that never arrives).
    pub fn wait(&self, cpu: usize, cpus: usize, what: &'static str) {
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == cpus {
            // Last one in: open the next round before releasing the others,
            // so that nobody enters it while `arrived` still counts this one.
            self.arrived.store(0, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Release);
            arch::wake_all();
            return;
        }
        wait_until(
            cpu,
            || self.round.load(Ordering::Acquire) != round,
            || {
                crate::fail(format_args!(
                    "cpu {cpu}: timed out waiting for {what}: {} of {cpus} cpus arrived",
                    self.arrived.load(Ordering::Relaxed)
                ))
            },
        );
    }
}
