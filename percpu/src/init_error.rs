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
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidBase => "invalid per-CPU base address: null",
            Self::UnalignedBase => "unaligned per-CPU base address",
            Self::InvalidCpuCount => {
                "invalid CPU count: zero, or the areas overflow the address space"
            }
        })
    }
}

impl core::error::Error for InitError {}
