//! `PerCpu::new_with` and `Drop` when closures and destructors panic, and zero-sized types against the
//! documented alignment rule (regression tests of the soundness review, issue 8, items 1 and 2).

mod common;
#[path = "common/alloc.rs"]
mod common_alloc;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{on_each_cpu, CPUS};
use common_alloc::{live_without_caches, setup};
use percpu_alloc::{AllocError, GlobalAllocSource, PerCpu};

/// Copies of [`Owned`] built and dropped, and of [`Marker`].
static OWNED_BUILT: AtomicUsize = AtomicUsize::new(0);
static OWNED_DROPPED: AtomicUsize = AtomicUsize::new(0);
static MARKERS_BUILT: AtomicUsize = AtomicUsize::new(0);
static MARKERS_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A value that owns heap memory and counts its drops: a leak or a double drop shows in the counts
/// (and a double drop frees the heap memory twice).
struct Owned {
    cpu: usize,
    heap: Box<[u64; 8]>,
}

impl Owned {
    fn new(cpu: usize) -> Self {
        OWNED_BUILT.fetch_add(1, Ordering::Relaxed);
        Self {
            cpu,
            heap: Box::new([cpu as u64; 8]),
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        assert_eq!(
            *self.heap, [self.cpu as u64; 8],
            "dropping a copy never built"
        );
        OWNED_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// A zero-sized type with a destructor.
struct Marker;

impl Marker {
    fn new() -> Self {
        MARKERS_BUILT.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        MARKERS_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_panicking_init_drops_what_it_built_and_frees_once() {
    let _setup = setup(&GlobalAllocSource);
    let live_before = live_without_caches();
    for panic_at in 0..CPUS {
        let built = OWNED_BUILT.load(Ordering::Relaxed);
        let dropped = OWNED_DROPPED.load(Ordering::Relaxed);
        let result = catch_unwind(|| {
            PerCpu::new_with(|cpu| {
                assert_ne!(cpu, panic_at, "init fails on cpu {cpu}");
                Owned::new(cpu)
            })
        });
        assert!(result.is_err());
        assert_eq!(OWNED_BUILT.load(Ordering::Relaxed) - built, panic_at);
        assert_eq!(OWNED_DROPPED.load(Ordering::Relaxed) - dropped, panic_at);

        let markers = (
            MARKERS_BUILT.load(Ordering::Relaxed),
            MARKERS_DROPPED.load(Ordering::Relaxed),
        );
        let result = catch_unwind(|| {
            PerCpu::new_with(|cpu| {
                assert_ne!(cpu, panic_at, "init fails on cpu {cpu}");
                Marker::new()
            })
        });
        assert!(result.is_err());
        assert_eq!(MARKERS_BUILT.load(Ordering::Relaxed) - markers.0, panic_at);
        assert_eq!(
            MARKERS_DROPPED.load(Ordering::Relaxed) - markers.1,
            panic_at
        );
    }
    // The reservations were freed once each: nothing is left, and the allocator still works (a double
    // free would have freed someone else's object or panicked).
    assert_eq!(live_without_caches(), live_before);
    let keep: Vec<_> = (0..64)
        .map(|i| PerCpu::new_with(|cpu| Owned::new(cpu + i)).unwrap())
        .collect();
    let mut offsets: Vec<_> = keep.iter().map(PerCpu::offset).collect();
    offsets.sort_unstable();
    offsets.dedup();
    assert_eq!(
        offsets.len(),
        keep.len(),
        "two live objects share an offset"
    );
    for (i, handle) in keep.iter().enumerate() {
        for cpu in 0..CPUS {
            // SAFETY: CPU `cpu` is initialized and nothing writes its copy meanwhile.
            assert_eq!(unsafe { &*handle.remote_ptr(cpu) }.cpu, cpu + i);
        }
    }
    drop(keep);
    assert_eq!(live_without_caches(), live_before);
    assert_eq!(
        OWNED_BUILT.load(Ordering::Relaxed),
        OWNED_DROPPED.load(Ordering::Relaxed)
    );
}

/// Drops of [`Grenade`] copies, and which CPU's copy panics.
static GRENADES_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A value whose destructor panics on one CPU's copy.
struct Grenade {
    cpu: usize,
    panics_on: usize,
    _heap: Box<u64>,
}

impl Drop for Grenade {
    fn drop(&mut self) {
        GRENADES_DROPPED.fetch_add(1, Ordering::Relaxed);
        assert_ne!(
            self.cpu, self.panics_on,
            "the destructor of cpu {}'s copy",
            self.cpu
        );
    }
}

#[test]
fn a_panicking_destructor_still_drops_the_other_copies_and_frees() {
    let _setup = setup(&GlobalAllocSource);
    let live_before = live_without_caches();
    let handle = PerCpu::new_with(|cpu| Grenade {
        cpu,
        panics_on: 1,
        _heap: Box::new(cpu as u64),
    })
    .unwrap();
    let dropped = GRENADES_DROPPED.load(Ordering::Relaxed);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(handle))).is_err());
    assert_eq!(GRENADES_DROPPED.load(Ordering::Relaxed) - dropped, CPUS);
    assert_eq!(live_without_caches(), live_before);
}

#[test]
fn zero_sized_types_are_aligned_up_to_the_page() {
    let _setup = setup(&GlobalAllocSource);
    #[derive(Default)]
    #[repr(align(4096))]
    struct PageAligned;
    #[derive(Default)]
    #[repr(align(256))]
    struct LineAligned;
    #[derive(Default)]
    #[repr(align(8192))]
    struct TwoPages;
    // The areas have a dynamic reserve, so their base and stride are page-aligned.
    assert_eq!(percpu_alloc::max_align(), 4096);
    let page = percpu_alloc::alloc_percpu::<PageAligned>().unwrap();
    let line = PerCpu::new_with(|_| LineAligned).unwrap();
    for cpu in 0..CPUS {
        // SAFETY: CPU `cpu` is initialized; the pointers are only inspected.
        let (page, line) = unsafe { (page.remote_ptr(cpu), line.remote_ptr(cpu)) };
        assert!(
            !page.is_null() && (page as usize).is_multiple_of(4096),
            "{page:p}"
        );
        assert!(
            !line.is_null() && (line as usize).is_multiple_of(256),
            "{line:p}"
        );
    }
    on_each_cpu(|_, _| {
        // SAFETY: this thread's register is set; the pointer is only inspected.
        let mine = unsafe { page.current_ptr() };
        assert_eq!(mine as usize % 4096, 0);
        let PageAligned = page.get(&percpu::checked::IrqGuard::new());
    });
    assert_eq!(
        PerCpu::new_with(|_| TwoPages).unwrap_err(),
        AllocError::UnsupportedAlignment
    );
}
