//! The interrupt controller of the `virt` machine: a GICv2 (QEMU's
//! `gic-version=2`, at most 8 CPUs) or a GICv3 (`gic-version=3`, which QEMU
//! needs above 8 CPUs), told apart by the CPU: ID_AA64PFR0_EL1.GIC shows
//! whether it has a GICv3 CPU interface.
//!
//! Two interrupts are used, both private to each CPU: the EL1 physical timer
//! (PPI 30) and one software-generated interrupt, [`WAKE_SGI`], that wakes
//! CPUs sleeping in `wfi`. Every CPU enables both when it comes online
//! ([`init_this_cpu`]); the timer stays quiet until it is programmed, and a
//! pending SGI ends `wfi` even while IRQs are masked in PSTATE.
//!
//! GICv3 specifics: the distributor routes with affinity (ARE); each CPU
//! finds its redistributor by affinity in the two redistributor regions
//! (0x080A_0000, 123 frames; 0x40_0000_0000 for the CPUs beyond) and wakes
//! it; the CPU interface is reached through the `ICC_*_EL1` system registers,
//! which also work at EL2. QEMU's GIC without the security extensions has a
//! single security state: group 1 interrupts are IRQs.

use core::arch::asm;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

/// The distributor, and the registers used here.
const GICD_BASE: usize = 0x0800_0000;
const GICD_CTLR: usize = GICD_BASE;
const GICD_ISENABLER0: usize = GICD_BASE + 0x100;
const GICD_IPRIORITYR: usize = GICD_BASE + 0x400;
const GICD_SGIR: usize = GICD_BASE + 0xf00;
/// GICD_CTLR: register write pending (GICv3), affinity routing, and the
/// group enables (GICv3 with a single security state; GICv2 uses bit 0).
const GICD_CTLR_RWP: u32 = 1 << 31;
const GICD_CTLR_ARE: u32 = 1 << 4;
const GICD_CTLR_ENABLE_GROUPS: u32 = 0b11;

/// The GICv2 CPU interface.
const GICC_BASE: usize = 0x0801_0000;
const GICC_CTLR: usize = GICC_BASE;
const GICC_PMR: usize = GICC_BASE + 0x4;
const GICC_IAR: usize = GICC_BASE + 0xc;
const GICC_EOIR: usize = GICC_BASE + 0x10;

/// The GICv3 redistributor regions (base, size) of the `virt` machine.
const GICR_REGIONS: [(usize, usize); 2] =
    [(0x080a_0000, 0x00f6_0000), (0x40_0000_0000, 0x0400_0000)];
/// Each redistributor: a 64 KiB control frame, then a 64 KiB SGI/PPI frame.
const GICR_FRAME: usize = 0x2_0000;
const GICR_TYPER: usize = 0x8;
const GICR_WAKER: usize = 0x14;
const GICR_SGI_BASE: usize = 0x1_0000;
const GICR_IGROUPR0: usize = GICR_SGI_BASE + 0x80;
const GICR_ISENABLER0: usize = GICR_SGI_BASE + 0x100;
const GICR_IPRIORITYR: usize = GICR_SGI_BASE + 0x400;
/// GICR_TYPER: the last redistributor of its region.
const GICR_TYPER_LAST: u64 = 1 << 4;
/// GICR_WAKER: the processor is asleep; the redistributor is quiescent.
const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// Interrupt id of the EL1 physical timer (PPI 14).
pub const TIMER_INTID: u32 = 30;
/// The SGI that wakes sleeping CPUs.
pub const WAKE_SGI: u32 = 1;
/// Interrupt ids from 1020 up are special (1023: none pending).
const SPECIAL_INTIDS: u32 = 1020;
/// The priority given to both interrupts (any below the mask 0xff passes).
const PRIORITY: u8 = 0x80;

/// Set by [`init_distributor`] when the GIC is a GICv3.
static V3: AtomicBool = AtomicBool::new(false);

/// Reads a 32-bit GIC register.
///
/// # Safety
///
/// `address` must be a GIC register of the `virt` machine (reached with the
/// MMU off) whose read has no effect beyond what the caller intends.
unsafe fn read32(address: usize) -> u32 {
    // SAFETY: guaranteed by the caller.
    unsafe { read_volatile(address as *const u32) }
}

/// Writes a 32-bit GIC register.
///
/// # Safety
///
/// `address` must be a GIC register of the `virt` machine whose write has
/// only the effect the caller intends.
unsafe fn write32(address: usize, value: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { write_volatile(address as *mut u32, value) }
}

/// Detects the GIC version and enables the distributor; returns the version
/// (2 or 3). Called once, on the boot CPU, before any CPU calls
/// [`init_this_cpu`].
pub fn init_distributor() -> u32 {
    let features: u64;
    // SAFETY: reading an ID register has no side effect.
    unsafe { asm!("mrs {}, id_aa64pfr0_el1", out(reg) features, options(nomem, nostack)) };
    let v3 = (features >> 24) & 0xf != 0;
    V3.store(v3, Ordering::Relaxed);
    // SAFETY: enabling the distributor (with affinity routing on a GICv3,
    // which has a single security state here) and waiting for the write to
    // take effect only changes which interrupts are forwarded.
    unsafe {
        if v3 {
            write32(GICD_CTLR, GICD_CTLR_ARE | GICD_CTLR_ENABLE_GROUPS);
            while read32(GICD_CTLR) & GICD_CTLR_RWP != 0 {
                core::hint::spin_loop();
            }
        } else {
            write32(GICD_CTLR, 1);
        }
    }
    if v3 {
        3
    } else {
        2
    }
}

/// The affinity of the calling CPU as GICR_TYPER shows it (Aff3.Aff2.Aff1.Aff0).
fn my_affinity() -> u64 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effect.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack)) };
    (mpidr & 0xff_ffff) | ((mpidr >> 32) & 0xff) << 24
}

/// The base of the calling CPU's GICv3 redistributor.
fn my_redistributor() -> usize {
    let affinity = my_affinity();
    for (base, size) in GICR_REGIONS {
        for frame in (base..base + size).step_by(GICR_FRAME) {
            // SAFETY: a redistributor frame of the region, scanned in order
            // up to the one marked last (the second region exists when the
            // first one holds too few CPUs for this one); reading its type
            // register has no effect.
            let typer = unsafe { read_volatile((frame + GICR_TYPER) as *const u64) };
            if typer >> 32 == affinity {
                return frame;
            }
            if typer & GICR_TYPER_LAST != 0 {
                break;
            }
        }
    }
    crate::fail(format_args!(
        "no GICv3 redistributor for affinity {affinity:#x}"
    ))
}

/// Enables the timer PPI and [`WAKE_SGI`] on the calling CPU and its CPU
/// interface, with IRQs still masked in PSTATE.
pub fn init_this_cpu() {
    let enabled = (1 << WAKE_SGI) | (1 << TIMER_INTID);
    if V3.load(Ordering::Relaxed) {
        let redistributor = my_redistributor();
        // SAFETY: this CPU's redistributor (found by affinity): waking it,
        // putting both interrupts in group 1 with a priority and enabling
        // them only concerns this CPU's private interrupts.
        unsafe {
            let waker = redistributor + GICR_WAKER;
            write32(waker, read32(waker) & !GICR_WAKER_PROCESSOR_SLEEP);
            while read32(waker) & GICR_WAKER_CHILDREN_ASLEEP != 0 {
                core::hint::spin_loop();
            }
            let group = redistributor + GICR_IGROUPR0;
            write32(group, read32(group) | enabled);
            for intid in [WAKE_SGI, TIMER_INTID] {
                let priority = redistributor + GICR_IPRIORITYR + intid as usize;
                write_volatile(priority as *mut u8, PRIORITY);
            }
            write32(redistributor + GICR_ISENABLER0, enabled);
        }
        // SAFETY: the GICv3 CPU interface of this CPU: system register
        // access (SRE), no priority masking, group 1 on. IRQs stay masked in
        // PSTATE until `timer_start`, and the vectors handle them.
        unsafe {
            asm!(
                "mrs {t}, icc_sre_el1",
                "orr {t}, {t}, #1",
                "msr icc_sre_el1, {t}",
                "isb",
                "mov {t}, #0xff",
                "msr icc_pmr_el1, {t}",
                "mov {t}, #1",
                "msr icc_igrpen1_el1, {t}",
                "isb",
                t = out(reg) _,
                options(nomem, nostack),
            )
        };
    } else {
        // SAFETY: GICv2 registers: the enable and priority registers of the
        // private interrupts and the CPU interface are banked per CPU.
        unsafe {
            write32(GICD_ISENABLER0, enabled);
            for intid in [WAKE_SGI, TIMER_INTID] {
                write_volatile((GICD_IPRIORITYR + intid as usize) as *mut u8, PRIORITY);
            }
            write32(GICC_PMR, 0xff);
            write32(GICC_CTLR, 1);
        }
    }
}

/// Acknowledges the highest-priority pending interrupt of this CPU and
/// returns its id, or `None` if none is pending.
pub fn acknowledge() -> Option<u32> {
    let intid = if V3.load(Ordering::Relaxed) {
        let iar: u64;
        // SAFETY: reading ICC_IAR1_EL1 acknowledges the pending interrupt,
        // which the caller ends with `end`.
        unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nomem, nostack)) };
        iar as u32 & 0xff_ffff
    } else {
        // SAFETY: as above, through the GICv2 CPU interface.
        unsafe { read32(GICC_IAR) & 0x3ff }
    };
    (intid < SPECIAL_INTIDS).then_some(intid)
}

/// Ends interrupt `intid`, acknowledged by [`acknowledge`].
pub fn end(intid: u32) {
    if V3.load(Ordering::Relaxed) {
        // SAFETY: ends (drops the priority of and deactivates) an
        // interrupt this CPU acknowledged.
        unsafe { asm!("msr icc_eoir1_el1, {}", in(reg) u64::from(intid), options(nomem, nostack)) };
    } else {
        // SAFETY: as above, through the GICv2 CPU interface.
        unsafe { write32(GICC_EOIR, intid) };
    }
}

/// Makes [`WAKE_SGI`] pending on every other CPU.
pub fn wake_others() {
    if V3.load(Ordering::Relaxed) {
        // ICC_SGI1R_EL1: IRM (every PE but this one), the SGI id.
        let command = (1u64 << 40) | u64::from(WAKE_SGI) << 24;
        // SAFETY: the stores the woken CPUs look for are made visible first
        // (`dsb`); sending an SGI has no other effect.
        unsafe {
            asm!("dsb ish", "msr icc_sgi1r_el1, {}", "isb", in(reg) command, options(nostack))
        };
    } else {
        // GICD_SGIR: target list filter 01 (every CPU but this one), SGI id.
        // SAFETY: as above, through the GICv2 distributor.
        unsafe {
            asm!("dsb ish", options(nostack));
            write32(GICD_SGIR, (1 << 24) | WAKE_SGI);
        }
    }
}
