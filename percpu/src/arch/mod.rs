//! The per-CPU register and the access sequences, one file per architecture.
//!
//! Every architecture file provides the same small interface:
//!
//! - `read_reg() -> usize` and `unsafe write_reg(usize)`: the raw per-CPU register, which holds
//!   `area base - template VMA`;
//! - `unsafe prepare_area(base)`: what a freshly copied area needs besides the template (x86_64
//!   records its own register value there);
//! - `ONE_INSTRUCTION_ACCESS`: whether `read_current`/`write_current` are a single instruction (then
//!   they need no preemption guard);
//! - the exported macro `__percpu_access!`, an unsafe expression with the forms
//!   - `(addr_of, sym STATIC)`: the VMA of a per-CPU static (a link-time constant);
//!   - `(ptr, T, sym STATIC)` / `(ptr, T, vma EXPR)`: `*mut T` to this CPU's copy;
//!   - `(read, T, sym STATIC)` / `(read, T, vma EXPR)`: load this CPU's copy of a [`PerCpuPrimitive`];
//!   - `(write | add | sub, T, sym STATIC | vma EXPR, VALUE)`: store, or guard-less read-modify-write
//!     of a [`PerCpuInteger`].
//!
//!   The `sym` forms name the static in the instruction, so that its address is a link-time
//!   immediate; the `vma` forms take it in a register (run-time allocated data).
//!
//! [`PerCpuPrimitive`]: crate::PerCpuPrimitive
//! [`PerCpuInteger`]: crate::PerCpuInteger

// Plain `#[cfg]` rather than `cfg_if!`: the files define exported macros, which the crate itself may only
// name by path when they are not macro-expanded.
#[cfg(feature = "sp-naive")]
mod naive;
#[cfg(feature = "sp-naive")]
pub(crate) use naive::*;

#[cfg(all(not(feature = "sp-naive"), target_arch = "x86_64"))]
mod x86_64;
#[cfg(all(not(feature = "sp-naive"), target_arch = "x86_64"))]
pub(crate) use x86_64::*;

#[cfg(all(not(feature = "sp-naive"), target_arch = "aarch64"))]
mod aarch64;
#[cfg(all(not(feature = "sp-naive"), target_arch = "aarch64"))]
pub(crate) use aarch64::*;

#[cfg(all(not(feature = "sp-naive"), target_arch = "riscv64"))]
mod riscv64;
#[cfg(all(not(feature = "sp-naive"), target_arch = "riscv64"))]
pub(crate) use riscv64::*;

#[cfg(all(not(feature = "sp-naive"), target_arch = "loongarch64"))]
mod loongarch64;
#[cfg(all(not(feature = "sp-naive"), target_arch = "loongarch64"))]
pub(crate) use loongarch64::*;

#[cfg(all(not(feature = "sp-naive"), target_arch = "arm"))]
mod arm;
#[cfg(all(not(feature = "sp-naive"), target_arch = "arm"))]
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

/// The generic fallback of `add`/`sub`: a plain read-modify-write of this CPU's copy with local
/// interrupts disabled (so neither an interrupt handler nor preemption can interleave).
///
/// An unsafe expression; `$ptr` is evaluated with interrupts already disabled.
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_rmw_irqsave {
    ($T:ty, $ptr:expr, $delta:expr) => {{
        let delta: $T = $delta;
        let _irq = $crate::__priv::IrqSave::new();
        let ptr: *mut $T = $ptr;
        ptr.write(<$T as $crate::PerCpuInteger>::wrapping_add(
            ptr.read(),
            delta,
        ));
    }};
}

/// `read`, `write`, `add` and `sub` through the `ptr` form of `__percpu_access!`, for architectures
/// without dedicated sequences: a load or store through the pointer, and the interrupt-disabling
/// read-modify-write of [`__percpu_rmw_irqsave!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access_via_ptr {
    (read, $T:ty, $kind:ident $a:tt) => {
        $crate::__percpu_access!(ptr, $T, $kind $a).read()
    };
    (write, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__percpu_access!(ptr, $T, $kind $a).write($val)
    };
    (add, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__percpu_rmw_irqsave!($T, $crate::__percpu_access!(ptr, $T, $kind $a), $val)
    };
    (sub, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__percpu_rmw_irqsave!(
            $T,
            $crate::__percpu_access!(ptr, $T, $kind $a),
            <$T as $crate::PerCpuInteger>::wrapping_neg($val)
        )
    };
}
