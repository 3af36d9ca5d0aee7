//! The architecture layer.
//!
//! Each architecture lives in `arch/<arch>.rs` and provides the same small
//! interface to the common code:
//!
//! - `NAME`: the architecture's name, e.g. `"riscv64"`;
//! - `MAX_CPUS`: the most CPUs the layer starts (see [`crate::MAX_CPUS`]);
//! - `console_write_byte(b)`: polling serial output, callable on any CPU;
//! - `present_cpus() -> Option<usize>`: the number of CPUs QEMU was started
//!   with (`-smp`, read from fw_cfg, see [`fw_cfg`]), `None` if unknown;
//! - `start_secondary_cpus(max_cpus) -> usize`: called on the boot CPU only,
//!   possibly several times (the CPUs come online in waves); starts the next
//!   CPUs, with the next logical ids, until `max_cpus` CPUs run in total or
//!   no more can be started, each entering [`crate::secondary_main`] on its
//!   own stack, and returns the number of CPUs started so far including the
//!   boot CPU (the caller compares it with QEMU's count and waits for them
//!   to check in);
//! - `wait_for_wake()`: sleeps until a wake-up from [`wake_all`] arrives, or
//!   returns at once if one arrived since the last call (it may also return
//!   for no reason); callers re-check what they wait for. Hundreds of vCPUs
//!   share two host cores under QEMU: a waiting CPU must not spin;
//! - `wake_all()`: wakes every other running CPU from `wait_for_wake`; called
//!   after a store that sleeping CPUs wait for, which it orders before the
//!   wake-up;
//! - `halt() -> !`: stops this CPU for good, sleeping;
//! - `clock_ns() -> u64`: a free-running clock in nanoseconds, readable on
//!   any CPU from [`crate::boot_main`] on (x86_64 starts its HPET before),
//!   for the time limits of waits;
//! - `timer_start() -> bool`, `timer_stop()`: a periodic timer interrupt on
//!   this CPU, every [`tick_period_ns`], whose handler calls
//!   [`crate::on_timer_tick`] (`timer_start` returns whether there is one); a
//!   wake-up arriving while it runs is acknowledged by the interrupt handler;
//! - `exit(success) -> !`: powers QEMU off with the architecture's pass or
//!   fail status.
//!
//! Its `_start` sets up a stack on the boot CPU, clears `.bss` and calls
//! [`crate::boot_main`]. The QEMU command line that boots it lives next to it,
//! in `arch/<arch>_qemu.rs`, which `cargo xtask` also includes; the layer
//! re-exports that file's `QEMU_PASS_STATUS` and `QEMU_FAIL_STATUS`, the exit
//! statuses `exit` makes QEMU return.

#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
#[cfg_attr(target_arch = "riscv64", path = "riscv64.rs")]
#[cfg_attr(target_arch = "loongarch64", path = "loongarch64.rs")]
mod imp;

pub use imp::{
    clock_ns, console_write_byte, exit, halt, present_cpus, start_secondary_cpus, timer_start,
    timer_stop, wait_for_wake, wake_all, MAX_CPUS, NAME, QEMU_FAIL_STATUS, QEMU_PASS_STATUS,
};

mod fw_cfg;

/// The period of the timer interrupt: 100 µs on up to 8 CPUs, longer with
/// more (all CPUs together take about 80 000 ticks per second): QEMU raises
/// every vCPU's timer interrupt from one host thread.
pub fn tick_period_ns() -> u64 {
    let cpus = crate::suite::running_cpus().max(1) as u64;
    100_000 * cpus.div_ceil(8)
}

#[cfg(any(
    target_arch = "x86_64",
    target_arch = "riscv64",
    target_arch = "loongarch64"
))]
mod uart16550;

/// Boot stacks and CPU start-up shared by riscv64 and aarch64, whose firmware
/// (SBI HSM, PSCI) starts a CPU given its hardware id, an entry point and one
/// opaque argument.
#[cfg(any(target_arch = "riscv64", target_arch = "aarch64"))]
mod smp {
    use core::sync::atomic::{AtomicUsize, Ordering};

    use crate::MAX_CPUS;

    /// log2 of the size of each CPU's stack.
    pub const STACK_SHIFT: usize = 16;

    /// One 64 KiB stack per logical CPU; CPU `i` starts with its stack pointer
    /// at `STACKS + (i + 1) << STACK_SHIFT`. Only the entry code uses it,
    /// through its symbol.
    #[repr(C, align(16))]
    pub struct Stacks([[u8; 1 << STACK_SHIFT]; MAX_CPUS]);

    /// The stacks of all CPUs (in `.bss`).
    pub static mut STACKS: Stacks = Stacks([[0; 1 << STACK_SHIFT]; MAX_CPUS]);

    /// The next CPU index (QEMU's numbering of its CPUs, 0 to `-smp` - 1) to
    /// start, and the number of CPUs started, the boot CPU included.
    static NEXT_INDEX: AtomicUsize = AtomicUsize::new(0);
    static STARTED: AtomicUsize = AtomicUsize::new(1);

    /// Starts CPUs by index, continuing where the previous call stopped,
    /// until `max_cpus` run in total or the firmware refuses one (there is no
    /// such CPU).
    ///
    /// Every index below [`MAX_CPUS`] except `boot_index` is tried in
    /// increasing order, because the boot CPU is not always the first;
    /// `start(index, logical_id)` asks the firmware to start one CPU with the
    /// given logical id and returns the firmware's error code on failure.
    /// Returns the number of CPUs started so far, including the boot CPU.
    pub fn start_cpus_by_index(
        kind: &str,
        boot_index: usize,
        max_cpus: usize,
        mut start: impl FnMut(usize, usize) -> Result<(), isize>,
    ) -> usize {
        let mut cpus = STARTED.load(Ordering::Relaxed);
        let first = cpus;
        let mut index = NEXT_INDEX.load(Ordering::Relaxed);
        while cpus < max_cpus && index < MAX_CPUS {
            if index == boot_index {
                index += 1;
                continue;
            }
            match start(index, cpus) {
                Ok(()) => {
                    if max_cpus <= crate::suite::VERBOSE_CPUS {
                        crate::println!("{}: started {kind} {index} as cpu {cpus}", super::NAME);
                    }
                    cpus += 1;
                    index += 1;
                }
                Err(err) => {
                    crate::println!(
                        "{}: no {kind} {index} (firmware error {err}): {cpus} cpus",
                        super::NAME
                    );
                    break;
                }
            }
        }
        if max_cpus > crate::suite::VERBOSE_CPUS && cpus > first {
            crate::println!(
                "{}: started cpus {first} to {} ({kind} indices up to {})",
                super::NAME,
                cpus - 1,
                index - 1
            );
        }
        NEXT_INDEX.store(index, Ordering::Relaxed);
        STARTED.store(cpus, Ordering::Relaxed);
        cpus
    }
}
