//! The guard-less read-modify-write operations in hosted mode, on one thread acting as CPU 0: every
//! integer type and `bool`, statics and `PerCpuCell` handles.

mod common;
#[path = "ops_common/mod.rs"]
mod ops_common;

/// This thread acts as CPU 0 while the returned value lives.
fn cpu_zero() -> common::CpuZero {
    common::as_cpu_zero()
}

operations_tests!(
    crate::cpu_zero(),
    percpu_alloc::init(&percpu_alloc::GlobalAllocSource).ok()
);
