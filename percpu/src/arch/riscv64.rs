//! riscv64: the per-CPU register is `gp` (`tp` stays the thread pointer).
//!
//! A static's VMA is `lui` + `%lo` (absolute, the `.percpu` section being linked at 0) or, with
//! `non-zero-vma`, `auipc` + `%pcrel_lo`; the `%lo` part folds into the load or store. Linker
//! relaxation is disabled around these sequences: it would rewrite the `%lo` base register.
//! Read-modify-write is an AMO (`amoadd`, `amoand`, `amoor`, `amoxor`, `amoswap`) on the address
//! computed in the same sequence for 32- and 64-bit integers; compare-and-swap, and every operation
//! on 8- and 16-bit integers, disable interrupts around a load and a store (an LR/SC loop for a
//! compare-and-swap of 32 or 64 bits).
//!
//! Local interrupts: `sstatus.SIE` (a supervisor-mode kernel).

/// Reading the register and the memory are separate instructions.
#[cfg(not(feature = "sp-naive"))]
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

#[cfg(not(feature = "sp-naive"))]
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
    // Guard-less read-modify-write. The `sym` forms: the VMA from its link-time parts, then the `vma`
    // form (an atomic instruction has no offset field to fold the low part into).
    ($op:ident, $T:ty, sym $s:path $(, $val:expr)+) => {{
        let vma = $crate::__percpu_access!(addr_of, sym $s);
        $crate::__percpu_access!($op, $T, vma vma $(, $val)+)
    }};
    (sub, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(add, $T, vma $vma, <$T as $crate::PerCpuInteger>::wrapping_neg($val))
    };
    (add, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@amo "amoadd", add, $T, $vma, $val)
    };
    (fetch_add, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@amo "amoadd", fetch_add, $T, $vma, $val)
    };
    (and, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@amo "amoand", and, $T, $vma, $val)
    };
    (or, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@amo "amoor", or, $T, $vma, $val)
    };
    (xor, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@amo "amoxor", xor, $T, $vma, $val)
    };
    (xchg, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@amo "amoswap", xchg, $T, $vma, $val)
    };
    // An interrupt handler's AMO or plain store on this hart does not break a reservation (only other
    // harts' stores must), so an LR/SC loop alone could lose it: interrupts off around the loop that
    // `compare_exchange` compiles to, which stays atomic against other harts' AMOs on this copy.
    (cmpxchg, $T:ty, vma $vma:expr, $current:expr, $new:expr) => {{
        let (vma, op) = ($vma, $crate::__percpu_rmw_op!(cmpxchg, $T, $current, $new));
        match ::core::mem::size_of::<$T>() {
            // SAFETY (for the caller's `unsafe`): the closure returns only the previous value.
            4 | 8 => $crate::__priv::with_irqs_off(|| {
                $crate::__priv::rmw_atomic::<$T>($crate::__percpu_access!(ptr, $T, vma vma), op)
            }),
            _ => $crate::__priv::rmw_irqsave::<$T>(|| $crate::__percpu_access!(ptr, $T, vma vma), op),
        }
    }};
    // `$ins.w`/`$ins.d` on `gp + VMA`, computed in the same sequence; 8- and 16-bit integers, which
    // have no AMO, disable interrupts around a load and a store. The previous value goes to `zero`
    // where the operation does not return it.
    (@amo $ins:literal, $op:ident, $T:ty, $vma:expr, $val:expr) => {{
        let (vma, val): (usize, $T) = ($vma, $val);
        match ::core::mem::size_of::<$T>() {
            // `.w` sign-extends the previous value, as the ABI passes 32-bit values.
            4 => $crate::__percpu_access!(@amo_sized $op, $T, concat!($ins, ".w"), u32, from_loaded_sext32, vma, val),
            8 => $crate::__percpu_access!(@amo_sized $op, $T, concat!($ins, ".d"), u64, from_loaded, vma, val),
            _ => $crate::__percpu_rmw_result!($op, $crate::__priv::rmw_irqsave::<$T>(
                || $crate::__percpu_access!(ptr, $T, vma vma),
                $crate::__percpu_rmw_op!($op, $T, val),
            )),
        }
    }};
    (@amo_sized fetch_add, $($rest:tt)*) => {
        $crate::__percpu_access!(@amo_old $($rest)*)
    };
    (@amo_sized xchg, $($rest:tt)*) => {
        $crate::__percpu_access!(@amo_old $($rest)*)
    };
    (@amo_sized $op:ident, $T:ty, $ins:expr, $raw:ty, $from:ident, $vma:ident, $val:ident) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        ::core::arch::asm!("add {p}, {v}, gp", concat!($ins, " zero, {x}, ({p})"), p = out(reg) _,
            v = in(reg) $vma, x = in(reg) bits, options(nostack, preserves_flags));
    }};
    (@amo_old $T:ty, $ins:expr, $raw:ty, $from:ident, $vma:ident, $val:ident) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        let old: u64;
        ::core::arch::asm!("add {p}, {v}, gp", concat!($ins, " {o}, {x}, ({p})"), p = out(reg) _,
            v = in(reg) $vma, x = in(reg) bits, o = out(reg) old, options(nostack, preserves_flags));
        $crate::__priv::$from::<$T>(old)
    }};
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
#[cfg(not(feature = "sp-naive"))]
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
#[cfg(not(feature = "sp-naive"))]
pub(crate) unsafe fn write_reg(value: usize) {
    // SAFETY: the caller vouches for the area and for `gp` being reserved for it. Not `nomem`: a
    // register write clobbers memory, so that no pointer computed from the old value (the `pure,
    // readonly` `ptr` form) is reused after it.
    unsafe { core::arch::asm!("mv gp, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
#[cfg(not(feature = "sp-naive"))]
pub(crate) unsafe fn prepare_area(_area: usize) {}

/// `sstatus.SIE`.
const SSTATUS_SIE: usize = 1 << 1;

/// Clears `sstatus.SIE`; returns its previous value (the bit alone).
#[inline]
pub(crate) fn local_irq_save() -> usize {
    let sstatus: usize;
    // SAFETY: a supervisor-mode kernel may write `sstatus`. A compiler barrier (no `nomem`).
    unsafe {
        core::arch::asm!("csrrci {}, sstatus, {sie}", out(reg) sstatus, sie = const SSTATUS_SIE,
            options(nostack, preserves_flags))
    };
    sstatus & SSTATUS_SIE
}

/// Sets `sstatus.SIE` again if [`local_irq_save`] found it set.
///
/// # Safety
///
/// `flags` must come from the matching [`local_irq_save`] on this hart, the last one not yet restored.
#[inline]
pub(crate) unsafe fn local_irq_restore(flags: usize) {
    // SAFETY: in supervisor mode; sets at most `SIE` (the caller's `flags`). A compiler barrier.
    unsafe {
        core::arch::asm!("csrs sstatus, {}", in(reg) flags, options(nostack, preserves_flags))
    };
}
