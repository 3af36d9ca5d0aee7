//! How QEMU boots the aarch64 kernel (shared by the kernel and `cargo xtask`).
//!
//! The `virt` machine (no secure world) with a Cortex-A53 loads the ELF
//! image directly and enters it at EL1, or at EL2 with `virtualization=on`
//! (for the `arm-el2` feature). Its interrupt controller is a GICv2 up to 8
//! CPUs and a GICv3 beyond (a GICv2 has at most 8); the `virt` machine takes
//! up to 512 CPUs with a GICv3. CPUs are started with PSCI, which QEMU
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
    args(&machine(smp, ""), smp, kernel)
}

/// As [`qemu_args`], but entered at EL2 (`virtualization=on`), as the
/// `arm-el2` feature needs.
#[cfg(not(target_os = "none"))]
pub fn qemu_args_el2(smp: usize, kernel: &str) -> Vec<String> {
    args(&machine(smp, ",virtualization=on"), smp, kernel)
}

/// The `-machine` value for `smp` CPUs, with `extra` options appended.
#[cfg(not(target_os = "none"))]
fn machine(smp: usize, extra: &str) -> String {
    let gic = if smp <= 8 { 2 } else { 3 };
    format!("virt,secure=off,gic-version={gic}{extra}")
}

/// The command line for the given `-machine` value. 256 MiB hold the kernel
/// image with its 512 stacks and heap, after the device tree.
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
            "1G",
        ],
        smp,
        &["-semihosting-config", "enable=on,target=native"],
        kernel,
    )
}
