//! riscv64 on the QEMU `virt` machine, in S-mode under OpenSBI.
//!
//! - Boot: OpenSBI jumps to `_start` on one hart (not always hart 0) with
//!   `a0` = its hart id. That hart becomes logical CPU 0.
//! - Other harts: started by the SBI HSM extension (`hart_start`) at
//!   `_secondary_start`, with their logical id as the opaque argument (`a1`).
//!   The bundled OpenSBI boots at most 128 harts.
//! - Console: the 16550 UART at 0x1000_0000.
//! - Exit: the `sifive_test` device at 0x10_0000.
//! - Timer: SBI `set_timer` and the supervisor timer interrupt.
//! - Waiting: `wfi` with only the supervisor software interrupt enabled in
//!   `sie` (and `sstatus.SIE` off), woken by an SBI IPI, which sets
//!   `sip.SSIP`.
//!
//! The percpu crate keeps the per-CPU area base in `gp`, so nothing here ever
//! touches `gp`, and the linker script defines no `__global_pointer$`.

use core::arch::{asm, global_asm};
use core::ptr::write_volatile;
use core::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

use super::fw_cfg;
use super::smp::{self, STACKS, STACK_SHIFT};
use super::uart16550::{Mmio, Uart16550};

#[path = "riscv64_qemu.rs"]
mod qemu;
pub use qemu::{QEMU_FAIL_STATUS, QEMU_PASS_STATUS};

/// Name of this architecture.
pub const NAME: &str = "riscv64";

/// The most harts OpenSBI boots (1.1; the 1.5.1 bundled with QEMU 10 runs
/// out of heap above 35, see `riscv64_qemu.rs`).
pub const MAX_CPUS: usize = 128;

/// The 16550 UART of the `virt` machine.
const UART_BASE: usize = 0x1000_0000;

/// The `sifive_test` power-off device of the `virt` machine.
const SIFIVE_TEST: usize = 0x10_0000;

/// The fw_cfg device of the `virt` machine.
const FW_CFG: usize = 0x1010_0000;

/// SBI extension ids and function ids used here.
const SBI_EXT_BASE: usize = 0x10;
const SBI_BASE_PROBE_EXTENSION: usize = 3;
const SBI_EXT_HSM: usize = 0x48_534D;
const SBI_HSM_HART_START: usize = 0;
const SBI_EXT_TIME: usize = 0x5449_4D45;
const SBI_TIME_SET_TIMER: usize = 0;
const SBI_EXT_IPI: usize = 0x73_5049;
const SBI_IPI_SEND_IPI: usize = 0;

/// `sstatus.SIE`: supervisor interrupts enabled.
const SSTATUS_SIE: usize = 1 << 1;
/// `sstatus.FS` = Initial: the FPU is on (rustc may emit FP instructions).
const SSTATUS_FS_INITIAL: usize = 1 << 13;
/// `sie.SSIE`, `sip.SSIP`: supervisor software interrupt (an SBI IPI).
const SIE_SSIE: usize = 1 << 1;
/// `sie.STIE`: supervisor timer interrupt enabled.
const SIE_STIE: usize = 1 << 5;
/// `scause` of a supervisor software and timer interrupt.
const SCAUSE_SUPERVISOR_SOFTWARE: usize = (1 << 63) | 1;
const SCAUSE_SUPERVISOR_TIMER: usize = (1 << 63) | 5;

/// Nanoseconds per `time` tick (the `virt` machine's 10 MHz timebase).
const NS_PER_TIME_TICK: u64 = 100;

/// Hart id of the boot hart (logical CPU 0).
static BOOT_HART: AtomicUsize = AtomicUsize::new(0);

/// The harts that run this kernel, one bit per hart id: [`wake_all`] sends
/// its IPIs to them.
static ONLINE: [AtomicU64; MAX_CPUS.div_ceil(64)] =
    [const { AtomicU64::new(0) }; MAX_CPUS.div_ceil(64)];

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
    come_online(hart_id);
    crate::println!("{NAME}: boot hart is hart {hart_id} (cpu 0)");
    crate::boot_main()
}

/// Rust entry of a secondary hart, with its hart id and logical CPU id.
extern "C" fn secondary(hart_id: usize, cpu_id: usize) -> ! {
    come_online(hart_id);
    crate::secondary_main(cpu_id)
}

/// Marks hart `hart_id` (the caller) online for [`wake_all`] and lets its
/// `wfi` wake up on an IPI.
fn come_online(hart_id: usize) {
    ONLINE[hart_id / 64].fetch_or(1 << (hart_id % 64), Ordering::Relaxed);
    // SAFETY: enables the supervisor software interrupt in `sie` only; with
    // `sstatus.SIE` off it is never taken outside `timer_start`, where `trap`
    // handles it.
    unsafe { asm!("csrs sie, {}", in(reg) SIE_SSIE, options(nomem, nostack)) };
}

/// Handles a trap: timer interrupts tick, IPIs are acknowledged, anything
/// else is a test failure.
extern "C" fn trap() {
    let scause: usize;
    // SAFETY: reading a supervisor CSR in S-mode has no side effect.
    unsafe { asm!("csrr {}, scause", out(reg) scause, options(nomem, nostack)) };
    if scause == SCAUSE_SUPERVISOR_TIMER {
        crate::on_timer_tick();
        set_timer(read_time() + tick_interval());
        return;
    }
    if scause == SCAUSE_SUPERVISOR_SOFTWARE {
        clear_ipi();
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

/// The number of harts QEMU was started with, from fw_cfg.
pub fn present_cpus() -> Option<usize> {
    // SAFETY: the `virt` machine's fw_cfg device, reached without paging.
    fw_cfg::cpu_count(&unsafe { fw_cfg::Mmio::new(FW_CFG) })
}

/// Clears `sip.SSIP`: the wake-up IPI (if any) has been seen.
fn clear_ipi() {
    // SAFETY: clearing the supervisor software interrupt pending bit only
    // acknowledges an IPI.
    unsafe { asm!("csrc sip, {}", in(reg) SIE_SSIE, options(nomem, nostack)) };
}

/// Sleeps until an IPI is pending (at once if one is), then acknowledges it.
pub fn wait_for_wake() {
    // SAFETY: `wfi` only waits; it returns when an interrupt enabled in `sie`
    // (here the software interrupt, see `come_online`) is pending, even with
    // `sstatus.SIE` off, and OpenSBI does not trap it (mstatus.TW = 0).
    unsafe { asm!("wfi", options(nomem, nostack)) };
    clear_ipi();
}

/// Sends an IPI to every online hart, 64 hart ids per SBI call. The caller's
/// own IPI only makes its next [`wait_for_wake`] return at once.
pub fn wake_all() {
    // The stores the woken harts look for come before the IPIs.
    fence(Ordering::SeqCst);
    for (window, online) in ONLINE.iter().enumerate() {
        let mask = online.load(Ordering::Relaxed);
        if mask != 0 {
            sbi_call(
                SBI_EXT_IPI,
                SBI_IPI_SEND_IPI,
                [mask as usize, window * 64, 0],
            );
        }
    }
}

/// Stops this hart for good: `wfi` forever, with interrupts off.
pub fn halt() -> ! {
    // SAFETY: masks interrupts on this hart; nothing relies on them afterwards.
    unsafe { asm!("csrc sstatus, {}", in(reg) SSTATUS_SIE, options(nomem, nostack)) };
    loop {
        wait_for_wake();
    }
}

/// The timer period in `time` ticks.
fn tick_interval() -> u64 {
    super::tick_period_ns() / NS_PER_TIME_TICK
}

/// The `time` CSR in nanoseconds.
pub fn clock_ns() -> u64 {
    read_time() * NS_PER_TIME_TICK
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

/// Starts the next harts (SBI HSM), until `max_cpus` CPUs run in total.
pub fn start_secondary_cpus(max_cpus: usize) -> usize {
    let boot_hart = BOOT_HART.load(Ordering::Relaxed);
    if !sbi_has_extension(SBI_EXT_HSM) {
        crate::println!("{NAME}: firmware without SBI HSM: 1 cpu");
        return 1;
    }
    let entry = _secondary_start as *const () as usize;
    smp::start_cpus_by_index("hart", boot_hart, max_cpus, |hart, cpu| {
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
    set_timer(read_time() + tick_interval());
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
