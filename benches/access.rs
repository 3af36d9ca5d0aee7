//! Host benchmarks: this repository's `percpu` against the usual alternatives to per-CPU data, on an
//! x86_64 Linux host where this thread acts as CPU 0 (its `GS` base points at area 0), or, with the
//! `sp-naive` feature (the only mode on other hosts), as the only CPU.
//!
//! - groups `read_u64`, `write_u64`, `add_u64` (ns per operation, `BATCH` per iteration): a static
//!   per-CPU `u64` (`percpu`), the same through `percpu::raw` with the VMA in a variable as a run-time
//!   allocated handle has it (`percpu-raw`), `thread_local!` with a `Cell` (`thread_local`, the
//!   reference), a `static mut` (`static_mut`), a relaxed `AtomicU64` (`atomic_relaxed`);
//! - group `init_4_areas`: `percpu::init` of 4 areas against copying the same bytes (`memcpy`).
//!
//! `benches/peer` measures crates.io `percpu` 0.4 in the same groups; `cargo xtask bench` runs both
//! and writes `benches/results.md`.

mod shared;

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::Criterion;
use shared::{access_group, batched, COUNTER, CPUS};

thread_local! {
    /// The `thread_local!` counterpart of `COUNTER`.
    static LOCAL: Cell<u64> = const { Cell::new(0) };
}

/// The plain global counterpart of `COUNTER`.
static mut GLOBAL: u64 = 0;

/// The atomic counterpart of `COUNTER`.
static ATOMIC: AtomicU64 = AtomicU64::new(0);

/// `read_u64`: one load per operation.
fn read(c: &mut Criterion, vma: usize) {
    let mut group = access_group(c, "read_u64");
    batched(&mut group, "percpu", (), |(), _| {
        black_box(COUNTER.read_current());
    });
    batched(&mut group, "percpu-raw", vma, |vma, _| {
        // SAFETY: `vma` is `COUNTER`'s, and this thread is CPU 0.
        black_box(unsafe { percpu::raw::read_current::<u64>(vma) });
    });
    batched(&mut group, "thread_local", (), |(), _| {
        black_box(LOCAL.get());
    });
    batched(&mut group, "static_mut", (), |(), _| {
        // SAFETY: only this thread accesses `GLOBAL`.
        black_box(unsafe { (&raw const GLOBAL).read() });
    });
    batched(&mut group, "atomic_relaxed", (), |(), _| {
        black_box(ATOMIC.load(Ordering::Relaxed));
    });
    group.finish();
}

/// `write_u64`: one store per operation.
fn write(c: &mut Criterion, vma: usize) {
    let mut group = access_group(c, "write_u64");
    batched(&mut group, "percpu", (), |(), i| COUNTER.write_current(i));
    batched(&mut group, "percpu-raw", vma, |vma, i| {
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, and no reference to its copy exists.
        unsafe { percpu::raw::write_current::<u64>(vma, i) }
    });
    batched(&mut group, "thread_local", (), |(), i| LOCAL.set(i));
    batched(&mut group, "static_mut", (), |(), i| {
        // SAFETY: only this thread accesses `GLOBAL`.
        unsafe { (&raw mut GLOBAL).write(i) }
    });
    batched(&mut group, "atomic_relaxed", (), |(), i| {
        ATOMIC.store(i, Ordering::Relaxed)
    });
    group.finish();
}

/// `add_u64`: one read-modify-write per operation.
fn add(c: &mut Criterion, vma: usize) {
    let mut group = access_group(c, "add_u64");
    batched(&mut group, "percpu", (), |(), i| COUNTER.add_current(i));
    batched(&mut group, "percpu-raw", vma, |vma, i| {
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, and no reference to its copy exists.
        unsafe { percpu::raw::add_current::<u64>(vma, i) }
    });
    batched(&mut group, "thread_local", (), |(), i| {
        LOCAL.set(LOCAL.get().wrapping_add(i))
    });
    batched(&mut group, "static_mut", (), |(), i| {
        let global = &raw mut GLOBAL;
        // SAFETY: only this thread accesses `GLOBAL`.
        unsafe { global.write(global.read().wrapping_add(i)) }
    });
    batched(&mut group, "atomic_relaxed", (), |(), i| {
        ATOMIC.fetch_add(i, Ordering::Relaxed);
    });
    group.finish();
}

/// `init_4_areas`: `percpu::init` against copying the same bytes into another 4 areas.
fn init(c: &mut Criterion, base: *mut u8, layout: std::alloc::Layout) {
    let mut group = c.benchmark_group("init_4_areas");
    shared::init(&mut group, "percpu", base);
    let size = percpu::percpu_area_size();
    let stride = layout.size() / CPUS;
    let source = vec![1u8; size];
    let mut areas = vec![0u8; layout.size()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            let source = black_box(source.as_ptr());
            let areas = black_box(areas.as_mut_ptr());
            for cpu in 0..CPUS {
                // SAFETY: `size <= stride`, so each copy stays inside `areas`; `source` is another
                // allocation of `size` bytes.
                unsafe { std::ptr::copy_nonoverlapping(source, areas.add(cpu * stride), size) };
            }
        })
    });
    group.finish();
}

fn main() {
    let (base, layout) = shared::become_cpu0();
    // The VMA in a variable the compiler cannot see through, as a run-time allocated handle holds it.
    let vma = black_box(COUNTER.symbol_vma());
    let mut c = shared::criterion();
    read(&mut c, vma);
    write(&mut c, vma);
    add(&mut c, vma);
    init(&mut c, base, layout);
    c.final_summary();
}
