// The part of the QEMU command line that all architectures share.
//
// Host-side tools (the xtask) include this file, through `#[path]`, as the
// module `qemu_common` next to the `<arch>_qemu.rs` files, whose `qemu_args`
// use it as `super::qemu_common`. Like them, it uses nothing beyond the std
// prelude and must not contain inner attributes or inner doc comments.

/// The QEMU command line `head -smp <smp> tail <common> -kernel <kernel>`,
/// where `head` is the program name and the machine options, `tail` the
/// architecture's devices and settings, and `<common>` the options of every
/// run: no display and no monitor, the serial console on stdio, no network.
pub fn command(head: &[&str], smp: usize, tail: &[&str], kernel: &str) -> Vec<String> {
    let smp = smp.to_string();
    let common = [
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-nic",
        "none",
        "-kernel",
        kernel,
    ];
    head.iter()
        .chain(&["-smp", smp.as_str()])
        .chain(tail)
        .chain(&common)
        .map(|arg| arg.to_string())
        .collect()
}
