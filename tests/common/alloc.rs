//! What the hosted tests of `percpu_alloc` share: dynamic allocation on the areas of
//! [`cpus`](crate::common::cpus), and what is left allocated once the per-CPU caches are drained.

#![allow(dead_code)] // each test binary uses its own subset

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use percpu_alloc::{ChunkSource, GlobalAllocSource};

use crate::common::{as_cpu_zero, on_each_cpu, CpuZero};

/// The areas of [`cpus`](crate::common::cpus) and dynamic allocation with `source` (the first call's:
/// once per binary); the calling thread acts as CPU 0 while the value lives, and no thread of
/// [`on_each_cpu`] runs.
pub fn setup(source: &'static dyn ChunkSource) -> CpuZero {
    let cpu_zero = as_cpu_zero();
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| percpu_alloc::init(source).expect("percpu_alloc::init"));
    cpu_zero
}

/// The live allocations of the core once every CPU's cache is drained.
pub fn live_without_caches() -> usize {
    on_each_cpu(|_, _| {
        percpu_alloc::drain_cache();
    });
    percpu_alloc::drain_cache();
    percpu_alloc::stats().unwrap().live_allocations
}

/// Chunks from the global allocator, counted.
pub struct CountingSource {
    /// Calls of either method.
    pub calls: AtomicUsize,
    /// Chunks obtained so far.
    pub obtained: AtomicUsize,
    /// Chunks obtained and not given back.
    pub live: AtomicUsize,
}

impl CountingSource {
    /// A source that has given out nothing.
    pub const fn new() -> Self {
        Self {
            calls: AtomicUsize::new(0),
            obtained: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
        }
    }
}

// SAFETY: forwards to `GlobalAllocSource`.
unsafe impl ChunkSource for CountingSource {
    fn alloc_chunk(&self, layout: Layout) -> Option<NonNull<u8>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.obtained.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_add(1, Ordering::Relaxed);
        GlobalAllocSource.alloc_chunk(layout)
    }

    unsafe fn free_chunk(&self, chunk: NonNull<u8>, layout: Layout) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.live.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { GlobalAllocSource.free_chunk(chunk, layout) }
    }
}
