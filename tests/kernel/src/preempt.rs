//! The kernel side of the `preempt` feature: our implementation of
//! `kernel_guard::KernelGuardIf`, which percpu calls around per-CPU accesses.
//!
//! This kernel has no scheduler, so "disabling preemption" only counts: like a
//! real kernel's preemption counter, the counts are per-CPU variables, updated
//! with the guard-less, interrupt-safe `add_current`/`sub_current`.

use kernel_guard::KernelGuardIf;

use crate::check::{expect, expect_eq};
use crate::println;

/// Current nesting depth of disabled preemption on this CPU.
#[percpu::def_percpu]
static DEPTH: usize = 0;

/// Calls of `disable_preempt` on this CPU.
#[percpu::def_percpu]
static DISABLES: usize = 0;

/// Calls of `enable_preempt` on this CPU.
#[percpu::def_percpu]
static ENABLES: usize = 0;

/// A variable accessed with `with_current` to watch the guard.
#[percpu::def_percpu]
static PROBE: u32 = 0;

/// The kernel's preemption control, as seen by `kernel_guard`.
struct PreemptControl;

#[crate_interface::impl_interface]
impl KernelGuardIf for PreemptControl {
    fn disable_preempt() {
        DISABLES.add_current(1);
        DEPTH.add_current(1);
    }

    fn enable_preempt() {
        DEPTH.sub_current(1);
        ENABLES.add_current(1);
    }
}

/// This CPU's (depth, disables, enables), read without any guard.
fn counts() -> (usize, usize, usize) {
    // SAFETY: this CPU's register is set; nothing preempts this kernel and
    // no reference to these variables is live.
    unsafe {
        (
            DEPTH.read_current_raw(),
            DISABLES.read_current_raw(),
            ENABLES.read_current_raw(),
        )
    }
}

/// Checks that `with_current` disables preemption while its closure runs and
/// re-enables it afterwards, in balanced calls.
pub fn check_with_current(cpu: usize) {
    let (_, disables, enables) = counts();
    let inside = PROBE.with_current(|probe| {
        *probe += 1;
        counts()
    });
    let (depth, disables_after, enables_after) = counts();
    expect(
        cpu,
        inside.0 >= 1,
        format_args!("preemption enabled inside with_current"),
    );
    expect(
        cpu,
        disables_after > disables,
        format_args!("with_current did not call disable_preempt"),
    );
    expect_eq(
        cpu,
        format_args!("enable_preempt calls made by with_current"),
        enables_after - enables,
        disables_after - disables,
    );
    expect_eq(
        cpu,
        format_args!("preemption depth after with_current"),
        depth,
        0,
    );
}

/// Checks that every disable was matched by an enable over the whole run;
/// reports it if `verbose`.
pub fn check_balanced(cpu: usize, verbose: bool) {
    let (depth, disables, enables) = counts();
    expect_eq(cpu, format_args!("preemption depth at the end"), depth, 0);
    expect_eq(cpu, format_args!("enable_preempt calls"), enables, disables);
    expect(
        cpu,
        disables > 0,
        format_args!("the preempt guard was never called"),
    );
    if verbose {
        println!("cpu {cpu}: preempt guard: {disables} disable / {enables} enable calls, balanced");
    }
}
