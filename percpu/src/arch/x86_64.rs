//! x86_64: the per-CPU register is `GS_BASE`.
//!
//! Every access to this CPU's copy is one instruction with a `gs:` memory operand. A kernel
//! (`target_os = "none"`) names a static by its absolute address (`gs:[VAR]`, the `.percpu` section
//! being linked low), a hosted program by a RIP-relative address (`gs:[rip + VAR]`, which works in a
//! position-independent executable: the `GS` base is `area base - template address`).
//!
//! Each area also holds its own register value in `SELF_PTR`, so that a pointer to this CPU's copy
//! costs one load and one add instead of reading the MSR.
//!
//! Read-modify-write operations are single instructions without a `lock` prefix (`add`, `xadd`,
//! `cmpxchg`, ...), and the swap is `xchg`, which is always locked with a memory operand (measured no
//! slower than the unlocked load and `cmpxchg` loop).
//!
//! Local interrupts: `cli`/`sti` in a kernel; in a hosted (Linux) program, the calling thread's signal
//! mask (`rt_sigprocmask`). With `sp-naive`, only a kernel's interrupt masking of this file is used.

/// Accesses to this CPU's copy are single instructions: preemption cannot split them.
#[cfg(not(feature = "sp-naive"))]
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = true;

// Every area records the `GS` base that points at it (the register value), for `ptr`.
#[cfg(not(feature = "sp-naive"))]
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

#[cfg(not(feature = "sp-naive"))]
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
    // Every other form: the `gs:` operand naming the static, or the VMA in a register.
    ($op:ident, $T:ty, sym $s:path $(, $val:expr)*) => {
        $crate::__percpu_access!(@sized $op, $T, [$crate::__percpu_x86_static!(mem)], [a = sym $s] $(, $val)*)
    };
    ($op:ident, $T:ty, vma $vma:expr $(, $val:expr)*) => {
        $crate::__percpu_access!(@sized $op, $T, ["gs:[{a}]"], [a = in(reg) $vma] $(, $val)*)
    };
    // `@$op` with the operand size keyword, the register modifier, the register class, the
    // accumulator of the type's width, and the unsigned type of its width.
    (@sized $op:ident, $T:ty, $($rest:tt)*) => {
        match ::core::mem::size_of::<$T>() {
            1 => $crate::__percpu_access!(@$op $T, "byte", "", reg_byte, "al", u8, $($rest)*),
            2 => $crate::__percpu_access!(@$op $T, "word", ":x", reg, "ax", u16, $($rest)*),
            4 => $crate::__percpu_access!(@$op $T, "dword", ":e", reg, "eax", u32, $($rest)*),
            _ => $crate::__percpu_access!(@$op $T, "qword", ":r", reg, "rax", u64, $($rest)*),
        }
    };
    (@read $T:ty, $size:literal, $m:literal, $class:ident, $acc:tt, $raw:ty, [$mem:expr], [$($addr:tt)*]) => {{
        let v: $raw;
        ::core::arch::asm!(concat!("mov {v", $m, "}, ", $size, " ptr ", $mem), $($addr)*, v = out($class) v,
            options(nostack, preserves_flags, readonly));
        $crate::__priv::from_loaded::<$T>(v as u64)
    }};
    (@write $T:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@store "mov", $T, $($rest)*)
    };
    (@add $T:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@store "add", $T, $($rest)*)
    };
    (@sub $T:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@store "sub", $T, $($rest)*)
    };
    (@and $T:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@store "and", $T, $($rest)*)
    };
    (@or $T:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@store "or", $T, $($rest)*)
    };
    (@xor $T:ty, $($rest:tt)*) => {
        $crate::__percpu_access!(@store "xor", $T, $($rest)*)
    };
    // `$ins` (`mov`, `add`, ...) of a register of the type's width into the memory operand. `mov` keeps
    // the flags; the others set them.
    (@store $ins:literal, $T:ty, $size:literal, $m:literal, $class:ident, $acc:tt, $raw:ty, [$mem:expr],
        [$($addr:tt)*], $val:expr) => {{
        let v: $raw = $crate::__priv::bits_as::<$T, $raw>($val);
        ::core::arch::asm!(concat!($ins, " ", $size, " ptr ", $mem, ", {v", $m, "}"), $($addr)*, v = in($class) v,
            options(nostack))
    }};
    // `xadd`: adds the register to the memory operand and returns the previous value in it (no `lock`:
    // atomic against this CPU's interrupts, which is what a per-CPU copy needs).
    (@fetch_add $T:ty, $size:literal, $m:literal, $class:ident, $acc:tt, $raw:ty, [$mem:expr],
        [$($addr:tt)*], $val:expr) => {{
        let v: $raw = $crate::__priv::bits_as::<$T, $raw>($val);
        let old: $raw;
        ::core::arch::asm!(concat!("xadd ", $size, " ptr ", $mem, ", {v", $m, "}"), $($addr)*,
            v = inout($class) v => old, options(nostack));
        $crate::__priv::from_loaded::<$T>(old as u64)
    }};
    // `xchg` with a memory operand is always locked (a full barrier). The unlocked alternative, a load
    // and a `cmpxchg` loop, is three instructions and measured no faster (group `xchg_sequences_u64`
    // of `benches/access.rs`, with and without pending stores): one instruction, on this CPU's copy.
    (@xchg $T:ty, $size:literal, $m:literal, $class:ident, $acc:tt, $raw:ty, [$mem:expr],
        [$($addr:tt)*], $val:expr) => {{
        let v: $raw = $crate::__priv::bits_as::<$T, $raw>($val);
        let old: $raw;
        ::core::arch::asm!(concat!("xchg ", $size, " ptr ", $mem, ", {v", $m, "}"), $($addr)*,
            v = inout($class) v => old, options(nostack, preserves_flags));
        $crate::__priv::from_loaded::<$T>(old as u64)
    }};
    // `cmpxchg` without `lock`: compares the accumulator with the memory operand and stores the
    // register if equal; the accumulator ends up holding the previous value either way.
    (@cmpxchg $T:ty, $size:literal, $m:literal, $class:ident, $acc:tt, $raw:ty, [$mem:expr],
        [$($addr:tt)*], $current:expr, $new:expr) => {{
        let current: $raw = $crate::__priv::bits_as::<$T, $raw>($current);
        let new: $raw = $crate::__priv::bits_as::<$T, $raw>($new);
        let old: $raw;
        ::core::arch::asm!(concat!("cmpxchg ", $size, " ptr ", $mem, ", {n", $m, "}"), $($addr)*,
            n = in($class) new, inout($acc) current => old, options(nostack));
        $crate::__priv::from_loaded::<$T>(old as u64)
    }};
}

/// Records in the new area at `area` the register value that designates it, so that `current_ptr` of
/// a CPU pointed at this area never reads another area's record (as a copy of the template would).
///
/// # Safety
///
/// `area` must be the base of an area being initialized, which no CPU uses yet.
#[cfg(not(feature = "sp-naive"))]
pub(crate) unsafe fn prepare_area(area: usize) {
    let slot = area.wrapping_add(SELF_PTR.offset()) as *mut usize;
    // SAFETY: the slot of `SELF_PTR` inside the caller's area.
    unsafe { slot.write(area.wrapping_sub(crate::template::template_vma())) };
}

/// The raw per-CPU register: `GS_BASE`.
#[cfg(all(target_os = "none", not(feature = "sp-naive")))]
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
#[cfg(all(target_os = "none", not(feature = "sp-naive")))]
pub(crate) unsafe fn write_reg(value: usize) {
    const IA32_GS_BASE: u32 = 0xC000_0101;
    // SAFETY: writing GS_BASE at CPL 0; the caller vouches for the area it designates.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") IA32_GS_BASE, in("eax") value as u32,
            in("edx") (value >> 32) as u32, options(nostack, preserves_flags));
        SELF_PTR.write_current_raw(value);
    }
}

/// The Linux system calls of hosted mode.
#[cfg(not(target_os = "none"))]
mod syscall {
    pub const SYS_RT_SIGPROCMASK: usize = 14;
    pub const SYS_ARCH_PRCTL: usize = 158;
    pub const ARCH_SET_GS: usize = 0x1001;
    pub const ARCH_GET_GS: usize = 0x1004;
    pub const SIG_BLOCK: usize = 0;
    pub const SIG_SETMASK: usize = 2;

    /// System call `number` with arguments `args`; returns the kernel's result (negative errno on
    /// failure).
    ///
    /// # Safety
    ///
    /// The arguments must be what the call expects (values, or pointers to live memory of the sizes
    /// it reads or writes).
    #[inline]
    pub unsafe fn call(number: usize, args: [usize; 4]) -> isize {
        let ret: isize;
        // SAFETY: the syscall instruction clobbers rcx and r11 and returns in rax; all declared. The
        // kernel may read and write memory through the arguments: no `nomem`.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") number as isize => ret,
                in("rdi") args[0], in("rsi") args[1], in("rdx") args[2], in("r10") args[3],
                lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
        }
        ret
    }
}

/// The raw per-CPU register: this thread's `GS` base.
#[cfg(not(target_os = "none"))]
pub(crate) fn read_reg() -> usize {
    use syscall::*;
    let mut value: u64 = 0;
    // SAFETY: ARCH_GET_GS writes the base into `value`, a live u64.
    let ret = unsafe { call(SYS_ARCH_PRCTL, [ARCH_GET_GS, &raw mut value as usize, 0, 0]) };
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
    use syscall::*;
    // SAFETY: ARCH_SET_GS takes the new base by value.
    let ret = unsafe { call(SYS_ARCH_PRCTL, [ARCH_SET_GS, value, 0, 0]) };
    assert!(
        ret == 0,
        "percpu: arch_prctl(ARCH_SET_GS, {value:#x}) failed ({ret}): the register value, area base minus \
         template address, must be a canonical user address (areas below the executable's data, as in a \
         static-pie program whose heap lies below it, give a negative one)"
    );
    // SAFETY: GS now designates the area, which the caller vouches for.
    unsafe { SELF_PTR.write_current_raw(value) };
}

/// The interrupt enable flag (`IF`) of `RFLAGS`.
#[cfg(target_os = "none")]
const RFLAGS_IF: usize = 1 << 9;

/// Disables local interrupts (`cli`); returns the previous `RFLAGS`.
#[cfg(target_os = "none")]
#[inline]
pub(crate) fn local_irq_save() -> usize {
    let flags: usize;
    // SAFETY: kernels run at CPL 0, where `cli` is allowed. `pushfq` uses the stack (no `nostack`); a
    // compiler barrier (no `nomem`).
    unsafe {
        core::arch::asm!("pushfq", "pop {}", "cli", out(reg) flags, options(preserves_flags))
    };
    flags
}

/// Enables local interrupts again if `flags`, from [`local_irq_save`], had them enabled.
///
/// # Safety
///
/// `flags` must come from the matching [`local_irq_save`] on this CPU, the last one not yet restored.
#[cfg(target_os = "none")]
#[inline]
pub(crate) unsafe fn local_irq_restore(flags: usize) {
    if flags & RFLAGS_IF != 0 {
        // SAFETY: at CPL 0; the caller restores the state of its own section. A compiler barrier.
        unsafe { core::arch::asm!("sti", options(nostack, preserves_flags)) };
    }
}

/// Blocks every signal of the calling thread (the hosted counterpart of disabling interrupts: signal
/// handlers run on the interrupted thread, as interrupt handlers on the interrupted CPU); returns the
/// previous signal mask. `SIGKILL` and `SIGSTOP` cannot be blocked; a synchronous signal raised while
/// blocked (a fault) kills the process.
#[cfg(not(target_os = "none"))]
#[inline]
pub(crate) fn local_irq_save() -> usize {
    use syscall::*;
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: the kernel reads the new mask from `all` and writes the old one to `old`, both live
    // 8-byte values (the size passed).
    let ret = unsafe {
        call(
            SYS_RT_SIGPROCMASK,
            [SIG_BLOCK, &raw const all as usize, &raw mut old as usize, 8],
        )
    };
    assert!(ret == 0, "percpu: rt_sigprocmask failed ({ret})");
    old as usize
}

/// Restores the signal mask that [`local_irq_save`] returned.
///
/// # Safety
///
/// `flags` must come from the matching [`local_irq_save`] on this thread, the last one not yet restored.
#[cfg(not(target_os = "none"))]
#[inline]
pub(crate) unsafe fn local_irq_restore(flags: usize) {
    use syscall::*;
    let mask = flags as u64;
    // SAFETY: the kernel reads the mask from `mask`, a live 8-byte value; no old mask is written.
    let ret = unsafe {
        call(
            SYS_RT_SIGPROCMASK,
            [SIG_SETMASK, &raw const mask as usize, 0, 8],
        )
    };
    assert!(ret == 0, "percpu: rt_sigprocmask failed ({ret})");
}
