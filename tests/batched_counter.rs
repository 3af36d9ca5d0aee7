//! `percpu_alloc::BatchedCounter` on the x86_64 Linux host, threads acting as CPUs and per-thread
//! timer signals as their interrupts: `read()` stays within its bound while every CPU and its
//! interrupt handler add, `sum()` is exact once they are done; `compare`, `limited_add`, the batch
//! policy, and the fold of an offline CPU's part.

mod common;
mod signal_timer;

use std::cmp::Ordering as CmpOrdering;
use std::sync::atomic::{fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU64, Ordering};
use std::sync::{MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::{cpus, on_each_cpu, CPUS};
use percpu_alloc::{BatchedCounter, GlobalAllocSource, DEFAULT_BATCH};
use signal_timer::Timer;

/// The per-CPU areas and dynamic allocation, once per binary; serializes the tests.
fn setup() -> MutexGuard<'static, ()> {
    let guard = cpus();
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| percpu_alloc::init(&GlobalAllocSource).expect("percpu_alloc::init"));
    guard
}

/// Runs `body` on a thread acting as CPU 0 (the other CPUs idle), and returns its result.
fn as_cpu0<R: Send>(body: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                percpu::init_percpu_reg(0);
                let result = body();
                percpu::release_percpu_reg();
                result
            })
            .join()
            .unwrap()
    })
}

/// The counter the timer handler adds to (null: none).
static TICK_COUNTER: AtomicPtr<BatchedCounter> = AtomicPtr::new(std::ptr::null_mut());
/// What the handler added in total.
static TICK_ADDED: AtomicI64 = AtomicI64::new(0);

/// The timer interrupt: adds 1 to the published counter, on the interrupted CPU.
extern "C" fn add_on_tick(_signal: libc::c_int) {
    let counter = TICK_COUNTER.load(Ordering::Acquire);
    if !counter.is_null() {
        // SAFETY: published before the timers start, taken back after they all stopped.
        unsafe { (*counter).add(1) };
        TICK_ADDED.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn read_stays_within_its_bound_and_sum_is_exact_under_threads_and_interrupts() {
    let _setup = setup();
    const BATCH: u32 = 16;
    const ADDS: u64 = if cfg!(debug_assertions) {
        20_000
    } else {
        300_000
    };
    let counter = BatchedCounter::with_batch(BATCH).unwrap();
    let bound = counter.error_bound();
    assert_eq!(bound, u64::from(BATCH - 1) * CPUS as u64);
    // What adds in progress may take out of `read()` on top of the bound: one fold each (at most
    // `BATCH - 1 + 3`), by a thread and the handler that interrupted it, on every CPU.
    let in_flight = (2 * CPUS) as i64 * (i64::from(BATCH) + 2);
    TICK_ADDED.store(0, Ordering::Relaxed);
    TICK_COUNTER.store(&counter as *const _ as *mut _, Ordering::Release);
    signal_timer::install(add_on_tick);
    let added = AtomicI64::new(0);
    let done = AtomicBool::new(false);
    let (max_error, reads) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        // A reader that is no CPU: `read()` between two exact sums of a counter that only grows.
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                let before = counter.sum();
                let read = counter.read();
                fence(Ordering::Acquire);
                let after = counter.sum();
                assert!(read <= after, "read() {read} above the later sum() {after}");
                assert!(
                    read >= before - bound as i64 - in_flight,
                    "read() {read} more than the bound {bound} (+ {in_flight} in flight) below the \
                     earlier sum() {before}"
                );
                max_error.fetch_max((before - read).max(0) as u64, Ordering::Relaxed);
                reads.fetch_add(1, Ordering::Relaxed);
            }
        });
        on_each_cpu(|cpu, barrier| {
            barrier.wait();
            let _timer = Timer::start(Duration::from_micros(20));
            let mut mine = 0;
            for i in 0..ADDS {
                let delta = 1 + ((i + cpu as u64) % 3) as i64;
                counter.add(delta);
                mine += delta;
            }
            added.fetch_add(mine, Ordering::Relaxed);
        });
        done.store(true, Ordering::Release);
    });
    TICK_COUNTER.store(std::ptr::null_mut(), Ordering::Release);
    let ticks = TICK_ADDED.load(Ordering::Relaxed);
    let expected = added.load(Ordering::Relaxed) + ticks;
    assert!(
        ticks > 100,
        "too few timer interrupts to mean anything: {ticks}"
    );
    assert_eq!(counter.sum(), expected, "sum() once quiescent");
    let error = counter.sum() - counter.read();
    assert!(
        (0..=bound as i64).contains(&error),
        "read() {} is {error} off sum() {expected}: bound {bound}",
        counter.read()
    );
    println!(
        "{} adds on {CPUS} CPUs and {ticks} from timer interrupts, batch {BATCH}: {} concurrent \
         reads, read() at most {} below the sum() taken just before it (bound {bound}, + {in_flight} \
         for adds in progress); quiescent: sum() - read() = {error}",
        expected - ticks,
        reads.load(Ordering::Relaxed),
        max_error.load(Ordering::Relaxed),
    );
}

#[test]
fn sum_is_exact_and_read_within_the_bound_with_both_signs() {
    let _setup = setup();
    let counter = BatchedCounter::with_batch(8).unwrap();
    on_each_cpu(|cpu, _| {
        for i in 0..10_000i64 {
            counter.add(if i % 3 == 0 { -(cpu as i64) - 5 } else { 7 });
            counter.dec();
        }
    });
    let per_cpu = |cpu: i64| 3334 * (-cpu - 5) + 6666 * 7 - 10_000;
    let expected: i64 = (0..CPUS as i64).map(per_cpu).sum();
    assert_eq!(counter.sum(), expected);
    assert!(counter.read().abs_diff(expected) <= counter.error_bound());
}

/// A counter at `value` whose `read()` differs from `sum()`: CPU 0 adds `value` one at a time.
fn counter_at(batch: u32, value: i64) -> BatchedCounter {
    as_cpu0(|| {
        let counter = BatchedCounter::with_batch(batch).unwrap();
        for _ in 0..value {
            counter.inc();
        }
        counter
    })
}

#[test]
fn compare_is_exact_near_the_value_and_far_from_it() {
    let _setup = setup();
    // Batch 64: 100 adds leave 64 in the total and 36 in CPU 0's delta.
    let counter = counter_at(64, 100);
    assert_eq!((counter.read(), counter.sum()), (64, 100));
    let bound = counter.error_bound() as i64;
    // Within the bound of `read()`: only the exact sum can tell.
    for (value, expected) in [
        (100, CmpOrdering::Equal),
        (99, CmpOrdering::Greater),
        (101, CmpOrdering::Less),
        (64, CmpOrdering::Greater),
        (64 + bound, CmpOrdering::Less),
        (64 - bound, CmpOrdering::Greater),
    ] {
        assert_eq!(counter.compare(value), expected, "compare({value})");
    }
    // Beyond the bound: `read()` decides, and is right.
    for (value, expected) in [
        (65 + bound, CmpOrdering::Less),
        (i64::MAX, CmpOrdering::Less),
        (63 - bound, CmpOrdering::Greater),
        (i64::MIN, CmpOrdering::Greater),
    ] {
        assert_eq!(counter.compare(value), expected, "compare({value})");
    }
}

/// A value that has just wrapped past `i64::MAX`: `read()` is still near `i64::MAX` while `sum()` is
/// near `i64::MIN`, and `compare` and `limited_add` follow `sum()` (before, they decided from
/// `read()`'s range as if nothing wrapped: an outside review).
#[test]
fn compare_and_limited_add_follow_the_sum_across_the_wrap() {
    let _setup = setup();
    let counter = as_cpu0(|| {
        let counter = BatchedCounter::new().unwrap();
        counter.add(i64::MAX); // folded into the total
        counter.add(10); // kept in CPU 0's delta: the value wraps
        counter
    });
    let sum = counter.sum();
    assert_eq!((counter.read(), sum), (i64::MAX, i64::MIN + 9));
    for value in [0, i64::MIN, i64::MIN + 9, i64::MIN + 10, i64::MAX] {
        assert_eq!(counter.compare(value), sum.cmp(&value), "compare({value})");
    }
    as_cpu0(|| {
        assert!(counter.limited_add(1, 0), "the value is far below 0");
        assert!(!counter.limited_add(-1, 0), "and not at least 0");
    });
    assert_eq!(counter.sum(), i64::MIN + 10);
}

#[test]
fn limited_add_adds_exactly_up_to_the_limit() {
    let _setup = setup();
    let counter = counter_at(64, 100);
    as_cpu0(|| {
        // Increasing: the exact value decides near the limit.
        assert!(!counter.limited_add(6, 105));
        assert!(counter.limited_add(5, 105));
        assert!(!counter.limited_add(1, 105));
        assert!(counter.limited_add(0, 0), "a zero delta always adds");
        // Decreasing: `limit` is a floor.
        assert!(!counter.limited_add(-11, 95));
        assert!(counter.limited_add(-10, 95));
        assert!(!counter.limited_add(-1, 95));
        // Far from the limit: `read()` decides.
        assert!(counter.limited_add(1, i64::MAX));
        assert!(!counter.limited_add(1, i64::MIN));
        assert!(counter.limited_add(-1, i64::MIN));
    });
    assert_eq!(counter.sum(), 95);
}

#[test]
fn concurrent_limited_adds_stop_at_the_limit() {
    let _setup = setup();
    const LIMIT: i64 = 200_000;
    const BATCH: u32 = 32;
    let counter = BatchedCounter::with_batch(BATCH).unwrap();
    let accepted = AtomicI64::new(0);
    on_each_cpu(|_, barrier| {
        barrier.wait();
        let mut mine = 0;
        while counter.limited_add(1, LIMIT) {
            mine += 1;
        }
        accepted.fetch_add(mine, Ordering::Relaxed);
    });
    let sum = counter.sum();
    assert_eq!(sum, accepted.load(Ordering::Relaxed));
    // Concurrent calls may overshoot by their own deltas and the folds in progress.
    let slack = CPUS as i64 * (i64::from(BATCH) + 1);
    assert!(
        (LIMIT - slack..=LIMIT + slack).contains(&sum),
        "stopped at {sum}, limit {LIMIT} ± {slack}"
    );
    println!("{CPUS} CPUs adding 1 up to {LIMIT}: stopped at {sum}");
}

#[test]
fn the_batch_policy() {
    let _setup = setup();
    let default = BatchedCounter::new().unwrap();
    assert_eq!(default.batch(), DEFAULT_BATCH);
    assert_eq!(
        default.error_bound(),
        u64::from(DEFAULT_BATCH - 1) * CPUS as u64
    );
    for max_error in [0, 1, 3, 4, 100, 1 << 20, u64::MAX] {
        let counter = BatchedCounter::with_max_error(max_error).unwrap();
        assert!(
            counter.error_bound() <= max_error,
            "with_max_error({max_error})"
        );
        // The largest batch that keeps the bound.
        if counter.batch() < u32::MAX {
            assert!(u64::from(counter.batch()) * CPUS as u64 > max_error);
        }
    }
    // A batch of 0 or 1 folds every add: `read()` is exact when no add runs.
    let exact = BatchedCounter::with_batch(0).unwrap();
    assert_eq!((exact.batch(), exact.error_bound()), (1, 0));
    on_each_cpu(|cpu, _| exact.add(cpu as i64 + 1));
    assert_eq!(exact.read(), exact.sum());
}

#[test]
fn going_offline_folds_a_cpus_part_into_the_total() {
    let _setup = setup();
    let dropped_before = BatchedCounter::new().unwrap();
    let counters: Vec<_> = (0..3)
        .map(|_| BatchedCounter::with_batch(100).unwrap())
        .collect();
    // Every CPU adds less than a batch to every counter: nothing reaches the totals.
    on_each_cpu(|cpu, _| {
        for (i, counter) in counters.iter().enumerate() {
            counter.add(10 * cpu as i64 + i as i64 + 1);
        }
        dropped_before.add(5);
    });
    drop(dropped_before);
    let dropped_after = BatchedCounter::new().unwrap();
    let part = |cpu: usize, i: usize| 10 * cpu as i64 + i as i64 + 1;
    for (i, counter) in counters.iter().enumerate() {
        assert_eq!(counter.read(), 0);
        assert_eq!(
            counter.sum(),
            (0..CPUS).map(|cpu| part(cpu, i)).sum::<i64>()
        );
    }
    // CPUs 1.. go offline (their threads are gone): their parts reach the totals, CPU 0's does not.
    for cpu in 1..CPUS {
        // SAFETY: the thread of `cpu` has exited; no thread is registered as it.
        unsafe { percpu_alloc::cpu_offline(cpu) };
    }
    for (i, counter) in counters.iter().enumerate() {
        assert_eq!(
            counter.read(),
            (1..CPUS).map(|cpu| part(cpu, i)).sum::<i64>()
        );
        assert_eq!(
            counter.sum() - counter.read(),
            part(0, i),
            "CPU 0's part stays"
        );
    }
    // SAFETY: as above, for CPU 0; folding twice finds nothing more.
    unsafe {
        percpu_alloc::cpu_offline(0);
        percpu_alloc::cpu_offline(0);
    }
    for counter in &counters {
        assert_eq!(counter.read(), counter.sum());
    }
    assert_eq!((dropped_after.read(), dropped_after.sum()), (0, 0));
    // A CPU that comes back online counts again, from a folded (zero) part.
    as_cpu0(|| counters[0].add(7));
    assert_eq!(counters[0].sum() - counters[0].read(), 7);
}

#[test]
#[should_panic(expected = "out of range")]
fn going_offline_checks_the_cpu_id() {
    let _setup = setup();
    // SAFETY: an out-of-range id folds nothing: it panics first.
    unsafe { percpu_alloc::cpu_offline(CPUS) };
}

#[test]
fn sum_while_adding_never_goes_backwards() {
    let _setup = setup();
    const ADDS: i64 = if cfg!(debug_assertions) {
        20_000
    } else {
        200_000
    };
    let counter = BatchedCounter::with_batch(4).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut last = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                let sum = counter.sum();
                assert!(sum >= last, "sum() went back from {last} to {sum}");
                last = sum;
            }
        });
        on_each_cpu(|_, _| {
            for _ in 0..ADDS {
                counter.inc();
            }
        });
        done.store(true, Ordering::Release);
    });
    assert_eq!(counter.sum(), ADDS * CPUS as i64);
}
