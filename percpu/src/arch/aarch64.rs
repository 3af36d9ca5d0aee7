//! aarch64: the per-CPU register is `TPIDR_EL1` (`TPIDR_EL2` with the `arm-el2` feature).
//!
//! A static's VMA is a `movz` immediate (checked by the linker: the `.percpu` section must stay below
//! 64 KiB), with `large-template` a `movz` and a `movk` (below 4 GiB), or, with `non-zero-vma`,
//! `adrp` + `add`. Loads and stores use the register-offset form
//! `[base, vma]`. Read-modify-write uses the LSE atomics (`stadd`, `ldadd`, `swp`, `cas`, `stclr`,
//! `stset`, `steor`) with the `lse` target feature, else an exclusive-load/store loop that re-reads
//! the base register on every attempt; an exception return clears the exclusive monitor (ARMv8), so
//! an attempt interrupted between its load and its store fails and starts over.
//!
//! Local interrupts: `DAIF.I` and `DAIF.F` (IRQ and FIQ; some machines deliver timers as FIQs).

/// Reading the register and the memory are separate instructions.
#[cfg(not(feature = "sp-naive"))]
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

/// Loads the VMA of static `{a}` into `{o}`: one `movz`, whose 16-bit immediate the linker checks
/// (the template must stay below 64 KiB).
#[doc(hidden)]
#[macro_export]
#[cfg(not(any(feature = "non-zero-vma", feature = "large-template")))]
macro_rules! __percpu_a64_vma {
    () => {
        "movz {o}, #:abs_g0:{a}"
    };
}

/// Loads the VMA of static `{a}` into `{o}` with `large-template`: bits 16 to 31 with `movz` (checked by
/// the linker: a template below 4 GiB), bits 0 to 15 with `movk`.
#[doc(hidden)]
#[macro_export]
#[cfg(all(feature = "large-template", not(feature = "non-zero-vma")))]
macro_rules! __percpu_a64_vma {
    () => {
        "movz {o}, #:abs_g1:{a}\nmovk {o}, #:abs_g0_nc:{a}"
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

#[cfg(not(feature = "sp-naive"))]
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
    (add, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@rmw ldadd "add", $T, $vma, $val, _)
    };
    (fetch_add, $T:ty, vma $vma:expr, $val:expr) => {{
        let old: u64;
        $crate::__percpu_access!(@rmw ldadd "add", $T, $vma, $val, old);
        $crate::__priv::from_loaded::<$T>(old)
    }};
    (sub, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(add, $T, vma $vma, <$T as $crate::PerCpuInteger>::wrapping_neg($val))
    };
    // LSE has no "and": `ldclr` clears the bits set in its operand, the complement.
    (and, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@rmw ldclr "and", $T, $vma, $val, _)
    };
    (or, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@rmw ldset "orr", $T, $vma, $val, _)
    };
    (xor, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@rmw ldeor "eor", $T, $vma, $val, _)
    };
    (xchg, $T:ty, vma $vma:expr, $val:expr) => {{
        let old: u64;
        $crate::__percpu_access!(@rmw swp "", $T, $vma, $val, old);
        $crate::__priv::from_loaded::<$T>(old)
    }};
    (cmpxchg, $T:ty, vma $vma:expr, $current:expr, $new:expr) => {{
        let (vma, current, new): (usize, $T, $T) = ($vma, $current, $new);
        let old: u64;
        // The values go in at their own width; the comparison zero-extends the 8- and 16-bit one.
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@cas u8, "b", "w", ", uxtb", vma, current, new, old),
            2 => $crate::__percpu_access!(@cas u16, "h", "w", ", uxth", vma, current, new, old),
            4 => $crate::__percpu_access!(@cas u32, "", "w", "", vma, current, new, old),
            _ => $crate::__percpu_access!(@cas u64, "", "x", "", vma, current, new, old),
        }
        $crate::__priv::from_loaded::<$T>(old)
    }};
    // The `sym` forms: the VMA as an immediate, then the `vma` form.
    ($op:ident, $T:ty, sym $s:path $(, $val:expr)*) => {{
        let vma = $crate::__percpu_access!(addr_of, sym $s);
        $crate::__percpu_access!($op, $T, vma vma $(, $val)*)
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
    // Guard-less `$lse` (an LSE atomic) / `$alu` (the operation of an exclusive loop; none: a swap) of
    // `$val` on this CPU's copy, the previous value into `$old` (`_`: dropped). The value goes in at
    // its own width (the instructions use its low bits): no zero-extension.
    (@rmw $lse:ident $alu:tt, $T:ty, $vma:expr, $val:expr, $old:tt) => {{
        let (vma, val): (usize, $T) = ($vma, $val);
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@rmw_sized $lse $alu, u8, "b", "w", vma, val, $old),
            2 => $crate::__percpu_access!(@rmw_sized $lse $alu, u16, "h", "w", vma, val, $old),
            4 => $crate::__percpu_access!(@rmw_sized $lse $alu, u32, "", "w", vma, val, $old),
            _ => $crate::__percpu_access!(@rmw_sized $lse $alu, u64, "", "x", vma, val, $old),
        }
    }};
    (@rmw_sized ldclr $alu:tt, $raw:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@rmw_bits ldclr $alu, $raw, [!], $($rest)*)
    };
    (@rmw_sized $lse:ident $alu:tt, $raw:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@rmw_bits $lse $alu, $raw, [], $($rest)*)
    };
    // With LSE: the register, the address, one atomic instruction (its `st` form, the zero register as
    // destination, when the previous value is dropped). `ldclr` takes the complement of the value
    // (`$not`); the exclusive loop's `and` takes the value as it is.
    (@rmw_bits $lse:ident $alu:tt, $raw:ty, [$($not:tt)?], $size:literal, $w:literal, $vma:ident, $val:ident, _) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        #[cfg(target_feature = "lse")]
        ::core::arch::asm!(
            concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
            "add {b}, {b}, {v}",
            concat!(stringify!($lse), $size, " {x:", $w, "}, ", $w, "zr, [{b}]"),
            b = out(reg) _, v = in(reg) $vma, x = in(reg) $($not)? bits,
            options(nostack, preserves_flags),
        );
        #[cfg(not(target_feature = "lse"))]
        $crate::__percpu_access!(@llsc $alu, $size, $w, $vma, bits, _);
    }};
    (@rmw_bits $lse:ident $alu:tt, $raw:ty, [$($not:tt)?], $size:literal, $w:literal, $vma:ident, $val:ident, $old:ident) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        #[cfg(target_feature = "lse")]
        ::core::arch::asm!(
            concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
            "add {b}, {b}, {v}",
            concat!(stringify!($lse), $size, " {x:", $w, "}, {o:", $w, "}, [{b}]"),
            b = out(reg) _, v = in(reg) $vma, x = in(reg) $($not)? bits, o = out(reg) $old,
            options(nostack, preserves_flags),
        );
        #[cfg(not(target_feature = "lse"))]
        $crate::__percpu_access!(@llsc $alu, $size, $w, $vma, bits, $old);
    }};
    // Without LSE: an exclusive loop that reads the register on every attempt.
    (@llsc "", $size:literal, $w:literal, $vma:ident, $bits:ident, $old:tt) => {
        ::core::arch::asm!(
            "2:",
            concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
            "add {b}, {b}, {v}",
            concat!("ldxr", $size, " {o:", $w, "}, [{b}]"),
            concat!("stxr", $size, " {s:w}, {x:", $w, "}, [{b}]"),
            "cbnz {s:w}, 2b",
            b = out(reg) _, s = out(reg) _, o = out(reg) $old, v = in(reg) $vma, x = in(reg) $bits,
            options(nostack, preserves_flags),
        )
    };
    (@llsc $alu:tt, $size:literal, $w:literal, $vma:ident, $bits:ident, $old:tt) => {
        ::core::arch::asm!(
            "2:",
            concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
            "add {b}, {b}, {v}",
            concat!("ldxr", $size, " {o:", $w, "}, [{b}]"),
            concat!($alu, " {t:", $w, "}, {o:", $w, "}, {x:", $w, "}"),
            concat!("stxr", $size, " {s:w}, {t:", $w, "}, [{b}]"),
            "cbnz {s:w}, 2b",
            b = out(reg) _, t = out(reg) _, s = out(reg) _, o = out(reg) $old, v = in(reg) $vma,
            x = in(reg) $bits, options(nostack, preserves_flags),
        )
    };
    // Compare-and-swap: `cas` with LSE (it compares the low `$size` bits); else an exclusive loop that
    // leaves without storing when the copy differs from `$current` (zero-extended by `$ext`).
    (@cas $raw:ty, $size:literal, $w:literal, $ext:literal, $vma:ident, $current:ident, $new:ident, $old:ident) => {{
        let current: $raw = $crate::__priv::bits_as($current);
        let new: $raw = $crate::__priv::bits_as($new);
        #[cfg(target_feature = "lse")]
        {
            let old: $raw;
            ::core::arch::asm!(
                concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
                "add {b}, {b}, {v}",
                concat!("cas", $size, " {c:", $w, "}, {n:", $w, "}, [{b}]"),
                b = out(reg) _, v = in(reg) $vma, c = inout(reg) current => old, n = in(reg) new,
                options(nostack, preserves_flags),
            );
            $old = old as u64;
        }
        #[cfg(not(target_feature = "lse"))]
        ::core::arch::asm!(
            "2:",
            concat!("mrs {b}, ", $crate::__percpu_a64_tpidr!()),
            "add {b}, {b}, {v}",
            concat!("ldxr", $size, " {o:", $w, "}, [{b}]"),
            concat!("cmp {o:", $w, "}, {c:", $w, "}", $ext),
            "b.ne 3f",
            concat!("stxr", $size, " {s:w}, {n:", $w, "}, [{b}]"),
            "cbnz {s:w}, 2b",
            "3:",
            b = out(reg) _, s = out(reg) _, o = out(reg) $old, v = in(reg) $vma, c = in(reg) current,
            n = in(reg) new, options(nostack),
        );
    }};
}

/// The raw per-CPU register.
#[cfg(not(feature = "sp-naive"))]
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
#[cfg(not(feature = "sp-naive"))]
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
#[cfg(not(feature = "sp-naive"))]
pub(crate) unsafe fn prepare_area(_area: usize) {}

/// Masks IRQs and FIQs (`DAIF.I`, `DAIF.F`); returns the previous `DAIF`.
#[inline]
pub(crate) fn local_irq_save() -> usize {
    let flags: usize;
    // SAFETY: `DAIF` is accessible at EL1 and EL2, where the kernel runs. A compiler barrier (no
    // `nomem`).
    unsafe {
        core::arch::asm!("mrs {}, daif", "msr daifset, #3", out(reg) flags,
            options(nostack, preserves_flags))
    };
    flags
}

/// Restores the `DAIF` that [`local_irq_save`] returned.
///
/// # Safety
///
/// `flags` must come from the matching [`local_irq_save`] on this CPU, the last one not yet restored.
#[inline]
pub(crate) unsafe fn local_irq_restore(flags: usize) {
    // SAFETY: at EL1 or EL2; the caller restores the state of its own section. A compiler barrier.
    unsafe { core::arch::asm!("msr daif, {}", in(reg) flags, options(nostack, preserves_flags)) };
}
