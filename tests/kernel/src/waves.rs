//! CPUs that come online after run-time per-CPU objects were allocated find
//! their copies initialized: objects exist for every *possible* CPU (every
//! per-CPU area), not only for the CPUs online when they are allocated.
//!
//! The boot CPU brings the secondary CPUs online in two waves
//! ([`crate::suite::boot_cpu`]); the per-CPU areas were initialized for all
//! of them before either wave. In the first wave ([`first_wave`]), CPU 0
//! allocates a `PerCpuCell<u64>` with `PerCpuCell::new_with` (each copy holds
//! [`initial`] of its CPU id), a `PerCpu<Stats>` with `alloc_percpu` (each
//! copy `Stats::default()`, which is not all zeros) and a `PerCpuCounter`;
//! every CPU of the wave checks its copies through the fast path, writes
//! them, and adds to the counter; CPU 0 then checks every copy remotely:
//! written for the first wave, initial for every other CPU. Then the second
//! wave comes online ([`second_wave`]): each of its CPUs has only just pointed
//! its per-CPU register at its area (`percpu::init_percpu_reg`), finds its
//! copies initialized, writes them, adds to the counter, and checks that the
//! counter's sum includes its part; CPU 0 checks every copy and the exact sum
//! again, and frees the objects.

use alloc::boxed::Box;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use percpu::checked::IrqGuard;
use percpu_alloc::{alloc_percpu, PerCpu, PerCpuCell, PerCpuCounter};

use crate::check::{expect, expect_eq};
use crate::println;

/// A value type allocated with `alloc_percpu`, whose default is not all
/// zeros: a copy equal to it was made by `T::default()`, not left zeroed.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Stats {
    events: u64,
    limit: u32,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            events: 0,
            limit: 0x5a5a,
        }
    }
}

/// The objects allocated by the first wave.
struct Objects {
    /// `new_with`: CPU `c`'s copy starts as [`initial(c)`](initial).
    named: PerCpuCell<u64>,
    /// `alloc_percpu`: every copy starts as `Stats::default()`.
    stats: PerCpu<Stats>,
    /// Each online CPU adds [`part`] of its id.
    counter: PerCpuCounter,
}

/// The objects, published by CPU 0 for the other CPUs (null before and after).
static OBJECTS: AtomicPtr<Objects> = AtomicPtr::new(null_mut());

/// Live run-time allocations before the objects were allocated.
static LIVE_BEFORE: AtomicUsize = AtomicUsize::new(0);

/// `new_with`'s value for CPU `cpu`.
fn initial(cpu: usize) -> u64 {
    0x5741_5645_0000_0000 | cpu as u64
}

/// What CPU `cpu` writes into its copy of `named`.
fn written(cpu: usize) -> u64 {
    0x5752_4954_0000_0000 | cpu as u64
}

/// What CPU `cpu` writes into its copy of `stats`.
fn written_stats(cpu: usize) -> Stats {
    Stats {
        events: cpu as u64 + 1,
        ..Stats::default()
    }
}

/// What CPU `cpu` adds to the counter: `inc` three times and `add(cpu)` in
/// the first wave, `add(100 * (cpu + 1))` in the second.
fn part(cpu: usize, wave1: usize) -> i64 {
    if cpu < wave1 {
        3 + cpu as i64
    } else {
        100 * (cpu as i64 + 1)
    }
}

/// The objects CPU 0 published.
///
/// # Safety
///
/// CPU 0 published them (in [`first_wave`], before a barrier the caller
/// passed) and does not free them until a barrier the caller has not passed.
unsafe fn objects<'a>() -> &'a Objects {
    // SAFETY: a valid `Box` that CPU 0 keeps (the caller's contract).
    unsafe { &*OBJECTS.load(Ordering::Acquire) }
}

/// The first wave, run by CPUs `0..wave1` (the CPUs online so far);
/// `barrier(what)` waits for all of them.
pub fn first_wave(cpu: usize, wave1: usize, barrier: impl Fn(&'static str)) {
    if cpu == 0 {
        LIVE_BEFORE.store(live_allocations(), Ordering::Relaxed);
        let objects = Objects {
            named: PerCpuCell::new_with(initial)
                .unwrap_or_else(|e| crate::fail(format_args!("cpu 0: PerCpuCell::new_with: {e}"))),
            stats: alloc_percpu()
                .unwrap_or_else(|e| crate::fail(format_args!("cpu 0: alloc_percpu::<Stats>: {e}"))),
            counter: PerCpuCounter::new()
                .unwrap_or_else(|e| crate::fail(format_args!("cpu 0: PerCpuCounter::new: {e}"))),
        };
        OBJECTS.store(Box::into_raw(Box::new(objects)), Ordering::Release);
    }
    barrier("the first wave's objects to be allocated");

    // SAFETY: published before the barrier above, freed after the last
    // barrier of `second_wave`.
    let objects = unsafe { objects() };
    use_my_copies(cpu, objects, wave1);
    barrier("the first wave to write its copies");

    if cpu == 0 {
        check_all_copies(objects, wave1, wave1);
        println!(
            "waves: first wave of {wave1} cpus allocated new_with, alloc_percpu and a \
             PerCpuCounter, wrote their copies; all {} copies checked remotely: OK",
            percpu::cpu_count()
        );
    }
}

/// The second wave: run by all `cpus` CPUs once CPUs `wave1..cpus` came
/// online; `barrier(what)` waits for all of them.
pub fn second_wave(cpu: usize, wave1: usize, cpus: usize, barrier: impl Fn(&'static str)) {
    // SAFETY: published by CPU 0 in `first_wave`, which ended before the
    // second wave was started; freed after the last barrier below.
    let objects = unsafe { objects() };
    if cpu >= wave1 {
        expect_eq(
            cpu,
            format_args!("my part of the PerCpuCounter on coming online"),
            objects.counter.per_cpu(cpu),
            0,
        );
        use_my_copies(cpu, objects, wave1);
    }
    barrier("the second wave to write its copies");

    let total = (0..cpus).map(|c| part(c, wave1)).sum::<i64>();
    if cpu >= wave1 {
        expect_eq(
            cpu,
            format_args!("PerCpuCounter sum seen by the second wave"),
            objects.counter.sum(),
            total,
        );
    }
    if cpu == 0 {
        check_all_copies(objects, wave1, cpus);
    }
    barrier("the waves' objects to be checked");

    if cpu == 0 {
        let published = OBJECTS.swap(null_mut(), Ordering::AcqRel);
        // SAFETY: published by this CPU in `first_wave`; every CPU is past
        // its last use (the barrier above).
        drop(unsafe { Box::from_raw(published) });
        // Freed offsets wait in this CPU's cache (counted as live) until it is drained.
        percpu_alloc::drain_cache();
        expect_eq(
            0,
            format_args!("live run-time allocations after the waves' objects were freed"),
            live_allocations(),
            LIVE_BEFORE.load(Ordering::Relaxed),
        );
        println!(
            "waves: second wave of {} cpus came online after the allocations, found its \
             copies initialized (new_with's value, T::default()), wrote them; PerCpuCounter \
             sum {total} exact over both waves; objects freed",
            cpus - wave1
        );
    }
}

/// On CPU `cpu`, online for the first time since the objects were
/// allocated: checks its copies through the fast path against their initial
/// values and the remote view, writes them, and adds its part to the counter.
fn use_my_copies(cpu: usize, objects: &Objects, wave1: usize) {
    let Objects {
        named,
        stats,
        counter,
    } = objects;
    expect_eq(
        cpu,
        format_args!("my copy of the new_with object"),
        named.read_current(),
        initial(cpu),
    );
    expect_eq(
        cpu,
        format_args!("my copy of the alloc_percpu object"),
        *stats.get(&IrqGuard::new()),
        Stats::default(),
    );
    // SAFETY: only compared; this CPU's register is set and nothing migrates.
    let (fast, remote) = unsafe { (named.current_ptr(), named.remote_ptr(cpu)) };
    expect(
        cpu,
        fast == remote,
        format_args!("new_with object: current_ptr() {fast:p} != remote_ptr({cpu}) {remote:p}"),
    );
    named.write_current(written(cpu));
    // SAFETY: this CPU's copy, which no other reference reaches meanwhile (the
    // other CPUs read it remotely only after the next barrier).
    unsafe { stats.with_current(|s| *s = written_stats(cpu)) };
    let part = part(cpu, wave1);
    if cpu < wave1 {
        for _ in 0..3 {
            counter.inc();
        }
        counter.add(cpu as i64);
    } else {
        counter.add(part);
    }
    expect_eq(
        cpu,
        format_args!("my part of the PerCpuCounter"),
        counter.per_cpu(cpu),
        part,
    );
}

/// From CPU 0: checks every copy (of every possible CPU) remotely, once CPUs
/// `0..online` wrote theirs: written ones below `online`, initial ones above;
/// and the counter's parts and exact sum.
fn check_all_copies(objects: &Objects, wave1: usize, online: usize) {
    for copy in 0..percpu::cpu_count() {
        let was_online = copy < online;
        // SAFETY: `copy` is below `percpu::cpu_count()`; the CPUs that write
        // copies did so before the barrier this CPU passed, and none writes
        // until the next one.
        let (named, stats) = unsafe {
            (
                *objects.named.remote_ptr(copy),
                *objects.stats.remote_ptr(copy),
            )
        };
        let (named_expected, stats_expected, part_expected) = if was_online {
            (written(copy), written_stats(copy), part(copy, wave1))
        } else {
            (initial(copy), Stats::default(), 0)
        };
        expect_eq(
            0,
            format_args!("cpu {copy}'s copy of the new_with object"),
            named,
            named_expected,
        );
        expect_eq(
            0,
            format_args!("cpu {copy}'s copy of the alloc_percpu object"),
            stats,
            stats_expected,
        );
        expect_eq(
            0,
            format_args!("cpu {copy}'s part of the PerCpuCounter"),
            objects.counter.per_cpu(copy),
            part_expected,
        );
    }
    expect_eq(
        0,
        format_args!("PerCpuCounter sum over the {online} cpus online"),
        objects.counter.sum(),
        (0..online).map(|c| part(c, wave1)).sum(),
    );
}

/// The number of live run-time per-CPU allocations.
fn live_allocations() -> usize {
    percpu_alloc::stats()
        .unwrap_or_else(|e| crate::fail(format_args!("percpu_alloc::stats failed: {e}")))
        .live_allocations
}
