//! The per-CPU integer parts the counters are made of, and the operations the counters use on them:
//! the one place that names the cell-like handle type (a rename of the handle is a change here only).

use core::sync::atomic::{AtomicI64, Ordering};

use crate::{AllocError, PerCpuCell};

/// One `i64` per CPU, reached only through the operations below: guard-less read-modify-writes of
/// this CPU's part, and atomic accesses to any CPU's part. No reference to a part is ever made.
pub(crate) type Part = PerCpuCell<i64>;

/// A part at zero on every CPU.
pub(crate) fn zeroed() -> Result<Part, AllocError> {
    Part::new(0)
}

/// Reads this CPU's part.
#[inline(always)]
pub(crate) fn read(part: &Part) -> i64 {
    part.read_current()
}

/// Adds `delta` (wrapping) to this CPU's part, guard-less.
#[inline(always)]
pub(crate) fn add(part: &Part, delta: i64) {
    part.add_current(delta)
}

/// Replaces this CPU's part by `new` if it holds `current`, guard-less: `Ok(current)` if it did,
/// `Err(actual)` if not. After a migration in the middle it may act on the part of the CPU the task
/// left, atomically (see `percpu`'s guarantee per architecture).
#[inline(always)]
pub(crate) fn cmpxchg(part: &Part, current: i64, new: i64) -> Result<i64, i64> {
    part.cmpxchg_current(current, new)
}

/// CPU `cpu`'s part.
///
/// # Panics
///
/// If `cpu` is not below `percpu::cpu_count()`.
pub(crate) fn remote_read(part: &Part, cpu: usize) -> i64 {
    // SAFETY: the VMA of `part`, which lives while it is borrowed.
    unsafe { remote(part.vma(), cpu) }.load(Ordering::Relaxed)
}

/// The sum (wrapping) of every CPU's part.
pub(crate) fn sum(part: &Part) -> i64 {
    (0..percpu::cpu_count()).fold(0i64, |sum, cpu| sum.wrapping_add(remote_read(part, cpu)))
}

/// Sets CPU `cpu`'s part of the parts at `vma` to 0 and returns what it held, atomically.
///
/// # Panics
///
/// If `cpu` is not below `percpu::cpu_count()`.
///
/// # Safety
///
/// `vma` is the VMA of a live [`Part`]. CPU `cpu` does not run: its own operations on its part are
/// atomic against its interrupts, not against another CPU's write (x86_64's are single instructions
/// without `lock`).
pub(crate) unsafe fn remote_take_at(vma: usize, cpu: usize) -> i64 {
    // SAFETY: forwarded to the caller.
    unsafe { remote(vma, cpu) }.swap(0, Ordering::Relaxed)
}

/// CPU `cpu`'s part of the parts at `vma`, as an atomic.
///
/// # Panics
///
/// If `cpu` is not below `percpu::cpu_count()`.
///
/// # Safety
///
/// `vma` is the VMA of a [`Part`] that lives for `'a`.
unsafe fn remote<'a>(vma: usize, cpu: usize) -> &'a AtomicI64 {
    let count = percpu::cpu_count();
    assert!(
        cpu < count,
        "percpu_alloc: CPU id {cpu} is out of range: {count} CPUs"
    );
    // SAFETY: in range: an aligned `i64` of an initialized area, alive for `'a` (the caller's
    // contract). Every access to a part is single-copy atomic: the guard-less operations of its owner
    // (one instruction, an atomic instruction or exclusive store, or, on 32-bit arm, `strexd` with
    // interrupts off) and the atomic accesses here; no reference to a part is ever handed out, so
    // lending it as an atomic races with nothing that is not atomic (a write from another CPU is
    // only atomic against the owner's operations while the owner does not run: `remote_take_at`).
    unsafe { AtomicI64::from_ptr(percpu::raw::remote_ptr(cpu, vma)) }
}
