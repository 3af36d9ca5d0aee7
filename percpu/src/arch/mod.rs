//! The per-CPU register, the access sequences and local interrupt masking, one file per architecture.
//!
//! Every architecture file provides the same small interface:
//!
//! - `read_reg() -> usize` and `unsafe write_reg(usize)`: the raw per-CPU register, which holds
//!   `area base - template VMA`;
//! - `unsafe prepare_area(base)`: what a freshly copied area needs besides the template (x86_64
//!   records its own register value there);
//! - `ONE_INSTRUCTION_ACCESS`: whether `read_current`/`write_current` are a single instruction (then
//!   they need no preemption guard);
//! - `local_irq_save() -> usize`: disables local interrupts (on a hosted x86_64 Linux program: blocks
//!   every signal of the calling thread, signal handlers playing the part of interrupt handlers; with
//!   `sp-naive` on a host: no signal is blocked, the thread holds the one CPU, see `naive`) and
//!   returns the previous state; `unsafe local_irq_restore(flags)` restores the state `flags` that
//!   the matching `local_irq_save` returned (its safety condition: calls nest, the last saved is the
//!   first restored, on the CPU or thread that saved it). Both are compiler barriers: no memory
//!   access moves out of the section they delimit;
//! - the exported macro `__percpu_access!`, an unsafe expression with the forms
//!   - `(addr_of, sym STATIC)`: the VMA of a per-CPU static (a link-time constant);
//!   - `(ptr, T, sym STATIC)` / `(ptr, T, vma EXPR)`: `*mut T` to this CPU's copy;
//!   - `(read, T, sym STATIC)` / `(read, T, vma EXPR)`: load this CPU's copy of a [`PerCpuPrimitive`];
//!   - `(write, T, sym STATIC | vma EXPR, VALUE)`: store a [`PerCpuPrimitive`];
//!   - `(add | sub | and | or | xor, T, sym STATIC | vma EXPR, VALUE)`: guard-less read-modify-write
//!     of a [`PerCpuInteger`];
//!   - `(fetch_add, T, sym STATIC | vma EXPR, VALUE) -> T`: the same, returning the previous value;
//!   - `(xchg, T, sym STATIC | vma EXPR, VALUE) -> T`: guard-less swap of a [`PerCpuPrimitive`];
//!   - `(cmpxchg, T, sym STATIC | vma EXPR, CURRENT, NEW) -> T`: guard-less compare-and-swap of a
//!     [`PerCpuPrimitive`], returning the previous value (it stored `NEW` exactly when that value
//!     equals `CURRENT`).
//!
//!   The `sym` forms name the static in the instruction, so that its address is a link-time
//!   immediate; the `vma` forms take it in a register (run-time allocated data).
//!
//! # The guard-less operations
//!
//! Each read-modify-write form reads the per-CPU register *inside its own instruction sequence*
//! (never through a pointer computed earlier, which the compiler could compute long before), and is
//! one of:
//!
//! - one instruction on the register-relative operand (x86_64): it runs on one CPU, on that CPU's
//!   copy, and an interrupt comes before or after it;
//! - an atomic instruction on the address computed from the register (AMOs, LSE atomics): the update
//!   is atomic, on the copy of the CPU whose register was read, which is the previous CPU if the task
//!   migrated between reading the register and the atomic instruction;
//! - a load-exclusive/store-exclusive loop that reads the register on every attempt, on an
//!   architecture whose exception return clears the exclusive monitor (aarch64) or the LL bit
//!   (loongarch64): an interrupt or a migration between the load and the store makes the attempt
//!   fail and start over; a migration between reading the register and the load-exclusive makes the
//!   update land on the previous CPU's copy, as for an atomic instruction;
//! - [`rmw_irqsave`]: local interrupts disabled, the pointer computed, a load and a store, interrupts
//!   restored: on this CPU's copy, nothing interleaves on this CPU.
//!
//! The loads and stores of the last form are single-copy-atomic (relaxed atomic accesses), so that
//! another CPU reading the copy with an atomic load (a counter's sum) never races with them, and the
//! atomic forms are atomic against each other, also from another CPU that acts on this CPU's copy
//! after a migration. A plain access to the same copy (`with_current`, a `&mut`) is not: that is part
//! of the caller's contract of those accessors.
//!
//! # Inline assembly options, and what they promise
//!
//! - `nomem`: the assembly reads and writes no memory that Rust can see. Only the computation of a
//!   link-time address (`addr_of`) and the reading of a system register that memory accesses do not
//!   change are `nomem`.
//! - `readonly`: it writes no memory. `pure`: it has no side effect and its outputs depend only on its
//!   inputs and (unless `nomem`) on memory, so the compiler may merge two identical ones or drop an
//!   unused one. The `ptr` forms are `pure, readonly` although they also read the per-CPU register:
//!   that is sound because **every write of the per-CPU register clobbers memory** (its assembly has
//!   no `nomem`/`readonly`), so no `ptr` computed before a register write is reused after it. Every
//!   architecture's `write_reg` follows this rule.
//! - `nostack`: it does not push to the stack (x86_64's `pushf` in `local_irq_save` does).
//! - `preserves_flags`: it leaves the condition flags unchanged (x86_64's `add` or `cmpxchg` do not).
//! - Interrupt masking (`local_irq_save`/`local_irq_restore`) is never `nomem`, `readonly` or `pure`:
//!   it must keep the accesses of the section it delimits inside it.
//!
//! [`PerCpuPrimitive`]: crate::PerCpuPrimitive
//! [`PerCpuInteger`]: crate::PerCpuInteger

use crate::PerCpuPrimitive;

// Plain `#[cfg]` rather than `cfg_if!`: the files define exported macros, which the crate itself may only
// name by path when they are not macro-expanded. In a `sp-naive` kernel the architecture's file is
// compiled for its interrupt masking only (which `naive` takes from it), not for its register.
#[cfg(feature = "sp-naive")]
mod naive;
#[cfg(feature = "sp-naive")]
pub(crate) use naive::*;

#[cfg(all(
    target_arch = "x86_64",
    any(not(feature = "sp-naive"), target_os = "none")
))]
mod x86_64;
#[cfg(all(target_arch = "x86_64", not(feature = "sp-naive")))]
pub(crate) use x86_64::*;

#[cfg(all(
    target_arch = "aarch64",
    any(not(feature = "sp-naive"), target_os = "none")
))]
mod aarch64;
#[cfg(all(target_arch = "aarch64", not(feature = "sp-naive")))]
pub(crate) use aarch64::*;

#[cfg(all(
    target_arch = "riscv64",
    any(not(feature = "sp-naive"), target_os = "none")
))]
mod riscv64;
#[cfg(all(target_arch = "riscv64", not(feature = "sp-naive")))]
pub(crate) use riscv64::*;

#[cfg(all(
    target_arch = "loongarch64",
    any(not(feature = "sp-naive"), target_os = "none")
))]
mod loongarch64;
#[cfg(all(target_arch = "loongarch64", not(feature = "sp-naive")))]
pub(crate) use loongarch64::*;

#[cfg(all(
    target_arch = "arm",
    any(not(feature = "sp-naive"), target_os = "none")
))]
mod arm;
#[cfg(all(target_arch = "arm", not(feature = "sp-naive")))]
pub(crate) use arm::*;

#[cfg(not(any(
    feature = "sp-naive",
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "loongarch64",
    target_arch = "arm"
)))]
compile_error!("percpu: unsupported architecture; the `sp-naive` feature works everywhere");

/// A read-modify-write operation on the bits of a [`PerCpuPrimitive`] (zero-extended to 64 bits; only
/// the low `size_of::<T>()` bytes of a result are stored).
#[doc(hidden)]
#[derive(Clone, Copy)]
pub enum Rmw {
    /// Wrapping addition.
    Add(u64),
    /// Bitwise and.
    And(u64),
    /// Bitwise or.
    Or(u64),
    /// Bitwise exclusive or.
    Xor(u64),
    /// Replace.
    Xchg(u64),
    /// Replace with `.1` if equal to `.0`.
    Cmpxchg(u64, u64),
}

impl Rmw {
    /// The value to store over `old`, if any.
    #[inline(always)]
    fn apply(self, old: u64) -> Option<u64> {
        Some(match self {
            Rmw::Add(x) => old.wrapping_add(x),
            Rmw::And(x) => old & x,
            Rmw::Or(x) => old | x,
            Rmw::Xor(x) => old ^ x,
            Rmw::Xchg(new) => new,
            // Both zero-extended bits of a `T`.
            Rmw::Cmpxchg(current, new) if old == current => new,
            Rmw::Cmpxchg(..) => return None,
        })
    }
}

/// The generic guard-less read-modify-write: applies `op` to this CPU's copy at `ptr()` with local
/// interrupts disabled, and returns the previous value. `ptr` runs with interrupts disabled, so the
/// task stays on this CPU from computing the pointer to the store: the operation always lands on this
/// CPU's copy. The load and the store are relaxed atomic accesses, so that another CPU may read the
/// copy with an atomic load meanwhile (a counter's sum).
///
/// # Safety
///
/// `ptr()` must return a valid, aligned pointer to this CPU's copy of a `T`, which no reference aliases
/// and which no other CPU writes meanwhile.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn rmw_irqsave<T: PerCpuPrimitive>(ptr: impl FnOnce() -> *mut T, op: Rmw) -> T {
    let body = || {
        let ptr = ptr();
        // SAFETY: the caller's pointer to a `T`; with interrupts off nothing else on this CPU touches
        // it.
        let old = unsafe { load_relaxed(ptr) };
        if let Some(new) = op.apply(old) {
            // SAFETY: as above; the low bytes of any result are a valid integer, and `Xchg` and
            // `Cmpxchg` store the bits of a `T` given by the caller.
            unsafe { store_relaxed(ptr, new) };
        }
        // SAFETY: loaded from a location holding a `T`.
        unsafe { T::from_bits(old) }
    };
    // SAFETY: the closure returns only the loaded value.
    unsafe { with_irqs_off(body) }
}

/// Runs `f` with local interrupts disabled; restores them when `f` returns or unwinds.
///
/// # Safety
///
/// As [`LocalIrqsOff::new`](crate::raw::LocalIrqsOff::new): nothing that relies on interrupts staying
/// off (a checked-tier `IrqGuard`, or a reference it lent) outlives `f`, since the state is restored
/// when `f` returns. (A safe version let an `IrqGuard` escape the closure: an outside review.)
#[doc(hidden)]
#[inline(always)]
pub unsafe fn with_irqs_off<R>(f: impl FnOnce() -> R) -> R {
    let _irqs_off = IrqsOff::new();
    f()
}

/// Local interrupts disabled while alive; restored as they were when dropped (also on unwinding).
/// `!Send`: it restores the state of the CPU (or thread) that saved it.
pub(crate) struct IrqsOff {
    flags: usize,
    _not_send: core::marker::PhantomData<*mut ()>,
}

impl IrqsOff {
    /// Disables local interrupts.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Self {
            flags: local_irq_save(),
            _not_send: core::marker::PhantomData,
        }
    }

    /// The state that `new` saved.
    #[inline(always)]
    pub(crate) fn saved(&self) -> usize {
        self.flags
    }

    /// Leaves interrupts disabled: the caller takes over restoring [`saved`](Self::saved).
    #[inline(always)]
    pub(crate) fn keep_off(self) {
        core::mem::forget(self);
    }
}

impl Drop for IrqsOff {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the state saved by `new`, restored once, on the CPU (or thread) that saved it (the
        // value is `!Send`); values of this type are dropped in the reverse order of their creation,
        // as locals and fields are, so the calls nest.
        unsafe { local_irq_restore(self.flags) };
    }
}

/// Applies `op` to the `T` at `ptr` with an atomic read-modify-write operation of `core::sync::atomic`
/// (relaxed), and returns the previous value; where the target has no atomic operation of `T`'s
/// size, with [`rmw_irqsave`] instead.
///
/// # Safety
///
/// `ptr` is valid and aligned for a `T` that is only accessed atomically meanwhile (for the fallback:
/// as [`rmw_irqsave`]).
#[doc(hidden)]
#[inline(always)]
pub unsafe fn rmw_atomic<T: PerCpuPrimitive>(ptr: *mut T, op: Rmw) -> T {
    #[allow(unused_macros)] // on targets without any of these atomics
    macro_rules! sized {
        ($atomic:ident, $raw:ty) => {{
            use core::sync::atomic::Ordering::Relaxed;
            // SAFETY: the caller's pointer, aligned for a `T` of this size, accessed atomically.
            let a = unsafe { core::sync::atomic::$atomic::from_ptr(ptr.cast()) };
            (match op {
                Rmw::Add(x) => a.fetch_add(x as $raw, Relaxed),
                Rmw::And(x) => a.fetch_and(x as $raw, Relaxed),
                Rmw::Or(x) => a.fetch_or(x as $raw, Relaxed),
                Rmw::Xor(x) => a.fetch_xor(x as $raw, Relaxed),
                Rmw::Xchg(x) => a.swap(x as $raw, Relaxed),
                Rmw::Cmpxchg(c, n) => {
                    match a.compare_exchange(c as $raw, n as $raw, Relaxed, Relaxed) {
                        Ok(v) | Err(v) => v,
                    }
                }
            }) as u64
        }};
    }
    let old = match size_of::<T>() {
        #[cfg(target_has_atomic = "8")]
        1 => sized!(AtomicU8, u8),
        #[cfg(target_has_atomic = "16")]
        2 => sized!(AtomicU16, u16),
        #[cfg(target_has_atomic = "32")]
        4 => sized!(AtomicU32, u32),
        #[cfg(target_has_atomic = "64")]
        8 => sized!(AtomicU64, u64),
        // SAFETY: forwarded to the caller.
        _ => return unsafe { rmw_irqsave(|| ptr, op) },
    };
    // SAFETY: loaded from a location holding a `T`.
    unsafe { T::from_bits(old) }
}

/// A relaxed atomic load of the `T` at `ptr` (a plain load instruction).
///
/// # Safety
///
/// `ptr` is valid and aligned for a `T`, not written non-atomically meanwhile.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn read_relaxed<T: PerCpuPrimitive>(ptr: *mut T) -> T {
    // SAFETY: forwarded to the caller; the bytes of a `T`.
    unsafe { T::from_bits(load_relaxed(ptr)) }
}

/// A relaxed atomic store of `value` to `ptr` (a plain store instruction).
///
/// # Safety
///
/// `ptr` is valid and aligned for a `T`, not accessed non-atomically meanwhile.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn write_relaxed<T: PerCpuPrimitive>(ptr: *mut T, value: T) {
    // SAFETY: forwarded to the caller; the bits of a `T`.
    unsafe { store_relaxed(ptr, value.to_bits()) }
}

/// A relaxed atomic load of the `T` at `ptr`, zero-extended.
///
/// # Safety
///
/// `ptr` is valid and aligned for a `T`, not written non-atomically meanwhile.
#[inline(always)]
unsafe fn load_relaxed<T: PerCpuPrimitive>(ptr: *mut T) -> u64 {
    use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU8, Ordering::Relaxed};
    // SAFETY (each arm): the caller's pointer, aligned for an integer of `T`'s size.
    unsafe {
        match size_of::<T>() {
            1 => AtomicU8::from_ptr(ptr.cast()).load(Relaxed) as u64,
            2 => AtomicU16::from_ptr(ptr.cast()).load(Relaxed) as u64,
            4 => AtomicU32::from_ptr(ptr.cast()).load(Relaxed) as u64,
            _ => load_relaxed_u64(ptr.cast()),
        }
    }
}

/// A relaxed atomic store of the low `size_of::<T>()` bytes of `bits` to `ptr`.
///
/// # Safety
///
/// As [`load_relaxed`], and the bytes are a valid `T`.
#[inline(always)]
unsafe fn store_relaxed<T: PerCpuPrimitive>(ptr: *mut T, bits: u64) {
    use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU8, Ordering::Relaxed};
    // SAFETY (each arm): the caller's pointer, aligned for an integer of `T`'s size.
    unsafe {
        match size_of::<T>() {
            1 => AtomicU8::from_ptr(ptr.cast()).store(bits as u8, Relaxed),
            2 => AtomicU16::from_ptr(ptr.cast()).store(bits as u16, Relaxed),
            4 => AtomicU32::from_ptr(ptr.cast()).store(bits as u32, Relaxed),
            _ => store_relaxed_u64(ptr.cast(), bits),
        }
    }
}

/// A relaxed atomic 64-bit load (single-copy atomic: `ldrexd` on 32-bit arm); a plain load where the
/// target has no 64-bit atomics.
///
/// # Safety
///
/// `ptr` is valid and 8-byte aligned.
#[inline(always)]
unsafe fn load_relaxed_u64(ptr: *mut u64) -> u64 {
    #[cfg(target_has_atomic = "64")]
    // SAFETY: the caller's aligned pointer.
    return unsafe { core::sync::atomic::AtomicU64::from_ptr(ptr) }
        .load(core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(target_has_atomic = "64"))]
    // SAFETY: the caller's aligned pointer.
    return unsafe { ptr.read() };
}

/// A relaxed atomic 64-bit store (`ldrexd`/`strexd` on 32-bit arm); a plain store where the target has
/// no 64-bit atomics.
///
/// # Safety
///
/// `ptr` is valid and 8-byte aligned.
#[inline(always)]
unsafe fn store_relaxed_u64(ptr: *mut u64, bits: u64) {
    #[cfg(target_has_atomic = "64")]
    // SAFETY: the caller's aligned pointer.
    unsafe { core::sync::atomic::AtomicU64::from_ptr(ptr) }
        .store(bits, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(target_has_atomic = "64"))]
    // SAFETY: the caller's aligned pointer.
    unsafe {
        ptr.write(bits)
    };
}

/// The guard-less operations through the `ptr` form of `__percpu_access!` and [`rmw_irqsave`], for
/// architectures without dedicated sequences (32-bit arm). `read` and `write` are a load or store
/// through the pointer.
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access_via_ptr {
    (read, $T:ty, $kind:ident $a:tt) => {
        $crate::__percpu_access!(ptr, $T, $kind $a).read()
    };
    (write, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__percpu_access!(ptr, $T, $kind $a).write($val)
    };
    ($op:ident, $T:ty, $kind:ident $a:tt $(, $val:expr)+) => {
        $crate::__percpu_rmw_result!($op, $crate::__priv::rmw_irqsave::<$T>(
            || $crate::__percpu_access!(ptr, $T, $kind $a),
            $crate::__percpu_rmw_op!($op, $T $(, $val)+),
        ))
    };
}

/// The [`Rmw`] of a read-modify-write form of `__percpu_access!` (see the module documentation):
/// `(op, T, VALUE)` or `(cmpxchg, T, CURRENT, NEW)`.
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_rmw_op {
    (add, $T:ty, $val:expr) => {
        $crate::__priv::Rmw::Add(<$T as $crate::PerCpuPrimitive>::to_bits($val))
    };
    (fetch_add, $T:ty, $val:expr) => {
        $crate::__priv::Rmw::Add(<$T as $crate::PerCpuPrimitive>::to_bits($val))
    };
    (sub, $T:ty, $val:expr) => {
        $crate::__priv::Rmw::Add(<$T as $crate::PerCpuPrimitive>::to_bits(
            <$T as $crate::PerCpuInteger>::wrapping_neg($val),
        ))
    };
    (and, $T:ty, $val:expr) => {
        $crate::__priv::Rmw::And(<$T as $crate::PerCpuPrimitive>::to_bits($val))
    };
    (or, $T:ty, $val:expr) => {
        $crate::__priv::Rmw::Or(<$T as $crate::PerCpuPrimitive>::to_bits($val))
    };
    (xor, $T:ty, $val:expr) => {
        $crate::__priv::Rmw::Xor(<$T as $crate::PerCpuPrimitive>::to_bits($val))
    };
    (xchg, $T:ty, $val:expr) => {
        $crate::__priv::Rmw::Xchg(<$T as $crate::PerCpuPrimitive>::to_bits($val))
    };
    (cmpxchg, $T:ty, $current:expr, $new:expr) => {
        $crate::__priv::Rmw::Cmpxchg(
            <$T as $crate::PerCpuPrimitive>::to_bits($current),
            <$T as $crate::PerCpuPrimitive>::to_bits($new),
        )
    };
}

/// The value of a read-modify-write form whose implementation computes the previous value `$old`:
/// that value for `fetch_add`, `xchg` and `cmpxchg`, `()` for the others.
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_rmw_result {
    (fetch_add, $old:expr) => {
        $old
    };
    (xchg, $old:expr) => {
        $old
    };
    (cmpxchg, $old:expr) => {
        $old
    };
    ($op:ident, $old:expr) => {{
        let _ = $old;
    }};
}
