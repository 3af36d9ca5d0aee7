//! The batched counter and the per-CPU statistics structs on every CPU at
//! once, under the timer interrupt (where the architecture has one):
//!
//! 1. CPU 0 allocates a `percpu_alloc::BatchedCounter` (batch [`BATCH`]) and
//!    a `percpu_alloc::PerCpuStats<KernelStats>`; every CPU then adds to the
//!    counter and counts "packets" into the allocated statistics and into the
//!    `#[def_percpu]` static [`STATIC_STATS`], while its timer interrupt
//!    handler does the same. Every [`CHECK_EVERY`] rounds, each CPU checks
//!    that the counter's `read()` lies between the exact sums taken just
//!    before and just after it, within the error bound (plus what adds in
//!    progress on the other CPUs may hold), and that the statistics' sums
//!    never go back while all CPUs increment.
//! 2. Once all are done, each CPU checks its own copies against what it and
//!    its handler did, and CPU 0 checks the exact sums over all CPUs.

use core::ptr::null_mut;
use core::sync::atomic::{fence, AtomicI64, AtomicPtr, AtomicU64, Ordering};

use percpu::stats::{StatsCell, StatsStatic};
use percpu_alloc::{BatchedCounter, PerCpuStats};

use crate::check::{expect, expect_eq};
use crate::counters::with_timer;
use crate::{println, MAX_CPUS};

/// The batch of the counter under test.
const BATCH: u32 = 16;

/// Rounds between two checks of the counter's bound and of the sums.
const CHECK_EVERY: u64 = 256;

/// One round of this phase per this many rounds that `with_timer` asks for.
const WORK_DIVISOR: u64 = 16;

/// A driver's statistics.
#[derive(percpu::PerCpuStats, Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelStats {
    /// One per round or tick.
    pub packets: u64,
    /// 64 + cpu per round, 1000 per tick.
    pub bytes: u64,
    /// One per tick.
    pub ticks: u32,
    /// Down by one per round.
    pub balance: i32,
}

/// The statistics of the whole kernel: a per-CPU static.
#[percpu::def_percpu]
static STATIC_STATS: StatsCell<KernelStats> = StatsCell::new();

/// The counter and the allocated statistics, published by CPU 0 for the
/// phase (null otherwise): the timer handler adds to them while published.
static COUNTER: AtomicPtr<BatchedCounter> = AtomicPtr::new(null_mut());
static STATS: AtomicPtr<PerCpuStats<KernelStats>> = AtomicPtr::new(null_mut());

/// The timer ticks this CPU's handler counted into the published objects.
#[percpu::def_percpu]
static TICKS: u64 = 0;

/// What each CPU added to the counter in its rounds.
static ADDED: [AtomicI64; MAX_CPUS] = [const { AtomicI64::new(0) }; MAX_CPUS];

/// The largest distance below the exact sum that any CPU saw `read()` at.
static LARGEST_ERROR: AtomicU64 = AtomicU64::new(0);

/// One round's (or tick's) packet into both statistics instances.
fn count_packet(stats: &PerCpuStats<KernelStats>, bytes: u64, tick: bool) {
    for fields in [STATIC_STATS.fields(), *stats.fields()] {
        fields.packets.inc();
        fields.bytes.add(bytes);
        if tick {
            fields.ticks.inc();
        } else {
            fields.balance.sub(1);
        }
    }
}

/// The timer interrupt's work: one add and one packet, if the objects are
/// published. Allocates nothing (a fold is an atomic add).
pub fn on_timer_tick() {
    let (counter, stats) = (
        COUNTER.load(Ordering::Acquire),
        STATS.load(Ordering::Acquire),
    );
    if counter.is_null() || stats.is_null() {
        return;
    }
    // SAFETY: CPU 0 publishes both before any CPU starts its timer in [`run`]
    // and takes them back once every CPU stopped it.
    let (counter, stats) = unsafe { (&*counter, &*stats) };
    counter.add(3);
    count_packet(stats, 1000, true);
    TICKS.add_current(1);
}

/// The phase, run by all `cpus` CPUs at once.
pub fn run(cpu: usize, cpus: usize, barrier: impl Fn(&'static str)) {
    if cpu == 0 {
        let counter = BatchedCounter::with_batch(BATCH).unwrap_or_else(|e| {
            crate::fail(format_args!(
                "cpu 0: BatchedCounter::with_batch failed: {e}"
            ))
        });
        let stats = PerCpuStats::<KernelStats>::new()
            .unwrap_or_else(|e| crate::fail(format_args!("cpu 0: PerCpuStats::new failed: {e}")));
        COUNTER.store(
            alloc::boxed::Box::into_raw(alloc::boxed::Box::new(counter)),
            Ordering::Release,
        );
        STATS.store(
            alloc::boxed::Box::into_raw(alloc::boxed::Box::new(stats)),
            Ordering::Release,
        );
    }
    let static_before = STATIC_STATS.per_cpu(cpu);
    let ticks_before = TICKS.read_current();
    barrier("the batched counter and the statistics to be allocated");

    // SAFETY: published before the barrier above, taken back by CPU 0 after
    // the last barrier of the phase.
    let (counter, stats) = unsafe {
        (
            &*COUNTER.load(Ordering::Acquire),
            &*STATS.load(Ordering::Acquire),
        )
    };
    let (mut added, mut done, mut checks) = (0i64, 0u64, 0u64);
    let mut last = (stats.sum(), STATIC_STATS.sum());
    let timed = with_timer(cpu, |rounds| {
        // A fraction of the rounds `with_timer` asks for: enough for the
        // ticks to land in the middle of the adds, at a bearable cost.
        for _ in 0..rounds / WORK_DIVISOR {
            let delta = 1 + (done % 4) as i64;
            counter.add(delta);
            added += delta;
            count_packet(stats, 64 + cpu as u64, false);
            if done % CHECK_EVERY == 0 {
                check_bound(cpu, cpus, counter);
                last = check_growing(cpu, last, (stats.sum(), STATIC_STATS.sum()));
                checks += 1;
            }
            done += 1;
        }
    });
    ADDED[cpu].store(added, Ordering::Relaxed);
    let ticks = TICKS.read_current() - ticks_before;
    let mine = expected(cpu, done, ticks);
    expect_eq(
        cpu,
        format_args!("my copy of the allocated statistics"),
        stats.per_cpu(cpu),
        mine,
    );
    expect_eq(
        cpu,
        format_args!("the increase of my copy of the static statistics"),
        minus(STATIC_STATS.per_cpu(cpu), static_before),
        mine,
    );
    println!(
        "cpu {cpu}: {done} rounds of BatchedCounter::add and statistics increments, {timed}; \
         read() within its bound in {checks} checks while all cpus added; my statistics exact"
    );
    barrier("the batched counter and the statistics to be hammered");

    if cpu == 0 {
        check_totals(cpus, counter, stats);
        COUNTER.store(null_mut(), Ordering::Release);
        STATS.store(null_mut(), Ordering::Release);
        // SAFETY: every CPU stopped its timer and is past its last use (the
        // barrier above); boxed by this CPU at the start of the phase.
        unsafe {
            drop(alloc::boxed::Box::from_raw(
                counter as *const _ as *mut BatchedCounter,
            ));
            drop(alloc::boxed::Box::from_raw(
                stats as *const _ as *mut PerCpuStats<KernelStats>,
            ));
        }
    }
    barrier("the batched counter and the statistics to be checked");
}

/// Checks that `read()` lies between the exact sums taken just before and
/// just after it, at most the error bound (plus the adds in progress) below.
/// The counter only grows.
fn check_bound(cpu: usize, cpus: usize, counter: &BatchedCounter) {
    let before = counter.sum();
    let read = counter.read();
    // Acquire: the folds that `read()` saw come with the adds they stand for.
    fence(Ordering::Acquire);
    let after = counter.sum();
    let bound = counter.error_bound() as i64;
    // One fold in progress per running CPU and its interrupt handler, each of
    // at most `BATCH - 1 + 4`.
    let in_flight = 2 * cpus as i64 * (i64::from(BATCH) + 3);
    expect(
        cpu,
        read <= after && read >= before - bound - in_flight,
        format_args!(
            "BatchedCounter::read() {read}: sums {before} before, {after} after, \
             bound {bound} (+ {in_flight} in flight)"
        ),
    );
    LARGEST_ERROR.fetch_max((before - read).max(0) as u64, Ordering::Relaxed);
}

/// Checks that no field of the sums went back since `last`; returns `now`.
fn check_growing(
    cpu: usize,
    last: (KernelStats, KernelStats),
    now: (KernelStats, KernelStats),
) -> (KernelStats, KernelStats) {
    for (last, now) in [(last.0, now.0), (last.1, now.1)] {
        expect(
            cpu,
            now.packets >= last.packets && now.bytes >= last.bytes && now.ticks >= last.ticks,
            format_args!(
                "statistics summed while all cpus increment went back: {last:?}, then {now:?}"
            ),
        );
    }
    now
}

/// CPU `cpu`'s statistics after `rounds` rounds and `ticks` ticks.
fn expected(cpu: usize, rounds: u64, ticks: u64) -> KernelStats {
    KernelStats {
        packets: rounds + ticks,
        bytes: rounds * (64 + cpu as u64) + ticks * 1000,
        ticks: ticks as u32,
        balance: -(rounds as i32),
    }
}

/// `a - b`, field by field (wrapping).
fn minus(a: KernelStats, b: KernelStats) -> KernelStats {
    KernelStats {
        packets: a.packets.wrapping_sub(b.packets),
        bytes: a.bytes.wrapping_sub(b.bytes),
        ticks: a.ticks.wrapping_sub(b.ticks),
        balance: a.balance.wrapping_sub(b.balance),
    }
}

/// CPU 0, once all are done: the exact sums over all CPUs.
fn check_totals(cpus: usize, counter: &BatchedCounter, stats: &PerCpuStats<KernelStats>) {
    let mut total = 0i64;
    let mut packets = 0u64;
    for (cpu, added) in ADDED.iter().enumerate().take(cpus) {
        let copy = stats.per_cpu(cpu);
        total += added.load(Ordering::Relaxed) + 3 * i64::from(copy.ticks);
        packets += copy.packets;
    }
    expect_eq(
        0,
        format_args!("BatchedCounter::sum() once all cpus are done"),
        counter.sum(),
        total,
    );
    let (sum, read) = (counter.sum(), counter.read());
    expect(
        0,
        (sum - read) >= 0 && (sum - read) as u64 <= counter.error_bound(),
        format_args!(
            "BatchedCounter: read() {read}, sum() {sum}, bound {}",
            counter.error_bound()
        ),
    );
    expect_eq(
        0,
        format_args!("PerCpuStats packets summed"),
        stats.sum().packets,
        packets,
    );
    println!(
        "cpu 0: BatchedCounter (batch {BATCH}, bound {}): sum() {total} exact, read() {read}; \
         read() seen at most {} below the exact sum while all cpus added; statistics summed exactly",
        counter.error_bound(),
        LARGEST_ERROR.load(Ordering::Relaxed),
    );
}
