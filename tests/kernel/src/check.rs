//! The kernel's assertions: a failed one ends the run with a message naming
//! the CPU and what was checked; passed ones are counted for the summary.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Checks passed so far, on all CPUs.
static PASSED: AtomicUsize = AtomicUsize::new(0);

/// Checks that `ok` holds on CPU `cpu`; fails the run with `what` otherwise.
pub fn expect(cpu: usize, ok: bool, what: fmt::Arguments) {
    if !ok {
        crate::fail(format_args!("cpu {cpu}: {what}"));
    }
    PASSED.fetch_add(1, Ordering::Relaxed);
}

/// Checks that `got == expected` on CPU `cpu`; fails the run with `what` and
/// both values otherwise.
pub fn expect_eq<T: PartialEq + fmt::Debug>(cpu: usize, what: fmt::Arguments, got: T, expected: T) {
    if got != expected {
        crate::fail(format_args!(
            "cpu {cpu}: {what}: got {got:#x?}, expected {expected:#x?}"
        ));
    }
    PASSED.fetch_add(1, Ordering::Relaxed);
}

/// The number of checks passed so far.
pub fn passed() -> usize {
    PASSED.load(Ordering::Relaxed)
}
