//! riscv64: the per-CPU register is `gp` (`tp` stays the thread pointer).
//!
//! A static's VMA is `lui` + `%lo` (absolute, the `.percpu` section being linked at 0) or, with
//! `non-zero-vma`, `auipc` + `%pcrel_lo`; the `%lo` part folds into the load or store. Linker
//! relaxation is disabled around these sequences: it would rewrite the `%lo` base register.
//! Read-modify-write is `amoadd` on the computed address for 32- and 64-bit integers; 8- and 16-bit
//! ones disable interrupts around a plain read-modify-write.

/// Reading the register and the memory are separate instructions.
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = false;

/// The high part of static `{a}`'s VMA into `{t}`, and the matching low part for a load or store.
#[doc(hidden)]
#[macro_export]
#[cfg(not(feature = "non-zero-vma"))]
macro_rules! __percpu_rv_vma {
    (hi) => {
        "lui {t}, %hi({a})"
    };
    (lo) => {
        "%lo({a})"
    };
}

/// The high part of static `{a}`'s VMA into `{t}`, and the matching low part for a load or store.
#[doc(hidden)]
#[macro_export]
#[cfg(feature = "non-zero-vma")]
macro_rules! __percpu_rv_vma {
    (hi) => {
        "2: auipc {t}, %pcrel_hi({a})"
    };
    (lo) => {
        "%pcrel_lo(2b)"
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access {
    (addr_of, sym $s:path) => {{
        let vma: usize;
        ::core::arch::asm!(".option push", ".option norelax", $crate::__percpu_rv_vma!(hi),
            concat!("addi {t}, {t}, ", $crate::__percpu_rv_vma!(lo)), ".option pop",
            t = out(reg) vma, a = sym $s, options(pure, nomem, nostack, preserves_flags));
        vma
    }};
    (ptr, $T:ty, sym $s:path) => {{
        let vma = $crate::__percpu_access!(addr_of, sym $s);
        $crate::__percpu_access!(ptr, $T, vma vma)
    }};
    (ptr, $T:ty, vma $vma:expr) => {{
        let ptr: *mut $T;
        ::core::arch::asm!("add {p}, {v}, gp", p = out(reg) ptr, v = in(reg) $vma,
            options(pure, readonly, nostack, preserves_flags));
        ptr
    }};
    (read, $T:ty, sym $s:path) => {{
        let bits: u64;
        $crate::__percpu_access!(@load $T, [$crate::__percpu_rv_vma!(hi), "add {t}, {t}, gp"],
            $crate::__percpu_rv_vma!(lo), t = out(reg) bits, a = sym $s);
        $crate::__percpu_access!(@value $T, bits)
    }};
    (read, $T:ty, vma $vma:expr) => {{
        let bits: u64;
        $crate::__percpu_access!(@load $T, ["add {t}, {t}, gp"], "0", t = inout(reg) $vma => bits);
        $crate::__percpu_access!(@value $T, bits)
    }};
    (write, $T:ty, sym $s:path, $val:expr) => {
        $crate::__percpu_access!(@store $T, $val, [$crate::__percpu_rv_vma!(hi), "add {t}, {t}, gp"],
            $crate::__percpu_rv_vma!(lo), t = out(reg) _, a = sym $s)
    };
    (write, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@store $T, $val, ["add {t}, {t}, gp"], "0", t = inout(reg) $vma => _)
    };
    (add, $T:ty, $kind:ident $a:tt, $val:expr) => {{
        let delta: $T = $val;
        match ::core::mem::size_of::<$T>() {
            4 | 8 => {
                let ptr = $crate::__percpu_access!(ptr, $T, $kind $a);
                let bits = <$T as $crate::PerCpuPrimitive>::to_bits(delta);
                if ::core::mem::size_of::<$T>() == 4 {
                    ::core::arch::asm!("amoadd.w zero, {x}, ({p})", p = in(reg) ptr, x = in(reg) bits,
                        options(nostack, preserves_flags));
                } else {
                    ::core::arch::asm!("amoadd.d zero, {x}, ({p})", p = in(reg) ptr, x = in(reg) bits,
                        options(nostack, preserves_flags));
                }
            }
            _ => $crate::__percpu_rmw_irqsave!($T, $crate::__percpu_access!(ptr, $T, $kind $a), delta),
        }
    }};
    (sub, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__percpu_access!(add, $T, $kind $a, <$T as $crate::PerCpuInteger>::wrapping_neg($val))
    };
    // `[$pre..]` computes `gp + high part` into `{t}`, then a load of the type's width at `$lo({t})`,
    // into `{t}` itself (the operands say where the result goes); 32-bit loads sign-extend.
    (@load $T:ty, [$($pre:expr),*], $lo:expr, $($operands:tt)*) => {
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@load_sized "lbu", [$($pre),*], $lo, $($operands)*),
            2 => $crate::__percpu_access!(@load_sized "lhu", [$($pre),*], $lo, $($operands)*),
            4 => $crate::__percpu_access!(@load_sized "lw", [$($pre),*], $lo, $($operands)*),
            _ => $crate::__percpu_access!(@load_sized "ld", [$($pre),*], $lo, $($operands)*),
        }
    };
    // The value of `@load`'s result: 32-bit loads sign-extend (`lw`, the ABI's form), others
    // zero-extend.
    (@value $T:ty, $bits:ident) => {
        if ::core::mem::size_of::<$T>() == 4 {
            $crate::__priv::from_loaded_sext32::<$T>($bits)
        } else {
            $crate::__priv::from_loaded::<$T>($bits)
        }
    };
    (@load_sized $ins:literal, [$($pre:expr),*], $lo:expr, $($operands:tt)*) => {
        ::core::arch::asm!(".option push", ".option norelax", $($pre,)* concat!($ins, " {t}, ", $lo, "({t})"),
            ".option pop", $($operands)*, options(nostack, preserves_flags, readonly))
    };
    // As `@load`, with a store of the type's width (the value at its own width: no zero-extension).
    (@store $T:ty, $val:expr, [$($pre:expr),*], $lo:expr, $($operands:tt)*) => {{
        let val: $T = $val;
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@store_sized u8, "sb", val, [$($pre),*], $lo, $($operands)*),
            2 => $crate::__percpu_access!(@store_sized u16, "sh", val, [$($pre),*], $lo, $($operands)*),
            4 => $crate::__percpu_access!(@store_sized u32, "sw", val, [$($pre),*], $lo, $($operands)*),
            _ => $crate::__percpu_access!(@store_sized u64, "sd", val, [$($pre),*], $lo, $($operands)*),
        }
    }};
    (@store_sized $raw:ty, $ins:literal, $val:ident, [$($pre:expr),*], $lo:expr, $($operands:tt)*) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        ::core::arch::asm!(".option push", ".option norelax", $($pre,)* concat!($ins, " {x}, ", $lo, "({t})"),
            ".option pop", $($operands)*, x = in(reg) bits, options(nostack, preserves_flags))
    }};
}

/// The raw per-CPU register: `gp`.
pub(crate) fn read_reg() -> usize {
    let value: usize;
    // SAFETY: copies `gp`; no side effect.
    unsafe {
        core::arch::asm!("mv {}, gp", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Sets `gp`.
///
/// # Safety
///
/// `value + VMA` must be valid per-CPU memory for every per-CPU VMA used afterwards; nothing else may
/// use `gp` (do not define `__global_pointer$`, which enables gp-relative linker relaxation).
pub(crate) unsafe fn write_reg(value: usize) {
    // SAFETY: the caller vouches for the area and for `gp` being reserved for it.
    unsafe {
        core::arch::asm!("mv gp, {}", in(reg) value, options(nomem, nostack, preserves_flags))
    };
}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn prepare_area(_area: usize) {}
