//! Instruction-count probes of this repository's `percpu`, disassembled by `cargo xtask codegen`.
//! Never run: only compiled for the bare-metal targets.
#![no_std]

use percpu_alloc::{PerCpu, PerCpuCounter};

include!("../../probes.rs");

/// `add_current` of a `u64`: guard-less, one instruction on x86_64.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn add_current_u64(value: u64) {
    U64.add_current(value)
}

/// `raw::read_current::<u64>` with the VMA in a register, as a run-time allocated `PerCpu<u64>` whose
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

/// `PerCpu::<u64>::read_current` through `&PerCpu<u64>`: the VMA is loaded from the handle.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_alloc_read_u64(handle: &PerCpu<u64>) -> u64 {
    handle.read_current()
}

/// `PerCpu::<u64>::write_current` through `&PerCpu<u64>`.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_alloc_write_u64(handle: &PerCpu<u64>, value: u64) {
    handle.write_current(value)
}

/// `PerCpu::<u64>::add_current` through `&PerCpu<u64>`.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_alloc_add_u64(handle: &PerCpu<u64>, value: u64) {
    handle.add_current(value)
}

/// `PerCpuCounter::add` through `&PerCpuCounter` (an `i64` part per CPU).
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn percpu_counter_add(counter: &PerCpuCounter, value: i64) {
    counter.add(value)
}
