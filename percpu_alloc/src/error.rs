//! What can go wrong when allocating per-CPU memory.

use core::fmt;

/// Why a per-CPU allocation failed. Nothing in this crate panics on a bad size or alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllocError {
    /// [`init`](crate::init) has not been called.
    NotInitialized,
    /// The object is larger than a unit's dynamic capacity ([`max_size`](crate::max_size)).
    TooLarge,
    /// The alignment exceeds what the per-CPU areas provide ([`max_align`](crate::max_align)).
    UnsupportedAlignment,
    /// The chunk source had no memory for a further chunk, or the heap none for its metadata.
    SourceExhausted,
    /// The allocation would have to wait: an atomic allocation (`PerCpu::new_with_atomic`) found no
    /// room in the chunks already obtained (call [`refill`](crate::refill) from task context) or the
    /// allocator's lock busy for longer than it may wait, or an allocation interrupted this CPU's use
    /// of that lock (a signal handler in a hosted program, a non-maskable interrupt in a kernel), which
    /// it could never get.
    WouldBlock,
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotInitialized => "dynamic per-CPU allocation is not initialized",
            Self::TooLarge => "the object is larger than a per-CPU unit",
            Self::UnsupportedAlignment => "the alignment is larger than the per-CPU areas support",
            Self::SourceExhausted => "the chunk source has no memory for a further per-CPU chunk",
            Self::WouldBlock => {
                "the per-CPU allocation would have to wait (no room without a further chunk)"
            }
        })
    }
}

impl core::error::Error for AllocError {}

/// Why [`init`](crate::init) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitError {
    /// The per-CPU areas are not initialized (`percpu::init_with_reserve` first).
    AreasNotInitialized,
    /// Area 0 is not page-aligned (further chunks could not share its offsets): initialize the areas
    /// with `percpu::init_with_reserve`, whose layout is page-aligned, or from the linker snippet.
    AreasNotPageAligned,
    /// [`init`](crate::init) was already called: live handles depend on the first initialization.
    AlreadyInitialized,
    /// The heap has no memory for the allocator's metadata.
    OutOfMemory,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AreasNotInitialized => "the per-CPU areas are not initialized",
            Self::AreasNotPageAligned => {
                "the per-CPU areas are not page-aligned: use percpu::init_with_reserve"
            }
            Self::AlreadyInitialized => "dynamic per-CPU allocation is already initialized",
            Self::OutOfMemory => "no heap memory for the per-CPU allocator's metadata",
        })
    }
}

impl core::error::Error for InitError {}
