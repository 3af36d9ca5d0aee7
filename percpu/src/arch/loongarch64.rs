//! loongarch64: the per-CPU register is `$r21` (reserved by the ABI).
//!
//! A static's VMA is `lu12i.w` + `ori` (absolute, the `.percpu` section being linked at 0) or, with
//! `non-zero-vma`, `la.pcrel`; loads and stores use the indexed forms `ldx`/`stx` with `$r21`.
//! Read-modify-write is `amadd` on the computed address for 32- and 64-bit integers; 8- and 16-bit
//! ones disable interrupts around a plain read-modify-write.

/// Reading the register and the memory are separate instructions.
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = false;

/// Loads the VMA of static `{a}` into `{o}`.
#[doc(hidden)]
#[macro_export]
#[cfg(not(feature = "non-zero-vma"))]
macro_rules! __percpu_la_vma {
    () => {
        "lu12i.w {o}, %abs_hi20({a})\nori {o}, {o}, %abs_lo12({a})"
    };
}

/// Loads the VMA of static `{a}` into `{o}`.
#[doc(hidden)]
#[macro_export]
#[cfg(feature = "non-zero-vma")]
macro_rules! __percpu_la_vma {
    () => {
        "la.pcrel {o}, {a}"
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access {
    (addr_of, sym $s:path) => {{
        let vma: usize;
        ::core::arch::asm!($crate::__percpu_la_vma!(), o = out(reg) vma, a = sym $s,
            options(pure, nomem, nostack, preserves_flags));
        vma
    }};
    (ptr, $T:ty, vma $vma:expr) => {{
        let ptr: *mut $T;
        ::core::arch::asm!("add.d {p}, {v}, $r21", p = out(reg) ptr, v = in(reg) $vma,
            options(pure, readonly, nostack, preserves_flags));
        ptr
    }};
    (read, $T:ty, vma $vma:expr) => {{
        let vma: usize = $vma;
        let bits: u64;
        match ::core::mem::size_of::<$T>() {
            1 => ::core::arch::asm!("ldx.bu {x}, {v}, $r21", v = in(reg) vma, x = lateout(reg) bits,
                options(nostack, preserves_flags, readonly)),
            2 => ::core::arch::asm!("ldx.hu {x}, {v}, $r21", v = in(reg) vma, x = lateout(reg) bits,
                options(nostack, preserves_flags, readonly)),
            // Sign-extending, the form in which the ABI passes 32-bit values.
            4 => ::core::arch::asm!("ldx.w {x}, {v}, $r21", v = in(reg) vma, x = lateout(reg) bits,
                options(nostack, preserves_flags, readonly)),
            _ => ::core::arch::asm!("ldx.d {x}, {v}, $r21", v = in(reg) vma, x = lateout(reg) bits,
                options(nostack, preserves_flags, readonly)),
        }
        if ::core::mem::size_of::<$T>() == 4 {
            $crate::__priv::from_loaded_sext32::<$T>(bits)
        } else {
            $crate::__priv::from_loaded::<$T>(bits)
        }
    }};
    (write, $T:ty, vma $vma:expr, $val:expr) => {{
        let (vma, val): (usize, $T) = ($vma, $val);
        // The value goes in at its own width: no zero-extension before the store.
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@store u8, "stx.b", vma, val),
            2 => $crate::__percpu_access!(@store u16, "stx.h", vma, val),
            4 => $crate::__percpu_access!(@store u32, "stx.w", vma, val),
            _ => $crate::__percpu_access!(@store u64, "stx.d", vma, val),
        }
    }};
    (@store $raw:ty, $ins:literal, $vma:ident, $val:ident) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        ::core::arch::asm!(concat!($ins, " {x}, {v}, $r21"), v = in(reg) $vma, x = in(reg) bits,
            options(nostack, preserves_flags))
    }};
    (add, $T:ty, vma $vma:expr, $val:expr) => {{
        let delta: $T = $val;
        let vma: usize = $vma;
        match ::core::mem::size_of::<$T>() {
            4 | 8 => {
                let ptr = $crate::__percpu_access!(ptr, $T, vma vma);
                let bits = <$T as $crate::PerCpuPrimitive>::to_bits(delta);
                if ::core::mem::size_of::<$T>() == 4 {
                    ::core::arch::asm!("amadd.w $zero, {x}, {p}", p = in(reg) ptr, x = in(reg) bits,
                        options(nostack, preserves_flags));
                } else {
                    ::core::arch::asm!("amadd.d $zero, {x}, {p}", p = in(reg) ptr, x = in(reg) bits,
                        options(nostack, preserves_flags));
                }
            }
            _ => $crate::__percpu_rmw_irqsave!($T, $crate::__percpu_access!(ptr, $T, vma vma), delta),
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
}

/// The raw per-CPU register: `$r21`.
pub(crate) fn read_reg() -> usize {
    let value: usize;
    // SAFETY: copies `$r21`; no side effect.
    unsafe {
        core::arch::asm!("move {}, $r21", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Sets `$r21`.
///
/// # Safety
///
/// `value + VMA` must be valid per-CPU memory for every per-CPU VMA used afterwards.
pub(crate) unsafe fn write_reg(value: usize) {
    // SAFETY: `$r21` is reserved by the ABI for this use; the caller vouches for the area.
    unsafe {
        core::arch::asm!("move $r21, {}", in(reg) value, options(nomem, nostack, preserves_flags))
    };
}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn prepare_area(_area: usize) {}
