//! Larger units (issue 10, item 5): objects are limited to the unit, the stride of the per-CPU areas;
//! a kernel that wants 256 KiB per-CPU objects gives its areas a dynamic reserve of that size with
//! `percpu::init_with_reserve` (as documented in `percpu_alloc`).

use percpu_alloc::{AllocError, GlobalAllocSource, PerCpu};

const CPUS: usize = 3;

/// The object size a kernel wants.
const OBJECT: usize = 256 * 1024;

/// An object of [`OBJECT`] bytes, page-aligned, built in place from a pattern.
#[repr(C, align(4096))]
struct Block([u64; OBJECT / 8]);

#[test]
fn a_256_kib_reserve_serves_256_kib_objects() {
    let layout = percpu::percpu_area_layout_with_reserve(CPUS, OBJECT);
    // SAFETY: a non-zero-sized layout; the areas are leaked and live for the whole process.
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    assert_eq!(percpu::init_with_reserve(base, CPUS, OBJECT), Ok(CPUS));
    percpu::init_percpu_reg(0);
    percpu_alloc::init(&GlobalAllocSource).unwrap();
    assert!(percpu_alloc::max_size() >= OBJECT + percpu::percpu_area_size());
    assert_eq!(percpu_alloc::max_align(), 4096);

    // One in the first chunk (the reserve), the others in further chunks of CPUS × unit bytes.
    let mut blocks = Vec::new();
    for i in 0..4u64 {
        let block = PerCpu::<Block>::new_with(|cpu| {
            let mut block = Block([0; OBJECT / 8]);
            block.0.iter_mut().enumerate().for_each(|(w, word)| {
                *word = i << 48 | (cpu as u64) << 32 | w as u64;
            });
            block
        })
        .unwrap();
        blocks.push(block);
    }
    assert!(percpu_alloc::stats().unwrap().chunks >= 4);
    // The CPU threads below act as CPU 0 too: one thread per CPU id.
    percpu::release_percpu_reg();
    std::thread::scope(|scope| {
        for cpu in 0..CPUS {
            let blocks = &blocks;
            scope.spawn(move || {
                percpu::init_percpu_reg(cpu);
                for (i, block) in blocks.iter().enumerate() {
                    // SAFETY: this thread is CPU `cpu`, and nothing else references its copies
                    // while the threads run.
                    unsafe {
                        block.with_current(|block| {
                            for (w, word) in block.0.iter().enumerate() {
                                assert_eq!(*word, (i as u64) << 48 | (cpu as u64) << 32 | w as u64);
                            }
                            block.0.fill(!(cpu as u64));
                        })
                    };
                }
                percpu::release_percpu_reg();
            });
        }
    });
    for block in &blocks {
        for (cpu, copy) in block.iter().enumerate() {
            assert!(copy.0.iter().all(|&word| word == !(cpu as u64)));
        }
    }
    drop(blocks);
    // Larger than the unit: refused, never a panic.
    struct TooBig(#[allow(dead_code)] [u8; 2 * OBJECT]);
    assert_eq!(
        PerCpu::<TooBig>::new_with(|_| unreachable!()).unwrap_err(),
        AllocError::TooLarge
    );
    assert_eq!(percpu_alloc::stats().unwrap().live_allocations, 0);
}
