//! Allocation in atomic context (issue 10, item 2): `PerCpu::new_with_atomic` serves only from the
//! chunks already obtained, never calls the chunk source, and reports `WouldBlock` when they are full;
//! `refill` keeps spare chunks for it. Then interrupts simulated with signals: while every CPU thread
//! allocates, frees and grows, a signal handler on the interrupted CPU allocates atomically and drops
//! objects; nothing may overlap, be dropped twice or leak.

mod common;
#[path = "common/alloc.rs"]
mod common_alloc;
#[path = "common/signals.rs"]
mod signals;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{on_each_cpu, CPUS};
use common_alloc::{setup, CountingSource};
use percpu::def_percpu;
use percpu_alloc::{alloc_percpu_atomic, AllocError, PerCpu};

static SOURCE: CountingSource = CountingSource::new();

/// An object of nearly a unit: one per chunk (and one in the first chunk).
type Big = [u8; 60_000];

#[test]
fn atomic_allocation_uses_only_the_chunks_obtained() {
    let _setup = setup(&SOURCE);
    percpu_alloc::refill(0).unwrap();
    assert!(!percpu_alloc::needs_refill());
    let calls = SOURCE.calls.load(Ordering::Relaxed);
    // Until the chunks are full: never a call to the source.
    let mut big = Vec::new();
    let error = loop {
        match PerCpu::<Big>::new_with_atomic(|_| [7; 60_000]) {
            Ok(handle) => big.push(handle),
            Err(error) => break error,
        }
    };
    assert_eq!(error, AllocError::WouldBlock);
    assert_eq!(SOURCE.calls.load(Ordering::Relaxed), calls);
    assert!(percpu_alloc::needs_refill());
    // Small objects still come from what is there (this CPU's cache, the core's free space).
    let small: Vec<_> = (0..100)
        .map(|i| PerCpu::new_with_atomic(|cpu| (i, cpu)).unwrap())
        .collect();
    let guard = percpu::checked::PreemptGuard::new();
    assert_eq!(*alloc_percpu_atomic::<u32>().unwrap().get(&guard), 0);
    drop(guard);
    assert_eq!(SOURCE.calls.load(Ordering::Relaxed), calls);

    // Task context refills: two spare chunks serve two more at least.
    percpu_alloc::refill(2).unwrap();
    assert!(!percpu_alloc::needs_refill());
    assert_eq!(SOURCE.calls.load(Ordering::Relaxed), calls + 2);
    for _ in 0..2 {
        big.push(PerCpu::new_with_atomic(|_| [7; 60_000]).unwrap());
    }
    assert_eq!(SOURCE.calls.load(Ordering::Relaxed), calls + 2);
    assert!(
        percpu_alloc::needs_refill(),
        "below the two spare chunks asked for: {:?}",
        percpu_alloc::stats()
    );
    for handle in &mut big {
        assert!(handle.iter().all(|copy| copy.iter().all(|&byte| byte == 7)));
    }
    drop((big, small));
    percpu_alloc::drain_cache();
    // Drops never return chunks; task context does.
    assert!(SOURCE.live.load(Ordering::Relaxed) >= 2);
    percpu_alloc::refill(1).unwrap();
    assert_eq!(SOURCE.live.load(Ordering::Relaxed), 1);
    assert_eq!(percpu_alloc::stats().unwrap().live_allocations, 0);
}

/// This thread's CPU id, for the signal handler.
#[def_percpu]
static CPU_ID: usize = usize::MAX;

/// Objects the signal handler made: built and dropped copies.
static STAMPS_BUILT: AtomicU64 = AtomicU64::new(0);
static STAMPS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// The copy of an object made by a signal handler: its number and the copy's CPU.
struct Stamp {
    id: u64,
    cpu: usize,
}

impl Stamp {
    fn new(id: u64, cpu: usize) -> Self {
        STAMPS_BUILT.fetch_add(1, Ordering::Relaxed);
        Self { id, cpu }
    }
}

impl Drop for Stamp {
    fn drop(&mut self) {
        STAMPS_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The object each CPU's signal handler holds between two signals.
struct HandlerSlot(UnsafeCell<Option<PerCpu<Stamp>>>);

// SAFETY: slot `k` is only used by the signal handler of the thread acting as CPU `k` (which does not
// nest: the signal is blocked while its handler runs) and by that thread once signals have stopped.
unsafe impl Sync for HandlerSlot {}

static HELD: [HandlerSlot; CPUS] = [const { HandlerSlot(UnsafeCell::new(None)) }; CPUS];

/// Signals handled; atomic allocations that succeeded, and that found no room.
static HANDLED: AtomicU64 = AtomicU64::new(0);
static ATOMIC_OK: AtomicU64 = AtomicU64::new(0);
static ATOMIC_WOULD_BLOCK: AtomicU64 = AtomicU64::new(0);
/// Anything wrong seen by a handler (overlapping copies, another error).
static HANDLER_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Checks that every copy of `handle` still holds its stamp (no other object overlaps it).
fn stamps_intact(handle: &PerCpu<Stamp>, id: u64) -> bool {
    (0..CPUS).all(|cpu| {
        // SAFETY: CPU `cpu` is initialized; nothing writes the copies of this object after building
        // them (an overlapping object would: that is what this detects).
        let copy = unsafe { &*handle.remote_ptr(cpu) };
        copy.id == id && copy.cpu == cpu
    })
}

/// The "interrupt handler": drops the object it made last time (after checking it), and makes a new
/// one atomically. Uses no heap and takes no lock that the interrupted code may hold.
extern "C" fn on_signal(_signal: libc::c_int) {
    let cpu = CPU_ID.read_current();
    let id = HANDLED.fetch_add(1, Ordering::Relaxed);
    // SAFETY: see `HandlerSlot`.
    let slot = unsafe { &mut *HELD[cpu].0.get() };
    if let Some(old) = slot.take() {
        // SAFETY: CPU 0 is initialized and nothing writes the copy.
        let old_id = unsafe { &*old.remote_ptr(0) }.id;
        if !stamps_intact(&old, old_id) {
            HANDLER_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        drop(old);
    }
    match PerCpu::new_with_atomic(|copy| Stamp::new(id, copy)) {
        Ok(handle) => {
            if !stamps_intact(&handle, id) {
                HANDLER_ERRORS.fetch_add(1, Ordering::Relaxed);
            }
            ATOMIC_OK.fetch_add(1, Ordering::Relaxed);
            *slot = Some(handle);
        }
        Err(AllocError::WouldBlock) => {
            ATOMIC_WOULD_BLOCK.fetch_add(1, Ordering::Relaxed);
        }
        Err(_) => {
            HANDLER_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// An object of the main loop: `[id, cpu, ...]` in every copy.
fn check_words(words: &[u64], id: u64, cpu: usize) {
    assert_eq!(words[0], id, "copy of cpu {cpu} overwritten");
    assert_eq!(
        words[words.len() - 1],
        cpu as u64,
        "copy of cpu {cpu} overwritten"
    );
}

/// Checks and drops a main-loop object.
fn check_and_drop<const N: usize>(handle: PerCpu<[u64; N]>) {
    // SAFETY: CPU 0 is initialized; only the owner ever writes these copies, at creation.
    let id = unsafe { &*handle.remote_ptr(0) }[0];
    for cpu in 0..CPUS {
        // SAFETY: as above.
        check_words(unsafe { &*handle.remote_ptr(cpu) }, id, cpu);
    }
}

/// A main-loop object of `N` words.
fn words<const N: usize>(id: u64) -> PerCpu<[u64; N]> {
    PerCpu::new_with(|cpu| {
        let mut words = [0; N];
        words[0] = id;
        words[N - 1] = cpu as u64;
        words
    })
    .expect("task-context allocation")
}

#[test]
fn signal_handlers_allocate_and_drop_while_cpus_allocate_free_and_grow() {
    /// Signals to handle at least, and the time limit.
    const SIGNALS: u64 = 3_000;
    const LIMIT: Duration = Duration::from_secs(20);
    let _setup = setup(&SOURCE);
    percpu_alloc::refill(2).unwrap();
    // SAFETY: the handler uses no heap and takes no lock its interrupted code may hold.
    unsafe { signals::install(libc::SIGUSR2, on_signal) };
    let threads = signals::Targets::new();
    let started = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + LIMIT;
    let next_id = AtomicU64::new(1 << 40);
    let refills = AtomicU64::new(0);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !started.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mut target = 0;
            while HANDLED.load(Ordering::Relaxed) < SIGNALS && Instant::now() < deadline {
                // SAFETY: the CPU threads live until `stop`.
                unsafe { threads.send(target, libc::SIGUSR2) };
                target += 1;
                std::thread::sleep(Duration::from_micros(30));
            }
            stop.store(true, Ordering::Release);
        });
        on_each_cpu(|cpu, barrier| {
            CPU_ID.write_current(cpu);
            threads.register();
            barrier.wait();
            started.store(true, Ordering::Release);
            let mut small = std::collections::VecDeque::new();
            let mut large = std::collections::VecDeque::new();
            while !stop.load(Ordering::Acquire) {
                // Small objects (the caches), large ones (the core, further chunks) in windows.
                for _ in 0..32 {
                    small.push_back(words::<2>(next_id.fetch_add(1, Ordering::Relaxed)));
                    if small.len() > 256 {
                        check_and_drop(small.pop_front().unwrap());
                    }
                }
                large.push_back(words::<600>(next_id.fetch_add(1, Ordering::Relaxed)));
                if large.len() > 120 {
                    for _ in 0..60 {
                        check_and_drop(large.pop_front().unwrap());
                    }
                    percpu_alloc::reclaim();
                }
                if percpu_alloc::needs_refill() {
                    refills.fetch_add(1, Ordering::Relaxed);
                    percpu_alloc::refill(2).unwrap();
                }
            }
            // A signal sent before `stop` may still be pending: block it for good on this thread.
            // SAFETY: a valid signal set; only this thread's mask changes.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR2);
                assert_eq!(
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                    0
                );
            }
            barrier.wait();
            // Signals have stopped: take back what the handler holds.
            // SAFETY: see `HandlerSlot`; the sender stopped before `stop` was set.
            drop(unsafe { (*HELD[cpu].0.get()).take() });
            small.into_iter().for_each(check_and_drop);
            large.into_iter().for_each(check_and_drop);
            percpu_alloc::drain_cache();
        });
    });
    let handled = HANDLED.load(Ordering::Relaxed);
    let ok = ATOMIC_OK.load(Ordering::Relaxed);
    println!(
        "{handled} signals handled: {ok} atomic allocations, {} found no room; {} refills",
        ATOMIC_WOULD_BLOCK.load(Ordering::Relaxed),
        refills.load(Ordering::Relaxed)
    );
    assert_eq!(HANDLER_ERRORS.load(Ordering::Relaxed), 0);
    assert!(ok > 100, "only {ok} atomic allocations in signal handlers");
    assert_eq!(
        STAMPS_BUILT.load(Ordering::Relaxed),
        STAMPS_DROPPED.load(Ordering::Relaxed)
    );
    percpu_alloc::drain_cache();
    let stats = percpu_alloc::stats().unwrap();
    assert_eq!(stats.live_allocations, 0, "{stats:?}");
    percpu_alloc::refill(1).unwrap();
}
