// How the loongarch64 test kernel is run under QEMU.
//
// This file is shared between the kernel (through `#[path]` from
// `loongarch64.rs`, where only the two status constants are compiled) and
// host-side tools such as the xtask (through `#[path]`, next to
// `qemu_common.rs` as the module `qemu_common`, where `qemu_args` is also
// compiled). It therefore uses nothing beyond the std prelude and must not
// contain inner attributes or inner doc comments.

// The host-side includer provides `qemu_common.rs` as `super::qemu_common`.
#[cfg(not(target_os = "none"))]
use super::qemu_common;

/// Exit status QEMU reports when the kernel passes: the kernel powers the
/// machine off through the ACPI GED device.
pub const QEMU_PASS_STATUS: i32 = 0;

/// Exit status QEMU reports when the kernel fails: the kernel signals the
/// `pvpanic-pci` device and `-action panic=exit-failure` makes QEMU exit 1.
pub const QEMU_FAIL_STATUS: i32 = 1;

/// The QEMU command line (program name first) that boots the kernel ELF at
/// `kernel` with `smp` CPUs.
///
/// `-m 1G` is the least memory QEMU 7.2 accepts for a firmware-less ELF
/// boot; `pvpanic-pci` with `-action panic=exit-failure` is the kernel's
/// only way to make QEMU exit with a non-zero status.
#[cfg(not(target_os = "none"))]
pub fn qemu_args(smp: usize, kernel: &str) -> Vec<String> {
    qemu_common::command(
        &["qemu-system-loongarch64", "-machine", "virt", "-m", "1G"],
        smp,
        &["-device", "pvpanic-pci", "-action", "panic=exit-failure"],
        kernel,
    )
}
