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
//! is `per-CPU register + VMA`, exactly like a static: `PerCpuCell<u64>::add_current` is one
//! instruction on x86_64.
//!
//! # Two kinds of handles, as in `percpu`'s checked tier
//!
//! | handle | for | this CPU's copy | another CPU's copy | every copy, exclusively |
//! |---|---|---|---|---|
//! | [`PerCpu<T>`] (reference-like) | any `T: Send` | `get(&guard)`: `&T` through a guard of `percpu::checked` (`IrqGuard`: any `T: Send`; `PreemptGuard`: `T: Sync` too); mutation through `Cell`, `RefCell`, atomics | `remote(cpu)`, `iter()`: `&T` for `T: Sync` | `get_mut(cpu)`, `iter_mut()` through `&mut PerCpu<T>` |
//! | [`PerCpuCell<T>`] (cell-like) | integers, `bool` | `read_current`, `write_current`, `add_current`, `fetch_add_current`, `xchg_current`, `cmpxchg_current`, `and/or/xor_current`: no guard, no reference lent | `remote_read(cpu)`: an atomic load | — |
//!
//! A handle never does both: an operation that changes a copy in place while a shared reference to it
//! lives would be undefined behaviour. The raw tier stays for code that proves its own exclusion:
//! `current_ptr`, `remote_ptr`, and `PerCpu::with_current` (an `unsafe fn` lending `&mut T`).
//!
//! ```text
//! // At boot: areas with the default dynamic reserve, then the allocator.
//! let layout = percpu_alloc::area_layout(cpu_count);
//! percpu_alloc::init_areas(kernel_alloc(layout), cpu_count)?;   // on every CPU: percpu::init_percpu_reg(cpu)
//! percpu_alloc::init(&MY_PAGE_SOURCE)?;
//! percpu_alloc::refill(2)?;               // spare chunks for allocations in interrupt context
//!
//! // Anywhere: one statistics block per device, one counter per cgroup...
//! let rx_packets = percpu_alloc::PerCpuCounter::new()?;
//! rx_packets.inc();                       // this CPU's part: no lock, no atomic
//! let total = rx_packets.sum();           // every CPU's part
//! ```
//!
//! # Possible CPUs
//!
//! The areas exist for every *possible* CPU: `percpu::cpu_count()` is the number of areas the kernel
//! initialized, at boot, for all the CPUs that may ever come online. Every object has a copy for each
//! of them from its allocation on: [`PerCpu::new_with`] and [`alloc_percpu`] build all of them, so a
//! CPU that comes online later (calls `percpu::init_percpu_reg` after objects were allocated and
//! written) finds its copies initialized (`T::default()`, or `new_with`'s value for its id), and
//! [`PerCpuCounter::sum`] adds its part.
//!
//! # The fast path: per-CPU caches
//!
//! Objects of up to [`MAX_CACHED_SIZE`] (128) bytes, aligned up to 64, take their offset from this
//! CPU's cache: a stack of free offsets per size class (their size rounded up to 8 bytes:
//! [`CACHE_CLASSES`] classes), in a per-CPU static, changed with plain loads and stores by this CPU
//! only (preemption disabled with `percpu`'s `preempt` feature, and a per-CPU flag that an interrupt
//! handler checks). An allocation takes the most recently freed offset of its class, a free puts it
//! back: no shared lock, no atomic read-modify-write. An empty cache is refilled from the allocator
//! core with half its bound of objects at once, side by side from a cache line where the core's space
//! is contiguous (so that the copies that two CPUs write for their refills, in every CPU's unit, share
//! no cache line), one by one in its holes otherwise (so that caching costs no packing). A cache that
//! is full gives the older half of its class back first.
//!
//! **The bound:** a CPU's cache holds at most [`CACHE_BYTES_PER_CLASS`] (256) bytes of free offsets
//! per size class, so at most 16 × 256 = 4 KiB of every unit; all caches together hold at most
//! `cpu_count × 4 KiB` of each unit, `cpu_count² × 4 KiB` of memory (4 CPUs: 64 KiB, 64 CPUs:
//! 16 MiB), and in practice far less (only the classes in use, half full on average).
//! [`drain_cache`] gives this CPU's back on demand, [`cached_bytes`] says how much it holds. The
//! offsets held count as allocations in [`stats`].
//!
//! Larger or more aligned objects, refills and overflows go to the core, behind one spin lock.
//!
//! # Contexts
//!
//! Neither the heap nor the [`ChunkSource`] is ever called with the allocator's lock held, nor by any
//! operation allowed in interrupt context. An interrupt handler may interrupt any code, including
//! this crate's, the heap's or the source's, on its CPU.
//!
//! | operation | interrupt context | why |
//! |---|---|---|
//! | [`PerCpu::new_with_atomic`], [`alloc_percpu_atomic`] | yes | serves from the chunks already obtained, never calls the heap or the source, makes a bounded number of attempts at the lock, else [`AllocError::WouldBlock`] |
//! | dropping a [`PerCpu`] (the allocator's side; `T`'s destructor is the caller's) | yes | never calls the heap or the source: a chunk it empties is returned later, from task context; a bounded number of attempts at the lock, else the free is deferred to the lock's next holder |
//! | [`drain_cache`], [`cached_bytes`], [`needs_refill`] | yes | as a drop; no lock for the last two |
//! | the accessors of [`PerCpu`], [`PerCpuCell`] and [`PerCpuCounter`] | yes | as `percpu`'s accessors |
//! | [`PerCpu::new_with`], [`alloc_percpu`], [`PerCpuCounter::new`] | no | may obtain a chunk from the source and its metadata from the heap (without the lock) |
//! | [`refill`], [`reclaim`] | no | call the source and the heap |
//! | [`init`], [`stats`], [`max_size`], [`max_align`] | no | wait for the lock as long as it takes |
//!
//! # Atomic allocation and refills
//!
//! An atomic allocation can only use the room of the chunks already obtained. [`refill`]`(n)` (task
//! context) keeps `n` entirely free further chunks ready: with one spare chunk left, an atomic
//! allocation of any object up to [`max_size`] succeeds, so `n` spare chunks serve at least `n` atomic
//! allocations of any size, and as many objects of one layout as fit in `n` units (besides the room the
//! other chunks have). Keep as many as the atomic allocations between two refills need; call `refill` at
//! boot, then whenever [`needs_refill`] says so (an atomic allocation found no room, or fewer spare
//! chunks are left than asked for), e.g. from a periodic task.
//!
//! Chunks that frees leave entirely free are not returned at once (a free may run in interrupt
//! context): the spare ones beyond the number `refill` asked for (one by default) go back to the
//! source on [`reclaim`], on `refill`, and on task-context allocations that reach the core.
//!
//! # Larger units
//!
//! An object may be as large as the unit ([`max_size`]): the stride of the areas, that is the template
//! plus the dynamic reserve, rounded up to a page. For larger objects, give the areas a larger reserve:
//! `percpu::init_with_reserve(base, cpu_count, 256 << 10)` (with
//! `percpu::percpu_area_layout_with_reserve(cpu_count, 256 << 10)` for the memory) serves 256 KiB
//! objects, one in the first chunk and one in each further chunk of `cpu_count × unit` bytes
//! (`cpu_count × 256 KiB` and a bit). Areas made by the linker script (`init_in_place`) have no
//! reserve: their unit is the template's size.
//!
//! [`offset_alloc`] is the allocator core (plain Rust, no architecture code): it hands out offsets and
//! never touches per-CPU memory. Its metadata lives on the heap (`alloc` is required).
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;

mod batched;
mod cache;
mod counter;
mod cpu;
mod deferred;
mod error;
mod handle;
mod object;
pub mod offline;
pub mod offset_alloc;
mod part;
mod percpu_stats;
mod source;
mod space;

pub use batched::{BatchedCounter, DEFAULT_BATCH};
pub use cache::{cached_bytes, drain_cache, CACHE_BYTES_PER_CLASS, CACHE_CLASSES, MAX_CACHED_SIZE};
pub use counter::PerCpuCounter;
pub use error::{AllocError, InitError};
pub use handle::{alloc_percpu, alloc_percpu_atomic, PerCpu, PerCpuCell};
pub use offline::cpu_offline;
pub use percpu_stats::PerCpuStats;
pub use source::ChunkSource;
#[cfg(feature = "alloc")]
pub use source::GlobalAllocSource;
pub use space::{init, max_align, max_size, needs_refill, reclaim, refill, stats};

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
