//! Run-time objects exist for every *possible* CPU from the start (issue 10, item 3): the per-CPU
//! areas are initialized for all of them, and every object's copies are built for all of them, so a
//! CPU that comes online later (registers only after the objects were allocated and written) finds its
//! copies initialized, and counters that include it.

use std::sync::atomic::{AtomicUsize, Ordering};

use percpu::checked::IrqGuard;
use percpu_alloc::{alloc_percpu, GlobalAllocSource, PerCpu, PerCpuCell, PerCpuCounter};

/// CPUs the areas are initialized for: the possible CPUs.
const POSSIBLE: usize = 4;

/// Destructors of `Named` copies.
static NAMED_DROPS: AtomicUsize = AtomicUsize::new(0);

/// A value with heap memory and a destructor, built for a CPU.
struct Named(String);

impl Drop for Named {
    fn drop(&mut self) {
        NAMED_DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_cpu_that_comes_online_later_finds_its_copies_initialized() {
    let layout = percpu_alloc::area_layout(POSSIBLE);
    // SAFETY: a non-zero-sized layout; the areas are leaked and live for the whole process.
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    assert_eq!(percpu_alloc::init_areas(base, POSSIBLE), Ok(POSSIBLE));
    assert_eq!(percpu::cpu_count(), POSSIBLE);
    // Only CPU 0 is online: this thread.
    percpu::init_percpu_reg(0);
    percpu_alloc::init(&GlobalAllocSource).unwrap();

    let mut zeroed = alloc_percpu::<[u64; 3]>().unwrap();
    let named = PerCpu::new_with(|cpu| Named(format!("cpu {cpu}"))).unwrap();
    let atomic = PerCpuCell::new_with_atomic(|cpu| cpu as u32 * 7).unwrap();
    let large = PerCpu::new_with(|cpu| [cpu as u8; 1000]).unwrap();
    let counter = PerCpuCounter::new().unwrap();
    zeroed.get_mut(0)[1] = 42;
    counter.add(5);

    // CPU 3 comes online: its copies were built when the objects were allocated.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            percpu::init_percpu_reg(3);
            let guard = IrqGuard::new();
            assert_eq!(*zeroed.get(&guard), [0; 3]);
            assert_eq!(named.get(&guard).0, "cpu 3");
            assert_eq!(atomic.read_current(), 21);
            assert!(large.get(&guard).iter().all(|&b| b == 3));
            drop(guard);
            counter.add(2);
            percpu::release_percpu_reg();
        });
    });
    assert_eq!(counter.per_cpu(3), 2);
    assert_eq!(counter.sum(), 7);
    // CPU 0's write stayed in CPU 0's copy; CPUs 1 and 2, never online, have theirs too.
    // SAFETY: CPUs below `POSSIBLE` are initialized; no thread runs on them.
    unsafe {
        assert_eq!(*zeroed.remote_ptr(0), [0, 42, 0]);
        assert_eq!((*named.remote_ptr(2)).0, "cpu 2");
    }
    drop(named);
    assert_eq!(NAMED_DROPS.load(Ordering::Relaxed), POSSIBLE);
}
