//! 32-bit arm: the per-CPU register is `TPIDRPRW` (PL1 only). Accesses go through a pointer.

/// Reading the register and the memory are separate instructions.
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = false;

#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access {
    (addr_of, sym $s:path) => {{
        let vma: usize;
        ::core::arch::asm!("movw {o}, #:lower16:{a}", "movt {o}, #:upper16:{a}", o = out(reg) vma,
            a = sym $s, options(pure, nomem, nostack, preserves_flags));
        vma
    }};
    (ptr, $T:ty, sym $s:path) => {{
        let vma = $crate::__percpu_access!(addr_of, sym $s);
        $crate::__percpu_access!(ptr, $T, vma vma)
    }};
    (ptr, $T:ty, vma $vma:expr) => {{
        let ptr: *mut $T;
        ::core::arch::asm!("mrc p15, 0, {p}, c13, c0, 4", "add {p}, {p}, {v}", p = out(reg) ptr,
            v = in(reg) $vma, options(pure, readonly, nostack, preserves_flags));
        ptr
    }};
    ($op:ident, $T:ty, $kind:ident $a:tt $(, $val:expr)?) => {
        $crate::__percpu_access_via_ptr!($op, $T, $kind $a $(, $val)?)
    };
}

/// The raw per-CPU register: `TPIDRPRW`.
pub(crate) fn read_reg() -> usize {
    let value: usize;
    // SAFETY: reads a PL1 system register (kernels run at PL1).
    unsafe {
        core::arch::asm!("mrc p15, 0, {}, c13, c0, 4", out(reg) value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Sets `TPIDRPRW`.
///
/// # Safety
///
/// `value + VMA` must be valid per-CPU memory for every per-CPU VMA used afterwards.
pub(crate) unsafe fn write_reg(value: usize) {
    // SAFETY: writes a PL1 system register; the caller vouches for the area it designates.
    unsafe {
        core::arch::asm!("mcr p15, 0, {}, c13, c0, 4", in(reg) value, options(nostack, preserves_flags))
    };
}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn prepare_area(_area: usize) {}
