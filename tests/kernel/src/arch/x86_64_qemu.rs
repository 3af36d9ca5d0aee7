// How the x86_64 test kernel is run under QEMU.
//
// This file is shared between the kernel (through `#[path]` from `x86_64.rs`,
// where only the two status constants are compiled) and host-side tools such
// as the xtask (through `#[path]`, next to `qemu_common.rs` as the module
// `qemu_common`, where `qemu_args` is also compiled). It therefore uses nothing beyond the std prelude and must not
// contain inner attributes or inner doc comments.

// The host-side includer provides `qemu_common.rs` as `super::qemu_common`.
#[cfg(not(target_os = "none"))]
use super::qemu_common;

/// Exit status QEMU reports when the kernel passes: the kernel writes 0x10 to
/// the `isa-debug-exit` port, and QEMU exits with `(0x10 << 1) | 1`.
pub const QEMU_PASS_STATUS: i32 = 33;

/// Exit status QEMU reports when the kernel fails: the kernel writes 0x11 to
/// the `isa-debug-exit` port, and QEMU exits with `(0x11 << 1) | 1`.
pub const QEMU_FAIL_STATUS: i32 = 35;

/// The QEMU command line (program name first) that boots the kernel ELF at
/// `kernel` with `smp` CPUs.
///
/// The kernel is loaded through its PVH ELF note; `isa-debug-exit` at port
/// 0xf4 gives it a way to report pass or fail, and `-no-reboot` turns a
/// triple fault into an exit (with a status that is neither pass nor fail).
/// Above 8 CPUs the CPU model gets x2APIC (which QEMU requires for APIC ids
/// from 255 up), so that the kernel's x2APIC mode is tested too; 512 MiB
/// hold the kernel image with its 512 stacks and heap.
#[cfg(not(target_os = "none"))]
pub fn qemu_args(smp: usize, kernel: &str) -> Vec<String> {
    let cpu = if smp <= 8 { "qemu64" } else { "qemu64,+x2apic" };
    qemu_common::command(
        &[
            "qemu-system-x86_64",
            "-machine",
            "q35",
            "-cpu",
            cpu,
            "-m",
            "1G",
        ],
        smp,
        &[
            "-no-reboot",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
        ],
        kernel,
    )
}
