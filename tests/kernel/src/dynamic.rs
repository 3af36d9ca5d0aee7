//! Per-CPU objects allocated at run time (`percpu_alloc`), on all CPUs at
//! once: the concurrent scenario of the host tests (`tests/alloc_cpus.rs`) in
//! a real kernel, with each object's fast paths checked against its remote
//! view, and allocation from interrupt context.
//!
//! 1. Every CPU allocates [`OWN`] objects (fewer with many CPUs, see
//!    [`own_count`]) of four types at the same time
//!    (`u64`, `[u32; 3]`, `u8`, and [`Tracked`], which counts its drops),
//!    every copy initialized to a value naming the owner and the copy's CPU,
//!    and publishes them.
//! 2. Every CPU checks its own copy of every CPU's objects through the fast
//!    path, writes its pattern there (`write_current`, `add_current`,
//!    `sub_current` or `with_current`), and checks that the fast path and
//!    `remote_ptr(this cpu)` designate the same copy.
//! 3. Every CPU checks every other CPU's copy of every object remotely: no
//!    two copies overlap, and the copies of an object, in the first chunk or
//!    in a further one, share one offset for all CPUs.
//! 4. With its timer running, every CPU frees its objects while allocating,
//!    checking and freeing [`CHURN`] more, then [`Large`] objects that need
//!    further chunks from the heap (refilling the spare chunks and returning
//!    free chunks as it goes), until its timer interrupt handler has
//!    allocated [`min_irq_allocs`] objects: every [`IRQ_EVERY`] ticks, the
//!    handler checks and drops the two objects it made last time and
//!    allocates two new ones with `PerCpu::new_with_atomic` (one served by
//!    this CPU's cache, one by the allocator core), which never calls the
//!    heap or the chunk source. Every object's copies are checked before it is dropped:
//!    an overlap with any other object would show.
//! 5. All hammer one shared `PerCpuCounter`, which the timer interrupt
//!    updates too. CPU 0 checks the counter's exact sum, that every copy of
//!    every [`Tracked`] and interrupt-made object was dropped once, and that
//!    nothing is left allocated.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt::{self, Debug};
use core::ptr::null_mut;
use core::sync::atomic::{AtomicI64, AtomicPtr, AtomicUsize, Ordering};

use percpu::checked::IrqGuard;
use percpu::{PerCpuInteger, PerCpuPrimitive};
use percpu_alloc::{AllocError, GlobalAllocSource, PerCpu, PerCpuCell, PerCpuCounter};

use crate::check::{expect, expect_eq};
use crate::counters::{self, TICK_WEIGHT};
use crate::suite::Others;
use crate::vars::IntValue;
use crate::{arch, println, MAX_CPUS};

/// Objects every CPU allocates and publishes.
const OWN: usize = 32;

/// The objects every CPU allocates and publishes with `cpus` CPUs: [`OWN`] on
/// up to 8 CPUs; beyond, `8 * OWN` shared out among the CPUs, at least one
/// each (every CPU still allocates, and checks every copy of every object).
fn own_count(cpus: usize) -> usize {
    crate::suite::per_cpu_share(8 * OWN, cpus, OWN)
}

/// Objects every CPU allocates and frees while freeing its own.
const CHURN: usize = 64;

/// Of the [`CHURN`] objects, those alive at a time.
const WINDOW: usize = 8;

/// Of the [`Large`] objects, those alive at a time on up to 8 CPUs: enough
/// to need further chunks. With more CPUs, `8 * LARGE_WINDOW` are shared out
/// (see [`large_window`]): every further chunk has a unit for every possible
/// CPU, so the memory they take grows with the CPUs squared otherwise.
const LARGE_WINDOW: usize = 24;

/// The [`Large`] objects alive at a time on each of `cpus` CPUs: an even
/// number, 2 at least.
fn large_window(cpus: usize) -> usize {
    crate::suite::per_cpu_share(8 * LARGE_WINDOW, cpus, LARGE_WINDOW).next_multiple_of(2)
}

/// Objects the timer interrupt handler must have allocated on every CPU with
/// a timer before the churn stops (or [`MAX_LARGE_ROUNDS`] were done): 16 on
/// up to 8 CPUs, 2 with more (whose ticks come further apart, see
/// `arch::tick_period_ns`).
fn min_irq_allocs(cpus: usize) -> usize {
    if cpus > crate::suite::VERBOSE_CPUS {
        2
    } else {
        16
    }
}

/// Rounds of [`Large`] objects at most, waiting for the interrupt handler.
const MAX_LARGE_ROUNDS: usize = 200_000;

/// Spare chunks kept for the allocations of the interrupt handler.
const SPARE_CHUNKS: usize = 2;

/// Evaluates `$body` with `$h` bound to the handle of `$object`, whatever
/// its type.
macro_rules! on_handle {
    ($object:expr, $h:ident => $body:expr) => {
        match $object {
            Object::Word($h) => $body,
            Object::Triple($h) => $body,
            Object::Byte($h) => $body,
            Object::Tracked($h) => $body,
        }
    };
}

/// Sets up run-time per-CPU allocation on the initialized areas, with further
/// chunks from the kernel heap. Called on the boot CPU with its per-CPU
/// register set (with `preempt`, `percpu_alloc`'s guards count in per-CPU
/// variables).
pub fn init() {
    percpu_alloc::init(&GlobalAllocSource)
        .unwrap_or_else(|e| crate::fail(format_args!("percpu_alloc::init failed: {e}")));
    let copies = percpu::cpu_count();
    expect(
        0,
        copies <= MAX_CPUS,
        format_args!("{copies} copies per object (percpu::cpu_count()), MAX_CPUS = {MAX_CPUS}"),
    );
    let unit = percpu_alloc::max_size();
    expect_eq(
        0,
        format_args!("percpu_alloc unit"),
        unit,
        percpu::percpu_area_stride(),
    );
    let align = percpu_alloc::max_align();
    let first_chunk = stats().chunk_bytes;
    if first_chunk == 0 {
        println!(
            "boot: percpu_alloc: unit = the {unit}-byte area stride, no reserve: objects up to \
             {unit} bytes (aligned up to {align}), all in further chunks from the heap"
        );
    } else {
        println!(
            "boot: percpu_alloc: unit = the {unit}-byte area stride, whose last {first_chunk} \
             bytes are the first chunk: objects up to {unit} bytes (aligned up to {align}), \
             further chunks from the heap"
        );
    }
}

/// The usage figures of `percpu_alloc`.
fn stats() -> percpu_alloc::offset_alloc::Stats {
    percpu_alloc::stats()
        .unwrap_or_else(|e| crate::fail(format_args!("percpu_alloc::stats failed: {e}")))
}

/// The phase, run by all `cpus` CPUs at once; `barrier(what)` waits for all
/// of them.
pub fn run(cpu: usize, cpus: usize, barrier: impl Fn(&'static str)) {
    let count = own_count(cpus);
    let own = (0..count)
        .map(|index| Object::new(Id { owner: cpu, index }))
        .collect();
    PUBLISHED[cpu].store(Box::into_raw(Box::new(own)), Ordering::Release);
    if cpu == 0 {
        let counter = PerCpuCounter::new()
            .unwrap_or_else(|e| crate::fail(format_args!("cpu 0: PerCpuCounter::new: {e}")));
        COUNTER.store(Box::into_raw(Box::new(counter)), Ordering::Release);
    }
    // Free offsets left in this CPU's cache would count as allocations.
    percpu_alloc::drain_cache();
    barrier("the run-time objects to be allocated");

    let peak = (cpu == 0).then(stats);
    if let Some(peak) = &peak {
        expect_eq(
            0,
            format_args!("live run-time objects"),
            peak.live_allocations,
            cpus * count + 1,
        );
    }
    // SAFETY: every CPU published its objects before the barrier above and
    // takes them back after the barrier below the remote checks.
    unsafe {
        for_each_published(
            cpus,
            |id, object| on_handle!(object, h => write_own(h, id, cpu)),
        )
    };
    barrier("the run-time objects' copies to be written");

    let copies = percpu::cpu_count();
    let check_others = |id: Id, object: &Object| {
        for copy in (0..copies).filter(|&copy| copy != cpu) {
            on_handle!(object, h => check_copy(h, id, cpu, copy, copy < cpus));
        }
    };
    // SAFETY: as above.
    unsafe { for_each_published(cpus, check_others) };
    println!(
        "cpu {cpu}: allocated {count} run-time per-CPU objects; my copies of all {}: fast path = \
         remote view; copies of {}: OK",
        cpus * count,
        Others { cpu, cpus }
    );
    barrier("the remote checks of the run-time objects");

    let churned = churn(cpu, count);

    barrier("the run-time objects to be freed");

    // SAFETY: published by CPU 0 before the first barrier of the phase,
    // taken back by it after the last one.
    let counter = unsafe { &*COUNTER.load(Ordering::Acquire) };
    let timed = counters::with_timer(cpu, |rounds| {
        for _ in 0..rounds {
            counter.inc();
            counter.add(cpu as i64 + 2);
            counter.dec();
        }
    });
    let ticks = COUNTER_TICKS.read_current() as i64;
    let part = (cpu as i64 + 2) * timed.rounds as i64 + ticks * TICK_WEIGHT as i64;
    expect_eq(
        cpu,
        format_args!("my part of the PerCpuCounter"),
        counter.per_cpu(cpu),
        part,
    );
    PARTS[cpu].store(part, Ordering::Relaxed);
    println!(
        "cpu {cpu}: freed my {count} objects while allocating and freeing {CHURN} more and {} \
         of {} bytes ({} spare-chunk refills); {churned}; PerCpuCounter: {} ops, {timed}: my \
         part exact",
        churned.large,
        size_of::<Large>(),
        churned.refills,
        3 * timed.rounds
    );
    barrier("the PerCpuCounter to be hammered");

    if let Some(peak) = peak {
        check_totals(cpus, count, &peak);
    }
    barrier("the run-time objects' totals to be checked");
}

/// The objects of every CPU (a `Box<Vec<Object>>` each, or null), shared
/// between the barriers of [`run`].
static PUBLISHED: [AtomicPtr<Vec<Object>>; MAX_CPUS] =
    [const { AtomicPtr::new(null_mut()) }; MAX_CPUS];

/// Calls `f` on every object published by CPUs `0..cpus`.
///
/// # Safety
///
/// Every CPU below `cpus` published its objects and does not take them back
/// until this call returned.
unsafe fn for_each_published(cpus: usize, mut f: impl FnMut(Id, &Object)) {
    for (owner, published) in PUBLISHED.iter().enumerate().take(cpus) {
        // SAFETY: a valid `Box` that its owner keeps (the caller's contract).
        let objects = unsafe { &*published.load(Ordering::Acquire) };
        for (index, object) in objects.iter().enumerate() {
            f(Id { owner, index }, object);
        }
    }
}

/// The `PerCpuCounter` all CPUs hammer (while not null, also the timer
/// interrupt).
static COUNTER: AtomicPtr<PerCpuCounter> = AtomicPtr::new(null_mut());

/// Each CPU's part of the [`COUNTER`], as that CPU expects it.
static PARTS: [AtomicI64; MAX_CPUS] = [const { AtomicI64::new(0) }; MAX_CPUS];

/// The timer interrupt's work: while [`churn`] runs on this CPU, replaces the
/// objects it made [`IRQ_EVERY`] ticks earlier with new ones
/// ([`replace_irq_objects`]);
/// otherwise adds [`TICK_WEIGHT`] to this CPU's part of the shared counter,
/// if one is published.
pub fn on_timer_tick() {
    if IRQ_ALLOCATES.read_current() {
        // Every few ticks only: under emulation, a tick's work must stay well
        // below the tick period (100 µs on some architectures).
        IRQ_TICKS_SEEN.add_current(1);
        if IRQ_TICKS_SEEN.read_current().is_multiple_of(IRQ_EVERY) {
            replace_irq_objects();
        }
        return;
    }
    let counter = COUNTER.load(Ordering::Acquire);
    if !counter.is_null() {
        // SAFETY: CPU 0 publishes the counter before any CPU starts its timer
        // in [`run`] and takes it back once every CPU stopped it.
        unsafe { (*counter).add(TICK_WEIGHT as i64) };
        COUNTER_TICKS.add_current(1);
    }
}

/// The ticks whose handler added to the `PerCpuCounter` on this CPU: what
/// this CPU's part of it holds besides the rounds (a tick still pending when
/// the timer stopped may land outside [`counters::with_timer`]'s count).
#[percpu::def_percpu]
static COUNTER_TICKS: u64 = 0;

/// This CPU's id, for its interrupt handler.
#[percpu::def_percpu]
static CPU: usize = usize::MAX;

/// The timer ticks between two allocations of an interrupt handler.
const IRQ_EVERY: usize = 4;

/// Timer ticks this CPU took while [`IRQ_ALLOCATES`] was set.
#[percpu::def_percpu]
static IRQ_TICKS_SEEN: usize = 0;

/// While set on a CPU, its timer interrupt handler allocates and drops
/// objects.
#[percpu::def_percpu]
static IRQ_ALLOCATES: bool = false;

/// The objects this CPU's interrupt handler made on its last tick: one served
/// by this CPU's cache, one by the allocator core. Only the handler uses
/// them, and the CPU itself once its handler stopped allocating.
#[percpu::def_percpu]
static IRQ_OBJECTS: Option<(PerCpu<Stamp>, PerCpu<Wide>)> = None;

/// Atomic allocations of this CPU's interrupt handler: objects made, and
/// ticks that found no room ([`AllocError::WouldBlock`]).
#[percpu::def_percpu]
static IRQ_ALLOCS: usize = 0;
#[percpu::def_percpu]
static IRQ_REFUSED: usize = 0;

/// The ticks of interrupt handlers so far, numbering their objects.
static IRQ_TICKS: AtomicUsize = AtomicUsize::new(0);

/// Copies of [`Stamp`] and [`Wide`] objects made and dropped, over all CPUs.
static IRQ_COPIES_MADE: AtomicUsize = AtomicUsize::new(0);
static IRQ_COPIES_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// CPU `copy`'s copy of the object of tick `tick` of CPU `owner`'s handler:
/// 16 bytes, a size the per-CPU caches serve.
struct Stamp {
    tick: u64,
    owner: u32,
    copy: u32,
}

impl Stamp {
    fn new(tick: u64, owner: usize, copy: usize) -> Self {
        IRQ_COPIES_MADE.fetch_add(1, Ordering::Relaxed);
        Self {
            tick,
            owner: owner as u32,
            copy: copy as u32,
        }
    }

    fn is(&self, tick: u64, owner: usize, copy: usize) -> bool {
        (self.tick, self.owner, self.copy) == (tick, owner as u32, copy as u32)
    }
}

impl Drop for Stamp {
    fn drop(&mut self) {
        IRQ_COPIES_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// As [`Stamp`], larger than the sizes the caches serve: from the core.
struct Wide([u64; 20]);

impl Wide {
    fn new(tick: u64, owner: usize, copy: usize) -> Self {
        IRQ_COPIES_MADE.fetch_add(1, Ordering::Relaxed);
        let mut words = [tick; 20];
        words[19] = (owner << 32 | copy) as u64;
        Self(words)
    }

    fn is(&self, tick: u64, owner: usize, copy: usize) -> bool {
        self.0[..19].iter().all(|&word| word == tick) && self.0[19] == (owner << 32 | copy) as u64
    }
}

impl Drop for Wide {
    fn drop(&mut self) {
        IRQ_COPIES_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Fails unless every CPU's copy of `handle` satisfies `is(copy, its CPU)`:
/// nothing else wrote into it since it was made.
fn check_copies<T>(handle: &PerCpu<T>, cpu: usize, what: &str, is: impl Fn(&T, usize) -> bool) {
    let overwritten = (0..percpu::cpu_count()).find(|&copy| {
        // SAFETY: `copy` is below `percpu::cpu_count()`; only this CPU's
        // interrupt handler wrote the copies, when it made the object.
        !is(unsafe { &*handle.remote_ptr(copy) }, copy)
    });
    if let Some(copy) = overwritten {
        crate::fail(format_args!(
            "cpu {cpu}: interrupt handler: cpu {copy}'s copy of its {what} was overwritten"
        ));
    }
}

/// In this CPU's timer interrupt handler: checks and drops the objects of the
/// previous tick, and allocates new ones with `PerCpu::new_with_atomic`,
/// which never calls the heap (whose lock does not disable interrupts) or the
/// chunk source.
fn replace_irq_objects() {
    let cpu = CPU.read_current();
    IRQ_OBJECTS.with_current(|objects| {
        if let Some((stamp, wide)) = objects.take() {
            // SAFETY: CPU 0's copy, written when the object was made.
            let tick = unsafe { (*stamp.remote_ptr(0)).tick };
            check_copies(&stamp, cpu, "small object", |s, copy| s.is(tick, cpu, copy));
            check_copies(&wide, cpu, "wide object", |w, copy| w.is(tick, cpu, copy));
        }
        let tick = IRQ_TICKS.fetch_add(1, Ordering::Relaxed) as u64;
        let stamp = PerCpu::new_with_atomic(|copy| Stamp::new(tick, cpu, copy));
        let wide = PerCpu::new_with_atomic(|copy| Wide::new(tick, cpu, copy));
        match (stamp, wide) {
            (Ok(stamp), Ok(wide)) => {
                IRQ_ALLOCS.add_current(2);
                *objects = Some((stamp, wide));
            }
            (Err(AllocError::WouldBlock), _) | (_, Err(AllocError::WouldBlock)) => {
                IRQ_REFUSED.add_current(1);
            }
            (Err(e), _) | (_, Err(e)) => crate::fail(format_args!(
                "cpu {cpu}: atomic allocation in the timer interrupt handler: {e}"
            )),
        }
    });
}

/// What [`churn`] did on this CPU.
struct Churned {
    /// Whether the timer interrupted it.
    timer: bool,
    /// [`Large`] objects allocated.
    large: usize,
    /// Calls of `percpu_alloc::refill`.
    refills: usize,
    /// Objects the interrupt handler allocated, and ticks it found no room.
    irq_allocs: usize,
    irq_refused: usize,
}

impl fmt::Display for Churned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.timer {
            write!(
                f,
                "meanwhile my timer interrupt allocated {} objects with new_with_atomic and \
                 dropped them ({} ticks found no room)",
                self.irq_allocs, self.irq_refused
            )
        } else {
            f.write_str("no timer interrupts on this architecture")
        }
    }
}

/// An object larger than the sizes the caches serve and smaller than the
/// unit: the core serves it, in further chunks when the first is full.
type Large = [u64; 40];

/// Allocates a [`Large`] object whose copies name `tag` and their CPU.
fn new_large(cpu: usize, tag: u64) -> PerCpu<Large> {
    PerCpu::new_with(|copy| {
        let mut words = [tag; 40];
        words[39] = copy as u64;
        words
    })
    .unwrap_or_else(|e| crate::fail(format_args!("cpu {cpu}: allocating a large object: {e}")))
}

/// Checks every copy of a [`Large`] object, then drops it.
fn drop_large(cpu: usize, large: PerCpu<Large>, tag: u64) {
    for (copy, words) in large.iter().enumerate() {
        let intact = words[..39].iter().all(|&word| word == tag) && words[39] == copy as u64;
        expect(
            cpu,
            intact,
            format_args!("cpu {copy}'s copy of large object {tag:#x} was overwritten"),
        );
    }
}

/// With this CPU's timer running and its interrupt handler allocating: frees
/// this CPU's published objects, one per round, while allocating, checking
/// and freeing [`CHURN`] more, [`WINDOW`] of them alive at a time; then
/// allocates and frees [`Large`] objects, [`large_window`] alive at a time,
/// refilling spare chunks and returning free ones, until the handler made
/// [`min_irq_allocs`] objects. Leaves nothing allocated by this CPU, and its
/// cache drained.
fn churn(cpu: usize, count: usize) -> Churned {
    let published = PUBLISHED[cpu].swap(null_mut(), Ordering::AcqRel);
    // SAFETY: the `Box` this CPU published; no other CPU uses it any more
    // (they passed the barrier after the remote checks).
    let mut own = unsafe { Box::from_raw(published) };
    CPU.write_current(cpu);
    let mut refills = 0;
    let mut refill = || {
        refills += 1;
        percpu_alloc::refill(SPARE_CHUNKS)
            .unwrap_or_else(|e| crate::fail(format_args!("cpu {cpu}: refill: {e}")));
    };
    refill();
    let allocs_before = IRQ_ALLOCS.read_current();
    let refused_before = IRQ_REFUSED.read_current();
    IRQ_ALLOCATES.write_current(true);
    let timer = arch::timer_start();

    let mut live = VecDeque::with_capacity(WINDOW);
    for index in count..count + CHURN {
        let id = Id { owner: cpu, index };
        let mut object = Object::new(id);
        on_handle!(&mut object, h => check_fresh(h, id, cpu));
        if live.len() == WINDOW {
            live.pop_front();
        }
        live.push_back(object);
        own.pop();
    }
    drop(live);

    let cpus = crate::suite::running_cpus();
    let (window, min_irq_allocs) = (large_window(cpus), min_irq_allocs(cpus));
    let mut large = VecDeque::with_capacity(window);
    let tag = |round: usize| ((cpu as u64) << 48) | round as u64;
    let mut rounds = 0;
    while rounds < 2 * window
        || (timer
            && IRQ_ALLOCS.read_current() - allocs_before < min_irq_allocs
            && rounds < MAX_LARGE_ROUNDS)
    {
        if large.len() == window {
            // Half of the window at once, so that chunks become free.
            for (round, object) in large.drain(..window / 2) {
                drop_large(cpu, object, tag(round));
            }
            percpu_alloc::reclaim();
        }
        large.push_back((rounds, new_large(cpu, tag(rounds))));
        rounds += 1;
        if percpu_alloc::needs_refill() {
            refill();
        }
    }

    IRQ_ALLOCATES.write_current(false);
    arch::timer_stop();
    let irq_allocs = IRQ_ALLOCS.read_current() - allocs_before;
    if timer {
        expect(
            cpu,
            irq_allocs >= min_irq_allocs,
            format_args!(
                "the timer interrupt handler allocated only {irq_allocs} objects in {rounds} \
                 rounds"
            ),
        );
    }
    IRQ_OBJECTS.with_current(|objects| drop(objects.take()));
    for (round, object) in large {
        drop_large(cpu, object, tag(round));
    }
    // Free offsets left in this CPU's cache would count as allocations.
    percpu_alloc::drain_cache();
    Churned {
        timer,
        large: rounds,
        refills,
        irq_allocs,
        irq_refused: IRQ_REFUSED.read_current() - refused_before,
    }
}

/// From CPU 0, after every CPU finished [`run`]: the shared counter, the
/// drops, and that everything was freed; prints the summary.
fn check_totals(cpus: usize, count: usize, peak: &percpu_alloc::offset_alloc::Stats) {
    let published = COUNTER.swap(null_mut(), Ordering::AcqRel);
    // SAFETY: published by this CPU in `run`; the timers are stopped and the
    // other CPUs are done with it.
    let counter = unsafe { Box::from_raw(published) };
    let copies = percpu::cpu_count();
    let part = |copy: usize| {
        if copy < cpus {
            PARTS[copy].load(Ordering::Relaxed)
        } else {
            0
        }
    };
    for copy in 0..copies {
        expect_eq(
            0,
            format_args!("PerCpuCounter part of cpu {copy}"),
            counter.per_cpu(copy),
            part(copy),
        );
    }
    let sum = counter.sum();
    expect_eq(
        0,
        format_args!("PerCpuCounter sum"),
        sum,
        (0..copies).map(part).sum(),
    );
    drop(counter);
    percpu_alloc::drain_cache();
    // Back to one spare chunk: the others go back to the heap.
    percpu_alloc::refill(1).unwrap_or_else(|e| crate::fail(format_args!("cpu 0: refill: {e}")));
    let irq_copies = IRQ_COPIES_MADE.load(Ordering::Relaxed);
    expect_eq(
        0,
        format_args!("drops of the copies of the interrupt handlers' objects"),
        IRQ_COPIES_DROPPED.load(Ordering::Relaxed),
        irq_copies,
    );

    let tracked = (0..count + CHURN)
        .filter(|&index| matches!(Object::kind(index), Kind::Tracked))
        .count();
    for (copy, drops) in DROPS.iter().enumerate().take(copies) {
        expect_eq(
            0,
            format_args!("drops of cpu {copy}'s copies of Tracked objects"),
            drops.load(Ordering::Relaxed),
            cpus * tracked,
        );
    }
    let after = stats();
    expect_eq(
        0,
        format_args!("live run-time objects at the end"),
        after.live_allocations,
        0,
    );
    println!(
        "run-time objects: peak {} live, {} of {} bytes per cpu used, chunks: {}; \
         PerCpuCounter sum {sum} exact; {} Tracked objects x {copies} copies dropped once each; \
         {irq_copies} copies of objects made in interrupt handlers dropped once each; all freed, \
         spare chunks kept: {}",
        peak.live_allocations,
        peak.requested_bytes,
        peak.chunk_bytes,
        peak.chunks,
        cpus * tracked,
        after.free_chunks
    );
}

/// Names object `index` of CPU `owner` (its allocating CPU).
#[derive(Clone, Copy)]
struct Id {
    owner: usize,
    index: usize,
}

impl Id {
    /// The value of CPU `copy`'s copy: initial, or once `written` by that
    /// CPU. Its low byte alone (all a `u8` keeps) still names the owner, the
    /// CPU and the state.
    fn word(self, copy: usize, written: bool) -> u64 {
        0x5043_0000_0000_0000
            | (self.index as u64) << 16
            | u64::from(written) << 6
            | (self.owner as u64) << 3
            | copy as u64
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "object {}.{}", self.owner, self.index)
    }
}

/// The types of objects, in the proportions [`Object::kind`] allocates them.
enum Kind {
    Word,
    Triple,
    Byte,
    Tracked,
}

/// A run-time per-CPU object of one of the types under test: integers in
/// cell-like handles (`PerCpuCell`), the others in reference-like ones
/// (`PerCpu`).
enum Object {
    Word(PerCpuCell<u64>),
    Triple(PerCpu<[u32; 3]>),
    Byte(PerCpuCell<u8>),
    Tracked(PerCpu<Tracked>),
}

impl Object {
    /// The type of object `index` of every CPU.
    fn kind(index: usize) -> Kind {
        match index % 8 {
            0..=4 => Kind::Word,
            5 => Kind::Triple,
            6 => Kind::Byte,
            _ => Kind::Tracked,
        }
    }

    /// Allocates object `id` on its owner, each CPU's copy holding that CPU's
    /// initial value.
    fn new(id: Id) -> Self {
        fn alloc<H: Copies>(id: Id) -> H {
            H::alloc(|copy| H::Item::new(id.word(copy, false), copy)).unwrap_or_else(|e| {
                crate::fail(format_args!(
                    "cpu {}: allocating {id} ({}): {e}",
                    id.owner,
                    H::Item::NAME
                ))
            })
        }
        match Self::kind(id.index) {
            Kind::Word => Self::Word(alloc(id)),
            Kind::Triple => Self::Triple(alloc(id)),
            Kind::Byte => Self::Byte(alloc(id)),
            Kind::Tracked => Self::Tracked(alloc(id)),
        }
    }
}

/// What the checks need of a handle, of either kind.
trait Copies: Sized {
    /// The type of the copies.
    type Item: Sample<Handle = Self>;
    /// `PerCpu::new_with` or `PerCpuCell::new_with`.
    fn alloc(init: impl FnMut(usize) -> Self::Item) -> Result<Self, AllocError>;
    /// `current_ptr()`.
    ///
    /// # Safety
    ///
    /// As the handle's: this CPU registered, the pointer used on this CPU.
    unsafe fn current_ptr(&self) -> *mut Self::Item;
    /// `remote_ptr(cpu)`.
    ///
    /// # Safety
    ///
    /// As the handle's: `cpu` valid, no data race with that CPU.
    unsafe fn remote_ptr(&self, cpu: usize) -> *mut Self::Item;
    /// Calls `f(cpu, copy)` on every CPU's copy, through the handle's safe
    /// API: `iter_mut` (exclusive), or `remote_read` (atomic loads).
    fn for_each_copy(&mut self, f: impl FnMut(usize, &Self::Item));
}

impl<T: Sample<Handle = Self>> Copies for PerCpu<T> {
    type Item = T;
    fn alloc(init: impl FnMut(usize) -> T) -> Result<Self, AllocError> {
        PerCpu::new_with(init)
    }
    unsafe fn current_ptr(&self) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { PerCpu::current_ptr(self) }
    }
    unsafe fn remote_ptr(&self, cpu: usize) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { PerCpu::remote_ptr(self, cpu) }
    }
    fn for_each_copy(&mut self, mut f: impl FnMut(usize, &T)) {
        self.iter_mut()
            .enumerate()
            .for_each(|(cpu, copy)| f(cpu, copy));
    }
}

impl<T: PerCpuPrimitive + Sample<Handle = Self>> Copies for PerCpuCell<T> {
    type Item = T;
    fn alloc(init: impl FnMut(usize) -> T) -> Result<Self, AllocError> {
        PerCpuCell::new_with(init)
    }
    unsafe fn current_ptr(&self) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { PerCpuCell::current_ptr(self) }
    }
    unsafe fn remote_ptr(&self, cpu: usize) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { PerCpuCell::remote_ptr(self, cpu) }
    }
    fn for_each_copy(&mut self, mut f: impl FnMut(usize, &T)) {
        (0..percpu::cpu_count()).for_each(|cpu| f(cpu, &self.remote_read(cpu)));
    }
}

/// A type of the objects under test, whose copies are made from a word of
/// [`Id::word`].
trait Sample: Sized + Send + Sync {
    /// The handle of its objects.
    type Handle: Copies<Item = Self>;
    /// The type's name, for messages.
    const NAME: &'static str;
    /// What the checks compare.
    type View: Copy + PartialEq + Debug;
    /// CPU `copy`'s copy, made from `word`.
    fn new(word: u64, copy: usize) -> Self;
    /// What a copy holds.
    fn view(&self) -> Self::View;
    /// What `new(word, copy)` holds.
    fn expected(word: u64, copy: usize) -> Self::View {
        Self::new(word, copy).view()
    }
    /// This CPU's copy, read through the fast path.
    fn read_fast(handle: &Self::Handle) -> Self::View;
    /// Makes this CPU's copy `new(word, cpu)` through the fast path (checking
    /// the steps, as object `id`).
    fn write_fast(handle: &Self::Handle, word: u64, id: Id, cpu: usize);
}

/// The integer types under test: the one-instruction fast paths.
macro_rules! integer_samples {
    ($($ty:ty),*) => {$(
        impl Sample for $ty {
            type Handle = PerCpuCell<$ty>;
            const NAME: &'static str = stringify!($ty);
            type View = $ty;
            fn new(word: u64, _copy: usize) -> Self {
                word as $ty
            }
            fn view(&self) -> $ty {
                *self
            }
            fn read_fast(handle: &PerCpuCell<$ty>) -> $ty {
                handle.read_current()
            }
            fn write_fast(handle: &PerCpuCell<$ty>, word: u64, id: Id, cpu: usize) {
                write_integer(handle, word as $ty, id, cpu)
            }
        }
    )*};
}
integer_samples!(u64, u8);

/// Makes this CPU's copy `value` with `write_current`, `add_current` and
/// `sub_current` (wrapping around for a `u8`), each checked with
/// `read_current`.
fn write_integer<T: Sample + IntValue + PerCpuInteger>(
    handle: &PerCpuCell<T>,
    value: T,
    id: Id,
    cpu: usize,
) {
    let check = |op: &str, expected: T| {
        expect_eq(
            cpu,
            format_args!("{id} ({}): after {op}", T::NAME),
            handle.read_current(),
            expected,
        )
    };
    let (low, high) = (T::small(0x80), T::small(0xc0));
    handle.write_current(value.minus(low));
    check("write_current", value.minus(low));
    handle.add_current(high);
    check("add_current", value.minus(low).plus(high));
    handle.sub_current(high.minus(low));
    check("sub_current", value);
}

/// A non-primitive type: read through a guard of the checked tier, written
/// with the raw tier's `with_current`.
impl Sample for [u32; 3] {
    type Handle = PerCpu<Self>;
    const NAME: &'static str = "[u32; 3]";
    type View = Self;
    fn new(word: u64, _copy: usize) -> Self {
        [word as u32, (word >> 32) as u32, !(word as u32)]
    }
    fn view(&self) -> Self {
        *self
    }
    fn read_fast(handle: &PerCpu<Self>) -> Self {
        *handle.get(&IrqGuard::new())
    }
    fn write_fast(handle: &PerCpu<Self>, word: u64, _id: Id, cpu: usize) {
        // SAFETY: this CPU's copy, which only this CPU reaches, and no
        // reference to it is live.
        unsafe { handle.with_current(|value| *value = Self::new(word, cpu)) };
    }
}

/// Drops of each CPU's copies of [`Tracked`] objects.
static DROPS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// A type with a destructor, which counts the drop of CPU `copy`'s copy.
struct Tracked {
    word: u64,
    copy: usize,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPS[self.copy].fetch_add(1, Ordering::Relaxed);
    }
}

impl Sample for Tracked {
    type Handle = PerCpu<Self>;
    const NAME: &'static str = "Tracked";
    type View = (u64, usize);
    fn new(word: u64, copy: usize) -> Self {
        Self { word, copy }
    }
    fn view(&self) -> (u64, usize) {
        (self.word, self.copy)
    }
    /// Without making a `Tracked`, whose drop would count.
    fn expected(word: u64, copy: usize) -> (u64, usize) {
        (word, copy)
    }
    fn read_fast(handle: &PerCpu<Self>) -> (u64, usize) {
        handle.get(&IrqGuard::new()).view()
    }
    fn write_fast(handle: &PerCpu<Self>, word: u64, _id: Id, _cpu: usize) {
        // SAFETY: as for `[u32; 3]`.
        unsafe { handle.with_current(|value| value.word = word) };
    }
}

/// From CPU `cpu`: checks its initial copy of object `id` through the fast
/// path, writes its pattern there, and checks that the fast path and the
/// remote view of CPU `cpu` agree on the copy's address and value.
fn write_own<H: Copies>(handle: &H, id: Id, cpu: usize) {
    let name = H::Item::NAME;
    expect_eq(
        cpu,
        format_args!("{id} ({name}): my initial copy"),
        H::Item::read_fast(handle),
        H::Item::expected(id.word(cpu, false), cpu),
    );
    H::Item::write_fast(handle, id.word(cpu, true), id, cpu);
    // SAFETY: this CPU's register is set, nothing migrates in this kernel,
    // and `cpu` is an initialized CPU: the pointers are only compared.
    let (fast, remote) = unsafe { (handle.current_ptr(), handle.remote_ptr(cpu)) };
    expect_eq(
        cpu,
        format_args!("{id} ({name}): current_ptr() vs remote_ptr({cpu})"),
        fast,
        remote,
    );
    // SAFETY: this CPU's copy, which only this CPU accesses, and no
    // reference to it is live.
    let remote = unsafe { (*remote).view() };
    expect_eq(
        cpu,
        format_args!("{id} ({name}): fast path vs remote view"),
        H::Item::read_fast(handle),
        remote,
    );
    expect_eq(
        cpu,
        format_args!("{id} ({name}): my written copy"),
        remote,
        H::Item::expected(id.word(cpu, true), cpu),
    );
}

/// From CPU `cpu`: checks CPU `copy`'s copy of object `id`, `written` by
/// that CPU or still initial.
fn check_copy<H: Copies>(handle: &H, id: Id, cpu: usize, copy: usize, written: bool) {
    // SAFETY: `copy` is below `percpu::cpu_count()`; its CPU, if running,
    // wrote it before the barrier this CPU passed, and nothing writes it
    // during the checks.
    let got = unsafe { (*handle.remote_ptr(copy)).view() };
    expect_eq(
        cpu,
        format_args!("{id} ({}): cpu {copy}'s copy", H::Item::NAME),
        got,
        H::Item::expected(id.word(copy, written), copy),
    );
}

/// From CPU `cpu`, on its newly allocated object `id`, which no other CPU
/// knows: checks every copy through the handle's safe API
/// ([`Copies::for_each_copy`]), writes its own with [`write_own`], and reads
/// every copy back the same way.
fn check_fresh<H: Copies>(handle: &mut H, id: Id, cpu: usize) {
    let check = |handle: &mut H, written: bool| {
        handle.for_each_copy(|copy, value| {
            expect_eq(
                cpu,
                format_args!(
                    "{id} ({}): cpu {copy}'s copy (written: {written})",
                    H::Item::NAME
                ),
                value.view(),
                H::Item::expected(id.word(copy, written && copy == cpu), copy),
            )
        });
    };
    check(handle, false);
    write_own(handle, id, cpu);
    check(handle, true);
}
