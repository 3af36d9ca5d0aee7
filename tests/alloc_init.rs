//! Setting up dynamic per-CPU allocation: what happens before, with unsuitable areas, with areas that
//! have no dynamic reserve (as a kernel's `init_in_place` gives), and twice.

use percpu_alloc::{alloc_percpu, AllocError, GlobalAllocSource, InitError, PerCpu, PerCpuCounter};

/// Page-aligned memory for `size` bytes of areas, leaked (areas live for the whole test).
fn page_aligned(size: usize) -> *mut u8 {
    let layout = std::alloc::Layout::from_size_align(size + 4096, 4096).unwrap();
    // SAFETY: non-zero size.
    unsafe { std::alloc::alloc_zeroed(layout) }
}

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
    assert_eq!(percpu_alloc::max_align(), 0);
    assert_eq!(
        percpu_alloc::init(&GlobalAllocSource),
        Err(InitError::AreasNotInitialized)
    );

    // Area 0 must be page-aligned, or further chunks could not share its offsets.
    let size = percpu::percpu_area_layout_expected(2).size();
    let base = page_aligned(size);
    assert_eq!(percpu::init(base.wrapping_add(64), 2), Ok(2));
    assert_eq!(
        percpu_alloc::init(&GlobalAllocSource),
        Err(InitError::AreasNotPageAligned)
    );

    // Areas without a reserve: the stride is the unit, every object lives in further chunks. This
    // thread acts as CPU 0 (the allocator uses per-CPU data of its own).
    assert_eq!(percpu::init(base, 2), Ok(2));
    percpu::init_percpu_reg(0);
    assert_eq!(percpu_alloc::init(&GlobalAllocSource), Ok(()));
    assert_eq!(
        percpu_alloc::init(&GlobalAllocSource),
        Err(InitError::AlreadyInitialized)
    );
    let stride = percpu::percpu_area_stride();
    assert_eq!(percpu_alloc::max_size(), stride);
    assert_eq!(
        percpu_alloc::max_align(),
        4096.min(1 << stride.trailing_zeros())
    );
    let handles: Vec<_> = (0..100)
        .map(|i| PerCpu::new_with(|cpu| (i, cpu)).unwrap())
        .collect();
    for (i, handle) in handles.iter().enumerate() {
        for cpu in 0..2 {
            // SAFETY: initialized CPUs, nobody else uses the copies.
            assert_eq!(unsafe { *handle.remote_ptr(cpu) }, (i, cpu));
        }
    }
    #[repr(align(128))]
    struct CacheLinePair(#[allow(dead_code)] [u8; 128]);
    if percpu_alloc::max_align() < 128 {
        let error = PerCpu::new_with(|_| CacheLinePair([0; 128])).unwrap_err();
        assert_eq!(error, AllocError::UnsupportedAlignment);
    }
    struct Big(#[allow(dead_code)] [u8; 8192]);
    assert!(stride < 8192, "the test's template is small");
    assert_eq!(
        PerCpu::new_with(|_| Big([0; 8192])).unwrap_err(),
        AllocError::TooLarge
    );
}
