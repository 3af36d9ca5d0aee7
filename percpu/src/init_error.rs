//! Errors of the initialization functions.

use core::fmt;

/// Why the per-CPU areas could not be initialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitError {
    /// The base address is null.
    InvalidBase,
    /// The base address is not aligned to [`percpu_area_align()`](crate::percpu_area_align) (to a page
    /// when a dynamic reserve is requested): the alignment that the layout functions report.
    UnalignedBase,
    /// The CPU count is zero, or the areas would not fit in the address space.
    InvalidCpuCount,
    /// The areas are in use: a CPU registered and still holds its area, or
    /// [`freeze_areas`](crate::freeze_areas) was called (by `percpu_alloc`, whose objects live in
    /// them). Initializing again would destroy live per-CPU data.
    InUse,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidBase => "invalid per-CPU base address: null",
            Self::UnalignedBase => "unaligned per-CPU base address",
            Self::InvalidCpuCount => {
                "invalid CPU count: zero, or the areas overflow the address space"
            }
            Self::InUse => "the per-CPU areas are in use: they cannot be initialized again",
        })
    }
}

impl core::error::Error for InitError {}
