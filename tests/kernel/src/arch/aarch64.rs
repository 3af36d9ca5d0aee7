//! aarch64 on the QEMU `virt` machine (Cortex-A53, GICv2 or GICv3), MMU off.
//!
//! - Boot: QEMU enters `_start` on CPU 0 at EL1, or at EL2 with
//!   `virtualization=on`. With the `arm-el2` feature the kernel stays at EL2
//!   (percpu then uses `TPIDR_EL2`); otherwise a kernel entered at EL2 drops
//!   to EL1. FP/SIMD is enabled first: rustc emits NEON instructions.
//! - Other CPUs: PSCI `CPU_ON` at `_secondary_start` with the logical id as
//!   context id; the conduit is `hvc`, or `smc` when the machine has EL2.
//!   QEMU's CPU `i` has the MPIDR affinity `Aff1 = i / n, Aff0 = i % n`, with
//!   `n` = 8 with a GICv2 and 16 with a GICv3.
//! - Console: the PL011 UART at 0x0900_0000.
//! - Exit: semihosting `SYS_EXIT`, the only way to report a non-zero status.
//! - Timer: the EL1 physical timer (`CNTP`, PPI 30) through the GIC
//!   ([`gic`]).
//! - Waiting: `wfi` with IRQs masked, woken by an SGI from [`wake_all`].
//!
//! With the MMU off all memory is Device memory, where unaligned accesses
//! fault: the `aarch64-unknown-none` target compiles with `+strict-align`.

use core::arch::{asm, global_asm};
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::fw_cfg;
use super::smp::{self, STACKS, STACK_SHIFT};

#[path = "aarch64_gic.rs"]
mod gic;

#[path = "aarch64_qemu.rs"]
mod qemu;
pub use qemu::{QEMU_FAIL_STATUS, QEMU_PASS_STATUS};

/// Name of this architecture.
pub const NAME: &str = "aarch64";

/// The most CPUs the `virt` machine takes (with a GICv3).
pub const MAX_CPUS: usize = 512;

/// The PL011 UART of the `virt` machine: data register and flag register.
const UART_DR: usize = 0x0900_0000;
const UART_FR: usize = UART_DR + 0x18;
/// Flag register: transmit FIFO full.
const UART_FR_TXFF: u32 = 1 << 5;

/// The fw_cfg device of the `virt` machine.
const FW_CFG: usize = 0x0902_0000;

/// PSCI `CPU_ON` (SMC64 function id).
const PSCI_CPU_ON: u64 = 0xC400_0003;

/// Semihosting: `SYS_EXIT` and the reason code of an application exit.
const SEMIHOSTING_SYS_EXIT: u64 = 0x18;
const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x2_0026;

/// The exception level the boot CPU was entered at (1 or 2).
static ENTRY_EL: AtomicUsize = AtomicUsize::new(0);

/// Whether the GIC is a GICv3 (set by the boot CPU): QEMU then numbers CPUs
/// 16 to a cluster in MPIDR, 8 otherwise.
static GIC_V3: AtomicBool = AtomicBool::new(false);

extern "C" {
    /// Entry point of secondary CPUs (in the `global_asm!` below).
    fn _secondary_start();
}

/// The exception level the kernel runs at, as a string for the assembly.
#[cfg(feature = "arm-el2")]
macro_rules! el {
    () => {
        "2"
    };
}
#[cfg(not(feature = "arm-el2"))]
macro_rules! el {
    () => {
        "1"
    };
}

/// What a CPU entered at EL2 does (stack pointer in `x9`, exception vectors
/// in `x11`): stay there with `arm-el2`, continuing at label 4 ...
#[cfg(feature = "arm-el2")]
macro_rules! at_el2 {
    () => {
        "
        mov sp, x9
        mrs x10, cptr_el2
        bic x10, x10, #(1 << 10)        // CPTR_EL2.TFP = 0: no FP/SIMD trap
        msr cptr_el2, x10
        mov x10, #(1 << 4)              // HCR_EL2.IMO: physical IRQs are taken at EL2
        msr hcr_el2, x10
        msr vbar_el2, x11
        isb
        b 4f
        "
    };
}
/// ... or otherwise drop to EL1, continuing at label 3 with the same stack.
#[cfg(not(feature = "arm-el2"))]
macro_rules! at_el2 {
    () => {
        "
        msr sp_el1, x9
        mov x10, #(1 << 31)             // HCR_EL2.RW: EL1 is AArch64
        msr hcr_el2, x10
        mov x10, #3                     // EL1 may use the physical timer and counter
        msr cnthctl_el2, x10
        msr cntvoff_el2, xzr
        mrs x10, cptr_el2
        bic x10, x10, #(1 << 10)        // CPTR_EL2.TFP = 0: no FP/SIMD trap
        msr cptr_el2, x10
        mov x10, #0x3c5                 // EL1h, interrupts masked
        msr spsr_el2, x10
        adr x10, 3f
        msr elr_el2, x10
        eret
        "
    };
}

global_asm!(
    ".section .text.boot, \"ax\"",
    // The boot CPU: clear .bss (no stack needed), then the common entry
    // with logical id 0.
    ".globl _start",
    "_start:",
    "   adrp x9, _bss_start",
    "   add x9, x9, :lo12:_bss_start",
    "   adrp x10, _bss_end",
    "   add x10, x10, :lo12:_bss_end",
    "1: cmp x9, x10",
    "   b.hs 2f",
    "   stp xzr, xzr, [x9], #16",
    "   b 1b",
    "2: mov x19, #0",
    "   adrp x20, {boot}",
    "   add x20, x20, :lo12:{boot}",
    "   b 5f",
    // Secondary CPUs: x0 = logical id (the PSCI context id).
    ".globl _secondary_start",
    "_secondary_start:",
    "   mov x19, x0",
    "   adrp x20, {secondary}",
    "   add x20, x20, :lo12:{secondary}",
    // Common entry: x19 = logical id, x20 = Rust entry. Stack top of CPU i
    // is STACKS + (i + 1) << STACK_SHIFT.
    "5: adrp x9, {stacks}",
    "   add x9, x9, :lo12:{stacks}",
    "   add x10, x19, #1",
    "   add x9, x9, x10, lsl #{stack_shift}",
    "   adrp x11, aarch64_vectors",
    "   add x11, x11, :lo12:aarch64_vectors",
    "   mrs x21, CurrentEL",
    "   lsr x21, x21, #2",
    "   cmp x21, #2",
    "   b.ne 3f",
    // At EL2 with a GICv3 CPU interface (ID_AA64PFR0_EL1.GIC): enable its
    // system registers at EL2 and for EL1 (ICC_SRE_EL2.SRE and .Enable).
    "   mrs x10, id_aa64pfr0_el1",
    "   ubfx x10, x10, #24, #4",
    "   cbz x10, 6f",
    "   mov x10, #0xf",
    "   msr icc_sre_el2, x10",
    "   isb",
    "6:",
    at_el2!(),
    // At EL1.
    "3: mov sp, x9",
    "   mov x10, #(3 << 20)",           // CPACR_EL1.FPEN: no FP/SIMD trap
    "   msr cpacr_el1, x10",
    "   msr vbar_el1, x11",
    "   isb",
    // Both: Rust with (logical id, entry EL).
    "4: mov x0, x19",
    "   mov x1, x21",
    "   blr x20",
    "   b .",
    boot = sym boot,
    secondary = sym secondary,
    stacks = sym STACKS,
    stack_shift = const STACK_SHIFT,
);

// The exception vectors of the running exception level. The IRQ vector of the
// current level saves every register the Rust handler may clobber
// (caller-saved general registers, all SIMD registers, FPSR and FPCR), calls
// `irq` and returns; every other vector reports a fatal exception.
global_asm!(
    ".macro FATAL_VECTOR kind",
    "   .balign 0x80",
    "   mov x0, #\\kind",
    "   b aarch64_fatal",
    ".endm",
    ".section .text",
    ".balign 0x800",
    "aarch64_vectors:",
    // Current EL with SP_EL0: never used.
    "   FATAL_VECTOR 0",
    "   FATAL_VECTOR 1",
    "   FATAL_VECTOR 2",
    "   FATAL_VECTOR 3",
    // Current EL with SP_ELx: synchronous, IRQ, FIQ, SError.
    "   FATAL_VECTOR 4",
    "   .balign 0x80",
    "   b aarch64_irq",
    "   FATAL_VECTOR 6",
    "   FATAL_VECTOR 7",
    // Lower EL, AArch64 then AArch32: never used.
    "   FATAL_VECTOR 8",
    "   FATAL_VECTOR 9",
    "   FATAL_VECTOR 10",
    "   FATAL_VECTOR 11",
    "   FATAL_VECTOR 12",
    "   FATAL_VECTOR 13",
    "   FATAL_VECTOR 14",
    "   FATAL_VECTOR 15",
    "aarch64_fatal:",
    concat!("   mrs x1, esr_el", el!()),
    concat!("   mrs x2, elr_el", el!()),
    concat!("   mrs x3, far_el", el!()),
    "   bl {fatal}",
    "aarch64_irq:",
    "   sub sp, sp, #704",
    "   stp x0, x1, [sp, #0]",
    "   stp x2, x3, [sp, #16]",
    "   stp x4, x5, [sp, #32]",
    "   stp x6, x7, [sp, #48]",
    "   stp x8, x9, [sp, #64]",
    "   stp x10, x11, [sp, #80]",
    "   stp x12, x13, [sp, #96]",
    "   stp x14, x15, [sp, #112]",
    "   stp x16, x17, [sp, #128]",
    "   stp x18, x29, [sp, #144]",
    "   mrs x0, fpsr",
    "   mrs x1, fpcr",
    "   stp x30, x0, [sp, #160]",
    "   str x1, [sp, #176]",
    "   add x0, sp, #192",
    "   st1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x0], #64",
    "   st1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x0], #64",
    "   st1 {{v8.16b, v9.16b, v10.16b, v11.16b}}, [x0], #64",
    "   st1 {{v12.16b, v13.16b, v14.16b, v15.16b}}, [x0], #64",
    "   st1 {{v16.16b, v17.16b, v18.16b, v19.16b}}, [x0], #64",
    "   st1 {{v20.16b, v21.16b, v22.16b, v23.16b}}, [x0], #64",
    "   st1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [x0], #64",
    "   st1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [x0], #64",
    "   bl {irq}",
    "   add x0, sp, #192",
    "   ld1 {{v0.16b, v1.16b, v2.16b, v3.16b}}, [x0], #64",
    "   ld1 {{v4.16b, v5.16b, v6.16b, v7.16b}}, [x0], #64",
    "   ld1 {{v8.16b, v9.16b, v10.16b, v11.16b}}, [x0], #64",
    "   ld1 {{v12.16b, v13.16b, v14.16b, v15.16b}}, [x0], #64",
    "   ld1 {{v16.16b, v17.16b, v18.16b, v19.16b}}, [x0], #64",
    "   ld1 {{v20.16b, v21.16b, v22.16b, v23.16b}}, [x0], #64",
    "   ld1 {{v24.16b, v25.16b, v26.16b, v27.16b}}, [x0], #64",
    "   ld1 {{v28.16b, v29.16b, v30.16b, v31.16b}}, [x0], #64",
    "   ldr x1, [sp, #176]",
    "   ldp x30, x0, [sp, #160]",
    "   msr fpsr, x0",
    "   msr fpcr, x1",
    "   ldp x18, x29, [sp, #144]",
    "   ldp x16, x17, [sp, #128]",
    "   ldp x14, x15, [sp, #112]",
    "   ldp x12, x13, [sp, #96]",
    "   ldp x10, x11, [sp, #80]",
    "   ldp x8, x9, [sp, #64]",
    "   ldp x6, x7, [sp, #48]",
    "   ldp x4, x5, [sp, #32]",
    "   ldp x2, x3, [sp, #16]",
    "   ldp x0, x1, [sp, #0]",
    "   add sp, sp, #704",
    "   eret",
    fatal = sym fatal,
    irq = sym irq,
);

/// Rust entry of the boot CPU: records the entry level, sets up the GIC and
/// runs the kernel.
extern "C" fn boot(_cpu_id: usize, entry_el: usize) -> ! {
    ENTRY_EL.store(entry_el, Ordering::Relaxed);
    if cfg!(feature = "arm-el2") && entry_el != 2 {
        crate::fail(format_args!(
            "the arm-el2 build was entered at EL{entry_el}: boot QEMU with virtualization=on"
        ));
    }
    let revision = gic::init_distributor();
    GIC_V3.store(revision >= 3, Ordering::Relaxed);
    gic::init_this_cpu();
    crate::println!("{NAME}: GICv{revision}");
    crate::boot_main()
}

/// Rust entry of a secondary CPU, with its logical id.
extern "C" fn secondary(cpu_id: usize) -> ! {
    gic::init_this_cpu();
    crate::secondary_main(cpu_id)
}

/// An exception other than the timer interrupt: a test failure.
extern "C" fn fatal(vector: usize, esr: usize, elr: usize, far: usize) -> ! {
    crate::fail(format_args!(
        "unexpected exception (vector {vector}) at EL{}: ESR={esr:#x} ELR={elr:#x} FAR={far:#x}",
        el!()
    ))
}

/// Handles an interrupt: timer ticks are counted, wake-ups acknowledged,
/// anything else is a failure.
extern "C" fn irq() {
    let Some(intid) = gic::acknowledge() else {
        return;
    };
    match intid {
        gic::TIMER_INTID => {
            crate::on_timer_tick();
            set_timer_interval();
        }
        gic::WAKE_SGI => {}
        _ => crate::fail(format_args!("unexpected interrupt {intid}")),
    }
    gic::end(intid);
}

/// Writes one byte to the UART, waiting until it can take it.
pub fn console_write_byte(b: u8) {
    // SAFETY: the `virt` machine's PL011 registers, reached with the MMU off;
    // polling FR and writing DR are safe on any CPU.
    unsafe {
        while read_volatile(UART_FR as *const u32) & UART_FR_TXFF != 0 {
            core::hint::spin_loop();
        }
        write_volatile(UART_DR as *mut u32, u32::from(b));
    }
}

/// Makes a PSCI call through the machine's conduit: `smc` when the CPU was
/// entered at EL2 (QEMU's PSCI is then behind EL3's `smc`), `hvc` otherwise.
fn psci_call(function: u64, args: [u64; 3]) -> i64 {
    let mut result = function;
    macro_rules! call {
        ($instruction:literal) => {
            asm!($instruction, inout("x0") result, in("x1") args[0], in("x2") args[1],
                 in("x3") args[2], clobber_abi("C"), options(nostack))
        };
    }
    // SAFETY: PSCI calls clobber at most x0-x17 (declared); CPU_ON touches no
    // memory of the caller.
    unsafe {
        if ENTRY_EL.load(Ordering::Relaxed) == 2 {
            call!("smc #0");
        } else {
            call!("hvc #0");
        }
    }
    result as i64
}

/// The number of CPUs QEMU was started with, from fw_cfg.
pub fn present_cpus() -> Option<usize> {
    // SAFETY: the `virt` machine's fw_cfg device, reached with the MMU off.
    fw_cfg::cpu_count(&unsafe { fw_cfg::Mmio::new(FW_CFG) })
}

/// CPUs per MPIDR cluster (Aff0 values) on the `virt` machine.
fn cluster_size() -> usize {
    if GIC_V3.load(Ordering::Relaxed) {
        16
    } else {
        8
    }
}

/// Starts the next CPUs (PSCI `CPU_ON`), until `max_cpus` run in total.
pub fn start_secondary_cpus(max_cpus: usize) -> usize {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effect.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    let cluster = cluster_size();
    let boot_index = ((mpidr >> 8) & 0xff) as usize * cluster + (mpidr & 0xff) as usize;
    let entry = _secondary_start as *const () as u64;
    smp::start_cpus_by_index("QEMU cpu", boot_index, max_cpus, |index, cpu| {
        let target = (((index / cluster) << 8) | (index % cluster)) as u64;
        match psci_call(PSCI_CPU_ON, [target, entry, cpu as u64]) {
            0 => Ok(()),
            error => Err(error as isize),
        }
    })
}

/// Sleeps until an SGI from [`wake_all`] is pending (at once if one is),
/// then acknowledges every pending interrupt.
pub fn wait_for_wake() {
    // SAFETY: `wfi` only waits; a pending interrupt ends it even with IRQs
    // masked in PSTATE (they are, outside `timer_start`).
    unsafe { asm!("wfi", options(nomem, nostack)) };
    while let Some(intid) = gic::acknowledge() {
        if intid != gic::WAKE_SGI {
            crate::fail(format_args!("unexpected interrupt {intid} while waiting"));
        }
        gic::end(intid);
    }
}

/// Wakes every other CPU from [`wait_for_wake`] with an SGI.
pub fn wake_all() {
    gic::wake_others();
}

/// Stops this CPU for good: `wfi` forever, with IRQs masked.
pub fn halt() -> ! {
    // SAFETY: masks IRQs and stops this CPU's timer; nothing relies on them
    // afterwards.
    unsafe {
        asm!("msr daifset, #2", options(nomem, nostack));
        asm!("msr cntp_ctl_el0, {}", in(reg) 0u64, options(nomem, nostack));
    }
    loop {
        wait_for_wake();
    }
}

/// The physical counter (CNTPCT_EL0) in nanoseconds.
pub fn clock_ns() -> u64 {
    let (count, frequency): (u64, u64);
    // SAFETY: reading the counter and its frequency has no side effect; EL1
    // access is allowed (CNTHCTL_EL2 when entered at EL2).
    unsafe {
        asm!("isb", "mrs {}, cntpct_el0", out(reg) count, options(nomem, nostack));
        asm!("mrs {}, cntfrq_el0", out(reg) frequency, options(nomem, nostack));
    }
    (u128::from(count) * 1_000_000_000 / u128::from(frequency.max(1))) as u64
}

/// Arms the physical timer to fire after one tick period.
fn set_timer_interval() {
    let frequency: u64;
    // SAFETY: reading the counter frequency has no side effect.
    unsafe { asm!("mrs {}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    let ticks = u128::from(frequency) * u128::from(super::tick_period_ns()) / 1_000_000_000;
    // SAFETY: programs this CPU's physical timer (enabled, unmasked); EL1
    // access is allowed by CNTHCTL_EL2.
    unsafe {
        asm!("msr cntp_tval_el0, {}", in(reg) ticks as u64, options(nomem, nostack));
        asm!("msr cntp_ctl_el0, {}", in(reg) 1u64, options(nomem, nostack));
    }
}

/// Starts a periodic timer interrupt on this CPU, each calling
/// [`crate::on_timer_tick`]; always available here (the GIC forwards the
/// timer's PPI since the CPU came online).
pub fn timer_start() -> bool {
    set_timer_interval();
    // SAFETY: unmasks IRQs; the vector table handles them.
    unsafe { asm!("msr daifclr, #2", options(nomem, nostack)) };
    true
}

/// Stops this CPU's periodic timer interrupt.
pub fn timer_stop() {
    // SAFETY: masks IRQs and disables this CPU's physical timer.
    unsafe {
        asm!("msr daifset, #2", options(nomem, nostack));
        asm!("msr cntp_ctl_el0, {}", in(reg) 0u64, options(nomem, nostack));
    }
}

/// Ends the emulation through semihosting `SYS_EXIT` with the pass or fail status.
pub fn exit(success: bool) -> ! {
    let status = if success {
        QEMU_PASS_STATUS
    } else {
        QEMU_FAIL_STATUS
    };
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    // SAFETY: the semihosting call reads the two-word parameter block and
    // ends the emulation (`-semihosting-config enable=on`).
    unsafe {
        asm!("hlt #0xf000", in("x0") SEMIHOSTING_SYS_EXIT, in("x1") block.as_ptr(),
             options(nostack, readonly));
    }
    loop {
        // SAFETY: waiting for an event has no other effect.
        unsafe { asm!("wfe", options(nomem, nostack)) };
    }
}
