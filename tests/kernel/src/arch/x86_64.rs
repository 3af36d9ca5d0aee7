//! x86_64 architecture layer of the test kernel (QEMU `q35`).
//!
//! # Boot
//!
//! QEMU loads the kernel ELF at its physical (load) addresses and, because of
//! the PVH ELF note emitted below, enters `_start` in 32-bit protected mode
//! with paging off. `_start` builds an identity map of the first 4 GiB with
//! 2 MiB pages (the tables live in `.data`), loads a GDT, enables PAE, long
//! mode, paging and SSE, and jumps to 64-bit code, which clears `.bss`,
//! switches to the boot CPU's stack and calls [`crate::boot_main`].
//!
//! # Secondary CPUs
//!
//! [`start_secondary_cpus`] reads the CPU count from QEMU's fw_cfg device,
//! copies a 16-bit trampoline to 0x8000 and wakes one CPU at a time with
//! INIT, SIPI, SIPI through the local APIC. The trampoline enters protected
//! mode and joins the boot CPU's path into long mode; the CPU then takes its
//! stack and logical id from two shared variables, checks in, and calls
//! [`crate::secondary_main`]. The next CPU is only started after the previous
//! one has checked in, so the shared variables are never overwritten early.
//!
//! # Interrupts
//!
//! Interrupts stay disabled unless a CPU calls [`enable_timer_interrupts`].
//! Every CPU loads the same IDT: CPU exceptions print a report and fail the
//! run; vector 0x40 is the local APIC timer, whose handler calls
//! [`crate::on_timer_tick`]. Nothing here reads or writes GS or GS_BASE: the
//! `percpu` crate owns them.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::hint::spin_loop;
use core::sync::atomic::{compiler_fence, AtomicUsize, Ordering};

use super::uart16550::{Registers, Uart16550};
use crate::console::{write_hex_unlocked, write_str_unlocked};

#[path = "x86_64_qemu.rs"]
mod qemu;

pub use qemu::{QEMU_FAIL_STATUS, QEMU_PASS_STATUS};

/// Architecture name printed in reports.
pub const NAME: &str = "x86_64";

/// Most CPUs this layer starts (and has stacks for).
const MAX_CPUS: usize = 8;
/// Size of each CPU's stack.
const STACK_SIZE: usize = 256 * 1024;

/// I/O port of the first 16550 UART (COM1).
const COM1: u16 = 0x3f8;

/// I/O port of QEMU's `isa-debug-exit` device (see `x86_64_qemu.rs`).
const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Value written to `isa-debug-exit` for a pass; QEMU exits with `(v << 1) | 1`.
const DEBUG_EXIT_PASS: u32 = 0x10;
/// Value written to `isa-debug-exit` for a failure.
const DEBUG_EXIT_FAIL: u32 = 0x11;
const _: () = assert!(((DEBUG_EXIT_PASS << 1) | 1) as i32 == QEMU_PASS_STATUS);
const _: () = assert!(((DEBUG_EXIT_FAIL << 1) | 1) as i32 == QEMU_FAIL_STATUS);

/// fw_cfg selector and data I/O ports, and the items read from them.
const FW_CFG_SELECTOR: u16 = 0x510;
const FW_CFG_DATA: u16 = 0x511;
const FW_CFG_SIGNATURE: u16 = 0x0000;
const FW_CFG_NB_CPUS: u16 = 0x0005;

/// MSR holding the local APIC's physical base address.
const IA32_APIC_BASE: u32 = 0x1b;
/// Local APIC (xAPIC, memory-mapped) register offsets.
const LAPIC_ID: usize = 0x20;
const LAPIC_TPR: usize = 0x80;
const LAPIC_EOI: usize = 0xb0;
const LAPIC_SVR: usize = 0xf0;
const LAPIC_ICR_LOW: usize = 0x300;
const LAPIC_ICR_HIGH: usize = 0x310;
const LAPIC_LVT_TIMER: usize = 0x320;
const LAPIC_TIMER_INITIAL_COUNT: usize = 0x380;
const LAPIC_TIMER_DIVIDE: usize = 0x3e0;
/// SVR bit that software-enables the local APIC.
const SVR_APIC_ENABLE: u32 = 1 << 8;
/// ICR: the previous IPI has not been accepted yet.
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
/// ICR command: INIT, level assert.
const ICR_INIT: u32 = 0x0000_4500;
/// ICR command: start-up IPI (the vector is the trampoline's page number).
const ICR_STARTUP: u32 = 0x0000_4600;
/// LVT bits: masked, and periodic mode for the timer.
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Timer divide configuration value for "divide by 16".
const TIMER_DIVIDE_BY_16: u32 = 0b0011;
/// Timer initial count: QEMU clocks the APIC timer at 1 GHz, so 6 250 ticks
/// divided by 16 make a 100 µs period (short, so that even a brief stretch of
/// work is interrupted).
const TIMER_INITIAL_COUNT: u32 = 6_250;

/// Legacy 8259 PICs: command and data ports of the primary and secondary.
const PIC1_COMMAND: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_COMMAND: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;
/// Vectors the (masked) PICs are moved to, away from the CPU exceptions
/// (the BIOS leaves them at 0x08..0x10, where the PIT would raise "#DF").
const PIC_VECTOR_BASE: u8 = 0x20;

/// Interrupt vectors used by this layer.
const TIMER_VECTOR: u8 = 0x40;
const SPURIOUS_VECTOR: u8 = 0xff;
/// Number of CPU exception vectors with a handler.
const EXCEPTION_VECTORS: usize = 32;

/// Physical address the AP trampoline is copied to (page-aligned, below 1 MiB).
const TRAMPOLINE_ADDR: usize = 0x8000;
const _: () = assert!(TRAMPOLINE_ADDR & 0xfff == 0 && TRAMPOLINE_ADDR < 0x10_0000);

/// Highest xAPIC id probed when looking for secondary CPUs.
const MAX_APIC_ID: u32 = 0xfe;
/// After this many APIC ids fail to start, stop looking for more CPUs.
const MAX_START_FAILURES: usize = 4;
/// INIT-SIPI-SIPI rounds tried per APIC id before giving up on it.
const START_ATTEMPTS: usize = 3;
/// TSC ticks to wait after INIT (about 10 ms at 2 GHz) and after each SIPI.
const INIT_DELAY_TSC: u64 = 20_000_000;
const SIPI_DELAY_TSC: u64 = 400_000;
/// Spin-loop iterations to wait for a started CPU to check in (counted in
/// iterations rather than time, so that an oversubscribed host that delays
/// the new vCPU also delays the count).
const CHECK_IN_SPINS: usize = 200_000_000;

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

/// Stack pointer the CPU being started loads (read by the 64-bit AP entry).
static AP_STACK_TOP: AtomicUsize = AtomicUsize::new(0);
/// Logical id of the CPU being started (read by the 64-bit AP entry).
static AP_CPU_ID: AtomicUsize = AtomicUsize::new(0);
/// Logical id of the last CPU that checked in (0 = none yet).
static AP_CHECKED_IN: AtomicUsize = AtomicUsize::new(0);
/// Virtual (= physical) address of the local APIC registers, set at boot.
static LAPIC_BASE: AtomicUsize = AtomicUsize::new(0xfee0_0000);

/// The interrupt descriptor table shared by all CPUs (256 16-byte gates).
#[repr(C, align(16))]
struct Idt(UnsafeCell<[[u64; 2]; 256]>);

// SAFETY: the boot CPU fills the table once, before any other CPU runs or
// any interrupt is enabled; afterwards it is only read (by the CPUs).
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([[0; 2]; 256]));

/// Operand of `lidt`.
#[repr(C, packed)]
struct DescriptorTablePointer {
    limit: u16,
    base: u64,
}

unsafe extern "C" {
    /// First byte of the 16-bit AP trampoline (in the kernel image).
    fn x86_ap_trampoline_start();
    /// End of the AP trampoline.
    fn x86_ap_trampoline_end();
    /// Timer interrupt entry (vector 0x40).
    fn x86_timer_stub();
    /// Spurious interrupt entry: returns at once.
    fn x86_spurious_stub();
    /// Entry addresses of the exception stubs for vectors 0 to 31.
    static x86_exception_stub_table: [usize; EXCEPTION_VECTORS];
}

// The PVH note, the 32-bit entry with the switch to long mode, the 16-bit AP
// trampoline, the GDT, the boot page tables and the interrupt stubs.
//
// GDT selectors: 0x08 = 64-bit code, 0x10 = flat data, 0x18 = 32-bit code.
global_asm!(
    r#"
    /* Xen ELF note 18 (PHYS32_ENTRY): QEMU's PVH loader enters here. */
    .pushsection .note.Xen, "a", @note
    .p2align 2
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .quad _start
    .popsection

    .pushsection .text.boot32, "ax", @progbits
    .code32
    .global _start
_start:
    cli
    cld
    /* PML4[0] -> PDPT. */
    movl $(x86_boot_pdpt + 0x3), x86_boot_pml4
    /* PDPT[0..4] -> the four page directories. */
    movl $(x86_boot_pd + 0x3), %eax
    movl $x86_boot_pdpt, %edi
    movl $4, %ecx
.Lx86_fill_pdpt:
    movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $0x1000, %eax
    addl $8, %edi
    loop .Lx86_fill_pdpt
    /* 2048 2 MiB pages mapping 0..4 GiB to itself; uncached above 3 GiB. */
    movl $x86_boot_pd, %edi
    movl $2048, %ecx
    xorl %edx, %edx
.Lx86_fill_pd:
    movl %edx, %eax
    orl $0x83, %eax
    cmpl $0xc0000000, %edx
    jb .Lx86_fill_pd_cached
    orl $0x18, %eax
.Lx86_fill_pd_cached:
    movl %eax, (%edi)
    movl $0, 4(%edi)
    addl $0x200000, %edx
    addl $8, %edi
    loop .Lx86_fill_pd
    /* %esi = 0: this is the boot CPU. */
    xorl %esi, %esi

    /* Shared by all CPUs: 32-bit protected mode, paging off -> long mode. */
x86_enter_long_mode:
    lgdt x86_gdt_ptr
    /* CR4: PAE, OSFXSR, OSXMMEXCPT. */
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    movl %eax, %cr4
    movl $x86_boot_pml4, %eax
    movl %eax, %cr3
    /* EFER.LME */
    movl $0xc0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    wrmsr
    /* CR0: clear EM and TS; set PG, WP, NE, MP, PE. */
    movl %cr0, %eax
    andl $~((1 << 2) | (1 << 3)), %eax
    orl $((1 << 31) | (1 << 16) | (1 << 5) | (1 << 1) | 1), %eax
    movl %eax, %cr0
    ljmp $0x08, $x86_long_mode_entry

    /* A secondary CPU arrives here from the trampoline. */
x86_ap_protected_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl $1, %esi
    jmp x86_enter_long_mode

    .code64
x86_long_mode_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    testl %esi, %esi
    jnz .Lx86_ap_long_mode
    /* Boot CPU: clear .bss (no stack in use yet), take stack 0, enter Rust. */
    movq $_bss_start, %rdi
    movq $_bss_end, %rcx
    subq %rdi, %rcx
    xorl %eax, %eax
    rep stosb
    leaq {stacks}(%rip), %rsp
    addq ${stack_size}, %rsp
    xorl %ebp, %ebp
    call {boot_entry}
    ud2
.Lx86_ap_long_mode:
    movq {ap_stack_top}(%rip), %rsp
    movq {ap_cpu_id}(%rip), %rdi
    xorl %ebp, %ebp
    call {secondary_entry}
    ud2
    .popsection

    /* Copied to {trampoline_addr} and entered by SIPI in real mode at CS:IP = 0x0800:0. */
    .pushsection .rodata.x86_ap_trampoline, "a", @progbits
    .code16
    .global x86_ap_trampoline_start
    .global x86_ap_trampoline_end
x86_ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl (x86_ap_trampoline_gdt_ptr - x86_ap_trampoline_start + {trampoline_addr})
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $x86_ap_protected_entry
    .p2align 2
x86_ap_trampoline_gdt_ptr:
    .word x86_gdt_end - x86_gdt - 1
    .long x86_gdt
x86_ap_trampoline_end:
    .code64
    .popsection

    .pushsection .data.x86_boot, "aw", @progbits
    .p2align 4
x86_gdt:
    .quad 0
    .quad 0x00209b0000000000
    .quad 0x00cf93000000ffff
    .quad 0x00cf9b000000ffff
x86_gdt_end:
    .p2align 2
x86_gdt_ptr:
    .word x86_gdt_end - x86_gdt - 1
    .quad x86_gdt
    .p2align 12
x86_boot_pml4:
    .fill 512, 8, 0
x86_boot_pdpt:
    .fill 512, 8, 0
x86_boot_pd:
    .fill 2048, 8, 0
    .popsection

    .pushsection .text.x86_interrupts, "ax", @progbits
    .code64
    .macro X86_EXCEPTION_NO_ERROR_CODE vector
    .p2align 4
x86_exception_stub_\vector:
    pushq $0
    pushq $\vector
    jmp x86_exception_common
    .endm
    .macro X86_EXCEPTION_ERROR_CODE vector
    .p2align 4
x86_exception_stub_\vector:
    pushq $\vector
    jmp x86_exception_common
    .endm
    .irp vector, 0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 16, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28, 31
    X86_EXCEPTION_NO_ERROR_CODE \vector
    .endr
    .irp vector, 8, 10, 11, 12, 13, 14, 17, 21, 29, 30
    X86_EXCEPTION_ERROR_CODE \vector
    .endr

    /* Stack: vector, error code, RIP, CS, RFLAGS, RSP, SS. Never returns. */
x86_exception_common:
    movq %rsp, %rdi
    andq $-16, %rsp
    cld
    call {exception_entry}
    ud2

    /* Local APIC timer: save every caller-saved register (and the x87/SSE
       state), call Rust, restore, return. Does not touch GS. */
    .p2align 4
    .global x86_timer_stub
x86_timer_stub:
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %rbp
    movq %rsp, %rbp
    subq $512, %rsp
    andq $-16, %rsp
    fxsave64 (%rsp)
    cld
    call {timer_entry}
    fxrstor64 (%rsp)
    movq %rbp, %rsp
    popq %rbp
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rax
    iretq

    .p2align 4
    .global x86_spurious_stub
x86_spurious_stub:
    iretq
    .popsection

    .pushsection .rodata.x86_exception_stub_table, "a", @progbits
    .p2align 3
    .global x86_exception_stub_table
x86_exception_stub_table:
    .irp vector, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31
    .quad x86_exception_stub_\vector
    .endr
    .popsection
"#,
    stacks = sym STACKS,
    stack_size = const STACK_SIZE,
    boot_entry = sym boot_cpu_entry,
    ap_stack_top = sym AP_STACK_TOP,
    ap_cpu_id = sym AP_CPU_ID,
    secondary_entry = sym secondary_cpu_entry,
    trampoline_addr = const TRAMPOLINE_ADDR,
    exception_entry = sym exception_entry,
    timer_entry = sym timer_entry,
    options(att_syntax)
);

/// Writes a byte to an I/O port.
///
/// # Safety
///
/// Writing to an I/O port can have arbitrary effects on the machine; the
/// caller must know what device sits at `port` and what the write does.
unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller vouches for the device access; `out` touches no memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 16-bit value to an I/O port.
///
/// # Safety
///
/// As for [`outb`].
unsafe fn outw(port: u16, value: u16) {
    // SAFETY: the caller vouches for the device access; `out` touches no memory.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Writes a 32-bit value to an I/O port.
///
/// # Safety
///
/// As for [`outb`].
unsafe fn outl(port: u16, value: u32) {
    // SAFETY: the caller vouches for the device access; `out` touches no memory.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    };
}

/// Reads a byte from an I/O port.
///
/// # Safety
///
/// Reading an I/O port can change device state; the caller must know what
/// device sits at `port`.
unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller vouches for the device access; `in` touches no memory.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Reads a model-specific register.
///
/// # Safety
///
/// `msr` must exist on this CPU (otherwise `rdmsr` raises #GP).
unsafe fn rdmsr(msr: u32) -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists; `rdmsr` touches no memory.
    unsafe {
        asm!("rdmsr", in("ecx") msr, out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    };
    (u64::from(high) << 32) | u64::from(low)
}

/// Reads the time-stamp counter.
fn rdtsc() -> u64 {
    let (low, high): (u32, u32);
    // SAFETY: `rdtsc` is always available in long mode (CR4.TSD is clear) and
    // only reads the counter.
    unsafe {
        asm!("rdtsc", out("eax") low, out("edx") high, options(nomem, nostack, preserves_flags))
    };
    (u64::from(high) << 32) | u64::from(low)
}

/// Busy-waits for at least `ticks` time-stamp counter ticks.
fn delay_tsc(ticks: u64) {
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < ticks {
        spin_loop();
    }
}

/// Reads a local APIC register.
fn lapic_read(offset: usize) -> u32 {
    let address = LAPIC_BASE.load(Ordering::Relaxed) + offset;
    // SAFETY: the local APIC's register page is identity-mapped (uncached) by
    // the boot page tables, and `offset` is one of the register offsets above.
    unsafe { (address as *const u32).read_volatile() }
}

/// Writes a local APIC register.
fn lapic_write(offset: usize, value: u32) {
    let address = LAPIC_BASE.load(Ordering::Relaxed) + offset;
    // SAFETY: as in `lapic_read`; the callers only write values that are
    // valid for the register.
    unsafe { (address as *mut u32).write_volatile(value) };
}

/// Sends an inter-processor interrupt to the CPU with xAPIC id `apic_id` and
/// waits until the local APIC has accepted it.
fn send_ipi(apic_id: u32, command: u32) {
    lapic_write(LAPIC_ICR_HIGH, apic_id << 24);
    lapic_write(LAPIC_ICR_LOW, command);
    while lapic_read(LAPIC_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
        spin_loop();
    }
}

/// The registers of a 16550 UART at I/O ports `.0` to `.0 + 7`.
struct PortIo(u16);

impl Registers for PortIo {
    unsafe fn read(&self, offset: u8) -> u8 {
        // SAFETY: the caller guarantees that the port is a UART register.
        unsafe { inb(self.0 + u16::from(offset)) }
    }

    unsafe fn write(&self, offset: u8, value: u8) {
        // SAFETY: as in `read`.
        unsafe { outb(self.0 + u16::from(offset), value) }
    }
}

/// The serial console: COM1.
// SAFETY: COM1 is a 16550 UART on the q35 machine, driven only through this
// value; its ports affect nothing else.
static UART: Uart16550<PortIo> = unsafe { Uart16550::new(PortIo(COM1)) };

/// Writes one byte to the serial console (COM1), polling until the UART can
/// take it.
pub fn console_write_byte(b: u8) {
    UART.write_byte(b);
}

/// Ends the QEMU run through `isa-debug-exit`: QEMU exits with
/// [`QEMU_PASS_STATUS`] if `success`, else with [`QEMU_FAIL_STATUS`].
pub fn exit(success: bool) -> ! {
    let value = if success {
        DEBUG_EXIT_PASS
    } else {
        DEBUG_EXIT_FAIL
    };
    // SAFETY: port 0xf4 is QEMU's isa-debug-exit device (see `qemu_args`);
    // the write ends the emulation.
    unsafe { outl(DEBUG_EXIT_PORT, value) };
    // Only reached if the device is missing: stop here, so that the run ends
    // by timeout rather than with a misleading status.
    loop {
        // SAFETY: halting with interrupts disabled only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Number of CPUs QEMU was started with, from fw_cfg (1 if fw_cfg is absent).
fn fw_cfg_cpu_count() -> usize {
    // SAFETY: ports 0x510/0x511 are QEMU's fw_cfg selector and data ports;
    // selecting an item and reading it has no other effect.
    unsafe {
        outw(FW_CFG_SELECTOR, FW_CFG_SIGNATURE);
        let mut signature = [0u8; 4];
        for byte in &mut signature {
            *byte = inb(FW_CFG_DATA);
        }
        if &signature != b"QEMU" {
            return 1;
        }
        outw(FW_CFG_SELECTOR, FW_CFG_NB_CPUS);
        let low = usize::from(inb(FW_CFG_DATA));
        let high = usize::from(inb(FW_CFG_DATA));
        (low | (high << 8)).max(1)
    }
}

/// Top of CPU `cpu_id`'s stack.
fn stack_top(cpu_id: usize) -> usize {
    STACKS.0.get() as usize + (cpu_id + 1) * STACK_SIZE
}

/// Builds the 64-bit interrupt gate for `handler` (kernel code segment,
/// interrupts disabled on entry).
fn interrupt_gate(handler: usize) -> [u64; 2] {
    let handler = handler as u64;
    let low = (handler & 0xffff) | (0x08 << 16) | (0x8e << 40) | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

/// Fills the IDT. Runs once on the boot CPU before any other CPU starts.
fn init_idt() {
    let table = IDT.0.get();
    // SAFETY: the table is a constant array of stub addresses emitted above.
    let stubs = unsafe { x86_exception_stub_table };
    for (vector, &handler) in stubs.iter().enumerate() {
        // SAFETY: only the boot CPU runs and no interrupt is enabled, so
        // nothing else accesses the IDT.
        unsafe { (*table)[vector] = interrupt_gate(handler) };
    }
    // Spurious interrupts of the masked PICs land on 0x27 and 0x2f.
    for vector in PIC_VECTOR_BASE..PIC_VECTOR_BASE + 16 {
        // SAFETY: as above.
        unsafe {
            (*table)[usize::from(vector)] = interrupt_gate(x86_spurious_stub as *const () as usize)
        };
    }
    // SAFETY: as above.
    unsafe {
        (*table)[usize::from(TIMER_VECTOR)] = interrupt_gate(x86_timer_stub as *const () as usize);
        (*table)[usize::from(SPURIOUS_VECTOR)] =
            interrupt_gate(x86_spurious_stub as *const () as usize);
    }
}

/// Moves the legacy PICs' vectors to 0x20..0x30 and masks all their
/// interrupts: only local APIC interrupts are used.
fn disable_legacy_pic() {
    // SAFETY: ports 0x20/0x21/0xa0/0xa1 are the two 8259 PICs of the q35
    // chipset; this is their standard initialisation sequence (ICW1..ICW4),
    // followed by masking every line.
    unsafe {
        outb(PIC1_COMMAND, 0x11);
        outb(PIC2_COMMAND, 0x11);
        outb(PIC1_DATA, PIC_VECTOR_BASE);
        outb(PIC2_DATA, PIC_VECTOR_BASE + 8);
        outb(PIC1_DATA, 0x04);
        outb(PIC2_DATA, 0x02);
        outb(PIC1_DATA, 0x01);
        outb(PIC2_DATA, 0x01);
        outb(PIC1_DATA, 0xff);
        outb(PIC2_DATA, 0xff);
    }
}

/// Per-CPU setup done by every CPU before it runs the common code: loads the
/// IDT and software-enables the local APIC (interrupts stay disabled).
fn init_this_cpu() {
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<[[u64; 2]; 256]>() - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the IDT is static, filled before any CPU loads it, and its
    // gates point to the stubs above.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, SVR_APIC_ENABLE | u32::from(SPURIOUS_VECTOR));
}

/// Rust entry of the boot CPU, called by `_start` in long mode on stack 0.
extern "C" fn boot_cpu_entry() -> ! {
    UART.init();
    // SAFETY: IA32_APIC_BASE exists on every CPU QEMU emulates for q35.
    let apic_base = unsafe { rdmsr(IA32_APIC_BASE) } & 0x000f_ffff_ffff_f000;
    LAPIC_BASE.store(apic_base as usize, Ordering::Relaxed);
    disable_legacy_pic();
    init_idt();
    init_this_cpu();
    crate::boot_main()
}

/// Rust entry of a secondary CPU, called on its own stack with its logical id.
extern "C" fn secondary_cpu_entry(cpu_id: usize) -> ! {
    init_this_cpu();
    AP_CHECKED_IN.store(cpu_id, Ordering::Release);
    crate::secondary_main(cpu_id)
}

/// Copies the AP trampoline to [`TRAMPOLINE_ADDR`].
fn install_trampoline() {
    let start = x86_ap_trampoline_start as *const () as usize;
    let length = x86_ap_trampoline_end as *const () as usize - start;
    assert!(length <= 4096, "AP trampoline larger than a page");
    // SAFETY: the source is the trampoline in the kernel image; the
    // destination page at 0x8000 is identity-mapped RAM that nothing else uses
    // once the kernel runs (it is neither part of the image nor of any stack).
    unsafe {
        core::ptr::copy_nonoverlapping(start as *const u8, TRAMPOLINE_ADDR as *mut u8, length)
    };
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

/// Starts the CPU with xAPIC id `apic_id` as logical CPU `cpu_id` and waits
/// until it has checked in. Returns false (after parking the CPU with INIT)
/// if it does not.
fn start_cpu(apic_id: u32, cpu_id: usize) -> bool {
    AP_STACK_TOP.store(stack_top(cpu_id), Ordering::SeqCst);
    AP_CPU_ID.store(cpu_id, Ordering::SeqCst);
    compiler_fence(Ordering::SeqCst);
    let startup = ICR_STARTUP | (TRAMPOLINE_ADDR >> 12) as u32;
    for _ in 0..START_ATTEMPTS {
        send_ipi(apic_id, ICR_INIT);
        delay_tsc(INIT_DELAY_TSC);
        send_ipi(apic_id, startup);
        delay_tsc(SIPI_DELAY_TSC);
        // A CPU already running ignores the second start-up IPI.
        send_ipi(apic_id, startup);
        if wait_check_in(cpu_id) {
            return true;
        }
    }
    // Put it back into wait-for-SIPI so that it cannot run on later.
    send_ipi(apic_id, ICR_INIT);
    false
}

/// Starts the secondary CPUs, one at a time, as logical CPUs 1, 2, ... up to
/// `max_cpus` CPUs in total (at most 8), each on its own stack and entering
/// [`crate::secondary_main`]. Returns the number of CPUs running, including
/// the boot CPU. Every CPU counted has already checked in here.
pub fn start_secondary_cpus(max_cpus: usize) -> usize {
    let wanted = max_cpus.min(MAX_CPUS).min(fw_cfg_cpu_count()).max(1);
    if wanted == 1 {
        return 1;
    }
    install_trampoline();
    let boot_apic_id = lapic_read(LAPIC_ID) >> 24;
    let mut running = 1;
    let mut failures = 0;
    for apic_id in 0..=MAX_APIC_ID {
        if running == wanted || failures == MAX_START_FAILURES {
            break;
        }
        if apic_id == boot_apic_id {
            continue;
        }
        if start_cpu(apic_id, running) {
            running += 1;
        } else {
            failures += 1;
        }
    }
    running
}

/// Starts the local APIC timer of the calling CPU (periodic, vector 0x40,
/// every 100 µs) and enables interrupts on it. Each tick calls
/// [`crate::on_timer_tick`] on the interrupted CPU.
///
/// (Optional part of the interface: kernels that do not test timer
/// interrupts need not call it.)
#[allow(dead_code)]
pub fn enable_timer_interrupts() {
    lapic_write(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    lapic_write(
        LAPIC_LVT_TIMER,
        LVT_TIMER_PERIODIC | u32::from(TIMER_VECTOR),
    );
    lapic_write(LAPIC_TIMER_INITIAL_COUNT, TIMER_INITIAL_COUNT);
    // SAFETY: the IDT is loaded on every CPU and its timer gate points to a
    // handler that preserves all registers.
    unsafe { asm!("sti", options(nostack)) };
}

/// Disables interrupts on the calling CPU and stops its local APIC timer.
#[allow(dead_code)]
pub fn disable_timer_interrupts() {
    // SAFETY: disabling interrupts has no other effect.
    unsafe { asm!("cli", options(nostack)) };
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    lapic_write(LAPIC_TIMER_INITIAL_COUNT, 0);
}

/// Starts the calling CPU's periodic timer interrupt (see
/// [`enable_timer_interrupts`]); returns true: x86_64 has a timer.
///
/// This is the shape the common code's `arch::timer_start` has.
#[allow(dead_code)]
pub fn timer_start() -> bool {
    enable_timer_interrupts();
    true
}

/// Stops the calling CPU's periodic timer interrupt (see
/// [`disable_timer_interrupts`]).
///
/// This is the shape the common code's `arch::timer_stop` has.
#[allow(dead_code)]
pub fn timer_stop() {
    disable_timer_interrupts();
}

/// Called by the timer stub with interrupts disabled.
extern "C" fn timer_entry() {
    crate::on_timer_tick();
    lapic_write(LAPIC_EOI, 0);
}

/// Called by the exception stubs with a pointer to the vector number, the
/// error code (0 if none) and the CPU's interrupt frame. Reports and fails.
extern "C" fn exception_entry(frame: *const u64) -> ! {
    // SAFETY: the exception stubs pass a pointer to the 7 words pushed by the
    // CPU and by the stub.
    let frame = unsafe { core::slice::from_raw_parts(frame, 7) };
    let cr2: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags)) };
    write_str_unlocked("\n!! x86_64 CPU exception: vector ");
    write_hex_unlocked(frame[0]);
    write_str_unlocked(" error ");
    write_hex_unlocked(frame[1]);
    write_str_unlocked(" rip ");
    write_hex_unlocked(frame[2]);
    write_str_unlocked(" rsp ");
    write_hex_unlocked(frame[5]);
    write_str_unlocked(" cr2 ");
    write_hex_unlocked(cr2);
    write_str_unlocked(" apic id ");
    write_hex_unlocked(u64::from(lapic_read(LAPIC_ID) >> 24));
    write_str_unlocked("\n");
    exit(false)
}
