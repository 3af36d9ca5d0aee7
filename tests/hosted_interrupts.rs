//! Interrupts simulated with signals: while every CPU thread hammers the guard-less read-modify-write
//! operations, another thread keeps sending signals whose handler runs the same operations on the same
//! variables of the interrupted CPU. A read-modify-write split by the handler would lose updates (or
//! duplicate or lose a swapped token, or a free-list node); the results must be exact.

mod common;
#[path = "ops_common/free_list.rs"]
mod free_list;
#[path = "common/signals.rs"]
mod signals;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use common::{cpus, on_each_cpu, CPUS};
use percpu::def_percpu;
use percpu_alloc::PerCpuCell;

/// Signals handled, over all CPUs (reset by [`under_signals`]).
static HANDLED: AtomicU64 = AtomicU64::new(0);

/// Signals handled by this CPU.
#[def_percpu]
static HANDLED_HERE: u64 = 0;

/// Runs `setup(cpu)`, then, once every CPU did, `body(cpu, more)` on every CPU thread while another
/// thread sends `SIGUSR1`, handled by `on_signal` on the interrupted thread, to the CPU threads in turn
/// (every 20 µs); `more()` says whether to go on: until `min_signals` were handled (or 10 s passed).
/// `on_signal` must call [`count_signal`]. Returns the signals handled.
fn under_signals(
    on_signal: extern "C" fn(libc::c_int),
    min_signals: u64,
    setup: impl Fn(usize) + Sync,
    body: impl Fn(usize, &dyn Fn() -> bool) + Sync,
) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    HANDLED.store(0, Ordering::Relaxed);
    // SAFETY: the handler only does async-signal-safe work (per-CPU operations, atomics).
    unsafe { signals::install(libc::SIGUSR1, on_signal) };
    let threads = signals::Targets::new();
    let running = AtomicUsize::new(CPUS);
    let started = AtomicBool::new(false);
    let sender_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !started.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mut target = 0;
            while running.load(Ordering::Acquire) == CPUS {
                // SAFETY: the CPU threads stay alive until `sender_done`.
                unsafe { threads.send(target, libc::SIGUSR1) };
                target += 1;
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
            sender_done.store(true, Ordering::Release);
        });
        on_each_cpu(|cpu, barrier| {
            HANDLED_HERE.write_current(0);
            setup(cpu);
            threads.register();
            barrier.wait();
            started.store(true, Ordering::Release);
            let more = || {
                HANDLED.load(Ordering::Relaxed) < min_signals
                    && std::time::Instant::now() < deadline
            };
            body(cpu, &more);
            running.fetch_sub(1, Ordering::AcqRel);
            // Stay alive (signals may still come) until the sender has stopped.
            while !sender_done.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        });
    });
    let handled = HANDLED.load(Ordering::Relaxed);
    assert!(
        handled >= min_signals,
        "too few signals to mean anything: {handled}"
    );
    handled
}

/// Counts a handled signal, in total and on this CPU.
fn count_signal() {
    HANDLED_HERE.add_current(1);
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// CPU `cpu`'s copy of a per-CPU static (its threads are done).
macro_rules! copy_of {
    ($var:ident, $cpu:expr) => {
        // SAFETY: called once every CPU thread is done: nothing writes the copy.
        unsafe { *$var.remote_ptr($cpu) }
    };
}

#[def_percpu]
static EVENTS: u64 = 0;
#[def_percpu]
static SMALL: u16 = 0;

extern "C" fn add_on_signal(_signal: libc::c_int) {
    // The handler runs on the interrupted thread, so with that CPU's register.
    EVENTS.add_current(1);
    SMALL.add_current(1);
    count_signal();
}

#[test]
fn add_current_is_not_split_by_an_interrupt() {
    let _cpus = cpus();
    let rounds = AtomicU64::new(0);
    let setup = |_| {
        EVENTS.write_current(0);
        SMALL.write_current(0);
    };
    let handled = under_signals(add_on_signal, 2_000, setup, |_, more| {
        let mut my_rounds = 0;
        while more() {
            for _ in 0..1000 {
                EVENTS.add_current(1);
                SMALL.add_current(1);
            }
            my_rounds += 1000;
        }
        rounds.fetch_add(my_rounds, Ordering::Relaxed);
    });
    let rounds = rounds.load(Ordering::Relaxed);
    let (mut events, mut small) = (0u64, 0u16);
    for cpu in 0..CPUS {
        events += copy_of!(EVENTS, cpu);
        small = small.wrapping_add(copy_of!(SMALL, cpu));
    }
    println!("{handled} signals handled during {rounds} adds");
    assert_eq!(events, rounds + handled);
    assert_eq!(small, (rounds + handled) as u16);
}

/// What a signal handler adds where the thread adds 1.
const WEIGHT: u64 = 1 << 20;

/// `fetch_add_current` target (statics of two widths, and a run-time allocated one).
#[def_percpu]
static FETCHED: u64 = 0;
#[def_percpu]
static FETCHED8: u8 = 0;
/// A counter incremented with a read and a `cmpxchg_current` loop.
#[def_percpu]
static CAS_COUNT: u64 = 0;

/// Swapped tokens: the slot, and the token the handler holds between two signals.
#[def_percpu]
static SLOT: u64 = 0;
#[def_percpu]
static HANDLER_TOKEN: u64 = 0;
#[def_percpu]
static SLOT16: u16 = 0;
#[def_percpu]
static HANDLER_TOKEN16: u16 = 0;
#[def_percpu]
static HANDLER_TOKEN32: u32 = 0;

/// Bits toggled with `or`/`xor`/`and`: the thread owns the low half, the handler the high half; the
/// handler's record of its bits, and a step counter choosing the bit.
#[def_percpu]
static BITS: u64 = 0;
#[def_percpu]
static HANDLER_BITS: u64 = 0;
#[def_percpu]
static BITS8: u8 = 0;
#[def_percpu]
static HANDLER_BITS8: u8 = 0;
#[def_percpu]
static HANDLER_STEP: u32 = 0;

per_cpu_free_list!(CPUS, 8);

/// Run-time allocated counterparts: a `fetch_add` target and a token slot.
struct Handles {
    fetched: PerCpuCell<u64>,
    slot: PerCpuCell<u32>,
}

/// The handles, allocated before the signals start.
static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Adds `amount` to [`CAS_COUNT`] with a read and a compare-and-swap, retried when the copy changed;
/// returns the failed attempts.
fn cas_add(amount: u64) -> u64 {
    let mut failures = 0;
    loop {
        let value = CAS_COUNT.read_current();
        match CAS_COUNT.cmpxchg_current(value, value + amount) {
            Ok(previous) => {
                assert_eq!(previous, value);
                return failures;
            }
            Err(actual) => {
                assert_ne!(actual, value);
                failures += 1;
            }
        }
    }
}

/// The handler's half of every operation, on the interrupted CPU's variables.
extern "C" fn ops_on_signal(_signal: libc::c_int) {
    let handles = HANDLES.get().expect("allocated before the signals");
    FETCHED.fetch_add_current(WEIGHT);
    FETCHED8.fetch_add_current(16);
    handles.fetched.fetch_add_current(WEIGHT);
    assert_eq!(cas_add(WEIGHT), 0, "nothing interrupts a signal handler");

    let token = SLOT.xchg_current(HANDLER_TOKEN.read_current());
    HANDLER_TOKEN.write_current(token);
    let token = SLOT16.xchg_current(HANDLER_TOKEN16.read_current());
    HANDLER_TOKEN16.write_current(token);
    let token = handles.slot.xchg_current(HANDLER_TOKEN32.read_current());
    HANDLER_TOKEN32.write_current(token);

    // Set one bit of the high half, flip the next one, clear the one set last time; record them.
    let step = HANDLER_STEP.fetch_add_current(1) as u64 % 32;
    let (set, flip) = (1 << (32 + step), 1 << (32 + (step + 1) % 32));
    BITS.or_current(set);
    BITS.xor_current(flip);
    BITS.and_current(!(1 << (32 + (step + 31) % 32)));
    let mine = HANDLER_BITS.read_current();
    HANDLER_BITS.write_current(((mine | set) ^ flip) & !(1 << (32 + (step + 31) % 32)));
    let bit8 = 1u8 << (4 + step % 4);
    BITS8.xor_current(bit8);
    HANDLER_BITS8.write_current(HANDLER_BITS8.read_current() ^ bit8);

    let node = pop().expect("the handler finds a node");
    push(node);
    count_signal();
}

/// What one CPU thread did, for the checks.
#[derive(Default)]
struct ThreadResult {
    rounds: u64,
    cas_failures: u64,
    token: u64,
    token16: u16,
    handle_token: u32,
    bits: u64,
    bits8: u8,
}

/// The thread's half: rounds of every operation until enough signals were handled.
fn ops_thread(cpu: usize, more: &dyn Fn() -> bool) -> ThreadResult {
    let mut result = ThreadResult {
        token: 3 * cpu as u64,
        token16: 3 * cpu as u16,
        handle_token: 3 * cpu as u32,
        ..ThreadResult::default()
    };
    let (mut last, mut last8, mut last_handle) = (None, 0u8, None);
    let handles = HANDLES.get().unwrap();
    while more() {
        for round in 0..1000u64 {
            // Every previous value is past the last one this thread saw: only additions happen.
            let previous = FETCHED.fetch_add_current(1);
            assert!(last < Some(previous), "{last:?} then {previous}");
            last = Some(previous);
            let previous8 = FETCHED8.fetch_add_current(1);
            assert_eq!(
                previous8 % 16,
                last8 % 16,
                "the thread's part of an 8-bit counter"
            );
            last8 = previous8.wrapping_add(1);
            let previous = handles.fetched.fetch_add_current(1);
            assert!(last_handle < Some(previous));
            last_handle = Some(previous);
            result.cas_failures += cas_add(1);

            result.token = SLOT.xchg_current(result.token);
            result.token16 = SLOT16.xchg_current(result.token16);
            result.handle_token = handles.slot.xchg_current(result.handle_token);

            let bit = round % 32;
            let (set, flip, clear) = (1 << bit, 1 << ((bit + 1) % 32), 1 << ((bit + 31) % 32));
            BITS.or_current(set);
            BITS.xor_current(flip);
            BITS.and_current(!clear);
            result.bits = ((result.bits | set) ^ flip) & !clear;
            let bit8 = 1u8 << (round % 4);
            BITS8.xor_current(bit8);
            result.bits8 ^= bit8;

            let node = pop().expect("the thread finds a node");
            let other = pop().expect("the thread finds a second node");
            push(node);
            push(other);
        }
        result.rounds += 1000;
    }
    result
}

#[test]
fn every_operation_is_exact_under_interrupts() {
    // Allocation runs on a registered CPU (the per-CPU caches).
    let _cpu_zero = common::as_cpu_zero();
    if HANDLES.get().is_none() {
        percpu_alloc::init(&percpu_alloc::GlobalAllocSource).expect("percpu_alloc");
    }
    let handles = HANDLES.get_or_init(|| Handles {
        fetched: PerCpuCell::new(0).unwrap(),
        slot: PerCpuCell::new_with(|cpu| 3 * cpu as u32 + 1).unwrap(),
    });
    let results: Mutex<Vec<(usize, ThreadResult)>> = Mutex::new(Vec::new());
    let setup = |cpu: usize| {
        FETCHED.write_current(0);
        FETCHED8.write_current(0);
        handles.fetched.write_current(0);
        CAS_COUNT.write_current(0);
        SLOT.write_current(3 * cpu as u64 + 1);
        HANDLER_TOKEN.write_current(3 * cpu as u64 + 2);
        SLOT16.write_current(3 * cpu as u16 + 1);
        HANDLER_TOKEN16.write_current(3 * cpu as u16 + 2);
        handles.slot.write_current(3 * cpu as u32 + 1);
        HANDLER_TOKEN32.write_current(3 * cpu as u32 + 2);
        HANDLER_STEP.write_current(0);
        BITS.write_current(0);
        HANDLER_BITS.write_current(0);
        BITS8.write_current(0);
        HANDLER_BITS8.write_current(0);
        fill(cpu);
    };
    let handled = under_signals(ops_on_signal, 5_000, setup, |cpu, more| {
        let result = ops_thread(cpu, more);
        results.lock().unwrap().push((cpu, result));
    });

    let (mut rounds, mut failures) = (0, 0);
    for (cpu, result) in results.into_inner().unwrap() {
        let here = copy_of!(HANDLED_HERE, cpu);
        let expected = result.rounds + here * WEIGHT;
        assert_eq!(copy_of!(FETCHED, cpu), expected, "fetch_add, cpu {cpu}");
        assert_eq!(copy_of!(CAS_COUNT, cpu), expected, "cmpxchg, cpu {cpu}");
        assert_eq!(
            copy_of!(FETCHED8, cpu),
            (result.rounds + here * 16) as u8,
            "8-bit fetch_add, cpu {cpu}"
        );
        // SAFETY: the threads are done.
        let fetched = unsafe { *HANDLES.get().unwrap().fetched.remote_ptr(cpu) };
        assert_eq!(fetched, expected, "PerCpuCell fetch_add, cpu {cpu}");

        let tokens = |a: u64, b: u64, c: u64| {
            let mut tokens = [a, b, c];
            tokens.sort();
            tokens
        };
        let base = 3 * cpu as u64;
        assert_eq!(
            tokens(
                copy_of!(SLOT, cpu),
                copy_of!(HANDLER_TOKEN, cpu),
                result.token
            ),
            [base, base + 1, base + 2],
            "xchg: every token once, cpu {cpu}"
        );
        assert_eq!(
            tokens(
                copy_of!(SLOT16, cpu).into(),
                copy_of!(HANDLER_TOKEN16, cpu).into(),
                result.token16.into()
            ),
            [base, base + 1, base + 2],
            "16-bit xchg, cpu {cpu}"
        );
        // SAFETY: the threads are done.
        let slot = unsafe { *HANDLES.get().unwrap().slot.remote_ptr(cpu) };
        assert_eq!(
            tokens(
                slot.into(),
                copy_of!(HANDLER_TOKEN32, cpu).into(),
                result.handle_token.into()
            ),
            [base, base + 1, base + 2],
            "PerCpuCell xchg, cpu {cpu}"
        );

        assert_eq!(
            copy_of!(BITS, cpu),
            result.bits | copy_of!(HANDLER_BITS, cpu),
            "or/xor/and, cpu {cpu}"
        );
        assert_eq!(
            copy_of!(BITS8, cpu),
            result.bits8 ^ copy_of!(HANDLER_BITS8, cpu),
            "8-bit xor, cpu {cpu}"
        );

        assert!(
            holds_its_nodes(cpu, copy_of!(HEAD, cpu)),
            "free list, cpu {cpu}"
        );
        rounds += result.rounds;
        failures += result.cas_failures;
    }
    println!(
        "{handled} signals handled during {rounds} rounds of every operation; \
         {failures} compare-and-swaps failed because a handler changed the copy"
    );
    // About one signal in twenty lands between a read and its compare-and-swap.
    assert!(
        failures > 0,
        "no signal landed between a read and its cmpxchg"
    );
}
