//! The guard-less read-modify-write operations in hosted mode, on one thread acting as CPU 0: every
//! integer type and `bool`, statics and `PerCpu` handles.

mod common;
#[path = "ops_common/mod.rs"]
mod ops_common;

/// This thread acts as CPU 0 while the returned value lives; dropping it releases the id before the
/// next test's thread registers it (the test threads may outlive the tests).
fn cpu_zero() -> CpuZero {
    let serial = common::cpus();
    percpu::init_percpu_reg(0);
    CpuZero { _serial: serial }
}

/// The registration of CPU 0 by this thread, and the lock that serializes the tests.
struct CpuZero {
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Drop for CpuZero {
    fn drop(&mut self) {
        // Before the lock is released (fields drop after this).
        percpu::release_percpu_reg();
    }
}

operations_tests!(
    crate::cpu_zero(),
    percpu_alloc::init(&percpu_alloc::GlobalAllocSource).ok()
);
