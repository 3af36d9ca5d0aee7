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
//! [`start_secondary_cpus`] copies a 16-bit trampoline to 0x8000 and wakes
//! one CPU at a time with INIT, SIPI, SIPI through the local APIC. The
//! trampoline enters protected mode and joins the boot CPU's path into long
//! mode; the CPU then takes its stack and logical id from two shared
//! variables, checks in, and calls [`crate::secondary_main`]. The next CPU is
//! only started after the previous one has checked in, so the shared
//! variables are never overwritten early. [`present_cpus`] reads the CPU
//! count from QEMU's fw_cfg device.
//!
//! # Local APIC
//!
//! When the CPU has x2APIC (QEMU's `-cpu ...,+x2apic`, which it requires for
//! APIC ids from 255 up), every CPU switches its local APIC to x2APIC mode:
//! registers become MSRs, APIC ids are 32 bits, and the ICR is one 64-bit
//! MSR. Otherwise the xAPIC registers are memory-mapped (8-bit ids).
//!
//! # Interrupts
//!
//! Interrupts are disabled except between [`timer_start`] and
//! [`timer_stop`] and inside [`wait_for_wake`]. Every CPU loads the same IDT:
//! CPU exceptions print a report and fail the run; vector 0x40 is the local
//! APIC timer, whose handler calls [`crate::on_timer_tick`]; vector 0x41 is
//! the wake-up IPI of [`wake_all`], which ends a `hlt`. Nothing here reads or
//! writes GS or GS_BASE: the `percpu` crate owns them.
//!
//! # Clock
//!
//! The HPET's main counter, enabled at boot, is [`clock_ns`].

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::hint::spin_loop;
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::fw_cfg;
use super::uart16550::{Registers, Uart16550};
use crate::console::{write_hex_unlocked, write_str_unlocked};

#[path = "x86_64_qemu.rs"]
mod qemu;

pub use qemu::{QEMU_FAIL_STATUS, QEMU_PASS_STATUS};

/// Architecture name printed in reports.
pub const NAME: &str = "x86_64";

/// The most CPUs this layer starts (and has stacks for); QEMU's q35 takes
/// more with x2APIC.
pub const MAX_CPUS: usize = 512;
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

/// fw_cfg selector and data I/O ports.
const FW_CFG_SELECTOR: u16 = 0x510;
const FW_CFG_DATA: u16 = 0x511;

/// The HPET of q35 (identity-mapped, uncached): capabilities (the counter
/// period in femtoseconds in bits 63:32), configuration, main counter.
const HPET_BASE: usize = 0xfed0_0000;
const HPET_CAPABILITIES: usize = HPET_BASE;
const HPET_CONFIG: usize = HPET_BASE + 0x10;
const HPET_COUNTER: usize = HPET_BASE + 0xf0;
const HPET_CONFIG_ENABLE: u64 = 1;

/// MSR holding the local APIC's physical base address and mode bits.
const IA32_APIC_BASE: u32 = 0x1b;
/// IA32_APIC_BASE: the APIC is enabled, in x2APIC mode.
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
/// The first x2APIC MSR: register offset `o` of the xAPIC is MSR
/// `X2APIC_MSR_BASE + o / 16`.
const X2APIC_MSR_BASE: u32 = 0x800;
/// CPUID leaf 1, ECX: x2APIC supported.
const CPUID_1_ECX_X2APIC: u32 = 1 << 21;
/// Local APIC (xAPIC, memory-mapped) register offsets.
const LAPIC_ID: usize = 0x20;
const LAPIC_TPR: usize = 0x80;
const LAPIC_EOI: usize = 0xb0;
/// The first of the eight interrupt request registers (32 vectors each).
const LAPIC_IRR: usize = 0x200;
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
/// ICR destination shorthand: all CPUs but the sender.
const ICR_ALL_BUT_SELF: u32 = 0b11 << 18;
/// LVT bits: masked, and periodic mode for the timer.
const LVT_MASKED: u32 = 1 << 16;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Timer divide configuration value for "divide by 16".
const TIMER_DIVIDE_BY_16: u32 = 0b0011;
/// Nanoseconds per timer count: QEMU clocks the APIC timer at 1 GHz, divided
/// by 16.
const NS_PER_TIMER_COUNT: u64 = 16;

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
const WAKE_VECTOR: u8 = 0x41;
const SPURIOUS_VECTOR: u8 = 0xff;
/// Number of CPU exception vectors with a handler.
const EXCEPTION_VECTORS: usize = 32;

/// Physical address the AP trampoline is copied to (page-aligned, below 1 MiB).
const TRAMPOLINE_ADDR: usize = 0x8000;
const _: () = assert!(TRAMPOLINE_ADDR & 0xfff == 0 && TRAMPOLINE_ADDR < 0x10_0000);

/// Highest APIC id probed when looking for secondary CPUs: xAPIC ids stop
/// below 0xff (broadcast); with x2APIC, QEMU numbers the CPUs of `-smp n`
/// 0 to n - 1.
const MAX_XAPIC_ID: u32 = 0xfe;
const MAX_X2APIC_ID: u32 = 2 * MAX_CPUS as u32;
/// After this many APIC ids fail to start, stop looking for more CPUs.
const MAX_START_FAILURES: usize = 4;
/// INIT-SIPI-SIPI rounds tried per APIC id before giving up on it.
const START_ATTEMPTS: usize = 3;
/// Time to wait after INIT (10 ms, as the MP specification asks) and after
/// each SIPI.
const INIT_DELAY_NS: u64 = 10_000_000;
const SIPI_DELAY_NS: u64 = 200_000;
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
/// Whether the local APICs run in x2APIC mode (set at boot, before any other
/// CPU starts).
static X2APIC: AtomicBool = AtomicBool::new(false);
/// The HPET's counter period in femtoseconds (0 until enabled at boot).
static HPET_PERIOD_FS: AtomicU64 = AtomicU64::new(0);
/// The next APIC id to try, and the number of CPUs running (boot CPU
/// included): where [`start_secondary_cpus`] resumes.
static NEXT_APIC_ID: AtomicU32 = AtomicU32::new(0);
static RUNNING: AtomicUsize = AtomicUsize::new(1);
/// Consecutive APIC ids that failed to start.
static START_FAILURES: AtomicUsize = AtomicUsize::new(0);

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
    /// Wake-up IPI entry (vector 0x41).
    fn x86_wake_stub();
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
    shrq $3, %rcx
    xorl %eax, %eax
    rep stosq
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

    /* Interrupt entries: save every caller-saved register (and the x87/SSE
       state), call Rust, restore, return. They do not touch GS. */
    .macro X86_INTERRUPT_STUB name, entry
    .p2align 4
    .global \name
\name:
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
    call \entry
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
    .endm
    /* The local APIC timer and the wake-up IPI. */
    X86_INTERRUPT_STUB x86_timer_stub, {timer_entry}
    X86_INTERRUPT_STUB x86_wake_stub, {wake_entry}

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
    wake_entry = sym wake_entry,
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

/// Writes a model-specific register.
///
/// # Safety
///
/// `msr` must exist on this CPU and `value` be valid for it; the write must
/// have only the effect the caller intends.
unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: guaranteed by the caller; `wrmsr` touches no memory.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nomem, nostack, preserves_flags))
    };
}

/// Busy-waits for at least `ns` nanoseconds of [`clock_ns`].
fn delay_ns(ns: u64) {
    let start = clock_ns();
    while clock_ns().wrapping_sub(start) < ns {
        spin_loop();
    }
}

/// Reads a local APIC register (given by its xAPIC offset).
fn lapic_read(offset: usize) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: in x2APIC mode, the register at xAPIC `offset` is this MSR;
        // the callers read ID, ICR and status registers, which x2APIC has.
        return unsafe { rdmsr(X2APIC_MSR_BASE + (offset >> 4) as u32) } as u32;
    }
    let address = LAPIC_BASE.load(Ordering::Relaxed) + offset;
    // SAFETY: the local APIC's register page is identity-mapped (uncached) by
    // the boot page tables, and `offset` is one of the register offsets above.
    unsafe { (address as *const u32).read_volatile() }
}

/// Writes a local APIC register (given by its xAPIC offset; not the ICR, see
/// [`send_ipi`]).
fn lapic_write(offset: usize, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `lapic_read`; the callers only write values that are
        // valid for the register.
        return unsafe { wrmsr(X2APIC_MSR_BASE + (offset >> 4) as u32, u64::from(value)) };
    }
    let address = LAPIC_BASE.load(Ordering::Relaxed) + offset;
    // SAFETY: as in `lapic_read`; the callers only write values that are
    // valid for the register.
    unsafe { (address as *mut u32).write_volatile(value) };
}

/// This CPU's local APIC id (32 bits in x2APIC mode, 8 in xAPIC mode).
fn apic_id() -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        lapic_read(LAPIC_ID)
    } else {
        lapic_read(LAPIC_ID) >> 24
    }
}

/// Sends an inter-processor interrupt `command` to the CPU with APIC id
/// `apic_id` (ignored with a destination shorthand) and waits until the
/// local APIC has accepted it.
fn send_ipi(apic_id: u32, command: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: the x2APIC ICR takes the destination and the command in one
        // write and needs no wait; the callers send INIT, SIPI or the
        // wake-up vector.
        unsafe {
            wrmsr(
                X2APIC_MSR_BASE + (LAPIC_ICR_LOW >> 4) as u32,
                u64::from(apic_id) << 32 | u64::from(command),
            )
        };
        return;
    }
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

/// QEMU's fw_cfg device at I/O ports 0x510 (selector) and 0x511 (data).
struct FwCfgPorts;

impl fw_cfg::Registers for FwCfgPorts {
    fn select(&self, key: u16) {
        // SAFETY: port 0x510 is the fw_cfg selector of q35; selecting an item
        // has no other effect.
        unsafe { outw(FW_CFG_SELECTOR, key) }
    }

    fn read(&self) -> u8 {
        // SAFETY: port 0x511 is the fw_cfg data port; a read returns the next
        // byte of the selected item and has no other effect.
        unsafe { inb(FW_CFG_DATA) }
    }
}

/// The number of CPUs QEMU was started with, from fw_cfg.
pub fn present_cpus() -> Option<usize> {
    fw_cfg::cpu_count(&FwCfgPorts)
}

/// Reads an HPET register.
fn hpet_read(register: usize) -> u64 {
    // SAFETY: the HPET's registers are identity-mapped (uncached); reading
    // the capabilities and the counter has no side effect.
    unsafe { (register as *const u64).read_volatile() }
}

/// Starts the HPET's main counter, the source of [`clock_ns`].
fn enable_hpet() {
    HPET_PERIOD_FS.store(hpet_read(HPET_CAPABILITIES) >> 32, Ordering::Relaxed);
    // SAFETY: setting ENABLE_CNF starts the main counter; no HPET timer
    // interrupt is configured, so it raises none.
    unsafe {
        (HPET_CONFIG as *mut u64).write_volatile(hpet_read(HPET_CONFIG) | HPET_CONFIG_ENABLE)
    };
}

/// The HPET's main counter in nanoseconds (0 before the boot CPU enabled it).
pub fn clock_ns() -> u64 {
    let period = u128::from(HPET_PERIOD_FS.load(Ordering::Relaxed));
    (u128::from(hpet_read(HPET_COUNTER)) * period / 1_000_000) as u64
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
        (*table)[usize::from(WAKE_VECTOR)] = interrupt_gate(x86_wake_stub as *const () as usize);
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
/// IDT, switches the local APIC to x2APIC mode if the boot CPU chose it, and
/// software-enables it (interrupts stay disabled).
fn init_this_cpu() {
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of::<[[u64; 2]; 256]>() - 1) as u16,
        base: IDT.0.get() as u64,
    };
    // SAFETY: the IDT is static, filled before any CPU loads it, and its
    // gates point to the stubs above.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: the CPU has x2APIC (checked by the boot CPU, and QEMU gives
        // all CPUs the same model); switching from the enabled xAPIC mode to
        // x2APIC mode is a valid transition, and this layer then reaches the
        // APIC only through its MSRs.
        unsafe {
            let base = rdmsr(IA32_APIC_BASE);
            wrmsr(IA32_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
        }
    }
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, SVR_APIC_ENABLE | u32::from(SPURIOUS_VECTOR));
}

/// Whether the CPU supports x2APIC (CPUID leaf 1).
fn has_x2apic() -> bool {
    // SAFETY: CPUID leaf 1 exists on every x86_64 CPU. (`__cpuid` is a safe
    // function in newer Rust; Rust 1.89, the minimum, needs the block.)
    #[allow(unused_unsafe)]
    let leaf = unsafe { core::arch::x86_64::__cpuid(1) };
    leaf.ecx & CPUID_1_ECX_X2APIC != 0
}

/// Rust entry of the boot CPU, called by `_start` in long mode on stack 0.
extern "C" fn boot_cpu_entry() -> ! {
    UART.init();
    enable_hpet();
    // SAFETY: IA32_APIC_BASE exists on every CPU QEMU emulates for q35.
    let apic_base = unsafe { rdmsr(IA32_APIC_BASE) } & 0x000f_ffff_ffff_f000;
    LAPIC_BASE.store(apic_base as usize, Ordering::Relaxed);
    X2APIC.store(has_x2apic(), Ordering::Relaxed);
    disable_legacy_pic();
    init_idt();
    init_this_cpu();
    let mode = if X2APIC.load(Ordering::Relaxed) {
        "x2APIC"
    } else {
        "xAPIC"
    };
    crate::println!("{NAME}: local APICs in {mode} mode");
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
        delay_ns(INIT_DELAY_NS);
        send_ipi(apic_id, startup);
        delay_ns(SIPI_DELAY_NS);
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

/// Starts the next secondary CPUs, one at a time, with the next logical ids,
/// until `max_cpus` CPUs run in total, each on its own stack and entering
/// [`crate::secondary_main`]; continues where the previous call stopped.
/// Returns the number of CPUs running, including the boot CPU. Every CPU
/// counted has already checked in here. APIC ids are tried in increasing
/// order; after [`MAX_START_FAILURES`] in a row fail, the search stops (the
/// caller compares the count with QEMU's).
pub fn start_secondary_cpus(max_cpus: usize) -> usize {
    let mut running = RUNNING.load(Ordering::Relaxed);
    if running >= max_cpus {
        return running;
    }
    install_trampoline();
    let boot_apic_id = apic_id();
    let last_apic_id = if X2APIC.load(Ordering::Relaxed) {
        MAX_X2APIC_ID
    } else {
        MAX_XAPIC_ID
    };
    let mut next = NEXT_APIC_ID.load(Ordering::Relaxed);
    let mut failures = START_FAILURES.load(Ordering::Relaxed);
    while running < max_cpus && failures < MAX_START_FAILURES && next <= last_apic_id {
        let id = next;
        next += 1;
        if id == boot_apic_id {
            continue;
        }
        if start_cpu(id, running) {
            running += 1;
            failures = 0;
        } else {
            failures += 1;
        }
    }
    NEXT_APIC_ID.store(next, Ordering::Relaxed);
    START_FAILURES.store(failures, Ordering::Relaxed);
    RUNNING.store(running, Ordering::Relaxed);
    running
}

/// Sleeps (`hlt` with interrupts enabled for its duration) until an
/// interrupt arrives: the wake-up IPI of [`wake_all`], acknowledged by its
/// handler, or one that was already pending.
pub fn wait_for_wake() {
    // SAFETY: `sti` takes effect after `hlt` starts, so an interrupt pending
    // or arriving ends the `hlt` rather than slipping in before it; the IDT's
    // handlers preserve all registers; interrupts are off again afterwards.
    unsafe { asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// Sends the wake-up IPI to every other CPU (the "all but self" shorthand;
/// CPUs not started yet ignore it).
pub fn wake_all() {
    // The stores the woken CPUs look for come before the IPI (an x2APIC ICR
    // write is not serializing).
    core::sync::atomic::fence(Ordering::SeqCst);
    send_ipi(0, ICR_ALL_BUT_SELF | u32::from(WAKE_VECTOR));
}

/// Stops this CPU for good: `hlt` with interrupts disabled.
pub fn halt() -> ! {
    timer_stop();
    loop {
        // SAFETY: halting with interrupts disabled only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Starts the local APIC timer of the calling CPU (periodic, vector 0x40,
/// every [`super::tick_period_ns`]) and enables interrupts on it; returns
/// true: x86_64 has a timer. Each tick calls [`crate::on_timer_tick`] on the
/// interrupted CPU.
pub fn timer_start() -> bool {
    let count = (super::tick_period_ns() / NS_PER_TIMER_COUNT).min(u64::from(u32::MAX));
    lapic_write(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_BY_16);
    lapic_write(
        LAPIC_LVT_TIMER,
        LVT_TIMER_PERIODIC | u32::from(TIMER_VECTOR),
    );
    lapic_write(LAPIC_TIMER_INITIAL_COUNT, count as u32);
    // SAFETY: the IDT is loaded on every CPU and its timer and wake-up gates
    // point to handlers that preserve all registers.
    unsafe { asm!("sti", options(nostack)) };
    true
}

/// Disables interrupts on the calling CPU and stops its local APIC timer.
///
/// A tick that fired before the timer was masked can still be pending in the
/// APIC: it is taken here, while the caller still counts ticks, rather than
/// when [`wait_for_wake`] enables interrupts later.
pub fn timer_stop() {
    // SAFETY: disabling interrupts has no other effect.
    unsafe { asm!("cli", options(nostack)) };
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    lapic_write(LAPIC_TIMER_INITIAL_COUNT, 0);
    let irr = LAPIC_IRR + 0x10 * usize::from(TIMER_VECTOR / 32);
    let pending = 1 << (TIMER_VECTOR % 32);
    while lapic_read(irr) & pending != 0 {
        // SAFETY: interrupts are enabled for one instruction after `sti`'s
        // shadow, which lets the pending tick in; its handler preserves all
        // registers.
        unsafe { asm!("sti", "nop", "cli", options(nostack)) };
    }
}

/// Called by the wake-up IPI stub with interrupts disabled: acknowledges it.
extern "C" fn wake_entry() {
    lapic_write(LAPIC_EOI, 0);
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
    write_hex_unlocked(u64::from(apic_id()));
    write_str_unlocked("\n");
    exit(false)
}
