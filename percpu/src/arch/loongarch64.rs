//! loongarch64: the per-CPU register is `$r21` (reserved by the ABI).
//!
//! A static's VMA is `lu12i.w` + `ori` (absolute, the `.percpu` section being linked at 0) or, with
//! `non-zero-vma`, `la.pcrel`; loads and stores use the indexed forms `ldx`/`stx` with `$r21`.
//! Read-modify-write is an atomic instruction (`amadd`, `amand`, `amor`, `amxor`, `amswap`) on the
//! address computed in the same sequence for 32- and 64-bit integers, and compare-and-swap an
//! `ll`/`sc` loop (an exception return clears the LL bit unless the kernel set `LLBCTL.KLO` for it);
//! 8- and 16-bit integers disable interrupts around a load and a store.
//!
//! Local interrupts: `CRMD.IE`.

/// Reading the register and the memory are separate instructions.
#[cfg(not(feature = "sp-naive"))]
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

#[cfg(not(feature = "sp-naive"))]
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
    (sub, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(add, $T, vma $vma, <$T as $crate::PerCpuInteger>::wrapping_neg($val))
    };
    (add, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@am "amadd", add, $T, $vma, $val)
    };
    (fetch_add, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@am "amadd", fetch_add, $T, $vma, $val)
    };
    (and, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@am "amand", and, $T, $vma, $val)
    };
    (or, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@am "amor", or, $T, $vma, $val)
    };
    (xor, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@am "amxor", xor, $T, $vma, $val)
    };
    (xchg, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@am "amswap", xchg, $T, $vma, $val)
    };
    // An LL/SC loop on the address computed in the same sequence: an exception return (`ertn`) clears
    // the LL bit, so an interrupted attempt fails its `sc` and starts over (the loop recomputes the
    // address). 8- and 16-bit integers: interrupts off around a load and a store.
    (cmpxchg, $T:ty, vma $vma:expr, $current:expr, $new:expr) => {{
        let (vma, current, new): (usize, $T, $T) = ($vma, $current, $new);
        match ::core::mem::size_of::<$T>() {
            // `ll.w` sign-extends: so is the value compared with it.
            4 => $crate::__percpu_access!(@llsc "w", i32, from_loaded_sext32, $T, vma, current, new),
            8 => $crate::__percpu_access!(@llsc "d", i64, from_loaded, $T, vma, current, new),
            _ => $crate::__priv::rmw_irqsave::<$T>(
                || $crate::__percpu_access!(ptr, $T, vma vma),
                $crate::__percpu_rmw_op!(cmpxchg, $T, current, new),
            ),
        }
    }};
    (@llsc $size:literal, $raw:ty, $from:ident, $T:ty, $vma:ident, $current:ident, $new:ident) => {{
        let current: $raw = $crate::__priv::bits_as($current);
        let new: $raw = $crate::__priv::bits_as($new);
        let old: u64;
        ::core::arch::asm!(
            "2:",
            "add.d {p}, {v}, $r21",
            concat!("ll.", $size, " {o}, {p}, 0"),
            "bne {o}, {c}, 3f",
            "move {t}, {n}",
            concat!("sc.", $size, " {t}, {p}, 0"),
            "beqz {t}, 2b",
            "3:",
            p = out(reg) _, o = out(reg) old, t = out(reg) _, v = in(reg) $vma, c = in(reg) current as i64,
            n = in(reg) new, options(nostack, preserves_flags),
        );
        $crate::__priv::$from::<$T>(old)
    }};
    // `$ins.w`/`$ins.d` on `$r21 + VMA`, computed in the same sequence; 8- and 16-bit integers, which
    // have no atomic instruction in the base architecture, disable interrupts around a load and a
    // store. The previous value goes to `$zero` where the operation does not return it.
    (@am $ins:literal, $op:ident, $T:ty, $vma:expr, $val:expr) => {{
        let (vma, val): (usize, $T) = ($vma, $val);
        match ::core::mem::size_of::<$T>() {
            // `.w` sign-extends the previous value, as the ABI passes 32-bit values.
            4 => $crate::__percpu_access!(@am_sized $op, $T, concat!($ins, ".w"), u32, from_loaded_sext32, vma, val),
            8 => $crate::__percpu_access!(@am_sized $op, $T, concat!($ins, ".d"), u64, from_loaded, vma, val),
            _ => $crate::__percpu_rmw_result!($op, $crate::__priv::rmw_irqsave::<$T>(
                || $crate::__percpu_access!(ptr, $T, vma vma),
                $crate::__percpu_rmw_op!($op, $T, val),
            )),
        }
    }};
    (@am_sized fetch_add, $($rest:tt)*) => {
        $crate::__percpu_access!(@am_old $($rest)*)
    };
    (@am_sized xchg, $($rest:tt)*) => {
        $crate::__percpu_access!(@am_old $($rest)*)
    };
    (@am_sized $op:ident, $T:ty, $ins:expr, $raw:ty, $from:ident, $vma:ident, $val:ident) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        ::core::arch::asm!("add.d {p}, {v}, $r21", concat!($ins, " $zero, {x}, {p}"), p = out(reg) _,
            v = in(reg) $vma, x = in(reg) bits, options(nostack, preserves_flags));
    }};
    // The destination must differ from both sources: `out`, never `lateout`.
    (@am_old $T:ty, $ins:expr, $raw:ty, $from:ident, $vma:ident, $val:ident) => {{
        let bits: $raw = $crate::__priv::bits_as($val);
        let old: u64;
        ::core::arch::asm!("add.d {p}, {v}, $r21", concat!($ins, " {o}, {x}, {p}"), p = out(reg) _,
            v = in(reg) $vma, x = in(reg) bits, o = out(reg) old, options(nostack, preserves_flags));
        $crate::__priv::$from::<$T>(old)
    }};
    // The `sym` forms: the VMA as an immediate, then the `vma` form.
    ($op:ident, $T:ty, sym $s:path $(, $val:expr)*) => {{
        let vma = $crate::__percpu_access!(addr_of, sym $s);
        $crate::__percpu_access!($op, $T, vma vma $(, $val)*)
    }};
}

/// The raw per-CPU register: `$r21`.
#[cfg(not(feature = "sp-naive"))]
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
#[cfg(not(feature = "sp-naive"))]
pub(crate) unsafe fn write_reg(value: usize) {
    // SAFETY: `$r21` is reserved by the ABI for this use; the caller vouches for the area. Not
    // `nomem`: a register write clobbers memory, so that no pointer computed from the old value (the
    // `pure, readonly` `ptr` form) is reused after it.
    unsafe { core::arch::asm!("move $r21, {}", in(reg) value, options(nostack, preserves_flags)) };
}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
#[cfg(not(feature = "sp-naive"))]
pub(crate) unsafe fn prepare_area(_area: usize) {}

/// `CRMD.IE`.
const CRMD_IE: usize = 1 << 2;

/// Clears `CRMD.IE`; returns its previous value (the bit alone).
#[inline]
pub(crate) fn local_irq_save() -> usize {
    let mut flags: usize = 0;
    // SAFETY: a PLV0 kernel may write `CRMD`. `csrxchg rd, rj, csr` writes the bits of `rd` selected by
    // `rj` and returns the old register in `rd`: an `inout` operand. A compiler barrier (no `nomem`).
    unsafe {
        core::arch::asm!("csrxchg {f}, {m}, 0x0", f = inout(reg) flags, m = in(reg) CRMD_IE,
            options(nostack, preserves_flags))
    };
    flags & CRMD_IE
}

/// Sets `CRMD.IE` again if [`local_irq_save`] found it set.
///
/// # Safety
///
/// `flags` must come from the matching [`local_irq_save`] on this CPU, the last one not yet restored.
#[inline]
pub(crate) unsafe fn local_irq_restore(flags: usize) {
    // SAFETY: at PLV0; writes `IE` only (the mask), from the caller's `flags`; `csrxchg` overwrites its
    // first operand with the old `CRMD`: declared as an output. A compiler barrier.
    unsafe {
        core::arch::asm!("csrxchg {f}, {m}, 0x0", f = inout(reg) flags => _, m = in(reg) CRMD_IE,
            options(nostack, preserves_flags))
    };
}
