//! loongarch64 architecture layer of the test kernel (QEMU `virt`).
//!
//! # Boot
//!
//! QEMU loads the kernel ELF at its physical addresses and starts CPUs in
//! direct-address mode (virtual = physical, interrupts off), so the kernel
//! runs where it is linked (0x100_0000) with no MMU setup. `_start` tells the
//! boot CPU (core id 0) from the others, clears `.bss`, switches to the boot
//! CPU's stack and calls [`crate::boot_main`]. The softfloat target needs no
//! FPU.
//!
//! # Secondary CPUs
//!
//! QEMU has two start-up behaviours, and both are handled:
//!
//! * QEMU 7.2 starts every CPU at `_start` at once. The non-boot CPUs go to
//!   `la_secondary_start`, where each waits on its own boot slot (indexed by
//!   core id, kept in `.data` so that clearing `.bss` cannot race with it).
//! * QEMU 10 parks the non-boot CPUs in a ROM loop that waits for an IPI and
//!   then jumps to the address in mailbox 0. The ROM clears the mailbox when
//!   it starts, which can erase an early write, so the mailbox and the IPI
//!   are re-sent until the CPU checks in.
//!
//! Either way the CPU ends up in `la_secondary_start`, takes its stack and
//! logical id from its boot slot, checks in, and calls
//! [`crate::secondary_main`]. CPUs are started one at a time. The `virt`
//! machine takes up to 256 CPUs.
//!
//! # Interrupts
//!
//! Interrupts are off (CRMD.IE) except between [`timer_start`] and
//! [`timer_stop`]. Two local interrupt lines are enabled in ECFG.LIE on
//! every CPU: the constant timer (TCFG, cleared through TICLR), which calls
//! [`crate::on_timer_tick`], and the IPI line, whose [`WAKE_IPI_VECTOR`]
//! wakes a CPU sleeping in `idle` (which returns on a pending interrupt
//! enabled in ECFG.LIE even with CRMD.IE off). Every exception enters
//! `la_exception_entry`, which saves the registers the Rust handler may
//! clobber and returns with `ertn` from interrupts; any other exception
//! fails the run.
//!
//! # Exit
//!
//! Success powers the machine off through the ACPI GED device (QEMU exits
//! 0); failure signals the `pvpanic-pci` device, which `-action
//! panic=exit-failure` turns into exit status 1.
//!
//! Nothing here touches `$r21`: the `percpu` crate owns it.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::hint::spin_loop;
use core::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};

use super::fw_cfg;
use super::uart16550::{Mmio, Uart16550};
use crate::console::{write_hex_unlocked, write_str_unlocked};

#[path = "loongarch64_qemu.rs"]
mod qemu;

pub use qemu::{QEMU_FAIL_STATUS, QEMU_PASS_STATUS};

/// Architecture name printed in reports.
pub const NAME: &str = "loongarch64";

/// The most CPUs the `virt` board takes.
pub const MAX_CPUS: usize = 256;

/// Size of each CPU's stack.
const STACK_SIZE: usize = 256 * 1024;
/// Number of core ids with a boot slot; a CPU with a higher id parks itself.
const MAX_CORE_IDS: usize = MAX_CPUS;

/// The first 16550 UART (registers one byte apart).
const UART_BASE: usize = 0x1fe0_01e0;

/// ACPI GED sleep control register and the value that enters S5 (power off):
/// SLP_EN | SLP_TYP = 5.
const GED_SLEEP_CONTROL: usize = 0x100e_001c;
const GED_POWER_OFF: u8 = 0x34;

/// PCIe configuration space (ECAM) of bus 0.
const PCI_ECAM_BASE: usize = 0x2000_0000;
/// Vendor and device id of QEMU's `pvpanic-pci` (1b36:0011), as read from
/// configuration offset 0.
const PVPANIC_PCI_ID: u32 = 0x0011_1b36;
/// Where the kernel maps the pvpanic BAR: the start of the PCI memory window,
/// which the `virt` board maps 1:1 at CPU address 0x4000_0000.
const PVPANIC_BAR_ADDRESS: u32 = 0x4000_0000;
/// pvpanic event: the guest panicked.
const PVPANIC_PANICKED: u8 = 1;
/// PCI configuration offsets and the command register's memory-space bit.
const PCI_COMMAND: usize = 0x04;
const PCI_BAR0: usize = 0x10;
const PCI_COMMAND_MEMORY: u16 = 1 << 1;

/// The fw_cfg device of the `virt` board.
const FW_CFG: usize = 0x1e02_0000;

/// IOCSR registers of this CPU's IPI block: pending vectors, enabled
/// vectors, and clearing pending ones.
const IOCSR_IPI_STATUS: usize = 0x1000;
const IOCSR_IPI_ENABLE: usize = 0x1004;
const IOCSR_IPI_CLEAR: usize = 0x100c;
/// IOCSR registers that send an IPI or a mailbox word to another CPU.
const IOCSR_IPI_SEND: usize = 0x1040;
const IOCSR_MBUF_SEND: usize = 0x1048;
/// "Wait for completion" bit of both send registers.
const IOCSR_SEND_BLOCKING: u64 = 1 << 31;
/// Bit position of the target core id in both send registers.
const IOCSR_SEND_CPU_SHIFT: u32 = 16;
/// Mailbox-send word selectors (bits 4:2): mailbox 0 low and high halves.
const MBUF_BOX0_LOW: u64 = 0 << 2;
const MBUF_BOX0_HIGH: u64 = 1 << 2;
/// IPI vector (status bit) that wakes a CPU: from the ROM loop (QEMU 10) at
/// start, from `idle` in [`wait_for_wake`] afterwards.
const WAKE_IPI_VECTOR: u64 = 0;

/// CSR numbers: CRMD, ECFG, EENTRY, TCFG, TICLR.
const CSR_CRMD: u32 = 0x0;
const CSR_ECFG: u32 = 0x4;
const CSR_EENTRY: u32 = 0xc;
const CSR_TCFG: u32 = 0x41;
const CSR_TICLR: u32 = 0x44;
/// CRMD.IE: interrupts enabled.
const CRMD_IE: usize = 1 << 2;
/// Local interrupt lines (ECFG.LIE and ESTAT.IS bits): the constant timer and
/// the IPI.
const INT_TIMER: usize = 1 << 11;
const INT_IPI: usize = 1 << 12;
/// TCFG: enabled, periodic; TICLR: clear the timer interrupt.
const TCFG_ENABLE: usize = 1 << 0;
const TCFG_PERIODIC: usize = 1 << 1;
const TICLR_CLEAR: usize = 1;

/// Start attempts (mailbox + IPI) per CPU, and spin-loop iterations to wait
/// for a check-in after each (counted in iterations rather than time, so
/// that an oversubscribed host that delays the new vCPU also delays the
/// count).
const START_ATTEMPTS: usize = 40;
const CHECK_IN_SPINS: usize = 5_000_000;

/// One stack per CPU; CPU `i` uses the `i`-th. Not part of `.bss`, so it is
/// not cleared (the linker script puts `.bss.kernel_stack` in its own
/// `NOLOAD` section).
#[repr(C, align(4096))]
struct Stacks(UnsafeCell<[[u8; STACK_SIZE]; MAX_CPUS]>);

// SAFETY: each stack is used by exactly one CPU, and only through the stack
// pointer; Rust code never forms references into this memory.
unsafe impl Sync for Stacks {}

#[unsafe(link_section = ".bss.kernel_stack")]
static STACKS: Stacks = Stacks(UnsafeCell::new([[0; STACK_SIZE]; MAX_CPUS]));

/// What a secondary CPU needs to enter Rust, published by the boot CPU.
/// `la_secondary_start` reads it at offsets 0 and 8.
#[repr(C)]
struct BootSlot {
    /// Top of the CPU's stack; 0 until the CPU may start.
    stack_top: AtomicUsize,
    /// Logical id; `usize::MAX` tells the CPU to park itself.
    cpu_id: AtomicUsize,
}

const _: () = assert!(core::mem::size_of::<BootSlot>() == 16);

/// Boot slots indexed by core id. In `.data`, not `.bss`: with QEMU 7.2 the
/// secondary CPUs poll their slot while the boot CPU clears `.bss`.
#[unsafe(link_section = ".data.la_boot_slots")]
static BOOT_SLOTS: [BootSlot; MAX_CORE_IDS] = [const {
    BootSlot {
        stack_top: AtomicUsize::new(0),
        cpu_id: AtomicUsize::new(0),
    }
}; MAX_CORE_IDS];

/// Logical id of the last CPU that checked in (0 = none yet).
static AP_CHECKED_IN: AtomicUsize = AtomicUsize::new(0);

/// The cores running the kernel, one bit per core id: [`wake_all`] sends
/// them IPIs.
static ONLINE: [AtomicU64; MAX_CORE_IDS.div_ceil(64)] =
    [const { AtomicU64::new(0) }; MAX_CORE_IDS.div_ceil(64)];

/// The next core id to start, and the number of CPUs running (boot CPU
/// included): where [`start_secondary_cpus`] resumes.
static NEXT_CORE: AtomicUsize = AtomicUsize::new(0);
static RUNNING: AtomicUsize = AtomicUsize::new(1);

unsafe extern "C" {
    /// Entry of secondary CPUs (from `_start` on QEMU 7.2, from the ROM
    /// loop's mailbox jump on QEMU 10).
    fn la_secondary_start();
    /// Exception entry (4 KiB-aligned, as EENTRY requires).
    fn la_exception_entry();
}

// The boot entry, the secondary entry and the exception entry.
global_asm!(
    r#"
    .pushsection .text.boot, "ax", @progbits
    .global _start
_start:
    csrrd $t0, 0x20
    andi $t0, $t0, 0x1ff
    /* QEMU 7.2 starts every CPU here: all but core 0 wait for release. */
    bnez $t0, la_secondary_start
    /* Boot CPU: clear .bss (no stack in use yet). */
    la.pcrel $t0, _bss_start
    la.pcrel $t1, _bss_end
.Lla_clear_bss:
    bgeu $t0, $t1, .Lla_bss_clear
    st.d $zero, $t0, 0
    addi.d $t0, $t0, 8
    b .Lla_clear_bss
.Lla_bss_clear:
    la.pcrel $sp, {stacks}
    li.d $t0, {stack_size}
    add.d $sp, $sp, $t0
    move $fp, $zero
    bl {boot_entry}
.Lla_boot_halt:
    idle 0
    b .Lla_boot_halt

    .global la_secondary_start
la_secondary_start:
    csrrd $t0, 0x20
    andi $t0, $t0, 0x1ff
    li.d $t1, {max_core_ids}
    bgeu $t0, $t1, .Lla_park
    la.pcrel $t1, {boot_slots}
    slli.d $t0, $t0, 4
    add.d $t1, $t1, $t0
    /* Wait until the boot CPU publishes this CPU's stack. */
.Lla_wait_release:
    ld.d $t2, $t1, 0
    beqz $t2, .Lla_wait_release
    dbar 0
    ld.d $a0, $t1, 8
    addi.d $t3, $zero, -1
    beq $a0, $t3, .Lla_park
    move $sp, $t2
    move $fp, $zero
    bl {secondary_entry}
.Lla_park:
    idle 0
    b .Lla_park
    .popsection

    .pushsection .text.la_exception, "ax", @progbits
    .p2align 12
    .global la_exception_entry
la_exception_entry:
    /* On the interrupted code's stack (kept 16-byte aligned by the ABI):
       save ra, a0-a7 and t0-t8, the registers Rust may clobber ($r21, the
       per-CPU base, is never touched). */
    addi.d $sp, $sp, -{frame}
    st.d $ra, $sp, 0
    .irp n, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
    st.d $r\n, $sp, (\n - 3) * 8
    .endr
    csrrd $a0, 0x5
    csrrd $a1, 0x6
    csrrd $a2, 0x7
    bl {exception_entry}
    .irp n, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20
    ld.d $r\n, $sp, (\n - 3) * 8
    .endr
    ld.d $ra, $sp, 0
    addi.d $sp, $sp, {frame}
    ertn
    .popsection
"#,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    boot_entry = sym boot_cpu_entry,
    max_core_ids = const MAX_CORE_IDS,
    boot_slots = sym BOOT_SLOTS,
    secondary_entry = sym secondary_cpu_entry,
    exception_entry = sym exception_entry,
    // ra and 17 argument and temporary registers, rounded up to 16 bytes.
    frame = const 18 * 8,
);

/// Writes an 8-bit device register.
///
/// # Safety
///
/// `address` must be a device register whose write has only the effect the
/// caller intends.
unsafe fn mmio_write8(address: usize, value: u8) {
    // SAFETY: guaranteed by the caller.
    unsafe { (address as *mut u8).write_volatile(value) }
}

/// Sends a 32-bit value to an IOCSR register.
///
/// # Safety
///
/// `address` must be an IOCSR register whose write has only the effect the
/// caller intends.
unsafe fn iocsr_write32(address: usize, value: u32) {
    // SAFETY: guaranteed by the caller; `iocsrwr.w` touches no memory.
    unsafe {
        asm!("iocsrwr.w {value}, {address}", value = in(reg) value, address = in(reg) address,
             options(nostack, preserves_flags))
    };
}

/// Reads a 32-bit IOCSR register.
///
/// # Safety
///
/// `address` must be an IOCSR register whose read has no side effect.
unsafe fn iocsr_read32(address: usize) -> u32 {
    let value: u32;
    // SAFETY: guaranteed by the caller; `iocsrrd.w` touches no memory.
    unsafe {
        asm!("iocsrrd.w {value}, {address}", value = out(reg) value, address = in(reg) address,
             options(nostack, preserves_flags))
    };
    value
}

/// Sends a 64-bit value to an IOCSR register.
///
/// # Safety
///
/// As for [`iocsr_write32`].
unsafe fn iocsr_write64(address: usize, value: u64) {
    // SAFETY: guaranteed by the caller; `iocsrwr.d` touches no memory.
    unsafe {
        asm!("iocsrwr.d {value}, {address}", value = in(reg) value, address = in(reg) address,
             options(nostack, preserves_flags))
    };
}

/// Core id of the calling CPU (CSR.CPUID).
fn core_id() -> usize {
    let id: usize;
    // SAFETY: reading CSR.CPUID has no side effects.
    unsafe { asm!("csrrd {}, 0x20", out(reg) id, options(nomem, nostack, preserves_flags)) };
    id & 0x1ff
}

/// The serial console.
// SAFETY: the `virt` board has a 16550 UART at UART_BASE, driven only
// through this value; in direct-address mode its registers are reached at
// their physical addresses and affect nothing else.
static UART: Uart16550<Mmio> = unsafe { Uart16550::new(Mmio(UART_BASE)) };

/// Writes one byte to the serial console, polling until the UART can take
/// it.
pub fn console_write_byte(b: u8) {
    UART.write_byte(b);
}

/// Finds QEMU's `pvpanic-pci` device on PCI bus 0, maps its BAR, and reports
/// a guest panic through it. Returns false if there is no such device.
fn signal_pvpanic() -> bool {
    for device in 0..32 {
        let config = PCI_ECAM_BASE + (device << 15);
        // SAFETY: the ECAM window of bus 0 is mapped by the `virt` board;
        // reading a vendor/device id has no side effects (absent devices read
        // as all ones).
        let id = unsafe { (config as *const u32).read_volatile() };
        if id != PVPANIC_PCI_ID {
            continue;
        }
        // SAFETY: this is the pvpanic-pci function's configuration space: BAR0
        // is placed at the start of the PCI memory window (unused otherwise),
        // memory decoding is enabled, and the write to the BAR's first
        // register reports the panic, which ends the QEMU run.
        unsafe {
            ((config + PCI_BAR0) as *mut u32).write_volatile(PVPANIC_BAR_ADDRESS);
            let command = ((config + PCI_COMMAND) as *const u16).read_volatile();
            ((config + PCI_COMMAND) as *mut u16).write_volatile(command | PCI_COMMAND_MEMORY);
            mmio_write8(PVPANIC_BAR_ADDRESS as usize, PVPANIC_PANICKED);
        }
        return true;
    }
    false
}

/// Ends the QEMU run: powers off through ACPI GED if `success` (QEMU exits
/// with [`QEMU_PASS_STATUS`]), otherwise reports a panic through pvpanic-pci
/// (QEMU exits with [`QEMU_FAIL_STATUS`]).
pub fn exit(success: bool) -> ! {
    if success {
        // SAFETY: GED_SLEEP_CONTROL is the ACPI GED sleep control register of
        // the `virt` board; this write powers the machine off.
        unsafe { mmio_write8(GED_SLEEP_CONTROL, GED_POWER_OFF) };
    } else if !signal_pvpanic() {
        // Powering off would exit with the pass status: stop instead, so that
        // the run ends by timeout.
        write_str_unlocked(
            "\nloongarch64: no pvpanic-pci device, cannot exit with a failure status\n",
        );
    }
    halt()
}

/// The number of CPUs QEMU was started with, from fw_cfg.
pub fn present_cpus() -> Option<usize> {
    // SAFETY: the `virt` board's fw_cfg device, reached in direct-address mode.
    fw_cfg::cpu_count(&unsafe { fw_cfg::Mmio::new(FW_CFG) })
}

/// Top of CPU `cpu_id`'s stack.
fn stack_top(cpu_id: usize) -> usize {
    STACKS.0.get() as usize + (cpu_id + 1) * STACK_SIZE
}

/// Per-CPU setup done by every CPU before it runs the common code: installs
/// the exception entry, enables the timer and IPI lines in ECFG.LIE (not in
/// CRMD: interrupts stay off) and the wake-up IPI vector, clears what the
/// start-up left pending, and marks the core online for [`wake_all`].
fn init_this_cpu() {
    let entry = la_exception_entry as *const () as usize;
    // SAFETY: EENTRY receives a 4 KiB-aligned entry that handles the timer
    // and IPI interrupts and fails the run on anything else; ECFG selects a
    // single entry (VS = 0) and the two local lines, which are only taken
    // once CRMD.IE is set (`timer_start`); the timer is off until then.
    unsafe {
        asm!("csrwr {}, {csr}", inout(reg) entry => _, csr = const CSR_EENTRY,
             options(nostack, preserves_flags));
        asm!("csrwr {}, {csr}", inout(reg) INT_TIMER | INT_IPI => _, csr = const CSR_ECFG,
             options(nostack, preserves_flags));
        asm!("csrwr {}, {csr}", inout(reg) 0usize => _, csr = const CSR_TCFG,
             options(nostack, preserves_flags));
        asm!("csrwr {}, {csr}", inout(reg) TICLR_CLEAR => _, csr = const CSR_TICLR,
             options(nostack, preserves_flags));
    }
    // SAFETY: this core's IPI block: clearing what started it (QEMU 10's ROM
    // loop) and enabling the wake-up vector only affects its own IPIs.
    unsafe {
        iocsr_write32(IOCSR_IPI_CLEAR, u32::MAX);
        iocsr_write32(IOCSR_IPI_ENABLE, 1 << WAKE_IPI_VECTOR);
    }
    let core = core_id();
    ONLINE[core / 64].fetch_or(1 << (core % 64), Ordering::Release);
}

/// Rust entry of the boot CPU, called by `_start` on stack 0.
extern "C" fn boot_cpu_entry() -> ! {
    init_this_cpu();
    UART.init();
    crate::boot_main()
}

/// Rust entry of a secondary CPU, called on its own stack with its logical id.
extern "C" fn secondary_cpu_entry(cpu_id: usize) -> ! {
    init_this_cpu();
    AP_CHECKED_IN.store(cpu_id, Ordering::Release);
    crate::secondary_main(cpu_id)
}

/// Sends `value` to mailbox 0 of core `core`, high half first (the ROM loop
/// of QEMU 10 polls the low half and jumps once it is non-zero).
fn mailbox_send(core: usize, value: u64) {
    let target = ((core as u64) << IOCSR_SEND_CPU_SHIFT) | IOCSR_SEND_BLOCKING;
    // SAFETY: IOCSR_MBUF_SEND writes one 32-bit word of another core's
    // mailbox; nothing but the ROM start-up loop reads mailbox 0.
    unsafe {
        iocsr_write64(
            IOCSR_MBUF_SEND,
            (value & !0xffff_ffff) | target | MBUF_BOX0_HIGH,
        );
        iocsr_write64(IOCSR_MBUF_SEND, (value << 32) | target | MBUF_BOX0_LOW);
    }
}

/// Sends a wake-up IPI to core `core`.
fn ipi_send(core: usize) {
    let command = ((core as u64) << IOCSR_SEND_CPU_SHIFT) | IOCSR_SEND_BLOCKING | WAKE_IPI_VECTOR;
    // SAFETY: IOCSR_IPI_SEND sets an IPI status bit of another core: it
    // wakes the ROM loop (QEMU 10) or `wait_for_wake`, and the exception
    // entry acknowledges it if it interrupts.
    unsafe { iocsr_write32(IOCSR_IPI_SEND, command as u32) };
}

/// Acknowledges this core's pending IPIs.
fn clear_ipis() {
    // SAFETY: this core's IPI block; clearing its pending vectors lowers the
    // IPI line and has no other effect.
    unsafe { iocsr_write32(IOCSR_IPI_CLEAR, iocsr_read32(IOCSR_IPI_STATUS)) };
}

/// Sleeps until a wake-up IPI is pending (at once if one is), then
/// acknowledges it.
pub fn wait_for_wake() {
    // SAFETY: `idle` waits until an interrupt line enabled in ECFG.LIE (the
    // IPI line, see `init_this_cpu`) is pending, also with CRMD.IE off.
    unsafe { asm!("idle 0", options(nomem, nostack, preserves_flags)) };
    clear_ipis();
}

/// Sends a wake-up IPI to every other online core.
pub fn wake_all() {
    // The stores the woken cores look for come before the IPIs.
    fence(Ordering::SeqCst);
    let me = core_id();
    for (window, online) in ONLINE.iter().enumerate() {
        let mut cores = online.load(Ordering::Acquire);
        while cores != 0 {
            let core = window * 64 + cores.trailing_zeros() as usize;
            cores &= cores - 1;
            if core != me {
                ipi_send(core);
            }
        }
    }
}

/// Reads the stable counter with `rdtime.d`.
fn read_time() -> u64 {
    let time: u64;
    // SAFETY: reading the stable counter has no side effect.
    unsafe { asm!("rdtime.d {}, $zero", out(reg) time, options(nomem, nostack, preserves_flags)) };
    time
}

/// The frequency of the stable counter and the constant timer, from CPUCFG
/// words 4 (base frequency) and 5 (multiplier, divisor).
fn counter_hz() -> u64 {
    let (base, ratio): (u64, u64);
    // SAFETY: reading CPUCFG words has no side effect.
    unsafe {
        asm!("cpucfg {}, {}", out(reg) base, in(reg) 4u64, options(nomem, nostack, preserves_flags));
        asm!("cpucfg {}, {}", out(reg) ratio, in(reg) 5u64, options(nomem, nostack, preserves_flags));
    }
    let (multiplier, divisor) = (ratio & 0xffff, (ratio >> 16) & 0xffff);
    (base & 0xffff_ffff) * multiplier.max(1) / divisor.max(1)
}

/// The stable counter in nanoseconds.
pub fn clock_ns() -> u64 {
    (u128::from(read_time()) * 1_000_000_000 / u128::from(counter_hz().max(1))) as u64
}

/// Stops this CPU for good: `idle` forever, with interrupts off.
pub fn halt() -> ! {
    timer_stop();
    loop {
        wait_for_wake();
    }
}

/// Starts the constant timer of this CPU (periodic, every
/// [`super::tick_period_ns`]) and enables interrupts; each tick calls
/// [`crate::on_timer_tick`]. Returns true: every CPU has the timer.
pub fn timer_start() -> bool {
    let ticks = u128::from(counter_hz()) * u128::from(super::tick_period_ns()) / 1_000_000_000;
    let config = (ticks as usize & !0b11) | TCFG_PERIODIC | TCFG_ENABLE;
    // SAFETY: programs this CPU's constant timer, whose interrupt line is
    // enabled in ECFG.LIE, then sets CRMD.IE: the exception entry handles
    // the timer and IPI interrupts and preserves the interrupted registers.
    unsafe {
        asm!("csrwr {}, {csr}", inout(reg) config => _, csr = const CSR_TCFG,
             options(nostack, preserves_flags));
        asm!("csrxchg {}, {}, {csr}", inout(reg) CRMD_IE => _, in(reg) CRMD_IE,
             csr = const CSR_CRMD, options(nostack, preserves_flags));
    }
    true
}

/// Disables interrupts on this CPU and stops its constant timer.
pub fn timer_stop() {
    // SAFETY: clearing CRMD.IE masks interrupts; disabling the timer and
    // clearing its pending interrupt only concern this CPU.
    unsafe {
        asm!("csrxchg {}, {}, {csr}", inout(reg) 0usize => _, in(reg) CRMD_IE,
             csr = const CSR_CRMD, options(nostack, preserves_flags));
        asm!("csrwr {}, {csr}", inout(reg) 0usize => _, csr = const CSR_TCFG,
             options(nostack, preserves_flags));
        asm!("csrwr {}, {csr}", inout(reg) TICLR_CLEAR => _, csr = const CSR_TICLR,
             options(nostack, preserves_flags));
    }
}

/// Waits (by spin count) for CPU `cpu_id` to check in.
fn wait_check_in(cpu_id: usize) -> bool {
    for _ in 0..CHECK_IN_SPINS {
        if AP_CHECKED_IN.load(Ordering::Acquire) == cpu_id {
            return true;
        }
        spin_loop();
    }
    false
}

/// Starts core `core` as logical CPU `cpu_id` and waits until it has checked
/// in. Returns false (and tells the core to park itself, should it still
/// arrive) if it does not.
fn start_cpu(core: usize, cpu_id: usize) -> bool {
    let slot = &BOOT_SLOTS[core];
    slot.cpu_id.store(cpu_id, Ordering::Relaxed);
    // Releases the core at once if it already waits in `la_secondary_start`
    // (QEMU 7.2).
    slot.stack_top.store(stack_top(cpu_id), Ordering::Release);
    fence(Ordering::SeqCst);
    let entry = la_secondary_start as *const () as u64;
    for _ in 0..START_ATTEMPTS {
        // QEMU 10: wake the core from its ROM loop. Re-sending is harmless
        // once it has left the loop (it ignores IPIs and the mailbox then).
        mailbox_send(core, entry);
        ipi_send(core);
        if wait_check_in(cpu_id) {
            return true;
        }
    }
    slot.cpu_id.store(usize::MAX, Ordering::SeqCst);
    false
}

/// Starts the next secondary CPUs, one at a time, with the next logical ids,
/// until `max_cpus` CPUs run in total, each on its own stack and entering
/// [`crate::secondary_main`]; continues where the previous call stopped.
/// Returns the number of CPUs running, including the boot CPU. A core that
/// does not start is skipped (the caller compares the count with QEMU's).
pub fn start_secondary_cpus(max_cpus: usize) -> usize {
    let present = present_cpus().unwrap_or(1).min(MAX_CORE_IDS);
    let boot_core = core_id();
    let mut running = RUNNING.load(Ordering::Relaxed);
    let mut core = NEXT_CORE.load(Ordering::Relaxed);
    while running < max_cpus && core < present {
        if core != boot_core && start_cpu(core, running) {
            running += 1;
        }
        core += 1;
    }
    NEXT_CORE.store(core, Ordering::Relaxed);
    RUNNING.store(running, Ordering::Relaxed);
    running
}

/// Called by the exception entry with CSR.ESTAT, CSR.ERA and CSR.BADV:
/// handles the timer and IPI interrupts and returns; reports any other
/// exception and fails the run.
extern "C" fn exception_entry(estat: u64, era: u64, badv: u64) {
    let ecode = (estat >> 16) & 0x3f;
    let pending = estat as usize & (INT_TIMER | INT_IPI);
    if ecode == 0 && pending != 0 {
        if pending & INT_TIMER != 0 {
            // SAFETY: acknowledges this CPU's timer interrupt.
            unsafe {
                asm!("csrwr {}, {csr}", inout(reg) TICLR_CLEAR => _, csr = const CSR_TICLR,
                     options(nostack, preserves_flags))
            };
            crate::on_timer_tick();
        }
        if pending & INT_IPI != 0 {
            clear_ipis();
        }
        return;
    }
    fatal(estat, era, badv)
}

/// Reports an unexpected exception and fails the run.
fn fatal(estat: u64, era: u64, badv: u64) -> ! {
    write_str_unlocked("\n!! loongarch64 exception: estat ");
    write_hex_unlocked(estat);
    write_str_unlocked(" (ecode ");
    write_hex_unlocked((estat >> 16) & 0x3f);
    write_str_unlocked(") era ");
    write_hex_unlocked(era);
    write_str_unlocked(" badv ");
    write_hex_unlocked(badv);
    write_str_unlocked(" core ");
    write_hex_unlocked(core_id() as u64);
    write_str_unlocked("\n");
    exit(false)
}
