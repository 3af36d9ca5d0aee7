//! aarch64: the per-CPU register is `TPIDR_EL1` (`TPIDR_EL2` with the `arm-el2` feature).
//!
//! A static's VMA is a `movz` immediate (checked by the linker: the `.percpu` section must stay below
//! 64 KiB) or, with `non-zero-vma`, `adrp` + `add`. Loads and stores use the register-offset form
//! `[base, vma]`. Read-modify-write uses `stadd` with the `lse` target feature, else an
//! exclusive-load/store loop that re-reads the base register on every attempt.

/// Reading the register and the memory are separate instructions.
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = false;

/// The instruction-text fragments that depend on this crate's features.
#[doc(hidden)]
#[macro_export]
#[cfg(not(feature = "arm-el2"))]
macro_rules! __percpu_a64_tpidr {
    () => {
        "TPIDR_EL1"
    };
}

/// The instruction-text fragments that depend on this crate's features.
#[doc(hidden)]
#[macro_export]
#[cfg(feature = "arm-el2")]
macro_rules! __percpu_a64_tpidr {
    () => {
        "TPIDR_EL2"
    };
}

/// Loads the VMA of static `{a}` into `{o}`.
#[doc(hidden)]
#[macro_export]
#[cfg(not(feature = "non-zero-vma"))]
macro_rules! __percpu_a64_vma {
    () => {
        "movz {o}, #:abs_g0:{a}"
    };
}

/// Loads the VMA of static `{a}` into `{o}`.
#[doc(hidden)]
#[macro_export]
#[cfg(feature = "non-zero-vma")]
macro_rules! __percpu_a64_vma {
    () => {
        "adrp {o}, {a}\nadd {o}, {o}, :lo12:{a}"
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access {
    (addr_of, sym $s:path) => {{
        let vma: usize;
        ::core::arch::asm!($crate::__percpu_a64_vma!(), o = out(reg) vma, a = sym $s,
            options(pure, nomem, nostack, preserves_flags));
        vma
    }};
    (ptr, $T:ty, vma $vma:expr) => {{
        // The addition stays outside the asm, so that the compiler can fold it into a `[base, index]`
        // addressing mode of the access that follows.
        let base: usize;
        ::core::arch::asm!(concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()), b = out(reg) base,
            options(pure, readonly, nostack, preserves_flags));
        base.wrapping_add($vma) as *mut $T
    }};
    (read, $T:ty, vma $vma:expr) => {{
        let vma: usize = $vma;
        let bits: u64;
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@base "ldrb {x:w}, [{b}, {v}]", vma, x = lateout(reg) bits, readonly),
            2 => $crate::__percpu_access!(@base "ldrh {x:w}, [{b}, {v}]", vma, x = lateout(reg) bits, readonly),
            4 => $crate::__percpu_access!(@base "ldr {x:w}, [{b}, {v}]", vma, x = lateout(reg) bits, readonly),
            _ => $crate::__percpu_access!(@base "ldr {x}, [{b}, {v}]", vma, x = lateout(reg) bits, readonly),
        }
        $crate::__priv::from_loaded::<$T>(bits)
    }};
    (write, $T:ty, vma $vma:expr, $val:expr) => {{
        let (vma, val): (usize, $T) = ($vma, $val);
        // The value goes in at its own width: no zero-extension before the store.
        match ::core::mem::size_of::<$T>() {
            1 => {
                let bits: u8 = $crate::__priv::bits_as(val);
                $crate::__percpu_access!(@base "strb {x:w}, [{b}, {v}]", vma, x = in(reg) bits)
            }
            2 => {
                let bits: u16 = $crate::__priv::bits_as(val);
                $crate::__percpu_access!(@base "strh {x:w}, [{b}, {v}]", vma, x = in(reg) bits)
            }
            4 => {
                let bits: u32 = $crate::__priv::bits_as(val);
                $crate::__percpu_access!(@base "str {x:w}, [{b}, {v}]", vma, x = in(reg) bits)
            }
            _ => {
                let bits: u64 = $crate::__priv::bits_as(val);
                $crate::__percpu_access!(@base "str {x}, [{b}, {v}]", vma, x = in(reg) bits)
            }
        }
    }};
    (add, $T:ty, vma $vma:expr, $val:expr) => {{
        let vma: usize = $vma;
        let bits = <$T as $crate::PerCpuPrimitive>::to_bits($val);
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@rmw "b", "w", vma, bits),
            2 => $crate::__percpu_access!(@rmw "h", "w", vma, bits),
            4 => $crate::__percpu_access!(@rmw "", "w", vma, bits),
            _ => $crate::__percpu_access!(@rmw "", "x", vma, bits),
        }
    }};
    (sub, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__percpu_access!(add, $T, $kind $a, <$T as $crate::PerCpuInteger>::wrapping_neg($val))
    };
    // The `sym` forms: the VMA as an immediate, then the `vma` form.
    ($op:ident, $T:ty, sym $s:path $(, $val:expr)?) => {{
        let vma = $crate::__percpu_access!(addr_of, sym $s);
        $crate::__percpu_access!($op, $T, vma vma $(, $val)?)
    }};
    // `mrs` of the base into `{b}`, then `$ins` addressing `[{b}, {v}]`.
    (@base $ins:literal, $vma:ident, $($x:ident = $dir:ident(reg) $bits:ident)*, readonly) => {
        ::core::arch::asm!(concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()), $ins, b = out(reg) _,
            v = in(reg) $vma, $($x = $dir(reg) $bits)*, options(nostack, preserves_flags, readonly))
    };
    (@base $ins:literal, $vma:ident, $($x:ident = $dir:ident(reg) $bits:ident)*) => {
        ::core::arch::asm!(concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()), $ins, b = out(reg) _,
            v = in(reg) $vma, $($x = $dir(reg) $bits)*, options(nostack, preserves_flags))
    };
    // Guard-less add of `$bits` (`$size` suffix, `$w` register width) to this CPU's copy.
    (@rmw $size:literal, $w:literal, $vma:ident, $bits:ident) => {{
        #[cfg(target_feature = "lse")]
        ::core::arch::asm!(
            concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
            "add {b}, {b}, {v}",
            concat!("stadd", $size, " {x:", $w, "}, [{b}]"),
            b = out(reg) _, v = in(reg) $vma, x = in(reg) $bits,
            options(nostack, preserves_flags),
        );
        #[cfg(not(target_feature = "lse"))]
        ::core::arch::asm!(
            "2:",
            concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
            "add {b}, {b}, {v}",
            concat!("ldxr", $size, " {t:", $w, "}, [{b}]"),
            concat!("add {t:", $w, "}, {t:", $w, "}, {x:", $w, "}"),
            concat!("stxr", $size, " {s:w}, {t:", $w, "}, [{b}]"),
            "cbnz {s:w}, 2b",
            b = out(reg) _, t = out(reg) _, s = out(reg) _, v = in(reg) $vma, x = in(reg) $bits,
            options(nostack, preserves_flags),
        );
    }};
}

/// The raw per-CPU register.
pub(crate) fn read_reg() -> usize {
    let value: usize;
    // SAFETY: reads a system register accessible at the kernel's exception level.
    unsafe {
        core::arch::asm!(concat!("mrs {}, ", crate::__percpu_a64_tpidr!()), out(reg) value,
            options(nomem, nostack, preserves_flags));
    }
    value
}

/// Sets the per-CPU register.
///
/// # Safety
///
/// `value + VMA` must be valid per-CPU memory for every per-CPU VMA used afterwards.
pub(crate) unsafe fn write_reg(value: usize) {
    // SAFETY: writes a system register; the caller vouches for the area it designates.
    unsafe {
        core::arch::asm!(concat!("msr ", crate::__percpu_a64_tpidr!(), ", {}"), in(reg) value,
            options(nostack, preserves_flags));
    }
}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn prepare_area(_area: usize) {}
