//! What `benches/access.rs` (this repository's `percpu`) and `benches/peer` (crates.io `percpu` 0.4)
//! share: the per-CPU statics, the criterion settings, the batched measurement and the `init` benchmark.
//! `percpu` is whichever of the two runtimes the including crate depends on: their API is the same here.
//!
//! Every benchmark is in a group named after the operation (`read_u64`, `write_u64`, `add_u64`,
//! `init_4_areas`) and identified by its implementation, so that `cargo xtask bench` can put all the
//! results in one table.

use std::alloc::Layout;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use percpu::def_percpu;

/// Operations per measured iteration: a single access is far below the timer's resolution.
/// Criterion records it as the group's throughput, from which `cargo xtask bench` derives ns per operation.
pub const BATCH: u64 = 100;

/// The number of per-CPU areas: this thread acts as CPU 0 of `CPUS`.
pub const CPUS: usize = 4;

/// The per-CPU variable of the access benchmarks.
#[def_percpu]
pub static COUNTER: u64 = 0;

/// Gives the per-CPU areas a kernel-like size (4 KiB) for the `init` benchmark.
#[def_percpu]
pub static PAYLOAD: [u64; 512] = [0; 512];

/// The criterion settings: short enough for a full `cargo xtask bench` in a few minutes; command-line
/// options still override them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args()
}

/// Initializes `CPUS` per-CPU areas on the heap and makes this thread CPU 0; returns the areas' base
/// and layout. The areas live until the process exits.
pub fn become_cpu0() -> (*mut u8, Layout) {
    let layout = percpu::percpu_area_layout_expected(CPUS);
    // `sp-naive` has no areas (size 0), but `init` still wants a valid base.
    let allocated = Layout::from_size_align(layout.size().max(1), layout.align()).unwrap();
    // SAFETY: a non-zero size.
    let base = unsafe { std::alloc::alloc(allocated) };
    assert!(!base.is_null(), "cannot allocate the per-CPU areas");
    percpu::init(base, CPUS).expect("percpu::init");
    percpu::init_percpu_reg(0);
    // The accesses must reach this thread's copy in area 0 (or the only copy with `sp-naive`).
    COUNTER.write_current(42);
    // SAFETY: this thread is CPU 0 and no `&mut` to its copy exists.
    let copy = unsafe { COUNTER.current_ptr() };
    let area0 = base as usize..base as usize + layout.size() / CPUS;
    assert!(layout.size() == 0 || area0.contains(&(copy as usize)));
    // SAFETY: as above.
    assert_eq!(unsafe { copy.read() }, 42);
    (base, layout)
}

/// A group of batched access benchmarks (`BATCH` operations per iteration).
pub fn access_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(BATCH));
    group
}

/// Measures `BATCH` calls of `op(state, i)`, `i` being a value the compiler cannot see through; `op`
/// must consume its own results with `black_box`. `state` is copied into a local before the batch, so
/// that `op` finds it in a register (as a VMA held by a handle), not loaded from memory every time.
pub fn batched<S: Copy>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    state: S,
    mut op: impl FnMut(S, u64),
) {
    group.bench_function(id, |b| {
        b.iter(|| {
            let state = black_box(state);
            for i in 0..BATCH {
                op(state, black_box(i));
            }
        })
    });
}

/// `percpu::init` of the `CPUS` areas at `base` (which this thread keeps using as CPU 0: a new
/// initialization only resets their values), in group `init_4_areas`.
pub fn init(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, base: *mut u8) {
    // `PAYLOAD` is only there for its size: keep it from being discarded.
    black_box(PAYLOAD.symbol_vma());
    group.bench_function(id, |b| b.iter(|| percpu::init(black_box(base), CPUS)));
}
