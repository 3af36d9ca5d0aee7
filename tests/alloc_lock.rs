//! The allocator's lock (regression tests of the soundness review, issue 8, item 7): neither the heap
//! nor the chunk source is ever called with it held, a chunk source may itself allocate per-CPU
//! objects, and an exhausted heap makes an allocation fail instead of aborting.
//!
//! This binary's global allocator is a probe: while the probing thread runs, every heap call asks the
//! allocator for its figures, which reports that this CPU holds the lock (`WouldBlock`) if the heap
//! was called under it (and deadlocked before the fix: the scenarios run under a watchdog).

mod common;
#[path = "common/alloc.rs"]
mod common_alloc;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use common_alloc::setup;
use percpu_alloc::{AllocError, ChunkSource, PerCpu};

thread_local! {
    /// This thread's heap calls are probed.
    static PROBING: Cell<bool> = const { Cell::new(false) };
    /// This thread's heap allocations fail.
    static HEAP_EXHAUSTED: Cell<bool> = const { Cell::new(false) };
}

/// Heap or source calls made with the allocator's lock held by the calling CPU.
static UNDER_LOCK: AtomicUsize = AtomicUsize::new(0);
/// Heap calls probed.
static PROBED: AtomicUsize = AtomicUsize::new(0);

/// Counts a call made with the lock held by this CPU (a deadlock before the fix).
fn probe() {
    if PROBING.with(|probing| probing.replace(false)) {
        PROBED.fetch_add(1, Ordering::Relaxed);
        if percpu_alloc::stats() == Err(AllocError::WouldBlock) {
            UNDER_LOCK.fetch_add(1, Ordering::Relaxed);
        }
        PROBING.with(|probing| probing.set(true));
    }
}

/// The system allocator, probed.
struct ProbingHeap;

// SAFETY: forwards to `System`; failing an allocation (null) is allowed.
unsafe impl GlobalAlloc for ProbingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        probe();
        if HEAP_EXHAUSTED.with(Cell::get) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        probe();
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static HEAP: ProbingHeap = ProbingHeap;

/// Chunks from the system allocator (never through the probe's failures), counted; while `REENTER`
/// is set, every call also allocates and drops per-CPU objects of its own.
struct ReentrantSource {
    live: AtomicUsize,
    calls: AtomicUsize,
    reentered: AtomicUsize,
}

static REENTER: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// A source call is running on this thread: its own allocations do not re-enter it.
    static IN_SOURCE: Cell<bool> = const { Cell::new(false) };
}

impl ReentrantSource {
    /// What the source does besides providing memory: probe, and use `percpu_alloc` itself.
    fn reenter(&self) {
        probe();
        self.calls.fetch_add(1, Ordering::Relaxed);
        if REENTER.load(Ordering::Relaxed) && !IN_SOURCE.with(|busy| busy.replace(true)) {
            let small =
                percpu_alloc::PerCpuCell::new_with(|cpu| cpu as u64).expect("a small object");
            let large = PerCpu::new_with(|cpu| [cpu as u8; 300]).expect("a large object");
            assert_eq!(small.read_current(), 0);
            drop((small, large));
            self.reentered.fetch_add(1, Ordering::Relaxed);
            IN_SOURCE.with(|busy| busy.set(false));
        }
    }
}

// SAFETY: `System` hands out exclusive memory of the requested layout until it is freed.
unsafe impl ChunkSource for ReentrantSource {
    fn alloc_chunk(&self, layout: Layout) -> Option<NonNull<u8>> {
        self.reenter();
        // SAFETY: a chunk layout is not zero-sized.
        let chunk = NonNull::new(unsafe { System.alloc(layout) })?;
        self.live.fetch_add(1, Ordering::Relaxed);
        Some(chunk)
    }

    unsafe fn free_chunk(&self, chunk: NonNull<u8>, layout: Layout) {
        self.reenter();
        self.live.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller returns memory that `alloc_chunk` obtained with this layout.
        unsafe { System.dealloc(chunk.as_ptr(), layout) }
    }
}

static SOURCE: ReentrantSource = ReentrantSource {
    live: AtomicUsize::new(0),
    calls: AtomicUsize::new(0),
    reentered: AtomicUsize::new(0),
};

/// Runs `scenario` on a thread acting as CPU 0, failing if it does not finish within a minute (a
/// deadlock, as the heap or the source was called with the lock held).
fn on_cpu0_with_watchdog(scenario: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    // The caller hands CPU 0 over to the worker: one thread per CPU id.
    percpu::release_percpu_reg();
    let worker = std::thread::spawn(move || {
        percpu::init_percpu_reg(0);
        scenario();
        percpu::release_percpu_reg();
        done.send(()).unwrap();
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("no progress for a minute: a deadlock on the allocator's lock")
        }
    }
}

#[test]
fn neither_heap_nor_source_is_called_under_the_lock() {
    let _setup = setup(&SOURCE);
    on_cpu0_with_watchdog(|| {
        let calls = SOURCE.calls.load(Ordering::Relaxed);
        let reentered = SOURCE.reentered.load(Ordering::Relaxed);
        REENTER.store(true, Ordering::Relaxed);
        PROBING.with(|probing| probing.set(true));
        // Enough further chunks that the allocator's tables grow, small objects through the cache,
        // then everything freed and the chunks returned.
        let large: Vec<_> = (0..1500)
            .map(|i| PerCpu::new_with(|cpu| [(i + cpu) as u8; 1000]).unwrap())
            .collect();
        let small: Vec<_> = (0..2000)
            .map(|i| PerCpu::new_with(|cpu| (i, cpu)).unwrap())
            .collect();
        assert!(SOURCE.live.load(Ordering::Relaxed) > 16);
        drop(large);
        drop(small);
        percpu_alloc::drain_cache();
        // (The source's own allocations may reclaim some of them first.)
        percpu_alloc::reclaim();
        assert_eq!(
            SOURCE.live.load(Ordering::Relaxed),
            1,
            "one spare chunk kept"
        );
        percpu_alloc::refill(3).unwrap();
        assert_eq!(percpu_alloc::stats().unwrap().free_chunks, 3);
        percpu_alloc::refill(1).unwrap();
        PROBING.with(|probing| probing.set(false));
        REENTER.store(false, Ordering::Relaxed);
        assert!(PROBED.load(Ordering::Relaxed) > 0);
        assert!(SOURCE.calls.load(Ordering::Relaxed) - calls > 16);
        assert!(SOURCE.reentered.load(Ordering::Relaxed) - reentered > 16);
    });
    assert_eq!(UNDER_LOCK.load(Ordering::Relaxed), 0);
}

#[test]
fn an_exhausted_heap_makes_allocation_fail_cleanly() {
    let _setup = setup(&SOURCE);
    on_cpu0_with_watchdog(|| {
        // No spare chunk: the next object that does not fit needs a new chunk and its metadata.
        percpu_alloc::refill(0).unwrap();
        let mut kept = Vec::new();
        let needs_chunk = loop {
            let chunks = SOURCE.live.load(Ordering::Relaxed);
            kept.push(PerCpu::new_with(|_| [0u8; 40_000]).unwrap());
            if SOURCE.live.load(Ordering::Relaxed) > chunks {
                // This one took a new chunk: the chunks have no room for another.
                break SOURCE.live.load(Ordering::Relaxed);
            }
        };
        HEAP_EXHAUSTED.with(|exhausted| exhausted.set(true));
        let result = PerCpu::new_with(|_| [0u8; 40_000]);
        HEAP_EXHAUSTED.with(|exhausted| exhausted.set(false));
        assert_eq!(result.unwrap_err(), AllocError::SourceExhausted);
        // The chunk obtained for it went back, and the allocator goes on.
        assert_eq!(SOURCE.live.load(Ordering::Relaxed), needs_chunk);
        kept.push(PerCpu::new_with(|_| [0u8; 40_000]).unwrap());
        assert_eq!(SOURCE.live.load(Ordering::Relaxed), needs_chunk + 1);
        drop(kept);
        percpu_alloc::refill(1).unwrap();
    });
}
