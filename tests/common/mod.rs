//! Helpers shared by the hosted integration tests: threads acting as CPUs.

#![allow(dead_code)] // each test binary uses its own subset

use std::sync::{Barrier, Mutex, MutexGuard, OnceLock};

/// The number of CPUs the hosted tests simulate.
pub const CPUS: usize = 4;

/// Bytes of every area reserved for run-time allocated per-CPU data.
pub const RESERVE: usize = 64 * 1024;

/// Initializes `CPUS` areas (with a dynamic reserve) on the heap once per test binary, and serializes
/// the tests that use them
/// (two tests acting as the same CPU at once would share its area).
pub fn cpus() -> MutexGuard<'static, ()> {
    static INIT: OnceLock<()> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    INIT.get_or_init(|| {
        let layout = percpu::percpu_area_layout_with_reserve(CPUS, RESERVE);
        // SAFETY: a non-zero-sized layout; the areas are leaked and live for the whole process.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!base.is_null());
        assert_eq!(percpu::init_with_reserve(base, CPUS, RESERVE), Ok(CPUS));
    });
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Initializes twice as many areas as [`cpus`] on new memory: what a re-initialization returns.
pub fn init_again() -> Result<usize, percpu::InitError> {
    let layout = percpu::percpu_area_layout_with_reserve(2 * CPUS, RESERVE);
    // SAFETY: a non-zero-sized layout; leaked: areas may be used for the rest of the process.
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!base.is_null());
    percpu::init_with_reserve(base, 2 * CPUS, RESERVE)
}

/// Runs `body(cpu, barrier)` on `CPUS` threads at once, thread `cpu` acting as CPU `cpu`. A caller
/// acting as a CPU (see [`as_cpu_zero`]) hands its id over for the time being: one thread per CPU.
pub fn on_each_cpu<F>(body: F)
where
    F: Fn(usize, &Barrier) + Sync,
{
    let caller = percpu::registered_cpu();
    percpu::release_percpu_reg();
    let barrier = Barrier::new(CPUS);
    std::thread::scope(|scope| {
        for cpu in 0..CPUS {
            let (body, barrier) = (&body, &barrier);
            scope.spawn(move || {
                percpu::init_percpu_reg(cpu);
                let _release = Release;
                body(cpu, barrier);
            });
        }
    });
    if let Some(cpu) = caller {
        percpu::init_percpu_reg(cpu);
    }
}

/// Ends the thread's claim on its CPU id when dropped, even when the test body panics: the next test
/// reuses the ids, and `thread::scope` returns before the threads' own thread-local destructors (which
/// would end it too) have run.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        percpu::release_percpu_reg();
    }
}

/// The calling thread acts as CPU 0 while the value lives, with the tests serialized as by [`cpus`];
/// dropping it releases the id before the next test's thread registers it (the test harness's threads
/// may outlive their tests, and with them their claims).
pub struct CpuZero {
    _serial: MutexGuard<'static, ()>,
}

/// Serializes the tests and registers this thread as CPU 0; see [`CpuZero`].
pub fn as_cpu_zero() -> CpuZero {
    let serial = cpus();
    percpu::init_percpu_reg(0);
    CpuZero { _serial: serial }
}

impl Drop for CpuZero {
    fn drop(&mut self) {
        // Before the lock is released (the fields drop after this).
        percpu::release_percpu_reg();
    }
}
