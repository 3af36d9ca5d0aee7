//! Where further chunks come from.

use core::alloc::Layout;
use core::ptr::NonNull;

/// A provider of memory for further per-CPU chunks (each `cpu_count × unit` bytes, page-aligned),
/// implemented by the kernel, e.g. on top of its page allocator.
///
/// Both methods are called only from task context (an allocation with `PerCpu::new_with` or
/// `alloc_percpu`, [`refill`](crate::refill), [`reclaim`](crate::reclaim)), never with the allocator's
/// lock held, and never by anything that may run in interrupt context (atomic allocations, drops): they
/// may take locks that do not disable interrupts, sleep where the caller may, and use `percpu_alloc`
/// themselves.
///
/// # Safety
///
/// `alloc_chunk` must return memory that is valid for reads and writes of `layout`, owned by the caller
/// until it is given back with `free_chunk`, and not used by anything else meanwhile.
pub unsafe trait ChunkSource: Sync {
    /// Memory for one chunk, or `None` when exhausted.
    fn alloc_chunk(&self, layout: Layout) -> Option<NonNull<u8>>;

    /// Takes back a chunk that `alloc_chunk` returned for the same `layout`.
    ///
    /// # Safety
    ///
    /// `chunk` came from `alloc_chunk(layout)` and is no longer used.
    unsafe fn free_chunk(&self, chunk: NonNull<u8>, layout: Layout);
}

/// Chunks from the global allocator (`alloc` feature).
#[cfg(feature = "alloc")]
#[derive(Debug, Default, Clone, Copy)]
pub struct GlobalAllocSource;

#[cfg(feature = "alloc")]
// SAFETY: the global allocator hands out exclusive memory of the requested layout until it is freed.
unsafe impl ChunkSource for GlobalAllocSource {
    fn alloc_chunk(&self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: a chunk layout is never zero-sized.
        NonNull::new(unsafe { alloc::alloc::alloc(layout) })
    }

    unsafe fn free_chunk(&self, chunk: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller returns memory that `alloc_chunk` obtained with this layout.
        unsafe { alloc::alloc::dealloc(chunk.as_ptr(), layout) }
    }
}
