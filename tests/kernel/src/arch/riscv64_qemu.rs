//! How QEMU boots the riscv64 kernel (shared by the kernel and `cargo xtask`).
//!
//! The `virt` machine with its default OpenSBI firmware, which starts the
//! kernel in S-mode at 0x8020_0000 and starts the other harts on request
//! (SBI HSM). The kernel powers off through the `sifive_test` device, which
//! makes QEMU exit with the status the kernel chose.

// The host-side includer provides `qemu_common.rs` as `super::qemu_common`.
#[cfg(not(target_os = "none"))]
use super::qemu_common;

/// QEMU's exit status when the kernel reports success.
pub const QEMU_PASS_STATUS: i32 = 0;

/// QEMU's exit status when the kernel reports failure.
pub const QEMU_FAIL_STATUS: i32 = 1;

/// The QEMU command line (program name first) booting `kernel` on `smp` CPUs.
#[cfg(not(target_os = "none"))]
pub fn qemu_args(smp: usize, kernel: &str) -> Vec<String> {
    qemu_common::command(
        &[
            "qemu-system-riscv64",
            "-machine",
            "virt",
            "-bios",
            "default",
            "-m",
            "256M",
        ],
        smp,
        &[],
        kernel,
    )
}
