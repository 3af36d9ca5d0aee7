//! Error types of the offset allocator.

use core::fmt;

/// Why [`OffsetAllocator::new`](super::OffsetAllocator::new) rejected its
/// configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The unit is zero, not a multiple of [`GRANULE`](super::GRANULE), or
    /// more than `u32::MAX` granules.
    BadUnit,
    /// The first chunk does not start at a multiple of
    /// [`GRANULE`](super::GRANULE), is longer than the unit, or runs past
    /// `usize::MAX`.
    BadFirstChunk,
    /// The heap has no memory for the allocator's metadata.
    OutOfMemory,
}

/// Why [`OffsetAllocator::alloc`](super::OffsetAllocator::alloc) returned no
/// offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// No chunk has room: add a chunk with
    /// [`OffsetAllocator::add_chunk`](super::OffsetAllocator::add_chunk) and
    /// retry, which then succeeds.
    NeedChunk,
    /// The size is zero; zero-sized objects need no per-CPU memory.
    ZeroSize,
    /// The size exceeds the unit, so no chunk can ever hold it.
    TooLarge,
    /// The alignment is not a power of two or exceeds
    /// [`MAX_ALIGN`](super::MAX_ALIGN).
    BadAlign,
}

/// Why [`OffsetAllocator::add_chunk`](super::OffsetAllocator::add_chunk)
/// rejected a chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddChunkError {
    /// The base is not a multiple of [`MAX_ALIGN`](super::MAX_ALIGN).
    Misaligned,
    /// The chunk would run past `usize::MAX`.
    Wraps,
    /// The chunk overlaps a chunk the allocator already has.
    Overlaps,
    /// The heap has no memory for the chunk's metadata.
    OutOfMemory,
    /// The metadata does not fit the allocator any more (chunks were added
    /// since it was requested) or was requested from another allocator.
    StaleMetadata,
}

/// Why [`OffsetAllocator::free`](super::OffsetAllocator::free) freed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The offset is not the start of a live allocation.
    NotAllocated,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadUnit => "unit is zero, not a multiple of the granule, or too large",
            Self::BadFirstChunk => "first chunk is misaligned, longer than the unit, or wraps",
            Self::OutOfMemory => "no heap memory for the allocator's metadata",
        })
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NeedChunk => "no chunk has room: a new chunk is needed",
            Self::ZeroSize => "zero-sized allocation",
            Self::TooLarge => "allocation larger than the unit",
            Self::BadAlign => "alignment is not a power of two or exceeds the maximum",
        })
    }
}

impl fmt::Display for AddChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Misaligned => "chunk base is not aligned to the maximum alignment",
            Self::Wraps => "chunk would run past the end of the offset space",
            Self::Overlaps => "chunk overlaps an existing chunk",
            Self::OutOfMemory => "no heap memory for the chunk's metadata",
            Self::StaleMetadata => "the chunk metadata no longer fits the allocator",
        })
    }
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAllocated => "offset is not the start of a live allocation",
        })
    }
}

impl core::error::Error for ConfigError {}
impl core::error::Error for AllocError {}
impl core::error::Error for AddChunkError {}
impl core::error::Error for FreeError {}
