//! The `preempt` feature calls the kernel's `KernelGuardIf` around accesses that need it. This test
//! binary is the "kernel": it implements the interface and counts the calls of each thread (CPU).

mod common;

use std::cell::Cell;

use common::{cpus, on_each_cpu};
use percpu::def_percpu;

thread_local! {
    static DISABLES: Cell<usize> = const { Cell::new(0) };
    static ENABLES: Cell<usize> = const { Cell::new(0) };
}

/// Preemption is disabled on this thread.
fn preempt_disabled() -> bool {
    DISABLES.get() > ENABLES.get()
}

fn calls() -> (usize, usize) {
    (DISABLES.get(), ENABLES.get())
}

struct CountingGuard;

#[crate_interface::impl_interface]
impl kernel_guard::KernelGuardIf for CountingGuard {
    fn disable_preempt() {
        DISABLES.set(DISABLES.get() + 1);
    }
    fn enable_preempt() {
        assert!(preempt_disabled(), "enable_preempt without disable_preempt");
        ENABLES.set(ENABLES.get() + 1);
    }
}

#[def_percpu]
static COUNTER: u64 = 0;
#[def_percpu]
static LIST: Vec<u32> = Vec::new();

#[test]
fn with_current_and_reset_disable_preemption_around_the_access() {
    let _cpus = cpus();
    on_each_cpu(|cpu, _| {
        let before = calls();
        LIST.with_current(|list| {
            assert!(
                preempt_disabled(),
                "the closure runs with preemption disabled"
            );
            list.push(cpu as u32);
        });
        assert_eq!(calls(), (before.0 + 1, before.1 + 1));
        LIST.reset_to_init();
        assert_eq!(calls(), (before.0 + 2, before.1 + 2));
        assert!(!preempt_disabled());
    });
}

#[test]
fn single_instruction_accesses_need_no_guard() {
    let _cpus = cpus();
    on_each_cpu(|_, _| {
        let before = calls();
        COUNTER.write_current(5);
        COUNTER.add_current(2);
        COUNTER.sub_current(1);
        assert_eq!(COUNTER.read_current(), 6);
        // On x86_64 every one of these is one instruction: preemption cannot split it, so the guard is
        // elided; `add_current`/`sub_current` are guard-less on every architecture.
        let expected = if cfg!(target_arch = "x86_64") {
            before
        } else {
            (before.0 + 2, before.1 + 2)
        };
        assert_eq!(calls(), expected);
    });
}
