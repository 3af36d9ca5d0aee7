//! Host benchmarks of run-time allocated per-CPU data (`percpu_alloc`), on an x86_64 Linux host where
//! this thread acts as CPU 0 of `CPUS` areas with the default dynamic reserve (its `GS` base points at
//! area 0), further chunks coming from the global allocator.
//!
//! - groups `read_u64`, `write_u64`, `add_u64` (those of `benches/access.rs`, ns per operation,
//!   `BATCH` per iteration): a `PerCpuCell<u64>` handle used by reference (`percpu_alloc`), and what users
//!   write without per-CPU allocation, a `Box<[CachePadded<AtomicU64>]>` indexed by a CPU id held in a
//!   variable, with relaxed loads and stores (`cache_padded_box`);
//! - groups `count_1_thread`, `count_2_threads` (ns per increment and thread, `INCREMENTS` per thread
//!   and iteration): each thread acting as its own CPU increments a `PerCpuCounter`
//!   (`percpu_counter`), one shared `AtomicU64` with `fetch_add` (`atomic_shared`), or one
//!   `Mutex<u64>` (`mutex`);
//!   and, beside them, a `BatchedCounter` with the default batch (`batched_counter`);
//! - groups `stats_1_thread`, `stats_2_threads` (ns per "packet" and thread, `INCREMENTS` per thread
//!   and iteration): three fields of a per-CPU statistics struct incremented, through a
//!   `percpu_alloc::PerCpuStats` handle (`percpu_stats_handle`) or a `#[def_percpu]` static
//!   (`percpu_stats_static`), against one shared `AtomicU64` per field (`atomic_per_field`);
//! - group `batched_read` (ns per read, `BATCH` per iteration): `BatchedCounter::read`
//!   (`batched_counter_read`), its exact `sum` over the `CPUS` CPUs (`batched_counter_sum`), and a
//!   relaxed `AtomicU64` load (`atomic_load`);
//! - groups `alloc_free_<N>B` (ns per allocation and drop): a `PerCpu<[u8; N]>` (`percpu_alloc`)
//!   against a `Box<[CachePadded<[u8; N]>]>` of `CPUS` slots (`cache_padded_box`);
//! - groups `alloc_free_8B_<L>_live`: the 8-byte `PerCpu` allocation and drop with `L` other 8-byte
//!   objects live (`percpu_alloc`);
//! - groups `alloc_free_8B_1_thread`, `alloc_free_8B_2_threads` (ns per allocation and drop, and
//!   thread, `ALLOCS` per thread and iteration): each thread acting as its own CPU allocates and drops
//!   8-byte `PerCpu` objects (`percpu_alloc`), all threads at once; the total throughput of 2 threads
//!   against 1 shows what the per-CPU caches leave of contention (the copies of every object are
//!   written in every CPU's area).
//!
//! Before measuring, a mixed workload (objects of `MIXED_SIZES` bytes) goes through the real allocator:
//! the bytes asked for (counted by the workload: the allocator's own figure counts an object served by
//! a per-CPU cache at its size class) against the bytes reserved and of the chunks held
//! (`percpu_alloc::stats()`, per CPU, the free offsets of this CPU's cache counted as reserved) are
//! printed and written to `criterion/memory_efficiency/mixed.txt` for `cargo xtask bench`.
//!
//! Independent of `benches/access.rs`: a binary of its own, with its own areas.
//!
//! With the `sp-naive` feature (any host; the only mode off x86_64 Linux), there is one CPU and no
//! area: the same groups measure `percpu_alloc` in that mode, counting with one thread only.

#[allow(dead_code)] // `benches/access.rs` uses the rest of it.
mod shared;

use std::any::Any;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use percpu::stats::{StatsCell, StatsStatic};
use percpu_alloc::{
    BatchedCounter, GlobalAllocSource, PerCpu, PerCpuCell, PerCpuCounter, PerCpuStats,
};
use shared::{access_group, batched, CPUS};

/// What users write without per-CPU allocation: one slot per CPU, each on its own cache line(s).
#[repr(align(64))]
struct CachePadded<T>(T);

/// Whether per-CPU data are plain globals (one CPU) rather than reached through the hosted per-CPU
/// register: the `sp-naive` feature, which the manifest turns on for every host but x86_64 Linux.
const SP_NAIVE: bool = cfg!(any(
    feature = "sp-naive",
    not(all(target_arch = "x86_64", target_os = "linux"))
));

/// Increments per thread in one iteration of the counting benchmarks.
const INCREMENTS: u64 = 100_000;

/// Allocations and drops per thread in one iteration of the concurrent allocation benchmarks.
const ALLOCS: u64 = 10_000;

/// The live-object counts of the `alloc_free_8B_<L>_live` groups.
const LIVE: [usize; 3] = [1_000, 100_000, 1_000_000];

/// The object sizes of the memory-efficiency workload, allocated in turn.
const MIXED_SIZES: [usize; 9] = [4, 8, 12, 16, 24, 40, 64, 200, 1000];

/// The number of objects of the memory-efficiency workload.
const MIXED_OBJECTS: usize = 45_000;

/// Makes this thread CPU 0 of `CPUS` areas with the default dynamic reserve, on the heap, and sets up
/// dynamic allocation with further chunks from the global allocator. The areas live until the process
/// exits.
fn become_cpu0() {
    let layout = percpu_alloc::area_layout(CPUS);
    // SAFETY: the layout of `CPUS` areas is not zero-sized.
    let base = unsafe { std::alloc::alloc(layout) };
    assert!(!base.is_null(), "cannot allocate the per-CPU areas");
    percpu_alloc::init_areas(base, CPUS).expect("percpu_alloc::init_areas");
    percpu::init_percpu_reg(0);
    percpu_alloc::init(&GlobalAllocSource).expect("percpu_alloc::init");
    // The handle's accesses must reach this thread's copy in area 0.
    let handle = PerCpuCell::new_with(|cpu| cpu as u64).expect("alloc");
    assert_eq!(handle.read_current(), 0);
    // SAFETY: CPU 0 is initialized, and this thread is CPU 0.
    let copy = unsafe { handle.current_ptr() } as usize;
    // (`sp-naive` has no areas: every object lives in a further chunk.)
    assert!(SP_NAIVE || (base as usize..base as usize + layout.size() / CPUS).contains(&copy));
}

/// `read_u64`, `write_u64`, `add_u64`: a `PerCpuCell<u64>` used by reference, and this CPU's slot of a
/// `Box<[CachePadded<AtomicU64>]>`.
fn access(c: &mut Criterion) {
    let handle = PerCpuCell::<u64>::new(0).expect("alloc");
    let handle = &handle;
    let slots: Box<[CachePadded<AtomicU64>]> =
        (0..CPUS).map(|_| CachePadded(AtomicU64::new(0))).collect();
    // The CPU id held in a variable (this thread is CPU 0), with the slots as a `Copy` state.
    let state = (&*slots, black_box(0usize));

    let mut group = access_group(c, "read_u64");
    batched(&mut group, "percpu_alloc", handle, |handle, _| {
        black_box(handle.read_current());
    });
    batched(&mut group, "cache_padded_box", state, |(slots, cpu), _| {
        black_box(slots[cpu].0.load(Ordering::Relaxed));
    });
    group.finish();

    let mut group = access_group(c, "write_u64");
    batched(&mut group, "percpu_alloc", handle, |handle, i| {
        handle.write_current(i)
    });
    batched(&mut group, "cache_padded_box", state, |(slots, cpu), i| {
        slots[cpu].0.store(i, Ordering::Relaxed)
    });
    group.finish();

    let mut group = access_group(c, "add_u64");
    batched(&mut group, "percpu_alloc", handle, |handle, i| {
        handle.add_current(i)
    });
    // A relaxed load and store (no locked instruction): what a kernel writes for its own CPU's slot
    // with preemption disabled.
    batched(&mut group, "cache_padded_box", state, |(slots, cpu), i| {
        let slot = &slots[cpu].0;
        slot.store(
            slot.load(Ordering::Relaxed).wrapping_add(i),
            Ordering::Relaxed,
        )
    });
    group.finish();
}

/// The host CPUs this process may run on, to give each counting thread its own.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data, filled in by `sched_getaffinity`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid `cpu_set_t` of the given size.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below `CPU_SETSIZE`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// The host CPUs to pin the counting threads to: none where affinity is Linux-specific.
#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Vec<usize> {
    Vec::new()
}

/// Pins the calling thread to host CPU `cpu` (best effort: an unpinned thread still runs).
#[cfg(target_os = "linux")]
fn pin_to(cpu: usize) {
    // SAFETY: as in `allowed_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below `CPU_SETSIZE` (it came from `allowed_cpus`).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a valid `cpu_set_t`; pid 0 is the calling thread.
    unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) };
}

/// Not called: `allowed_cpus` finds none to pin to.
#[cfg(not(target_os = "linux"))]
fn pin_to(_cpu: usize) {}

/// The `(threads, group)` pairs that can run: all, or with `sp-naive` (one CPU) the one-thread ones.
fn runnable(groups: [(usize, &'static str); 2]) -> impl Iterator<Item = (usize, &'static str)> {
    groups
        .into_iter()
        .filter(|&(threads, _)| threads == 1 || !SP_NAIVE)
}

/// Runs `calls` calls of `op` on each of `threads` threads started together, thread `k` acting as
/// per-CPU CPU `k + 1` (this thread, CPU 0, only waits; `sp-naive`: one thread, acting as the only
/// CPU) and pinned to its own host CPU when there are enough; returns the time from the start of all
/// to the end of the last.
fn contend(threads: usize, calls: u64, host_cpus: &[usize], op: &(impl Fn() + Sync)) -> Duration {
    assert!(
        threads < CPUS && (threads == 1 || !SP_NAIVE),
        "each counting thread needs a per-CPU area of its own"
    );
    let barrier = Barrier::new(threads + 1);
    thread::scope(|scope| {
        for k in 0..threads {
            let barrier = &barrier;
            scope.spawn(move || {
                if host_cpus.len() >= threads {
                    pin_to(host_cpus[k]);
                }
                percpu::init_percpu_reg(if SP_NAIVE { 0 } else { k + 1 });
                barrier.wait();
                for _ in 0..calls {
                    op();
                }
                barrier.wait();
                // Now, not at thread exit: `thread::scope` returns before thread-local destructors
                // run, and the next measurement registers the same ids at once.
                percpu::release_percpu_reg();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

/// `count_1_thread`, `count_2_threads`: `INCREMENTS` per thread and iteration.
fn counting(c: &mut Criterion) {
    let host_cpus = allowed_cpus();
    let counter = PerCpuCounter::new().expect("alloc");
    let batched = BatchedCounter::new().expect("alloc");
    let atomic = AtomicU64::new(0);
    let mutex = Mutex::new(0u64);
    for (threads, group) in runnable([(1, "count_1_thread"), (2, "count_2_threads")]) {
        let mut group = c.benchmark_group(group);
        // ns per increment and thread: each thread does `INCREMENTS` per iteration.
        group.throughput(Throughput::Elements(INCREMENTS));
        // The mutex takes milliseconds per iteration under contention.
        group.sampling_mode(SamplingMode::Flat).sample_size(20);
        let run = (threads, host_cpus.as_slice());
        exact_counting(&mut group, run, "percpu_counter", &counter);
        exact_counting(&mut group, run, "batched_counter", &batched);
        group.bench_function("atomic_shared", |b| {
            b.iter_custom(|iters| {
                contend(threads, iters * INCREMENTS, &host_cpus, &|| {
                    atomic.fetch_add(1, Ordering::Relaxed);
                })
            })
        });
        group.bench_function("mutex", |b| {
            b.iter_custom(|iters| {
                contend(threads, iters * INCREMENTS, &host_cpus, &|| {
                    *mutex.lock().unwrap() += 1;
                })
            })
        });
        group.finish();
    }
}

/// A counter with an exact sum, for [`exact_counting`].
trait Exact: Sync {
    fn inc(&self);
    fn sum(&self) -> i64;
}

impl Exact for PerCpuCounter {
    fn inc(&self) {
        self.inc()
    }
    fn sum(&self) -> i64 {
        self.sum()
    }
}

impl Exact for BatchedCounter {
    fn inc(&self) {
        self.inc()
    }
    fn sum(&self) -> i64 {
        self.sum()
    }
}

/// Benchmark `id` of a counting group: `counter` incremented by `threads` threads (pinned to
/// `host_cpus`), checking that its sum grew by as much.
fn exact_counting(
    group: &mut BenchmarkGroup<'_, WallTime>,
    (threads, host_cpus): (usize, &[usize]),
    id: &str,
    counter: &impl Exact,
) {
    group.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let before = counter.sum();
            let time = contend(threads, iters * INCREMENTS, host_cpus, &|| counter.inc());
            let added = (iters * INCREMENTS) as i64 * threads as i64;
            assert_eq!(counter.sum().wrapping_sub(before), added);
            time
        })
    });
}

/// A driver's statistics, for `stats_1_thread` and `stats_2_threads`.
#[derive(percpu::PerCpuStats)]
struct NetStats {
    packets: u64,
    bytes: u64,
    errors: u64,
}

/// The statistics as a `#[def_percpu]` static.
#[percpu::def_percpu]
static NET: StatsCell<NetStats> = StatsCell::new();

/// One "packet": the three fields of a statistics struct incremented.
macro_rules! packet {
    ($fields:expr) => {{
        let fields = $fields;
        fields.packets.inc();
        fields.bytes.add(1500);
        fields.errors.add(black_box(0));
    }};
}

/// `stats_1_thread`, `stats_2_threads`: one packet per call, `INCREMENTS` per thread and iteration.
fn stats(c: &mut Criterion) {
    let host_cpus = allowed_cpus();
    let handle = PerCpuStats::<NetStats>::new().expect("alloc");
    let atomics: [AtomicU64; 3] = Default::default();
    for (threads, group) in runnable([(1, "stats_1_thread"), (2, "stats_2_threads")]) {
        let mut group = c.benchmark_group(group);
        group.throughput(Throughput::Elements(INCREMENTS));
        group.sampling_mode(SamplingMode::Flat).sample_size(20);
        group.bench_function("percpu_stats_handle", |b| {
            b.iter_custom(|iters| {
                contend(threads, iters * INCREMENTS, &host_cpus, &|| {
                    packet!(handle.fields())
                })
            })
        });
        group.bench_function("percpu_stats_static", |b| {
            b.iter_custom(|iters| {
                contend(threads, iters * INCREMENTS, &host_cpus, &|| {
                    packet!(NET.fields())
                })
            })
        });
        group.bench_function("atomic_per_field", |b| {
            b.iter_custom(|iters| {
                contend(threads, iters * INCREMENTS, &host_cpus, &|| {
                    atomics[0].fetch_add(1, Ordering::Relaxed);
                    atomics[1].fetch_add(1500, Ordering::Relaxed);
                    atomics[2].fetch_add(black_box(0), Ordering::Relaxed);
                })
            })
        });
        group.finish();
    }
}

/// `batched_read`: the batched counter's approximate and exact values against an atomic load.
fn batched_read(c: &mut Criterion) {
    let counter = BatchedCounter::new().expect("alloc");
    let atomic = AtomicU64::new(0);
    let mut group = access_group(c, "batched_read");
    batched(
        &mut group,
        "batched_counter_read",
        &counter,
        |counter, _| {
            black_box(counter.read());
        },
    );
    batched(&mut group, "batched_counter_sum", &counter, |counter, _| {
        black_box(counter.sum());
    });
    batched(&mut group, "atomic_load", &atomic, |atomic, _| {
        black_box(atomic.load(Ordering::Relaxed));
    });
    group.finish();
}

/// A `PerCpu<[u8; N]>` allocated and dropped.
fn percpu_alloc_free<const N: usize>() {
    drop(black_box(
        PerCpu::<[u8; N]>::new_with(|_| [0; N]).expect("alloc"),
    ));
}

/// A `Box<[CachePadded<[u8; N]>]>` of `CPUS` slots allocated and dropped.
fn cache_padded_alloc_free<const N: usize>() {
    let slots: Box<[CachePadded<[u8; N]>]> = (0..CPUS).map(|_| CachePadded([0; N])).collect();
    drop(black_box(slots));
}

/// `alloc_free_<N>B`: allocation and drop of an `N`-byte per-CPU object, ours against a boxed slice.
fn alloc_free<const N: usize>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("alloc_free_{N}B"));
    group.bench_function("percpu_alloc", |b| b.iter(percpu_alloc_free::<N>));
    group.bench_function("cache_padded_box", |b| b.iter(cache_padded_alloc_free::<N>));
    group.finish();
}

/// `alloc_free_8B_<L>_live`: the 8-byte allocation and drop with `L` other 8-byte objects live, which
/// are allocated beforehand (in the order of a program that keeps them) and live while it is measured.
fn alloc_free_live(c: &mut Criterion) {
    let mut live: Vec<PerCpu<[u8; 8]>> = Vec::with_capacity(LIVE[LIVE.len() - 1]);
    for count in LIVE {
        while live.len() < count {
            live.push(PerCpu::new_with(|_| [0; 8]).expect("alloc"));
        }
        let stats = percpu_alloc::stats().expect("stats");
        println!(
            "{count} live objects: {} chunks, {} bytes of chunks per CPU",
            stats.chunks, stats.chunk_bytes
        );
        let mut group = c.benchmark_group(format!("alloc_free_8B_{count}_live"));
        group.bench_function("percpu_alloc", |b| b.iter(percpu_alloc_free::<8>));
        group.finish();
    }
}

/// `alloc_free_8B_1_thread`, `alloc_free_8B_2_threads`: `ALLOCS` 8-byte allocations and drops per
/// thread and iteration, on 1 and 2 threads acting as CPUs of their own, at once.
fn alloc_free_threads(c: &mut Criterion) {
    let host_cpus = allowed_cpus();
    for (threads, group) in runnable([
        (1, "alloc_free_8B_1_thread"),
        (2, "alloc_free_8B_2_threads"),
    ]) {
        let mut group = c.benchmark_group(group);
        // ns per allocation and drop, and thread.
        group.throughput(Throughput::Elements(ALLOCS));
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function("percpu_alloc", |b| {
            b.iter_custom(|iters| {
                contend(threads, iters * ALLOCS, &host_cpus, &percpu_alloc_free::<8>)
            })
        });
        group.finish();
    }
}

/// One per-CPU object of `N` bytes, kept as long as the box lives.
fn mixed_object<const N: usize>() -> Box<dyn Any> {
    Box::new(PerCpu::<[u8; N]>::new_with(|_| [0; N]).expect("alloc"))
}

/// A deterministic pseudo-random sequence (a 64-bit linear congruential generator, high bits).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % bound
    }
}

/// The usage figures of the allocator as `key=value` lines, prefixed with `phase`: the objects and
/// bytes asked for, as the workload counts them (`objects` of the given sizes), and the bytes reserved
/// and the chunks held, from `percpu_alloc::stats()` (where the free offsets of this CPU's cache count
/// as reserved).
fn efficiency_lines(phase: &str, objects: &[(Box<dyn Any>, usize)]) -> String {
    let stats = percpu_alloc::stats().expect("stats");
    format!(
        "{phase}.objects={}\n{phase}.requested_bytes={}\n{phase}.reserved_bytes={}\n\
         {phase}.chunk_bytes={}\n{phase}.chunks={}\n",
        objects.len(),
        objects.iter().map(|(_, size)| size).sum::<usize>(),
        stats.reserved_bytes,
        stats.chunk_bytes,
        stats.chunks
    )
}

/// The mixed workload through the real allocator, on an otherwise empty space: `MIXED_OBJECTS` objects
/// of the `MIXED_SIZES` in a pseudo-random order (`allocated`), then a pseudo-random half of them
/// replaced by new ones (`churned`). Prints the figures and writes them for `cargo xtask bench`.
fn memory_efficiency() {
    percpu_alloc::drain_cache();
    assert_eq!(percpu_alloc::stats().expect("stats").live_allocations, 0);
    let constructors: [fn() -> Box<dyn Any>; 9] = [
        mixed_object::<4>,
        mixed_object::<8>,
        mixed_object::<12>,
        mixed_object::<16>,
        mixed_object::<24>,
        mixed_object::<40>,
        mixed_object::<64>,
        mixed_object::<200>,
        mixed_object::<1000>,
    ];
    debug_assert_eq!(MIXED_SIZES.len(), constructors.len());
    let mut random = Lcg(0x5eed);
    let new_object = |random: &mut Lcg| {
        let kind = random.below(constructors.len());
        (constructors[kind](), MIXED_SIZES[kind])
    };
    let mut objects: Vec<(Box<dyn Any>, usize)> = (0..MIXED_OBJECTS)
        .map(|_| new_object(&mut random))
        .collect();
    let mut report = efficiency_lines("allocated", &objects);
    for _ in 0..MIXED_OBJECTS / 2 {
        let at = random.below(objects.len());
        objects.swap_remove(at);
    }
    while objects.len() < MIXED_OBJECTS {
        objects.push(new_object(&mut random));
    }
    report += &efficiency_lines("churned", &objects);
    drop(objects);
    percpu_alloc::drain_cache();
    percpu_alloc::reclaim();
    report += &format!(
        "sizes={}\n",
        MIXED_SIZES.map(|size| size.to_string()).join(",")
    );
    print!("memory efficiency of the mixed workload (per CPU):\n{report}");

    let dir = criterion_home().join("memory_efficiency");
    let written = fs::create_dir_all(&dir).and_then(|()| fs::write(dir.join("mixed.txt"), &report));
    if let Err(e) = written {
        eprintln!("cannot write {}: {e}", dir.display());
    }
}

/// Where criterion writes (its own rules, the `cargo metadata` step replaced by the directory of
/// this executable: `<target>/release/deps/alloc-…`).
fn criterion_home() -> PathBuf {
    if let Some(home) = env::var_os("CRITERION_HOME") {
        return home.into();
    }
    let target = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.to_path_buf())
        });
    target.unwrap_or_else(|| "target".into()).join("criterion")
}

fn main() {
    become_cpu0();
    memory_efficiency();
    let mut c = shared::criterion();
    access(&mut c);
    counting(&mut c);
    stats(&mut c);
    batched_read(&mut c);
    alloc_free::<8>(&mut c);
    alloc_free::<64>(&mut c);
    alloc_free::<512>(&mut c);
    alloc_free::<4096>(&mut c);
    alloc_free_live(&mut c);
    alloc_free_threads(&mut c);
    c.final_summary();
}
