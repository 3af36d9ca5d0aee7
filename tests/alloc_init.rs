//! Setting up dynamic per-CPU allocation: what happens before, with unsuitable areas, and twice.

use percpu_alloc::{alloc_percpu, AllocError, GlobalAllocSource, InitError, PerCpuCounter};

#[test]
fn initialization_order_and_requirements() {
    // Before anything: allocation reports it, nothing panics.
    assert_eq!(
        alloc_percpu::<u64>().unwrap_err(),
        AllocError::NotInitialized
    );
    assert_eq!(
        PerCpuCounter::new().unwrap_err(),
        AllocError::NotInitialized
    );
    assert_eq!(
        percpu_alloc::init(&GlobalAllocSource),
        Err(InitError::AreasNotInitialized)
    );

    // Areas without a reserve are only cache-line aligned: refused.
    let layout = percpu::percpu_area_layout_expected(2);
    // SAFETY: non-zero size, leaked (the areas live for the whole test).
    let base = unsafe {
        std::alloc::alloc_zeroed(
            std::alloc::Layout::from_size_align(layout.size() + 4096 + 64, 4096).unwrap(),
        )
    };
    assert_eq!(percpu::init(base.wrapping_add(64), 2), Ok(2));
    assert_eq!(
        percpu_alloc::init(&GlobalAllocSource),
        Err(InitError::AreasNotPageAligned)
    );

    // With the default reserve: accepted once.
    let layout = percpu_alloc::area_layout(2);
    // SAFETY: as above.
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    assert_eq!(percpu_alloc::init_areas(base, 2), Ok(2));
    assert_eq!(percpu_alloc::init(&GlobalAllocSource), Ok(()));
    assert_eq!(
        percpu_alloc::init(&GlobalAllocSource),
        Err(InitError::AlreadyInitialized)
    );
    assert!(percpu_alloc::max_size() >= percpu_alloc::DEFAULT_RESERVE);
    let handle = alloc_percpu::<u64>().unwrap();
    // The first objects come from the reserve of the areas: their offsets are inside an area.
    assert!(handle.offset() < percpu::percpu_area_stride());
    assert!(handle.offset() >= percpu::percpu_area_size());
}
