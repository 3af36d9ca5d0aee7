//! How QEMU boots the riscv64 kernel (shared by the kernel and `cargo xtask`).
//!
//! The `virt` machine with OpenSBI, which starts the kernel in S-mode at
//! 0x8020_0000 and starts the other harts on request (SBI HSM). The kernel
//! powers off through the `sifive_test` device, which makes QEMU exit with
//! the status the kernel chose.
//!
//! The firmware is QEMU's own (`-bios default`) up to
//! `BUNDLED_OPENSBI_HARTS` harts. That OpenSBI (1.5.1 with Debian's QEMU
//! 10) hangs the harts it starts beyond about 35: its heap, sized by the
//! hart count, runs out of room for the per-hart TLB request queues, whose
//! size also grows with the hart count. Runs with more harts boot OpenSBI 1.1
//! (`MANY_HARTS_FIRMWARE`), whose per-hart data has a fixed size; it boots
//! at most 128 harts.

// The host-side includer provides `qemu_common.rs` as `super::qemu_common`.
#[cfg(not(target_os = "none"))]
use super::qemu_common;

/// QEMU's exit status when the kernel reports success.
pub const QEMU_PASS_STATUS: i32 = 0;

/// QEMU's exit status when the kernel reports failure.
pub const QEMU_FAIL_STATUS: i32 = 1;

/// The most harts booted with QEMU's own OpenSBI.
#[cfg(not(target_os = "none"))]
pub const BUNDLED_OPENSBI_HARTS: usize = 32;

/// The firmware of runs with more harts: `fw_dynamic.bin` of OpenSBI 1.1
/// (Debian bookworm's package `opensbi` 1.1-2), which `cargo xtask` puts
/// under this name next to the kernel image.
#[cfg(not(target_os = "none"))]
pub const MANY_HARTS_FIRMWARE: &str = "opensbi-1.1-fw_dynamic.bin";

/// The QEMU command line (program name first) booting `kernel` on `smp` CPUs.
#[cfg(not(target_os = "none"))]
pub fn qemu_args(smp: usize, kernel: &str) -> Vec<String> {
    let firmware = if smp <= BUNDLED_OPENSBI_HARTS {
        "default".to_string()
    } else {
        let path = std::path::Path::new(kernel).with_file_name(MANY_HARTS_FIRMWARE);
        path.to_string_lossy().into_owned()
    };
    qemu_common::command(
        &[
            "qemu-system-riscv64",
            "-machine",
            "virt",
            "-bios",
            &firmware,
            "-m",
            "1G",
        ],
        smp,
        &[],
        kernel,
    )
}
