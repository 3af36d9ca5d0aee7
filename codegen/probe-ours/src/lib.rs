//! Instruction-count probes of this repository's `percpu`, disassembled by `cargo xtask codegen`.
//! Never run: only compiled for the bare-metal targets.
#![no_std]

use percpu::stats::{StatsCell, StatsStatic};
use percpu_alloc::{BatchedCounter, PerCpuCell, PerCpuCounter, PerCpuStats};

include!("../../probes.rs");

/// `add_current` of a `u64`: guard-less, one instruction on x86_64.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn add_current_u64(value: u64) {
    U64.add_current(value)
}

/// `raw::read_current::<u64>` with the VMA in a register, as a run-time allocated `PerCpuCell<u64>` whose
/// handle holds the VMA.
///
/// # Safety
///
/// `vma` designates a `u64` in every per-CPU area.
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn raw_read_current_u64(vma: usize) -> u64 {
    // SAFETY: forwarded to the caller.
    unsafe { percpu::raw::read_current::<u64>(vma) }
}

/// `raw::write_current::<u64>` with the VMA in a register.
///
/// # Safety
///
/// As [`raw_read_current_u64`].
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn raw_write_current_u64(vma: usize, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { percpu::raw::write_current::<u64>(vma, value) }
}

/// `raw::add_current::<u64>` with the VMA in a register.
///
/// # Safety
///
/// As [`raw_read_current_u64`].
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn raw_add_current_u64(vma: usize, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { percpu::raw::add_current::<u64>(vma, value) }
}

/// `raw::read_current::<u64>` with the VMA loaded from a handle in memory (one load more).
///
/// # Safety
///
/// `*handle` designates a `u64` in every per-CPU area.
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn handle_read_current_u64(handle: &usize) -> u64 {
    // SAFETY: forwarded to the caller.
    unsafe { percpu::raw::read_current::<u64>(*handle) }
}

/// `raw::write_current::<u64>` with the VMA loaded from a handle in memory.
///
/// # Safety
///
/// As [`handle_read_current_u64`].
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn handle_write_current_u64(handle: &usize, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { percpu::raw::write_current::<u64>(*handle, value) }
}

/// `raw::add_current::<u64>` with the VMA loaded from a handle in memory.
///
/// # Safety
///
/// As [`handle_read_current_u64`].
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn handle_add_current_u64(handle: &usize, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { percpu::raw::add_current::<u64>(*handle, value) }
}

/// `PerCpuCell::<u64>::read_current` through `&PerCpuCell<u64>`: the VMA is loaded from the handle.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_alloc_read_current_u64(handle: &PerCpuCell<u64>) -> u64 {
    handle.read_current()
}

/// `PerCpuCell::<u64>::write_current` through `&PerCpuCell<u64>`.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_alloc_write_current_u64(handle: &PerCpuCell<u64>, value: u64) {
    handle.write_current(value)
}

/// `PerCpuCell::<u64>::add_current` through `&PerCpuCell<u64>`.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_alloc_add_current_u64(handle: &PerCpuCell<u64>, value: u64) {
    handle.add_current(value)
}

/// `PerCpuCounter::add` through `&PerCpuCounter` (an `i64` part per CPU).
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_counter_add(counter: &PerCpuCounter, value: i64) {
    counter.add(value)
}

/// Defines, for each `static: type`, the probes of the guard-less read-modify-write operations that the
/// peer lacks: `fetch_add`, `xchg`, `cmpxchg` (returning the previous value), `and`, `or`, `xor`.
macro_rules! static_rmw_probes {
    ($($var:ident: $ty:ty => $fetch_add:ident, $xchg:ident, $cmpxchg:ident, $and:ident, $or:ident, $xor:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($var), ".fetch_add_current(value)`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $fetch_add(value: $ty) -> $ty {
                $var.fetch_add_current(value)
            }

            #[doc = concat!("`", stringify!($var), ".xchg_current(value)`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $xchg(value: $ty) -> $ty {
                $var.xchg_current(value)
            }

            #[doc = concat!("`", stringify!($var), ".cmpxchg_current(current, new)`, the previous value.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $cmpxchg(current: $ty, new: $ty) -> $ty {
                match $var.cmpxchg_current(current, new) {
                    Ok(previous) | Err(previous) => previous,
                }
            }

            #[doc = concat!("`", stringify!($var), ".and_current(value)`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $and(value: $ty) {
                $var.and_current(value)
            }

            #[doc = concat!("`", stringify!($var), ".or_current(value)`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $or(value: $ty) {
                $var.or_current(value)
            }

            #[doc = concat!("`", stringify!($var), ".xor_current(value)`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $xor(value: $ty) {
                $var.xor_current(value)
            }
        )*
    };
}

static_rmw_probes! {
    U8: u8 => fetch_add_current_u8, xchg_current_u8, cmpxchg_current_u8, and_current_u8, or_current_u8,
        xor_current_u8;
    U32: u32 => fetch_add_current_u32, xchg_current_u32, cmpxchg_current_u32, and_current_u32,
        or_current_u32, xor_current_u32;
    U64: u64 => fetch_add_current_u64, xchg_current_u64, cmpxchg_current_u64, and_current_u64,
        or_current_u64, xor_current_u64;
}

/// `cmpxchg_current` of a `bool` static, the previous value.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn cmpxchg_current_bool(current: bool, new: bool) -> bool {
    match BOOL.cmpxchg_current(current, new) {
        Ok(previous) | Err(previous) => previous,
    }
}

/// Defines the `percpu::raw` probes (VMA in a register) and the `PerCpuCell<u64>` handle probes (handle by
/// `&`) of the same operations on a `u64`; a compare-and-swap's probe returns the previous value.
macro_rules! handle_rmw_probes {
    ($($op:ident: $raw:ident, $handle:ident, ($($arg:ident),*) -> $ret:ty;)*) => {
        $(
            #[doc = concat!("`raw::", stringify!($op), "::<u64>` with the VMA in a register.")]
            ///
            /// # Safety
            ///
            /// `vma` designates a `u64` in every per-CPU area.
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn $raw(vma: usize, $($arg: u64),*) -> $ret {
                // SAFETY: forwarded to the caller.
                Outcome::value(unsafe { percpu::raw::$op::<u64>(vma, $($arg),*) })
            }

            #[doc = concat!("`PerCpuCell::<u64>::", stringify!($op), "` through `&PerCpuCell<u64>`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $handle(handle: &PerCpuCell<u64>, $($arg: u64),*) -> $ret {
                Outcome::value(handle.$op($($arg),*))
            }
        )*
    };
}

/// What a probe returns of an operation's result: the result, or a compare-and-swap's previous value
/// whether it swapped or not.
trait Outcome<T> {
    /// The value the probe returns.
    fn value(self) -> T;
}

impl<T> Outcome<T> for T {
    #[inline(always)]
    fn value(self) -> T {
        self
    }
}

impl Outcome<u64> for Result<u64, u64> {
    #[inline(always)]
    fn value(self) -> u64 {
        match self {
            Ok(previous) | Err(previous) => previous,
        }
    }
}

handle_rmw_probes! {
    fetch_add_current: raw_fetch_add_current_u64, percpu_alloc_fetch_add_current_u64, (value) -> u64;
    xchg_current: raw_xchg_current_u64, percpu_alloc_xchg_current_u64, (value) -> u64;
    cmpxchg_current: raw_cmpxchg_current_u64, percpu_alloc_cmpxchg_current_u64, (current, new) -> u64;
    and_current: raw_and_current_u64, percpu_alloc_and_current_u64, (value) -> ();
    or_current: raw_or_current_u64, percpu_alloc_or_current_u64, (value) -> ();
    xor_current: raw_xor_current_u64, percpu_alloc_xor_current_u64, (value) -> ();
}

/// `BatchedCounter::add` through `&BatchedCounter`: the count's guard-less add, then the delta's
/// read and compare-and-swap loop (the fold into the total is out of line, `#[cold]`).
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn batched_counter_add(counter: &BatchedCounter, value: i64) {
    counter.add(value)
}

/// `BatchedCounter::read` through `&BatchedCounter`: the shared total's load.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn batched_counter_read(counter: &BatchedCounter) -> i64 {
    counter.read()
}

/// A statistics struct of the probes.
#[derive(percpu::PerCpuStats)]
pub struct ProbeStats {
    /// At offset 0.
    pub packets: u64,
    /// At offset 8.
    pub bytes: u64,
}

#[def_percpu]
static STATS: StatsCell<ProbeStats> = StatsCell::new();

/// `STATS.fields().bytes.add(value)`: a field (at offset 8) of a `#[def_percpu]` statistics static.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn stats_static_add(value: u64) {
    STATS.fields().bytes.add(value)
}

/// `stats.fields().bytes.add(value)`: a field (at offset 8) of a run-time allocated statistics
/// struct, the handle by `&` (it holds every field's VMA).
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn stats_handle_add(stats: &PerCpuStats<ProbeStats>, value: u64) {
    stats.fields().bytes.add(value)
}
