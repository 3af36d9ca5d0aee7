//! x86_64: the per-CPU register is `GS_BASE`.
//!
//! Every access to this CPU's copy is one instruction with a `gs:` memory operand. A kernel
//! (`target_os = "none"`) names a static by its absolute address (`gs:[VAR]`, the `.percpu` section
//! being linked low), a hosted program by a RIP-relative address (`gs:[rip + VAR]`, which works in a
//! position-independent executable: the `GS` base is `area base - template address`).
//!
//! Each area also holds its own register value in `SELF_PTR`, so that a pointer to this CPU's copy
//! costs one load and one add instead of reading the MSR.

/// Accesses to this CPU's copy are single instructions: preemption cannot split them.
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = true;

// Every area records the `GS` base that points at it (the register value), for `ptr`.
#[crate::def_percpu]
#[unsafe(no_mangle)]
static SELF_PTR: usize = 0;

/// The `gs:` memory operand naming a per-CPU static `{a}`, and the instruction loading its VMA into `{o}`.
#[cfg(target_os = "none")]
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_x86_static {
    (mem) => {
        "gs:[{a}]"
    };
    (vma) => {
        "mov {o}, offset {a}"
    };
    (self_mem) => {
        "gs:[__PERCPU_SELF_PTR]"
    };
}

/// The `gs:` memory operand naming a per-CPU static `{a}`, and the instruction loading its VMA into `{o}`.
#[cfg(not(target_os = "none"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_x86_static {
    (mem) => {
        "gs:[rip + {a}]"
    };
    (vma) => {
        "lea {o}, [rip + {a}]"
    };
    (self_mem) => {
        "gs:[rip + __PERCPU_SELF_PTR]"
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access {
    (addr_of, sym $s:path) => {{
        let vma: usize;
        ::core::arch::asm!(
            $crate::__percpu_x86_static!(vma),
            o = out(reg) vma,
            a = sym $s,
            options(pure, nomem, nostack, preserves_flags),
        );
        vma
    }};
    (ptr, $T:ty, sym $s:path) => {{
        let ptr: *mut $T;
        ::core::arch::asm!(
            $crate::__percpu_x86_static!(vma),
            concat!("add {o}, qword ptr ", $crate::__percpu_x86_static!(self_mem)),
            o = out(reg) ptr,
            a = sym $s,
            options(pure, readonly, nostack),
        );
        ptr
    }};
    (ptr, $T:ty, vma $vma:expr) => {{
        let ptr: *mut $T;
        ::core::arch::asm!(
            concat!("mov {o}, qword ptr ", $crate::__percpu_x86_static!(self_mem)),
            "add {o}, {v}",
            o = out(reg) ptr,
            v = in(reg) $vma,
            options(pure, readonly, nostack),
        );
        ptr
    }};
    (read, $T:ty, sym $s:path) => {
        $crate::__percpu_access!(@load $T, $crate::__percpu_x86_static!(mem), a = sym $s)
    };
    (read, $T:ty, vma $vma:expr) => {
        $crate::__percpu_access!(@load $T, "gs:[{a}]", a = in(reg) $vma)
    };
    (write, $T:ty, sym $s:path, $val:expr) => {
        $crate::__percpu_access!(@store "mov", $T, $val, $crate::__percpu_x86_static!(mem), a = sym $s)
    };
    (write, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@store "mov", $T, $val, "gs:[{a}]", a = in(reg) $vma)
    };
    (add, $T:ty, sym $s:path, $val:expr) => {
        $crate::__percpu_access!(@store "add", $T, $val, $crate::__percpu_x86_static!(mem), a = sym $s)
    };
    (add, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@store "add", $T, $val, "gs:[{a}]", a = in(reg) $vma)
    };
    (sub, $T:ty, sym $s:path, $val:expr) => {
        $crate::__percpu_access!(@store "sub", $T, $val, $crate::__percpu_x86_static!(mem), a = sym $s)
    };
    (sub, $T:ty, vma $vma:expr, $val:expr) => {
        $crate::__percpu_access!(@store "sub", $T, $val, "gs:[{a}]", a = in(reg) $vma)
    };
    // `mov` from memory operand `$mem` into a register of the type's width.
    (@load $T:ty, $mem:expr, $($addr:tt)*) => {
        $crate::__priv::from_loaded::<$T>(match ::core::mem::size_of::<$T>() {
            1 => {
                let v: u8;
                ::core::arch::asm!(concat!("mov {v}, byte ptr ", $mem), $($addr)*, v = out(reg_byte) v,
                    options(nostack, preserves_flags, readonly));
                v as u64
            }
            2 => {
                let v: u16;
                ::core::arch::asm!(concat!("mov {v:x}, word ptr ", $mem), $($addr)*, v = out(reg) v,
                    options(nostack, preserves_flags, readonly));
                v as u64
            }
            4 => {
                let v: u32;
                ::core::arch::asm!(concat!("mov {v:e}, dword ptr ", $mem), $($addr)*, v = out(reg) v,
                    options(nostack, preserves_flags, readonly));
                v as u64
            }
            _ => {
                let v: u64;
                ::core::arch::asm!(concat!("mov {v:r}, qword ptr ", $mem), $($addr)*, v = out(reg) v,
                    options(nostack, preserves_flags, readonly));
                v
            }
        })
    };
    // `$ins` (`mov`, `add`, `sub`) of a register of the type's width into memory operand `$mem`.
    (@store $ins:literal, $T:ty, $val:expr, $mem:expr, $($addr:tt)*) => {{
        let bits = <$T as $crate::PerCpuPrimitive>::to_bits($val);
        match ::core::mem::size_of::<$T>() {
            1 => ::core::arch::asm!(concat!($ins, " byte ptr ", $mem, ", {v}"), $($addr)*,
                v = in(reg_byte) bits as u8, options(nostack)),
            2 => ::core::arch::asm!(concat!($ins, " word ptr ", $mem, ", {v:x}"), $($addr)*,
                v = in(reg) bits as u16, options(nostack)),
            4 => ::core::arch::asm!(concat!($ins, " dword ptr ", $mem, ", {v:e}"), $($addr)*,
                v = in(reg) bits as u32, options(nostack)),
            _ => ::core::arch::asm!(concat!($ins, " qword ptr ", $mem, ", {v:r}"), $($addr)*,
                v = in(reg) bits, options(nostack)),
        }
    }};
}

/// Records in the new area at `area` the register value that designates it, so that `current_ptr` of
/// a CPU pointed at this area never reads another area's record (as a copy of the template would).
///
/// # Safety
///
/// `area` must be the base of an area being initialized, which no CPU uses yet.
pub(crate) unsafe fn prepare_area(area: usize) {
    let slot = area.wrapping_add(SELF_PTR.offset()) as *mut usize;
    // SAFETY: the slot of `SELF_PTR` inside the caller's area.
    unsafe { slot.write(area.wrapping_sub(crate::template::template_vma())) };
}

/// The raw per-CPU register: `GS_BASE`.
#[cfg(target_os = "none")]
pub(crate) fn read_reg() -> usize {
    const IA32_GS_BASE: u32 = 0xC000_0101;
    let (low, high): (u32, u32);
    // SAFETY: reading GS_BASE has no side effect; kernels run at CPL 0 where `rdmsr` is allowed.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") IA32_GS_BASE, out("eax") low, out("edx") high,
            options(nomem, nostack, preserves_flags));
    }
    ((high as u64) << 32 | low as u64) as usize
}

/// Sets `GS_BASE` and records the value in this area's `SELF_PTR`.
///
/// # Safety
///
/// `value + VMA` must be valid per-CPU memory for every per-CPU VMA used afterwards.
#[cfg(target_os = "none")]
pub(crate) unsafe fn write_reg(value: usize) {
    const IA32_GS_BASE: u32 = 0xC000_0101;
    // SAFETY: writing GS_BASE at CPL 0; the caller vouches for the area it designates.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") IA32_GS_BASE, in("eax") value as u32,
            in("edx") (value >> 32) as u32, options(nostack, preserves_flags));
        SELF_PTR.write_current_raw(value);
    }
}

/// `arch_prctl` codes of Linux.
#[cfg(not(target_os = "none"))]
mod arch_prctl {
    pub const SYS_ARCH_PRCTL: usize = 158;
    pub const ARCH_SET_GS: usize = 0x1001;
    pub const ARCH_GET_GS: usize = 0x1004;

    /// `arch_prctl(code, arg)`; returns the kernel's result (negative errno on failure).
    ///
    /// # Safety
    ///
    /// `arg` must be what `code` expects (a value for SET, a writable `u64` for GET).
    pub unsafe fn call(code: usize, arg: usize) -> isize {
        let ret: isize;
        // SAFETY: the syscall instruction clobbers rcx and r11 and returns in rax; all declared.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL as isize => ret,
                in("rdi") code, in("rsi") arg, lateout("rcx") _, lateout("r11") _,
                options(nostack, preserves_flags));
        }
        ret
    }
}

/// The raw per-CPU register: this thread's `GS` base.
#[cfg(not(target_os = "none"))]
pub(crate) fn read_reg() -> usize {
    let mut value: u64 = 0;
    // SAFETY: ARCH_GET_GS writes the base into `value`, a live u64.
    let ret = unsafe { arch_prctl::call(arch_prctl::ARCH_GET_GS, &raw mut value as usize) };
    assert!(ret == 0, "percpu: arch_prctl(ARCH_GET_GS) failed: {ret}");
    value as usize
}

/// Sets this thread's `GS` base and records the value in this area's `SELF_PTR`.
///
/// # Safety
///
/// `value + VMA` must be valid per-CPU memory for every per-CPU VMA used afterwards by this thread.
#[cfg(not(target_os = "none"))]
pub(crate) unsafe fn write_reg(value: usize) {
    // SAFETY: ARCH_SET_GS takes the new base by value.
    let ret = unsafe { arch_prctl::call(arch_prctl::ARCH_SET_GS, value) };
    assert!(
        ret == 0,
        "percpu: arch_prctl(ARCH_SET_GS, {value:#x}) failed ({ret}): the register value, area base minus \
         template address, must be a canonical user address (areas below the executable's data, as in a \
         static-pie program whose heap lies below it, give a negative one)"
    );
    // SAFETY: GS now designates the area, which the caller vouches for.
    unsafe { SELF_PTR.write_current_raw(value) };
}
