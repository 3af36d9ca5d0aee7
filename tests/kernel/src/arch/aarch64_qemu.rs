//! How QEMU boots the aarch64 kernel (shared by the kernel and `cargo xtask`).
//!
//! The `virt` machine (GICv2, no secure world) with a Cortex-A53 loads the ELF
//! image directly and enters it at EL1, or at EL2 with `virtualization=on`
//! (for the `arm-el2` feature). CPUs are started with PSCI, which QEMU
//! implements itself. The kernel powers off through semihosting `SYS_EXIT`,
//! which makes QEMU exit with the status the kernel chose.

// The host-side includer provides `qemu_common.rs` as `super::qemu_common`.
#[cfg(not(target_os = "none"))]
use super::qemu_common;

/// QEMU's exit status when the kernel reports success.
pub const QEMU_PASS_STATUS: i32 = 0;

/// QEMU's exit status when the kernel reports failure.
pub const QEMU_FAIL_STATUS: i32 = 1;

/// The QEMU command line (program name first) booting `kernel` on `smp` CPUs,
/// entered at EL1.
#[cfg(not(target_os = "none"))]
pub fn qemu_args(smp: usize, kernel: &str) -> Vec<String> {
    args("virt,secure=off,gic-version=2", smp, kernel)
}

/// As [`qemu_args`], but entered at EL2 (`virtualization=on`), as the
/// `arm-el2` feature needs.
#[cfg(not(target_os = "none"))]
pub fn qemu_args_el2(smp: usize, kernel: &str) -> Vec<String> {
    args(
        "virt,secure=off,gic-version=2,virtualization=on",
        smp,
        kernel,
    )
}

/// The command line for the given `-machine` value.
#[cfg(not(target_os = "none"))]
fn args(machine: &str, smp: usize, kernel: &str) -> Vec<String> {
    qemu_common::command(
        &[
            "qemu-system-aarch64",
            "-machine",
            machine,
            "-cpu",
            "cortex-a53",
            "-m",
            "128M",
        ],
        smp,
        &["-semihosting-config", "enable=on,target=native"],
        kernel,
    )
}
