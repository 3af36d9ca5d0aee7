//! The kernel's assertions: a failed one ends the run with a message naming
//! the CPU and what was checked; passed ones are counted for the summary.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::MAX_CPUS;

/// A counter alone on its cache line.
#[repr(align(64))]
struct Padded(AtomicUsize);

/// Checks passed so far, by the CPU named in the check: one counter per CPU,
/// so that hundreds of CPUs checking at once do not contend on one line.
static PASSED: [Padded; MAX_CPUS] = [const { Padded(AtomicUsize::new(0)) }; MAX_CPUS];

/// Counts a passed check of CPU `cpu`.
fn count(cpu: usize) {
    PASSED[cpu % MAX_CPUS].0.fetch_add(1, Ordering::Relaxed);
}

/// Checks that `ok` holds on CPU `cpu`; fails the run with `what` otherwise.
pub fn expect(cpu: usize, ok: bool, what: fmt::Arguments) {
    if !ok {
        crate::fail(format_args!("cpu {cpu}: {what}"));
    }
    count(cpu);
}

/// Checks that `got == expected` on CPU `cpu`; fails the run with `what` and
/// both values otherwise.
pub fn expect_eq<T: PartialEq + fmt::Debug>(cpu: usize, what: fmt::Arguments, got: T, expected: T) {
    if got != expected {
        crate::fail(format_args!(
            "cpu {cpu}: {what}: got {got:#x?}, expected {expected:#x?}"
        ));
    }
    count(cpu);
}

/// The number of checks passed so far, on all CPUs.
pub fn passed() -> usize {
    PASSED.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
}
