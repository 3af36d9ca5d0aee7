//! Initializing the areas again destroys every copy: percpu 0.4 allows it at any time, we allow it only
//! while the areas are not in use (issue: a re-initialization after `percpu_alloc::init`, or while CPUs
//! used the areas, silently destroyed live run-time objects, whose `Drop` then dropped garbage).

use std::alloc::alloc_zeroed;
use std::sync::{Arc, Barrier};

use percpu::{def_percpu, InitError};

#[def_percpu]
static VALUE: u64 = 0x5EED;

fn areas(cpus: usize) -> *mut u8 {
    let layout = percpu::percpu_area_layout_with_reserve(cpus, percpu_alloc::DEFAULT_RESERVE);
    // SAFETY: a non-zero size; leaked on purpose (the areas must outlive every register pointing there).
    let base = unsafe { alloc_zeroed(layout) };
    assert!(!base.is_null());
    base
}

/// One test, in order: the states follow each other and `freeze_areas` is for good.
#[test]
fn initialization_is_refused_while_the_areas_are_in_use() {
    // Before use, as with 0.4: again and again.
    let base = areas(2);
    assert_eq!(percpu_alloc::init_areas(base, 2), Ok(2));
    assert_eq!(percpu_alloc::init_areas(base, 2), Ok(2));

    // A CPU registered and holds its area: refused; once it released it (or exited): allowed.
    let barrier = Arc::new(Barrier::new(2));
    let cpu = {
        let barrier = Arc::clone(&barrier);
        std::thread::spawn(move || {
            percpu::init_percpu_reg(1);
            VALUE.write_current(7);
            barrier.wait(); // registered
            barrier.wait(); // the main thread tried to initialize
            assert_eq!(VALUE.read_current(), 7, "the copy survived");
            percpu::release_percpu_reg();
            barrier.wait(); // released
            barrier.wait(); // the main thread initialized
        })
    };
    barrier.wait();
    assert_eq!(percpu_alloc::init_areas(base, 2), Err(InitError::InUse));
    assert_eq!(percpu::init_in_place(), Err(InitError::InUse));
    barrier.wait();
    barrier.wait();
    assert_eq!(percpu_alloc::init_areas(base, 2), Ok(2));
    barrier.wait();
    cpu.join().unwrap();

    // A thread's claim ends when it exits (joined: its thread-local destructors ran).
    std::thread::spawn(|| percpu::init_percpu_reg(0))
        .join()
        .unwrap();
    assert_eq!(percpu_alloc::init_areas(base, 2), Ok(2));

    // Run-time allocation set up on the areas: refused for good.
    percpu_alloc::init(&percpu_alloc::GlobalAllocSource).unwrap();
    let live = std::thread::spawn(|| {
        percpu::init_percpu_reg(0);
        let object = percpu_alloc::PerCpu::new_with(|cpu| vec![cpu; 3]).unwrap();
        percpu::release_percpu_reg();
        object
    })
    .join()
    .unwrap();
    assert_eq!(percpu_alloc::init_areas(base, 2), Err(InitError::InUse));
    assert_eq!(percpu::init(base, 2), Err(InitError::InUse));
    assert_eq!(
        InitError::InUse.to_string(),
        "the per-CPU areas are in use: they cannot be initialized again"
    );
    drop(live);
}
