//! Per-CPU memory allocated at run time, reached through the same per-CPU register as the static
//! per-CPU variables of the [`percpu`] crate.
//!
//! ```text
//!              unit (the stride of the areas)                 chunk from the ChunkSource
//!          |<------------------------------------>|        |<-- unit -->|<-- unit -->|...
//! area 0:  [ .percpu template | dynamic reserve   ]        [ cpu 0 copy | cpu 1 copy | ...
//! area 1:  [ .percpu template | dynamic reserve   ]          offset = chunk − area 0 base + x
//!   ...       static offsets     first chunk                 (one CPU-independent offset)
//! ```
//!
//! Every per-CPU area is `[static template | dynamic reserve]`, all areas one *unit* apart. An object
//! allocated here lives at the same offset in every CPU's unit: in the reserve of the areas (the
//! *first chunk*) or, when that is full, in a further chunk of `cpu_count × unit` bytes obtained from
//! a [`ChunkSource`]. A handle stores only that offset (as a VMA, see `percpu::raw`), so this CPU's copy
//! is `per-CPU register + VMA`, exactly like a static: `PerCpu<u64>::add_current` is one instruction on
//! x86_64. Fully free further chunks go back to the source (one is kept as a spare).
//!
//! ```text
//! // At boot: areas with the default dynamic reserve, then the allocator.
//! let layout = percpu_alloc::area_layout(cpu_count);
//! percpu_alloc::init_areas(kernel_alloc(layout), cpu_count)?;   // on every CPU: percpu::init_percpu_reg(cpu)
//! percpu_alloc::init(&MY_PAGE_SOURCE)?;
//!
//! // Anywhere: one statistics block per device, one counter per cgroup...
//! let rx_packets = percpu_alloc::PerCpuCounter::new()?;
//! rx_packets.inc();                       // this CPU's part: no lock, no atomic
//! let total = rx_packets.sum();           // every CPU's part
//! ```
//!
//! [`offset_alloc`] is the allocator core (plain Rust, no architecture code): it hands out offsets and
//! never touches per-CPU memory. Its metadata lives on the heap (`alloc` is required).
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod batched;
mod counter;
mod error;
mod handle;
pub mod offline;
pub mod offset_alloc;
mod part;
mod percpu_stats;
mod source;
mod space;

pub use batched::{BatchedCounter, DEFAULT_BATCH};
pub use counter::PerCpuCounter;
pub use error::{AllocError, InitError};
pub use handle::{alloc_percpu, PerCpu};
pub use offline::cpu_offline;
pub use percpu_stats::PerCpuStats;
pub use source::ChunkSource;
#[cfg(feature = "alloc")]
pub use source::GlobalAllocSource;
pub use space::{init, max_align, max_size, stats};

/// The default size of the dynamic reserve of every per-CPU area (the first chunk): 64 KiB per CPU.
pub const DEFAULT_RESERVE: usize = 64 * 1024;

/// The layout of `cpu_count` per-CPU areas with the [`DEFAULT_RESERVE`], for [`init_areas`].
///
/// # Panics
///
/// If the size overflows `isize`.
pub fn area_layout(cpu_count: usize) -> core::alloc::Layout {
    percpu::percpu_area_layout_with_reserve(cpu_count, DEFAULT_RESERVE)
}

/// Initializes `cpu_count` per-CPU areas at `base` (laid out as [`area_layout`]) with the
/// [`DEFAULT_RESERVE`]: `percpu::init_with_reserve(base, cpu_count, DEFAULT_RESERVE)`.
///
/// # Errors
///
/// As `percpu::init_with_reserve`.
pub fn init_areas(base: *mut u8, cpu_count: usize) -> Result<usize, percpu::InitError> {
    percpu::init_with_reserve(base, cpu_count, DEFAULT_RESERVE)
}
