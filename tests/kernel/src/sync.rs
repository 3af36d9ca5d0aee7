//! Bounded spin waits and the all-CPU barrier.
//!
//! Every wait of the kernel counts its spins and fails the run with a message
//! naming what it waited for when the count runs out, so that a CPU that
//! never arrives is reported instead of hanging until the harness' timeout.
//! Spin counts rather than a clock: waits must work before any timer is set
//! up, on every architecture.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Spins before a wait gives up: generous, several seconds of emulated time,
/// so that even 8 vCPUs sharing 2 host cores keep up.
const SPIN_LIMIT: u64 = 1_000_000_000;

/// Spins until `done()` holds; after [`SPIN_LIMIT`] spins, calls `timed_out`,
/// which fails the run.
pub fn spin_until(mut done: impl FnMut() -> bool, timed_out: impl FnOnce()) {
    for _ in 0..SPIN_LIMIT {
        if done() {
            return;
        }
        core::hint::spin_loop();
    }
    timed_out()
}

/// A reusable barrier for a fixed number of CPUs.
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
    pub fn wait(&self, cpu: usize, cpus: usize, what: &'static str) {
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == cpus {
            // Last one in: open the next round before releasing the others,
            // so that nobody enters it while `arrived` still counts this one.
            self.arrived.store(0, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Release);
            return;
        }
        spin_until(
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
