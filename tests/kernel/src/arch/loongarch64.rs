//! loongarch64 architecture layer of the test kernel (QEMU `virt`).
//!
//! # Boot
//!
//! QEMU loads the kernel ELF at its physical addresses and starts CPUs in
//! direct-address mode (virtual = physical, interrupts off), so the kernel
//! runs where it is linked (0x20_0000) with no MMU setup. `_start` tells the
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
//! [`crate::secondary_main`]. CPUs are started one at a time.
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
use core::sync::atomic::{fence, AtomicUsize, Ordering};

use super::uart16550::{Mmio, Uart16550};
use crate::console::{write_hex_unlocked, write_str_unlocked};

#[path = "loongarch64_qemu.rs"]
mod qemu;

pub use qemu::{QEMU_FAIL_STATUS, QEMU_PASS_STATUS};

/// Architecture name printed in reports.
pub const NAME: &str = "loongarch64";

/// Most CPUs this layer starts (and has stacks for).
const MAX_CPUS: usize = 8;
/// Size of each CPU's stack.
const STACK_SIZE: usize = 256 * 1024;
/// Number of core ids with a boot slot; a CPU with a higher id parks itself.
const MAX_CORE_IDS: usize = 64;

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

/// fw_cfg (MMIO): data register, and the big-endian 16-bit selector at +8.
const FW_CFG_DATA: usize = 0x1e02_0000;
const FW_CFG_SELECTOR: usize = FW_CFG_DATA + 8;
const FW_CFG_SIGNATURE: u16 = 0x0000;
const FW_CFG_NB_CPUS: u16 = 0x0005;

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
/// IPI vector (status bit) used to wake a parked CPU.
const WAKE_IPI_VECTOR: u64 = 0;

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
    csrrd $a0, 0x5
    csrrd $a1, 0x6
    csrrd $a2, 0x7
    bstrins.d $sp, $zero, 3, 0
    bl {exception_entry}
.Lla_exception_halt:
    idle 0
    b .Lla_exception_halt
    .popsection
"#,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    boot_entry = sym boot_cpu_entry,
    max_core_ids = const MAX_CORE_IDS,
    boot_slots = sym BOOT_SLOTS,
    secondary_entry = sym secondary_cpu_entry,
    exception_entry = sym exception_entry,
);

/// Reads an 8-bit device register.
///
/// # Safety
///
/// `address` must be a device register (or RAM) that may be read at any
/// time with no effect beyond what the caller expects.
unsafe fn mmio_read8(address: usize) -> u8 {
    // SAFETY: guaranteed by the caller; in direct-address mode the address is
    // the physical address.
    unsafe { (address as *const u8).read_volatile() }
}

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

/// Stops the calling CPU for good.
fn halt() -> ! {
    loop {
        // SAFETY: `idle` only waits for an interrupt (none are enabled).
        unsafe { asm!("idle 0", options(nomem, nostack, preserves_flags)) };
    }
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

/// Number of CPUs QEMU was started with, from fw_cfg (1 if fw_cfg is absent).
fn fw_cfg_cpu_count() -> usize {
    let select = |key: u16| {
        // SAFETY: FW_CFG_SELECTOR is the fw_cfg selector register of the
        // `virt` board (big-endian); selecting an item has no other effect.
        unsafe { (FW_CFG_SELECTOR as *mut u16).write_volatile(key.to_be()) }
    };
    // SAFETY: FW_CFG_DATA is the fw_cfg data register; each byte read returns
    // the next byte of the selected item.
    let read = || unsafe { mmio_read8(FW_CFG_DATA) };
    select(FW_CFG_SIGNATURE);
    let signature = [read(), read(), read(), read()];
    if &signature != b"QEMU" {
        return 1;
    }
    select(FW_CFG_NB_CPUS);
    let low = usize::from(read());
    let high = usize::from(read());
    (low | (high << 8)).max(1)
}

/// Top of CPU `cpu_id`'s stack.
fn stack_top(cpu_id: usize) -> usize {
    STACKS.0.get() as usize + (cpu_id + 1) * STACK_SIZE
}

/// Per-CPU setup done by every CPU before it runs the common code: installs
/// the exception entry and masks every interrupt source.
fn init_this_cpu() {
    let entry = la_exception_entry as *const () as usize;
    // SAFETY: EENTRY receives a 4 KiB-aligned handler that reports the
    // exception and ends the run; clearing ECFG masks all local interrupt
    // lines and selects a single exception entry (interrupts stay disabled
    // in CRMD anyway).
    unsafe {
        asm!("csrwr {}, 0xc", inout(reg) entry => _, options(nostack, preserves_flags));
        asm!("csrwr {}, 0x4", inout(reg) 0usize => _, options(nostack, preserves_flags));
    }
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
    // SAFETY: IOCSR_IPI_SEND sets an IPI status bit of another core; the
    // kernel never enables IPI interrupts, so it only wakes the ROM loop.
    unsafe { iocsr_write32(IOCSR_IPI_SEND, command as u32) };
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

/// Starts the secondary CPUs, one at a time, as logical CPUs 1, 2, ... up to
/// `max_cpus` CPUs in total (at most 8), each on its own stack and entering
/// [`crate::secondary_main`]. Returns the number of CPUs running, including
/// the boot CPU. Every CPU counted has already checked in here.
pub fn start_secondary_cpus(max_cpus: usize) -> usize {
    let present = fw_cfg_cpu_count();
    let wanted = max_cpus.min(MAX_CPUS).min(present).max(1);
    let boot_core = core_id();
    let mut running = 1;
    for core in 0..present.min(MAX_CORE_IDS) {
        if running == wanted {
            break;
        }
        if core != boot_core && start_cpu(core, running) {
            running += 1;
        }
    }
    running
}

/// Called by the exception entry with CSR.ESTAT, CSR.ERA and CSR.BADV.
/// Reports and fails.
extern "C" fn exception_entry(estat: u64, era: u64, badv: u64) -> ! {
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
