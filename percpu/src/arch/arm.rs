//! 32-bit arm: the per-CPU register is `TPIDRPRW` (PL1 only). Accesses go through a pointer.
//!
//! Read-modify-write disables interrupts around a load and a store (ARMv7 does not promise that an
//! exception return clears the exclusive monitor, so an exclusive loop alone could lose an interrupt
//! handler's update); the load and the store are single-copy atomic (`ldrexd`/`strexd` for 64 bits),
//! so that another CPU's atomic load of the copy (a counter's sum) never sees half of an update.
//!
//! Local interrupts: `CPSR.I` (IRQs; FIQs stay enabled, as in Linux).

/// Reading the register and the memory are separate instructions.
#[cfg(not(feature = "sp-naive"))]
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = false;

#[cfg(not(feature = "sp-naive"))]
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
    ($op:ident, $T:ty, $kind:ident $a:tt $(, $val:expr)*) => {
        $crate::__percpu_access_via_ptr!($op, $T, $kind $a $(, $val)*)
    };
}

/// The raw per-CPU register: `TPIDRPRW`.
#[cfg(not(feature = "sp-naive"))]
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
#[cfg(not(feature = "sp-naive"))]
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
#[cfg(not(feature = "sp-naive"))]
pub(crate) unsafe fn prepare_area(_area: usize) {}

/// Masks IRQs (`cpsid i`); returns the previous `CPSR`.
#[inline]
pub(crate) fn local_irq_save() -> usize {
    let flags: usize;
    // SAFETY: kernels run at PL1, where `cpsid` is allowed. A compiler barrier (no `nomem`).
    unsafe {
        core::arch::asm!("mrs {}, cpsr", "cpsid i", out(reg) flags, options(nostack, preserves_flags))
    };
    flags
}

/// Restores the interrupt masks of the `CPSR` that [`local_irq_save`] returned.
///
/// # Safety
///
/// `flags` must come from the matching [`local_irq_save`] on this CPU, the last one not yet restored.
#[inline]
pub(crate) unsafe fn local_irq_restore(flags: usize) {
    // SAFETY: at PL1; `cpsr_c` holds the masks and the mode, which the section did not change. A
    // compiler barrier.
    unsafe { core::arch::asm!("msr cpsr_c, {}", in(reg) flags, options(nostack, preserves_flags)) };
}
