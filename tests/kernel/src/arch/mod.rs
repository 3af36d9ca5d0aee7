//! The architecture layer.
//!
//! Each architecture lives in `arch/<arch>.rs` and provides the same small
//! interface to the common code:
//!
//! - `NAME`: the architecture's name, e.g. `"riscv64"`;
//! - `console_write_byte(b)`: polling serial output, callable on any CPU;
//! - `start_secondary_cpus(max_cpus) -> usize`: called on the boot CPU only;
//!   starts the CPUs with logical ids 1, 2, ... (at most `max_cpus` CPUs in
//!   total), each entering [`crate::secondary_main`] on its own stack, and
//!   returns the number of CPUs including the boot CPU, without waiting for
//!   them to check in;
//! - `exit(success) -> !`: powers QEMU off with the architecture's pass or
//!   fail status.
//!
//! Its `_start` sets up a stack on the boot CPU, clears `.bss` and calls
//! [`crate::boot_main`]. The QEMU command line that boots it lives next to it,
//! in `arch/<arch>_qemu.rs`, which `cargo xtask` also includes; the layer
//! re-exports that file's `QEMU_PASS_STATUS` and `QEMU_FAIL_STATUS`, the exit
//! statuses `exit` makes QEMU return.
//!
//! Architectures may also provide a periodic timer (`timer_start() -> bool`,
//! `timer_stop()`) whose interrupt calls [`crate::on_timer_tick`]; the others
//! get the fallback below, which reports that there is none.

#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
#[cfg_attr(target_arch = "riscv64", path = "riscv64.rs")]
#[cfg_attr(target_arch = "loongarch64", path = "loongarch64.rs")]
mod imp;

pub use imp::{
    console_write_byte, exit, start_secondary_cpus, NAME, QEMU_FAIL_STATUS, QEMU_PASS_STATUS,
};

#[cfg(not(target_arch = "loongarch64"))]
pub use imp::{timer_start, timer_stop};

/// loongarch64 has no tick timer here: the hammering runs without interrupts.
#[cfg(target_arch = "loongarch64")]
pub fn timer_start() -> bool {
    false
}

/// loongarch64 has no tick timer here: nothing to stop.
#[cfg(target_arch = "loongarch64")]
pub fn timer_stop() {}

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

    /// Hardware ids probed for CPUs: far more than QEMU's `-smp 8` needs.
    const MAX_HW_ID: usize = 64;

    /// Starts CPUs by hardware id until `max_cpus` run in total or the firmware
    /// refuses one (there is no such CPU).
    ///
    /// Every hardware id below [`MAX_HW_ID`] except `boot_hw_id` is tried in
    /// increasing order, because the boot CPU is not always hardware id 0;
    /// `start(hw_id, logical_id)` asks the firmware to start one CPU with the
    /// given logical id and returns the firmware's error code on failure.
    /// Returns the number of running CPUs, including the boot CPU.
    pub fn start_cpus_by_hw_id(
        kind: &str,
        boot_hw_id: usize,
        max_cpus: usize,
        mut start: impl FnMut(usize, usize) -> Result<(), isize>,
    ) -> usize {
        let mut cpus = 1;
        for hw_id in (0..MAX_HW_ID).filter(|&id| id != boot_hw_id) {
            if cpus >= max_cpus {
                break;
            }
            match start(hw_id, cpus) {
                Ok(()) => {
                    crate::println!("{}: started {kind} {hw_id} as cpu {cpus}", super::NAME);
                    cpus += 1;
                }
                Err(err) => {
                    crate::println!(
                        "{}: no {kind} {hw_id} (firmware error {err}): {cpus} cpus",
                        super::NAME
                    );
                    break;
                }
            }
        }
        cpus
    }
}
