//! Uses a per-CPU static with `percpu/preempt` and no `KernelGuardIf` implementation.

#[percpu::def_percpu]
static COUNTER: u64 = 0;

fn main() {
    COUNTER.with_current(|counter| *counter += 1);
}
