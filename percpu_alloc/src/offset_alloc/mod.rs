//! The allocator core: hands out offsets from an abstract offset space.
//!
//! # The offset space
//!
//! A dynamic per-CPU object lives at the same offset in every CPU's unit, so
//! allocating one means choosing an offset. The offsets come from *chunks*:
//!
//! - the **first chunk**, `first_start..first_start + first_len`, is the
//!   dynamic tail of each CPU area; it may be empty and is never released;
//! - **further chunks**, `base..base + unit`, are handed in by the caller with
//!   [`OffsetAllocator::add_chunk`] when [`OffsetAllocator::alloc`] reports
//!   [`AllocError::NeedChunk`]. A further chunk that becomes entirely free
//!   stays until the caller takes it back with
//!   [`OffsetAllocator::take_free_chunk`].
//!
//! Offsets are plain `usize` values. The caller derives chunk bases with
//! wrapping arithmetic, so a base may be "negative" (close to `usize::MAX`),
//! but no chunk runs past `usize::MAX`, so offsets within a chunk are ordered
//! as usual. Alignment is absolute: an offset aligned to `align` is a multiple
//! of `align`. Further chunks start at multiples of [`MAX_ALIGN`], so every
//! supported alignment is available in them; the first chunk only needs to
//! start at a multiple of [`GRANULE`].
//!
//! The allocator never touches per-CPU memory; it only hands out numbers.
//! Its metadata lives on the heap, and only two steps call the heap, both
//! fallibly: [`MetadataRequest::allocate`] (the metadata of a chunk to add)
//! and dropping a [`Retired`] (what the allocator no longer uses). Every
//! method of [`OffsetAllocator`] except the convenience
//! [`add_chunk`](OffsetAllocator::add_chunk) and
//! [`new`](OffsetAllocator::new) works without calling the heap, so a caller
//! that guards the allocator with a lock can keep the heap out of it:
//! request the metadata under the lock ([`OffsetAllocator::metadata_request`]),
//! allocate it outside, add the chunk under the lock
//! ([`OffsetAllocator::add_chunk_with`]), and drop what comes back outside.
//!
//! # Design
//!
//! Sizes are rounded up to a whole number of [`GRANULE`]s (8 bytes), with no
//! further rounding, so a 24-byte object takes 24 bytes and a 4-byte one 8.
//! With 8-byte granules every alignment up to 8 comes for free, which keeps
//! the common search a single descent of a tree.
//!
//! Every chunk has
//!
//! - a *used* bitmap with one bit per granule;
//! - a *boundary* bitmap marking the first granule of each live allocation
//!   and the granule just past it, from which `free` recovers the size, plus
//!   three bit planes recording each allocation's rounding slack, so that
//!   the exact requested size is known too;
//! - a complete binary tree over the 64-bit bitmap words in which every node
//!   holds the free run at the start of its span, the one at its end, and
//!   the longest one inside. It finds the leftmost run of `n` free granules
//!   in O(log words). Updating it after a change of `k` words takes
//!   O(k + log words), and stops at the first level where no node comes out
//!   changed. Changes are propagated lazily, at the next allocation or the
//!   next change of other words, so an object freed before the next
//!   allocation costs no tree update beyond its leaves (nothing at all for a
//!   single word back to its old bits).
//!
//! Across chunks, a max-tree over the chunks' longest free runs finds the
//! first chunk with room in O(log chunks). Chunks are ordered from oldest to
//! newest, the first chunk leading, so allocations pack into old chunks and
//! new chunks drain and get released first. `free` finds the chunk of an
//! offset by binary search over the chunk bases.
//!
//! [`OffsetAllocator::alloc_batch`] reserves several objects of one size for
//! a caller that caches offsets (per CPU, say): side by side, the first
//! aligned as it asks (a cache line, so that the batches of different caches
//! share no line), where space is still contiguous; one by one in the holes
//! otherwise, so that caching costs no packing. Each object is an allocation
//! of its own, freed on its own.
//!
//! So, for an alignment up to [`GRANULE`] (every natural alignment of objects
//! up to 8 bytes, and the usual alignment of larger ones), `alloc` and `free`
//! take O(log chunks + log words per chunk) time, plus time linear in the
//! size of the allocation for bitmap updates. A larger alignment is exact as
//! well (a free suitably aligned place is always found if one exists) but may
//! also inspect misaligned free runs of the requested length, in any chunk
//! whose longest free run is long enough. Adding or releasing a chunk costs
//! O(chunks) on top of the chunk's own metadata.

mod bits;
mod chunk;
mod error;
mod max_tree;

#[cfg(test)]
#[path = "../../tests/common/xorshift.rs"]
mod test_rng;
#[cfg(test)]
mod tests;

use alloc::collections::TryReserveError;
use alloc::vec::Vec;
use core::fmt;

use chunk::Chunk;
pub use error::{AddChunkError, AllocError, ConfigError, FreeError};
use max_tree::MaxTree;

/// Allocation granule in bytes: every allocation is rounded up to a multiple
/// of it, and every offset handed out is a multiple of it.
pub const GRANULE: usize = 8;

/// Largest supported alignment in bytes (the page size). Further chunks must
/// start at a multiple of it.
pub const MAX_ALIGN: usize = 4096;

/// Chunks the tables of a new allocator hold before they must grow.
const INITIAL_ROOM: usize = 8;

/// Usage figures of an [`OffsetAllocator`].
///
/// All byte counts are per unit, i.e. per CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Number of live allocations.
    pub live_allocations: usize,
    /// Sum of the sizes requested by the live allocations.
    pub requested_bytes: usize,
    /// Bytes reserved for the live allocations: the requested sizes rounded
    /// up to whole granules.
    pub reserved_bytes: usize,
    /// Number of chunks, the first chunk included if it is not empty.
    pub chunks: usize,
    /// Total size of all chunks in bytes (only whole granules of the first
    /// chunk count).
    pub chunk_bytes: usize,
    /// Number of further chunks without any live allocation (spare chunks).
    pub free_chunks: usize,
}

/// The heap memory [`OffsetAllocator::add_chunk_with`] needs to add one
/// further chunk, as [`OffsetAllocator::metadata_request`] computed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetadataRequest {
    /// Granules of the chunk.
    granules: usize,
    /// Chunks the allocator's tables must have room for, if they must grow.
    tables: Option<usize>,
}

impl MetadataRequest {
    /// Allocates the metadata on the heap, fallibly (`try_reserve`).
    ///
    /// # Errors
    ///
    /// The heap's error when it has no memory for it.
    pub fn allocate(self) -> Result<ChunkMetadata, TryReserveError> {
        Ok(ChunkMetadata {
            chunk: Chunk::try_new(0, self.granules)?,
            tables: self.tables.map(Tables::try_with_room).transpose()?,
        })
    }
}

/// The heap memory of one further chunk's metadata (about one byte per 8
/// bytes of chunk), allocated before the chunk is added.
pub struct ChunkMetadata {
    /// The chunk's bitmaps and tree, for a chunk not yet placed.
    chunk: Chunk,
    /// Larger tables of chunks, if the allocator's must grow.
    tables: Option<Tables>,
}

impl fmt::Debug for ChunkMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkMetadata")
            .field("granules", &self.chunk.granules())
            .field("tables", &self.tables.as_ref().map(Tables::room))
            .finish()
    }
}

/// Metadata the allocator no longer uses (a released chunk's, or tables it
/// outgrew, or tables a [`ChunkMetadata`] brought that were not needed).
/// Dropping it frees heap memory: drop it where the heap may be called.
#[derive(Default)]
#[must_use = "dropping it frees heap memory: choose where"]
pub struct Retired {
    chunk: Option<Chunk>,
    tables: Option<Tables>,
}

impl fmt::Debug for Retired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retired")
            .field("chunk", &self.chunk.is_some())
            .field("tables", &self.tables.is_some())
            .finish()
    }
}

impl From<ChunkMetadata> for Retired {
    /// Metadata that will not be used after all.
    fn from(metadata: ChunkMetadata) -> Self {
        Self {
            chunk: Some(metadata.chunk),
            tables: metadata.tables,
        }
    }
}

/// The tables over all chunks, which grow with their number.
struct Tables {
    chunks: Vec<Chunk>,
    by_base: Vec<(usize, usize)>,
    largest_runs: MaxTree,
}

impl Tables {
    /// Empty tables with room for `chunks` chunks.
    fn try_with_room(chunks: usize) -> Result<Self, TryReserveError> {
        let mut tables = Self {
            chunks: Vec::new(),
            by_base: Vec::new(),
            largest_runs: MaxTree::try_with_room(chunks)?,
        };
        tables.chunks.try_reserve_exact(chunks)?;
        tables.by_base.try_reserve_exact(chunks)?;
        Ok(tables)
    }

    /// How many chunks the tables hold without allocating.
    fn room(&self) -> usize {
        self.chunks
            .capacity()
            .min(self.by_base.capacity())
            .min(self.largest_runs.room())
    }
}

/// Allocator of offsets in an offset space made of chunks.
///
/// See the [module documentation](self) for the memory model and the design.
/// This is a plain `&mut self` structure; callers that share it wrap it in a
/// lock of their choice.
pub struct OffsetAllocator {
    /// Bytes per further chunk: the stride between the CPUs' areas.
    unit: usize,
    /// Usable bytes of the first chunk (a multiple of [`GRANULE`], maybe 0).
    first_bytes: usize,
    /// All chunks from oldest to newest; a non-empty first chunk is at index 0.
    chunks: Vec<Chunk>,
    /// `(base, index in chunks)` of every chunk, sorted by base.
    by_base: Vec<(usize, usize)>,
    /// Longest free run (in granules) of every chunk, indexed like `chunks`.
    largest_runs: MaxTree,
    /// The only chunk that may be unsettled (see [`Chunk::settle`]); its
    /// entry in `largest_runs` is up to date only once it is settled.
    unsettled: Option<usize>,
    /// Number of further chunks without live allocations.
    free_chunks: usize,
    /// Number of live allocations.
    live: usize,
    /// Sum of the requested sizes of the live allocations.
    requested: usize,
    /// Sum of the granule-rounded sizes of the live allocations.
    reserved: usize,
}

impl OffsetAllocator {
    /// Creates an allocator for per-CPU units of `unit` bytes whose first
    /// chunk covers offsets `first_start..first_start + first_len`.
    ///
    /// `unit` must be a non-zero multiple of [`GRANULE`] and `first_start` a
    /// multiple of [`GRANULE`]; `first_len` may be 0 (no first chunk) and is
    /// rounded down to a multiple of [`GRANULE`]. Allocates the first chunk's
    /// metadata and small tables on the heap.
    ///
    /// # Errors
    ///
    /// [`ConfigError::BadUnit`] or [`ConfigError::BadFirstChunk`] if the
    /// requirements above are not met, if `unit` exceeds `u32::MAX` granules,
    /// if `first_len > unit`, or if the first chunk runs past `usize::MAX`;
    /// [`ConfigError::OutOfMemory`] if the heap has no memory for the
    /// metadata.
    pub fn new(unit: usize, first_start: usize, first_len: usize) -> Result<Self, ConfigError> {
        if unit == 0 || !unit.is_multiple_of(GRANULE) || u32::try_from(unit / GRANULE).is_err() {
            return Err(ConfigError::BadUnit);
        }
        if !first_start.is_multiple_of(GRANULE)
            || first_len > unit
            || first_len
                .checked_sub(1)
                .is_some_and(|last| first_start.checked_add(last).is_none())
        {
            return Err(ConfigError::BadFirstChunk);
        }
        let first_granules = first_len / GRANULE;
        let Tables {
            chunks,
            by_base,
            largest_runs,
        } = Tables::try_with_room(INITIAL_ROOM).map_err(|_| ConfigError::OutOfMemory)?;
        let mut allocator = Self {
            unit,
            first_bytes: first_granules * GRANULE,
            chunks,
            by_base,
            largest_runs,
            unsettled: None,
            free_chunks: 0,
            live: 0,
            requested: 0,
            reserved: 0,
        };
        if first_granules > 0 {
            let first = Chunk::try_new(first_start, first_granules)
                .map_err(|_| ConfigError::OutOfMemory)?;
            allocator.push_chunk(first);
        }
        Ok(allocator)
    }

    /// Bytes per unit, which is also the size of every further chunk.
    pub fn unit(&self) -> usize {
        self.unit
    }

    /// Allocates `size` bytes aligned to `align` and returns their offset.
    ///
    /// The returned range `offset..offset + size` lies inside one chunk and
    /// overlaps no other live allocation; `offset` is a multiple of `align`
    /// and of [`GRANULE`]. The size is rounded up to whole granules.
    ///
    /// # Errors
    ///
    /// - [`AllocError::BadAlign`] if `align` is not a power of two or exceeds
    ///   [`MAX_ALIGN`];
    /// - [`AllocError::ZeroSize`] if `size` is 0 (zero-sized objects need no
    ///   allocation);
    /// - [`AllocError::TooLarge`] if `size` exceeds the unit;
    /// - [`AllocError::NeedChunk`] if the request is valid but no chunk has
    ///   room for it: after [`add_chunk`](Self::add_chunk), retrying succeeds.
    pub fn alloc(&mut self, size: usize, align: usize) -> Result<usize, AllocError> {
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(AllocError::BadAlign);
        }
        if size == 0 {
            return Err(AllocError::ZeroSize);
        }
        if size > self.unit {
            return Err(AllocError::TooLarge);
        }
        let reserved = size.next_multiple_of(GRANULE);
        let len = reserved / GRANULE;
        let (index, start) = self.find(len, align).ok_or(AllocError::NeedChunk)?;
        Ok(self.commit(index, start, len, reserved - size))
    }

    /// Allocates up to `out.len()` objects of `size` bytes aligned to
    /// `align`, for a cache of offsets, writes their offsets to `out` and
    /// returns how many it allocated (at least one). Each object is an
    /// allocation of its own, as if [`alloc`](Self::alloc) had returned it.
    ///
    /// The first object goes where [`alloc`](Self::alloc) would put it. If
    /// its chunk has room for all of them side by side, the first aligned to
    /// `run_align` (space that is still contiguous there), they go there, in
    /// order; otherwise they go one by one at the leftmost places (filling
    /// holes first), as many as fit.
    ///
    /// # Errors
    ///
    /// As [`alloc`](Self::alloc) for one object: [`AllocError::NeedChunk`] if
    /// not even one fits; [`AllocError::ZeroSize`] also if `out` is empty;
    /// [`AllocError::BadAlign`] also for a bad `run_align`.
    pub fn alloc_batch(
        &mut self,
        size: usize,
        align: usize,
        run_align: usize,
        out: &mut [usize],
    ) -> Result<usize, AllocError> {
        if !run_align.is_power_of_two() || run_align > MAX_ALIGN {
            return Err(AllocError::BadAlign);
        }
        if out.is_empty() {
            return Err(AllocError::ZeroSize);
        }
        out[0] = self.alloc(size, align)?;
        let reserved = size.next_multiple_of(GRANULE);
        let (len, slack) = (reserved / GRANULE, reserved - size);
        let count = out.len();
        // The run, in the chunk of the first object, which goes back if the run fits.
        if count > 1
            && reserved
                .checked_mul(count)
                .is_some_and(|total| total <= self.unit)
        {
            let (index, first) = self.locate(out[0]).expect("just allocated");
            let chunk = &mut self.chunks[index];
            chunk.remove(first);
            chunk.settle();
            let phase = (chunk.base().wrapping_neg() & (run_align - 1)) / GRANULE;
            let run_align_granules = (run_align / GRANULE).max(1);
            let run = chunk.find(len * count, run_align_granules, phase);
            let start = run.unwrap_or(first);
            chunk.insert(start, len, slack);
            self.unsettled = Some(index);
            out[0] = chunk.base() + start * GRANULE;
            if run.is_some() {
                for (i, offset) in out.iter_mut().enumerate().skip(1) {
                    *offset = self.commit(index, start + i * len, len, slack);
                }
                return Ok(count);
            }
        }
        for (allocated, slot) in out.iter_mut().enumerate().skip(1) {
            match self.alloc(size, align) {
                Ok(offset) => *slot = offset,
                Err(_) => return Ok(allocated),
            }
        }
        Ok(count)
    }

    /// The chunk index and granule of the leftmost place for `len` granules
    /// aligned to `align` (valid), in the oldest chunk with room.
    fn find(&mut self, len: usize, align: usize) -> Option<(usize, usize)> {
        // `len` fits: the unit is at most u32::MAX granules.
        let min_run = len as u32;
        let align_granules = (align / GRANULE).max(1);
        self.settle();
        let mut candidate = self.largest_runs.first_at_least(min_run, 0);
        while let Some(index) = candidate {
            let chunk = &mut self.chunks[index];
            // Granules from the chunk base to the first aligned offset.
            let phase = (chunk.base().wrapping_neg() & (align - 1)) / GRANULE;
            if let Some(start) = chunk.find(len, align_granules, phase) {
                return Some((index, start));
            }
            // Only reachable with `align > GRANULE`: the run was misaligned.
            candidate = self.largest_runs.first_at_least(min_run, index + 1);
        }
        None
    }

    /// Records the allocation of `len` granules at granule `start` of chunk
    /// `index`, `slack` bytes more than requested, and returns its offset.
    fn commit(&mut self, index: usize, start: usize, len: usize, slack: usize) -> usize {
        let is_further = self.is_further(index);
        let chunk = &mut self.chunks[index];
        if chunk.live() == 0 && is_further {
            self.free_chunks -= 1;
        }
        chunk.insert(start, len, slack);
        self.unsettled = Some(index);
        let reserved = len * GRANULE;
        self.live += 1;
        self.requested += reserved - slack;
        self.reserved += reserved;
        chunk.base() + start * GRANULE
    }

    /// Frees the live allocation starting at `offset`. A further chunk that
    /// this leaves entirely free stays in the allocator (see
    /// [`take_free_chunk`](Self::take_free_chunk)).
    ///
    /// # Errors
    ///
    /// [`FreeError::NotAllocated`], changing nothing, if `offset` is not the
    /// start of a live allocation.
    pub fn free(&mut self, offset: usize) -> Result<(), FreeError> {
        let (index, start) = self.locate(offset).ok_or(FreeError::NotAllocated)?;
        let is_further = self.is_further(index);
        if self.unsettled != Some(index) {
            self.settle();
        }
        let chunk = &mut self.chunks[index];
        let (len, slack) = chunk.remove(start).ok_or(FreeError::NotAllocated)?;
        self.unsettled = Some(index);
        let reserved = len * GRANULE;
        self.live -= 1;
        self.requested -= reserved - slack;
        self.reserved -= reserved;
        if chunk.live() == 0 && is_further {
            self.free_chunks += 1;
        }
        Ok(())
    }

    /// If more than `keep` further chunks are entirely free, removes the
    /// newest of them and returns its base (the caller takes its memory
    /// back) with its metadata, to be dropped where the heap may be called.
    pub fn take_free_chunk(&mut self, keep: usize) -> Option<(usize, Retired)> {
        if self.free_chunks <= keep {
            return None;
        }
        let index = (0..self.chunks.len())
            .rev()
            .find(|&index| self.is_further(index) && self.chunks[index].live() == 0)?;
        self.settle();
        self.free_chunks -= 1;
        let chunk = self.remove_chunk(index);
        let base = chunk.base();
        let retired = Retired {
            chunk: Some(chunk),
            tables: None,
        };
        Some((base, retired))
    }

    /// Size in bytes, as requested, of the live allocation starting at
    /// `offset`, or `None` if no live allocation starts there.
    pub fn allocation_size(&self, offset: usize) -> Option<usize> {
        let (index, start) = self.locate(offset)?;
        let (len, slack) = self.chunks[index].extent(start)?;
        Some(len * GRANULE - slack)
    }

    /// Adds the further chunk `base..base + unit`, allocating its metadata
    /// on the heap: [`metadata_request`](Self::metadata_request),
    /// [`MetadataRequest::allocate`] and [`add_chunk_with`](Self::add_chunk_with)
    /// in one step.
    ///
    /// Call this after [`alloc`](Self::alloc) reported
    /// [`AllocError::NeedChunk`], then retry the allocation. Adding chunks at
    /// other times is allowed too; they count as spare chunks until used.
    ///
    /// # Errors
    ///
    /// As [`add_chunk_with`](Self::add_chunk_with), and
    /// [`AddChunkError::OutOfMemory`] if the heap has no memory for the
    /// metadata.
    pub fn add_chunk(&mut self, base: usize) -> Result<(), AddChunkError> {
        let metadata = self
            .metadata_request()
            .allocate()
            .map_err(|_| AddChunkError::OutOfMemory)?;
        match self.add_chunk_with(base, metadata) {
            Ok(retired) => {
                drop(retired);
                Ok(())
            }
            Err((error, _)) => Err(error),
        }
    }

    /// What [`add_chunk_with`](Self::add_chunk_with) needs to add one more
    /// chunk now: the chunk's bitmaps, and larger tables if the allocator's
    /// are full. Does not allocate.
    pub fn metadata_request(&self) -> MetadataRequest {
        let needed = self.chunks.len() + 1;
        MetadataRequest {
            granules: self.unit / GRANULE,
            tables: (self.room() < needed).then(|| (2 * needed).max(INITIAL_ROOM)),
        }
    }

    /// Adds the further chunk `base..base + unit` with `metadata` from
    /// [`MetadataRequest::allocate`], without calling the heap; returns what
    /// the allocator no longer uses (tables it outgrew, or the ones
    /// `metadata` brought if they were not needed), to be dropped where the
    /// heap may be called.
    ///
    /// # Errors
    ///
    /// With `metadata` given back:
    ///
    /// - [`AddChunkError::Misaligned`] if `base` is not a multiple of
    ///   [`MAX_ALIGN`];
    /// - [`AddChunkError::Wraps`] if the chunk would run past `usize::MAX`;
    /// - [`AddChunkError::Overlaps`] if it overlaps a chunk already present
    ///   (the first chunk included);
    /// - [`AddChunkError::StaleMetadata`] if `metadata` does not fit: chunks
    ///   were added since [`metadata_request`](Self::metadata_request) (which
    ///   a caller that drops its lock in between must expect), or it was
    ///   requested from an allocator of another unit. Request it again.
    // The metadata comes back by value so that the caller drops it where it chooses: boxing the error
    // would call the heap, which is what this method must not do.
    #[allow(clippy::result_large_err)]
    pub fn add_chunk_with(
        &mut self,
        base: usize,
        mut metadata: ChunkMetadata,
    ) -> Result<Retired, (AddChunkError, ChunkMetadata)> {
        if let Err(error) = self.check_new_chunk(base) {
            return Err((error, metadata));
        }
        let needed = self.chunks.len() + 1;
        let fits = metadata.chunk.granules() == self.unit / GRANULE
            && (self.room() >= needed
                || metadata.tables.as_ref().is_some_and(|t| t.room() >= needed));
        if !fits {
            return Err((AddChunkError::StaleMetadata, metadata));
        }
        self.settle();
        let mut retired = Retired::default();
        match metadata.tables.take() {
            Some(tables) if self.room() < needed => retired.tables = Some(self.install(tables)),
            unused => retired.tables = unused,
        }
        self.free_chunks += 1;
        metadata.chunk.rebase(base);
        self.push_chunk(metadata.chunk);
        Ok(retired)
    }

    /// Checks that the further chunk `base..base + unit` can be added.
    fn check_new_chunk(&self, base: usize) -> Result<(), AddChunkError> {
        if !base.is_multiple_of(MAX_ALIGN) {
            return Err(AddChunkError::Misaligned);
        }
        if base.checked_add(self.unit - 1).is_none() {
            return Err(AddChunkError::Wraps);
        }
        let position = self.by_base.partition_point(|&(other, _)| other < base);
        let overlaps_previous = position.checked_sub(1).is_some_and(|previous| {
            let (other, index) = self.by_base[previous];
            base - other < self.chunk_bytes(index)
        });
        let overlaps_next = self
            .by_base
            .get(position)
            .is_some_and(|&(other, _)| other - base < self.unit);
        if overlaps_previous || overlaps_next {
            return Err(AddChunkError::Overlaps);
        }
        Ok(())
    }

    /// How many chunks the tables hold without allocating.
    fn room(&self) -> usize {
        self.chunks
            .capacity()
            .min(self.by_base.capacity())
            .min(self.largest_runs.room())
    }

    /// Moves the chunks into `tables` (which have room for one more) and
    /// returns the old, emptied tables. The allocator must be settled.
    fn install(&mut self, mut tables: Tables) -> Tables {
        tables.chunks.append(&mut self.chunks);
        tables.by_base.append(&mut self.by_base);
        core::mem::swap(&mut self.chunks, &mut tables.chunks);
        core::mem::swap(&mut self.by_base, &mut tables.by_base);
        core::mem::swap(&mut self.largest_runs, &mut tables.largest_runs);
        self.rebuild_largest_runs();
        tables
    }

    /// Number of further chunks without live allocations (as in [`stats`](Self::stats)).
    pub fn free_chunks(&self) -> usize {
        self.free_chunks
    }

    /// Current usage figures, in O(1).
    pub fn stats(&self) -> Stats {
        let further = self.chunks.len() - usize::from(self.first_bytes > 0);
        Stats {
            live_allocations: self.live,
            requested_bytes: self.requested,
            reserved_bytes: self.reserved,
            chunks: self.chunks.len(),
            chunk_bytes: self.first_bytes + further * self.unit,
            free_chunks: self.free_chunks,
        }
    }

    /// Settles the unsettled chunk, if any, and updates its largest free run.
    fn settle(&mut self) {
        if let Some(index) = self.unsettled.take() {
            let chunk = &mut self.chunks[index];
            chunk.settle();
            self.largest_runs.set(index, chunk.largest_free_run());
        }
    }

    /// Whether the chunk at `index` is a further chunk (not the first one).
    fn is_further(&self, index: usize) -> bool {
        index > 0 || self.first_bytes == 0
    }

    /// Size in bytes of the chunk at `index`.
    fn chunk_bytes(&self, index: usize) -> usize {
        self.chunks[index].granules() * GRANULE
    }

    /// Chunk index and granule index within that chunk of `offset`, if it is
    /// a granule boundary inside a chunk.
    fn locate(&self, offset: usize) -> Option<(usize, usize)> {
        let after = self.by_base.partition_point(|&(base, _)| base <= offset);
        let (base, index) = self.by_base[after.checked_sub(1)?];
        let within = offset - base;
        (within < self.chunk_bytes(index) && within.is_multiple_of(GRANULE))
            .then_some((index, within / GRANULE))
    }

    /// Appends `chunk` as the newest chunk. Does not allocate if the tables
    /// have room for it.
    fn push_chunk(&mut self, chunk: Chunk) {
        let index = self.chunks.len();
        let base = chunk.base();
        let position = self.by_base.partition_point(|&(other, _)| other < base);
        self.by_base.insert(position, (base, index));
        self.chunks.push(chunk);
        if index < self.largest_runs.capacity() {
            self.largest_runs
                .set(index, self.chunks[index].largest_free_run());
        } else {
            self.rebuild_largest_runs();
        }
    }

    /// Removes the chunk at `index` and returns it. O(chunks), which is
    /// negligible next to returning a chunk's memory to the backing source.
    /// The allocator must be settled. Does not allocate.
    fn remove_chunk(&mut self, index: usize) -> Chunk {
        let chunk = self.chunks.remove(index);
        let base = chunk.base();
        self.by_base.retain_mut(|(other, other_index)| {
            if *other_index > index {
                *other_index -= 1;
            }
            *other != base
        });
        self.rebuild_largest_runs();
        chunk
    }

    /// Recomputes the chunk max-tree from scratch (without allocating if it
    /// has room for every chunk).
    fn rebuild_largest_runs(&mut self) {
        self.largest_runs
            .rebuild(self.chunks.iter().map(Chunk::largest_free_run));
    }
}

impl fmt::Debug for OffsetAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffsetAllocator")
            .field("unit", &self.unit)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}
