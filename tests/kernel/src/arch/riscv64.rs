//! riscv64 on the QEMU `virt` machine, in S-mode under OpenSBI.
//!
//! - Boot: OpenSBI jumps to `_start` on one hart (not always hart 0) with
//!   `a0` = its hart id. That hart becomes logical CPU 0.
//! - Other harts: started by the SBI HSM extension (`hart_start`) at
//!   `_secondary_start`, with their logical id as the opaque argument (`a1`).
//! - Console: the 16550 UART at 0x1000_0000.
//! - Exit: the `sifive_test` device at 0x10_0000.
//! - Timer: SBI `set_timer` and the supervisor timer interrupt.
//!
//! The percpu crate keeps the per-CPU area base in `gp`, so nothing here ever
//! touches `gp`, and the linker script defines no `__global_pointer$`.

use core::arch::{asm, global_asm};
use core::ptr::write_volatile;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::smp::{self, STACKS, STACK_SHIFT};
use super::uart16550::{Mmio, Uart16550};

#[path = "riscv64_qemu.rs"]
mod qemu;
pub use qemu::{QEMU_FAIL_STATUS, QEMU_PASS_STATUS};

/// Name of this architecture.
pub const NAME: &str = "riscv64";

/// The 16550 UART of the `virt` machine.
const UART_BASE: usize = 0x1000_0000;

/// The `sifive_test` power-off device of the `virt` machine.
const SIFIVE_TEST: usize = 0x10_0000;

/// SBI extension ids and function ids used here.
const SBI_EXT_BASE: usize = 0x10;
const SBI_BASE_PROBE_EXTENSION: usize = 3;
const SBI_EXT_HSM: usize = 0x48_534D;
const SBI_HSM_HART_START: usize = 0;
const SBI_EXT_TIME: usize = 0x5449_4D45;
const SBI_TIME_SET_TIMER: usize = 0;

/// `sstatus.SIE`: supervisor interrupts enabled.
const SSTATUS_SIE: usize = 1 << 1;
/// `sstatus.FS` = Initial: the FPU is on (rustc may emit FP instructions).
const SSTATUS_FS_INITIAL: usize = 1 << 13;
/// `sie.STIE`: supervisor timer interrupt enabled.
const SIE_STIE: usize = 1 << 5;
/// `scause` of a supervisor timer interrupt.
const SCAUSE_SUPERVISOR_TIMER: usize = (1 << 63) | 5;

/// Timer period in `time` ticks: 100 µs with the `virt` machine's 10 MHz timebase.
const TICK_INTERVAL: u64 = 1_000;

/// Hart id of the boot hart (logical CPU 0).
static BOOT_HART: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    /// Entry point of secondary harts (in the `global_asm!` below).
    fn _secondary_start();
}

global_asm!(
    ".section .text.boot, \"ax\"",
    // The boot hart: a0 = hart id, a1 = device tree.
    ".globl _start",
    "_start:",
    "   csrw sie, zero",
    "   la t0, riscv64_trap_entry",
    "   csrw stvec, t0",
    "   li t0, {fs_initial}",
    "   csrs sstatus, t0",
    // Logical CPU 0 uses the first stack.
    "   la sp, {stacks}",
    "   li t0, 1 << {stack_shift}",
    "   add sp, sp, t0",
    "   la t0, _bss_start",
    "   la t1, _bss_end",
    "1: bgeu t0, t1, 2f",
    "   sd zero, 0(t0)",
    "   addi t0, t0, 8",
    "   j 1b",
    "2: call {boot}",
    // Secondary harts: a0 = hart id, a1 = logical CPU id (the opaque value).
    ".globl _secondary_start",
    "_secondary_start:",
    "   csrw sie, zero",
    "   la t0, riscv64_trap_entry",
    "   csrw stvec, t0",
    "   li t0, {fs_initial}",
    "   csrs sstatus, t0",
    "   la sp, {stacks}",
    "   addi t0, a1, 1",
    "   slli t0, t0, {stack_shift}",
    "   add sp, sp, t0",
    "   mv a0, a1",
    "   call {secondary}",
    fs_initial = const SSTATUS_FS_INITIAL,
    stacks = sym STACKS,
    stack_shift = const STACK_SHIFT,
    boot = sym boot,
    secondary = sym secondary,
);

// The trap entry: saves every register the Rust handler may clobber
// (caller-saved integer and floating-point registers and `fcsr`), calls
// `trap`, restores them and returns. Traps only come from S-mode, on the
// interrupted code's stack; `gp` (the per-CPU base) is left alone.
global_asm!(
    ".option push",
    ".option arch, +d",
    ".section .text",
    ".balign 4",
    "riscv64_trap_entry:",
    "   addi sp, sp, -{frame}",
    "   .set off, 0",
    "   .irp r, ra, t0, t1, t2, t3, t4, t5, t6, a0, a1, a2, a3, a4, a5, a6, a7",
    "   sd \\r, off(sp)",
    "   .set off, off + 8",
    "   .endr",
    "   .irp r, ft0, ft1, ft2, ft3, ft4, ft5, ft6, ft7, ft8, ft9, ft10, ft11, fa0, fa1, fa2, fa3, fa4, fa5, fa6, fa7",
    "   fsd \\r, off(sp)",
    "   .set off, off + 8",
    "   .endr",
    "   frcsr t0",
    "   sd t0, off(sp)",
    "   call {trap}",
    "   ld t0, off(sp)",
    "   fscsr t0",
    "   .set off, 0",
    "   .irp r, ra, t0, t1, t2, t3, t4, t5, t6, a0, a1, a2, a3, a4, a5, a6, a7",
    "   ld \\r, off(sp)",
    "   .set off, off + 8",
    "   .endr",
    "   .irp r, ft0, ft1, ft2, ft3, ft4, ft5, ft6, ft7, ft8, ft9, ft10, ft11, fa0, fa1, fa2, fa3, fa4, fa5, fa6, fa7",
    "   fld \\r, off(sp)",
    "   .set off, off + 8",
    "   .endr",
    "   addi sp, sp, {frame}",
    "   sret",
    ".option pop",
    // 16 integer + 20 floating-point registers + fcsr, rounded up to 16 bytes.
    frame = const 38 * 8,
    trap = sym trap,
);

/// Rust entry of the boot hart: records its hart id and runs the kernel.
extern "C" fn boot(hart_id: usize) -> ! {
    BOOT_HART.store(hart_id, Ordering::Relaxed);
    crate::boot_main()
}

/// Rust entry of a secondary hart, with its logical CPU id.
extern "C" fn secondary(cpu_id: usize) -> ! {
    crate::secondary_main(cpu_id)
}

/// Handles a trap: timer interrupts tick, anything else is a test failure.
extern "C" fn trap() {
    let scause: usize;
    // SAFETY: reading a supervisor CSR in S-mode has no side effect.
    unsafe { asm!("csrr {}, scause", out(reg) scause, options(nomem, nostack)) };
    if scause == SCAUSE_SUPERVISOR_TIMER {
        crate::on_timer_tick();
        set_timer(read_time() + TICK_INTERVAL);
        return;
    }
    let (sepc, stval): (usize, usize);
    // SAFETY: reading supervisor CSRs in S-mode has no side effect.
    unsafe {
        asm!("csrr {}, sepc", out(reg) sepc, options(nomem, nostack));
        asm!("csrr {}, stval", out(reg) stval, options(nomem, nostack));
    }
    crate::fail(format_args!(
        "unexpected trap: scause={scause:#x} sepc={sepc:#x} stval={stval:#x}"
    ))
}

/// Makes an SBI call; returns the SBI error code (0 = success) and value.
fn sbi_call(ext: usize, func: usize, args: [usize; 3]) -> (isize, usize) {
    let (error, value): (isize, usize);
    // SAFETY: an SBI call only changes a0 and a1 (declared here); the calls
    // made by this module do not touch memory the kernel owns.
    unsafe {
        asm!(
            "ecall",
            inlateout("a0") args[0] => error,
            inlateout("a1") args[1] => value,
            in("a2") args[2],
            in("a6") func,
            in("a7") ext,
            options(nostack),
        )
    };
    (error, value)
}

/// Whether the firmware implements SBI extension `ext`.
fn sbi_has_extension(ext: usize) -> bool {
    let (error, value) = sbi_call(SBI_EXT_BASE, SBI_BASE_PROBE_EXTENSION, [ext, 0, 0]);
    error == 0 && value != 0
}

/// Programs this hart's next timer interrupt at `time` value `deadline`.
fn set_timer(deadline: u64) {
    sbi_call(SBI_EXT_TIME, SBI_TIME_SET_TIMER, [deadline as usize, 0, 0]);
}

/// Reads the `time` CSR.
fn read_time() -> u64 {
    let time: u64;
    // SAFETY: reading the time counter has no side effect.
    unsafe { asm!("csrr {}, time", out(reg) time, options(nomem, nostack)) };
    time
}

/// The serial console, as OpenSBI programmed it.
// SAFETY: the `virt` machine has a 16550 UART at UART_BASE, driven only
// through this value once the kernel runs; reached without paging, its
// registers affect nothing else.
static UART: Uart16550<Mmio> = unsafe { Uart16550::new(Mmio(UART_BASE)) };

/// Writes one byte to the UART, waiting until it can take it.
pub fn console_write_byte(b: u8) {
    UART.write_byte(b);
}

/// Starts the other harts (SBI HSM), at most `max_cpus` CPUs in total.
pub fn start_secondary_cpus(max_cpus: usize) -> usize {
    let boot_hart = BOOT_HART.load(Ordering::Relaxed);
    crate::println!("{NAME}: boot hart is hart {boot_hart} (cpu 0)");
    if !sbi_has_extension(SBI_EXT_HSM) {
        crate::println!("{NAME}: firmware without SBI HSM: 1 cpu");
        return 1;
    }
    let entry = _secondary_start as *const () as usize;
    smp::start_cpus_by_hw_id("hart", boot_hart, max_cpus, |hart, cpu| {
        match sbi_call(SBI_EXT_HSM, SBI_HSM_HART_START, [hart, entry, cpu]) {
            (0, _) => Ok(()),
            (error, _) => Err(error),
        }
    })
}

/// Starts a periodic timer interrupt on this hart, each calling
/// [`crate::on_timer_tick`]; returns whether the firmware has a timer.
pub fn timer_start() -> bool {
    if !sbi_has_extension(SBI_EXT_TIME) {
        return false;
    }
    set_timer(read_time() + TICK_INTERVAL);
    // SAFETY: enables the supervisor timer interrupt, handled by `trap`
    // (stvec was set at entry).
    unsafe {
        asm!("csrs sie, {}", in(reg) SIE_STIE, options(nomem, nostack));
        asm!("csrs sstatus, {}", in(reg) SSTATUS_SIE, options(nomem, nostack));
    }
    true
}

/// Stops this hart's periodic timer interrupt.
pub fn timer_stop() {
    // SAFETY: masks interrupts on this hart; nothing relies on them afterwards.
    unsafe {
        asm!("csrc sstatus, {}", in(reg) SSTATUS_SIE, options(nomem, nostack));
        asm!("csrc sie, {}", in(reg) SIE_STIE, options(nomem, nostack));
    }
    set_timer(u64::MAX);
}

/// Powers QEMU off through `sifive_test` with the pass or fail status.
pub fn exit(success: bool) -> ! {
    let status = if success {
        QEMU_PASS_STATUS
    } else {
        QEMU_FAIL_STATUS
    };
    // sifive_test: 0x5555 = pass (status 0), (code << 16) | 0x3333 = fail with `code`.
    let command = match status {
        0 => 0x5555,
        code => ((code as u32) << 16) | 0x3333,
    };
    // SAFETY: the `sifive_test` register of the `virt` machine; writing it
    // ends the emulation.
    unsafe { write_volatile(SIFIVE_TEST as *mut u32, command) };
    loop {
        // SAFETY: waiting for an interrupt has no other effect.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}
