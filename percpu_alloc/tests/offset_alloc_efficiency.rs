//! Memory efficiency of `OffsetAllocator` on a mixed workload.
//!
//! Per-CPU memory is multiplied by the number of CPUs, so the bytes
//! requested must make up at least 90% of the chunk capacity spanned.
//! Run with `--nocapture` to see the measured figures.

use percpu_alloc::offset_alloc::{AllocError, OffsetAllocator, Stats};

const UNIT: usize = 0x1_0000;
/// Sizes of the mixed workload.
const MIXED: [usize; 9] = [4, 8, 12, 16, 24, 40, 64, 200, 1000];
/// Its small sizes only, where rounding to powers of two would cost most.
const SMALL: [usize; 7] = [4, 8, 12, 16, 24, 40, 64];
const OBJECTS: usize = 100_000;
const MIN_EFFICIENCY: f64 = 0.90;

/// Natural alignment of the workload's objects.
fn align_of(size: usize) -> usize {
    size.next_power_of_two().min(8)
}

#[path = "common/xorshift.rs"]
mod xorshift;

use xorshift::XorShift;

/// The allocator plus a source of fresh chunk bases.
struct Workload {
    sizes: &'static [usize],
    alloc: OffsetAllocator,
    next_base: usize,
    live: Vec<usize>,
    rng: XorShift,
}

impl Workload {
    fn new(sizes: &'static [usize]) -> Self {
        // 8 KiB of static per-CPU variables, the rest of the unit is the first chunk.
        Self {
            sizes,
            alloc: OffsetAllocator::new(UNIT, 0x2000, UNIT - 0x2000).unwrap(),
            next_base: 0x100_0000,
            live: Vec::new(),
            rng: XorShift::new(0x853C_49E6_748F_EA9B),
        }
    }

    fn alloc_random(&mut self) {
        let size = self.sizes[self.rng.below(self.sizes.len())];
        let offset = loop {
            match self.alloc.alloc(size, align_of(size)) {
                Ok(offset) => break offset,
                Err(AllocError::NeedChunk) => {
                    self.alloc.add_chunk(self.next_base).unwrap();
                    self.next_base += UNIT;
                }
                Err(e) => panic!("{e}"),
            }
        };
        self.live.push(offset);
    }

    fn free_random(&mut self) {
        let offset = self.live.swap_remove(self.rng.below(self.live.len()));
        self.alloc.free(offset).unwrap();
    }

    /// Prints the figures and returns requested bytes / chunk bytes.
    fn report(&self, phase: &str) -> f64 {
        let Stats {
            live_allocations,
            requested_bytes,
            reserved_bytes,
            chunks,
            chunk_bytes,
            ..
        } = self.alloc.stats();
        let efficiency = requested_bytes as f64 / chunk_bytes as f64;
        println!(
            "{phase}: {live_allocations} objects, {requested_bytes} bytes requested, \
             {reserved_bytes} reserved ({:.2}%), {chunks} chunks of {chunk_bytes} bytes: \
             efficiency {:.2}%",
            100.0 * requested_bytes as f64 / reserved_bytes as f64,
            100.0 * efficiency,
        );
        efficiency
    }
}

/// Allocates 100k objects, then five times frees a random half and
/// allocates as many again, asserting the efficiency after each phase.
fn check_workload(sizes: &'static [usize], name: &str) {
    let mut w = Workload::new(sizes);
    for _ in 0..OBJECTS {
        w.alloc_random();
    }
    let filled = w.report(&format!("{name}, after 100k allocations"));
    assert!(filled >= MIN_EFFICIENCY, "efficiency {filled:.4}");
    for round in 1..=5 {
        for _ in 0..OBJECTS / 2 {
            w.free_random();
        }
        for _ in 0..OBJECTS / 2 {
            w.alloc_random();
        }
        let churned = w.report(&format!("{name}, after churn round {round}"));
        assert!(churned >= MIN_EFFICIENCY, "efficiency {churned:.4}");
    }
}

#[test]
fn mixed_workload_uses_at_least_90_percent_of_chunks() {
    check_workload(&MIXED, "mixed sizes");
}

#[test]
fn small_objects_use_at_least_90_percent_of_chunks() {
    check_workload(&SMALL, "small sizes");
}
