//! The dynamic part of the per-CPU offset space: the allocator core, the further chunks obtained from
//! the [`ChunkSource`], and the lock that guards them.
//!
//! Every per-CPU area is `[static template | dynamic reserve]`, the areas `unit` bytes apart. The
//! reserve is the first chunk. A further chunk is `cpu_count × unit` bytes from the source: CPU `i`'s
//! copy of an object at `offset` in it is at `chunk + i × unit + offset_in_chunk`, which is
//! `area_base(i) + (chunk − area_base(0) + offset_in_chunk)`: one offset for every CPU, computed with
//! wrapping arithmetic, reached through the per-CPU register like a static.

use alloc::collections::BTreeMap;
use core::alloc::Layout;
use core::ptr::NonNull;

use kernel_guard::NoPreemptIrqSave;
use spin::Mutex;

use crate::offset_alloc::{self, OffsetAllocator};
use crate::{AllocError, ChunkSource, InitError};

/// The page size: the largest alignment served, and the alignment of chunks.
const PAGE_SIZE: usize = offset_alloc::MAX_ALIGN;

/// The unit in `sp-naive` mode, where there are no areas: every chunk is one unit of this size.
const NAIVE_UNIT: usize = 64 * 1024;

/// The system's dynamic per-CPU space, once [`init`] has run.
static SPACE: Mutex<Option<Space>> = Mutex::new(None);

struct Space {
    offsets: OffsetAllocator,
    source: &'static dyn ChunkSource,
    /// The memory of every further chunk, by the chunk's offset.
    chunks: BTreeMap<usize, NonNull<u8>>,
    /// `cpu_count × unit`, page-aligned.
    chunk_layout: Layout,
    /// The base of CPU 0's area (0 in `sp-naive` mode).
    area0: usize,
    /// The largest alignment every CPU's copy gets: a page, or less when the stride is less aligned.
    max_align: usize,
}

// SAFETY: the chunk pointers are owned memory, only touched under the lock.
unsafe impl Send for Space {}

/// Sets up dynamic per-CPU allocation on the initialized per-CPU areas, with `source` for further
/// chunks. The dynamic reserve of the areas (see `percpu::init_with_reserve`) is the first chunk.
///
/// Areas initialized without a reserve (`percpu::init`, or `init_in_place` with the linker snippet)
/// work too: their stride (the template size rounded up to 64 bytes) is then the unit, so objects are
/// limited to that size and to the stride's alignment, and all of them live in further chunks.
///
/// # Errors
///
/// The areas are not initialized or area 0 is not page-aligned, or `init` was already called.
pub fn init(source: &'static dyn ChunkSource) -> Result<(), InitError> {
    let cpu_count = percpu::cpu_count();
    if cpu_count == 0 {
        return Err(InitError::AreasNotInitialized);
    }
    let stride = percpu::percpu_area_stride();
    let (area0, unit, first_chunk) = if stride == 0 {
        // `sp-naive`: no areas, so no first chunk; every object lives in a further chunk.
        (0, NAIVE_UNIT, 0..0)
    } else {
        let area0 = percpu::percpu_area_base(0);
        if !area0.is_multiple_of(PAGE_SIZE) {
            return Err(InitError::AreasNotPageAligned);
        }
        let static_end = percpu::percpu_area_size().next_multiple_of(percpu::PERCPU_AREA_ALIGN);
        (area0, stride, static_end.min(stride)..stride)
    };
    let offsets = OffsetAllocator::new(unit, first_chunk.start, first_chunk.len())
        .map_err(|_| InitError::AreasNotPageAligned)?;
    // CPU `i`'s copy is at `area0 + i × unit + offset`: aligned as far as the unit is.
    let max_align = PAGE_SIZE.min(1 << unit.trailing_zeros());
    let chunk_layout = cpu_count
        .checked_mul(unit)
        .and_then(|size| Layout::from_size_align(size, PAGE_SIZE).ok())
        .ok_or(InitError::AreasNotPageAligned)?;

    let _irq = NoPreemptIrqSave::new();
    let mut space = SPACE.lock();
    if space.is_some() {
        return Err(InitError::AlreadyInitialized);
    }
    *space = Some(Space {
        offsets,
        source,
        chunks: BTreeMap::new(),
        chunk_layout,
        area0,
        max_align,
    });
    // Objects live in the areas from now on: they may not be initialized again.
    percpu::freeze_areas();
    Ok(())
}

/// Runs `f` on the space with the lock held and local interrupts and preemption disabled.
fn with_space<R>(f: impl FnOnce(&mut Space) -> Result<R, AllocError>) -> Result<R, AllocError> {
    let _irq = NoPreemptIrqSave::new();
    let mut space = SPACE.lock();
    f(space.as_mut().ok_or(AllocError::NotInitialized)?)
}

/// The largest object the space serves: one unit.
pub fn max_size() -> usize {
    with_space(|space| Ok(space.offsets.unit())).unwrap_or(0)
}

/// The largest alignment the space serves: a page, or the alignment of the areas' stride if less
/// (0 before [`init`]).
pub fn max_align() -> usize {
    with_space(|space| Ok(space.max_align)).unwrap_or(0)
}

/// Reserves `layout` (non-zero size) in every CPU's unit; returns the offset.
pub(crate) fn alloc(layout: Layout) -> Result<usize, AllocError> {
    with_space(|space| {
        if layout.align() > space.max_align {
            return Err(AllocError::UnsupportedAlignment);
        }
        loop {
            match space.offsets.alloc(layout.size(), layout.align()) {
                Ok(offset) => return Ok(offset),
                Err(offset_alloc::AllocError::NeedChunk) => space.grow()?,
                Err(offset_alloc::AllocError::TooLarge) => return Err(AllocError::TooLarge),
                Err(offset_alloc::AllocError::BadAlign) => {
                    return Err(AllocError::UnsupportedAlignment)
                }
                Err(offset_alloc::AllocError::ZeroSize) => {
                    unreachable!("percpu_alloc: zero-sized objects take no per-CPU memory")
                }
            }
        }
    })
}

/// Releases the reservation at `offset`, returning an emptied chunk to the source.
///
/// # Panics
///
/// If `offset` is not a live reservation (a bug of this crate: handles own their offsets).
pub(crate) fn free(offset: usize) {
    let freed = with_space(|space| {
        let released = space
            .offsets
            .free(offset)
            .expect("percpu_alloc: freeing an unknown offset");
        if let Some(chunk_offset) = released {
            let chunk = space
                .chunks
                .remove(&chunk_offset)
                .expect("percpu_alloc: unknown chunk");
            // SAFETY: the chunk came from the source with this layout and holds no live object.
            unsafe { space.source.free_chunk(chunk, space.chunk_layout) };
        }
        Ok(())
    });
    freed.expect("percpu_alloc: freeing before initialization");
}

impl Space {
    /// Obtains a further chunk from the source and hands it to the allocator.
    fn grow(&mut self) -> Result<(), AllocError> {
        let chunk = self
            .source
            .alloc_chunk(self.chunk_layout)
            .ok_or(AllocError::SourceExhausted)?;
        let offset = (chunk.as_ptr() as usize).wrapping_sub(self.area0);
        if self.offsets.add_chunk(offset).is_err() {
            // Only a source that breaks its contract (memory not page-aligned, or overlapping the
            // areas or another chunk) gets here.
            debug_assert!(
                false,
                "percpu_alloc: the chunk source returned unusable memory"
            );
            // SAFETY: just obtained with this layout, never used.
            unsafe { self.source.free_chunk(chunk, self.chunk_layout) };
            return Err(AllocError::SourceExhausted);
        }
        self.chunks.insert(offset, chunk);
        Ok(())
    }
}

/// Usage figures of the space (per CPU).
pub fn stats() -> Result<offset_alloc::Stats, AllocError> {
    with_space(|space| Ok(space.offsets.stats()))
}
