//! A bare-metal SMP test kernel for the `percpu` crate.
//!
//! It boots under QEMU on x86_64, aarch64, riscv64 and loongarch64, starts all
//! CPUs (up to [`MAX_CPUS`]), and uses `percpu` exactly as a kernel does: it
//! links the crate's `.percpu` linker-script snippet (see `build.rs`),
//! initializes the per-CPU areas, points every CPU's per-CPU register at its
//! area, sets up run-time per-CPU allocation (`percpu_alloc`) on a kernel heap
//! ([`heap`]), brings the secondary CPUs online in two waves with run-time
//! per-CPU objects allocated in between ([`waves`]), and then runs the test
//! suite of [`suite`] on all CPUs at once.
//!
//! The result is reported on the serial console: a line
//! `PERCPU-KERNEL-TESTS: PASS` and a QEMU exit with the architecture's pass
//! status, or `PERCPU-KERNEL-TESTS: FAIL <reason>` and the fail status (also
//! on a panic or an unexpected trap). `cargo xtask qemu` boots it, and
//! `cargo xtask test` runs it in all configurations.

#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod check;
mod checked;
mod console;
mod counters;
mod dynamic;
mod heap;
mod link;
#[cfg(feature = "preempt")]
mod preempt;
mod stats;
mod suite;
mod sync;
mod vars;
mod waves;

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

/// The most CPUs the kernel runs on (QEMU `-smp 1` to `-smp MAX_CPUS`): per
/// architecture, the largest count its QEMU machine and firmware allow (512
/// on aarch64 `virt`, 256 on loongarch64 `virt`, 128 harts for OpenSBI on
/// riscv64 `virt`), and 512 on x86_64 (q35 takes more). The kernel reserves
/// this many per-CPU areas (`CPU_NUM` of the linker script) and stacks: the
/// possible CPUs.
pub const MAX_CPUS: usize = arch::MAX_CPUS;

const _: () = assert!(
    link::CPU_NUM == MAX_CPUS,
    "CPU_NUM of the linker script must be the architecture's MAX_CPUS"
);

/// Entry of the boot CPU, called by the architecture's `_start` with a stack
/// and a cleared `.bss`.
pub fn boot_main() -> ! {
    suite::boot_cpu()
}

/// Entry of secondary CPU `cpu_id` (1, 2, ...), started by
/// `arch::start_secondary_cpus` on its own stack.
pub fn secondary_main(cpu_id: usize) -> ! {
    suite::secondary_cpu(cpu_id)
}

/// Called by the architecture's timer interrupt handler on every tick. It
/// must not call the heap, whose lock does not disable interrupts: it
/// allocates only per-CPU objects, atomically (see [`dynamic`]).
pub fn on_timer_tick() {
    counters::on_timer_tick();
    checked::on_timer_tick();
    dynamic::on_timer_tick();
    stats::on_timer_tick();
}

/// Set by the first failure: later ones (on other CPUs) stay silent.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Reports a test failure and ends the run with the fail status.
///
/// Callable on any CPU, at any time; only the first failure is reported, the
/// CPUs failing after it stop where they are.
pub fn fail(reason: fmt::Arguments) -> ! {
    if !FAILED.swap(true, Ordering::AcqRel) {
        println!("PERCPU-KERNEL-TESTS: FAIL {reason}");
        arch::exit(false);
    }
    park()
}

/// Stops this CPU for good (while another one ends the run), sleeping
/// rather than spinning.
pub fn park() -> ! {
    arch::halt()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fail(format_args!("panic: {info}"))
}
