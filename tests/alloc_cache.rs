//! The per-CPU caches of free offsets (issue 10, item 1): bounded per size class, drained when over the
//! bound and on demand, and right when objects move between CPUs (allocated on one, freed on another).

mod common;
#[path = "common/alloc.rs"]
mod common_alloc;

use std::sync::Mutex;

use common::{on_each_cpu, CPUS};
use common_alloc::{live_without_caches, setup};
use percpu_alloc::{
    cached_bytes, drain_cache, GlobalAllocSource, PerCpu, CACHE_BYTES_PER_CLASS, CACHE_CLASSES,
    MAX_CACHED_SIZE,
};

/// Allocates `count` objects of `N` bytes, each copy holding its object's number and CPU, checks them,
/// and drops them.
fn churn<const N: usize>(count: usize) {
    let objects: Vec<_> = (0..count)
        .map(|i| PerCpu::new_with(|cpu| [(i * CPUS + cpu) as u8; N]).unwrap())
        .collect();
    for (i, object) in objects.iter().enumerate() {
        for cpu in 0..CPUS {
            // SAFETY: CPU `cpu` is initialized and nothing writes the copy.
            let copy = unsafe { &*object.remote_ptr(cpu) };
            assert!(copy.iter().all(|&b| b == (i * CPUS + cpu) as u8));
        }
    }
}

#[test]
fn every_class_stays_within_its_bound_and_drains() {
    let _setup = setup(&GlobalAllocSource);
    let live = live_without_caches();
    assert_eq!(cached_bytes(), 0);
    // Many objects of one class freed at once: the cache keeps at most its bound.
    churn::<8>(1000);
    let held = cached_bytes();
    assert!(
        (8..=CACHE_BYTES_PER_CLASS).contains(&held),
        "{held} bytes cached"
    );
    assert_eq!(drain_cache(), held);
    assert_eq!(cached_bytes(), 0);
    assert_eq!(percpu_alloc::stats().unwrap().live_allocations, live);
    // Every class, and a size past the largest class (not cached).
    churn::<1>(300);
    churn::<12>(300);
    churn::<24>(300);
    churn::<40>(300);
    churn::<64>(300);
    churn::<100>(300);
    churn::<{ MAX_CACHED_SIZE }>(300);
    churn::<{ MAX_CACHED_SIZE + 1 }>(300);
    let held = cached_bytes();
    assert!(held > 0 && held <= 7 * CACHE_BYTES_PER_CLASS, "{held}");
    assert!(held <= CACHE_CLASSES * CACHE_BYTES_PER_CLASS);
    assert_eq!(drain_cache(), held);
    assert_eq!(live_without_caches(), live);
}

#[test]
fn objects_freed_on_other_cpus_go_to_their_caches() {
    const PER_CPU: usize = 500;
    let _setup = setup(&GlobalAllocSource);
    let live = live_without_caches();
    // Every CPU allocates, then frees the objects of the next CPU, several rounds.
    /// The objects a CPU allocated in a round, for the next CPU to free.
    type Shelf = Mutex<Vec<PerCpu<(u32, u32)>>>;
    let shelves: Vec<Shelf> = (0..CPUS).map(|_| Mutex::new(Vec::new())).collect();
    on_each_cpu(|cpu, barrier| {
        for round in 0..4u32 {
            let mine: Vec<_> = (0..PER_CPU as u32)
                .map(|i| PerCpu::new_with(|copy| (round * 10_000 + i, copy as u32)).unwrap())
                .collect();
            *shelves[cpu].lock().unwrap() = mine;
            barrier.wait();
            let theirs = std::mem::take(&mut *shelves[(cpu + 1) % CPUS].lock().unwrap());
            for (i, object) in theirs.iter().enumerate() {
                let copy = *object.get(&percpu::checked::PreemptGuard::new());
                assert_eq!(copy, (round * 10_000 + i as u32, cpu as u32));
            }
            drop(theirs);
            barrier.wait();
            assert!(cached_bytes() <= CACHE_BYTES_PER_CLASS);
        }
    });
    assert_eq!(live_without_caches(), live);
}
