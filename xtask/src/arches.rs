//! The architectures the test kernel runs on: Rust target, toolchain, and the
//! QEMU command line, which lives next to each architecture's boot code in
//! `tests/kernel/src/arch/<arch>_qemu.rs` and is included from there, with
//! the part all of them share in `tests/kernel/src/arch/qemu_common.rs`.

#[path = "../../tests/kernel/src/arch/aarch64_qemu.rs"]
mod aarch64_qemu;
#[path = "../../tests/kernel/src/arch/loongarch64_qemu.rs"]
mod loongarch64_qemu;
#[path = "../../tests/kernel/src/arch/qemu_common.rs"]
mod qemu_common;
#[path = "../../tests/kernel/src/arch/riscv64_qemu.rs"]
mod riscv64_qemu;
#[path = "../../tests/kernel/src/arch/x86_64_qemu.rs"]
mod x86_64_qemu;

pub use riscv64_qemu::MANY_HARTS_FIRMWARE as RISCV64_MANY_HARTS_FIRMWARE;

/// A QEMU command line for `(smp, kernel)`, program name first.
type QemuArgs = fn(usize, &str) -> Vec<String>;

/// One architecture of the test kernel.
pub struct Arch {
    /// The name used on the command line and by the kernel (`NAME`).
    pub name: &'static str,
    /// The Rust target the kernel is built for.
    pub target: &'static str,
    /// Whether the target needs the nightly toolchain.
    pub nightly: bool,
    /// Extra `rustflags` for the kernel build.
    pub rustflags: &'static [&'static str],
    /// QEMU's exit status when the kernel passes.
    pub pass_status: i32,
    /// QEMU's exit status when the kernel reports a failure.
    pub fail_status: i32,
    /// The command line booting at the default exception level.
    qemu_args: QemuArgs,
    /// The command line entering at EL2 (aarch64 `virtualization=on`).
    qemu_args_el2: Option<QemuArgs>,
}

/// All architectures; the first one is the default.
pub const ARCHES: [Arch; 4] = [
    Arch {
        name: "riscv64",
        target: "riscv64gc-unknown-none-elf",
        nightly: false,
        rustflags: &[],
        pass_status: riscv64_qemu::QEMU_PASS_STATUS,
        fail_status: riscv64_qemu::QEMU_FAIL_STATUS,
        qemu_args: riscv64_qemu::qemu_args,
        qemu_args_el2: None,
    },
    Arch {
        name: "aarch64",
        target: "aarch64-unknown-none",
        nightly: false,
        rustflags: &[],
        pass_status: aarch64_qemu::QEMU_PASS_STATUS,
        fail_status: aarch64_qemu::QEMU_FAIL_STATUS,
        qemu_args: aarch64_qemu::qemu_args,
        qemu_args_el2: Some(aarch64_qemu::qemu_args_el2),
    },
    Arch {
        name: "x86_64",
        target: "x86_64-unknown-none",
        nightly: false,
        // The kernel is linked at a fixed address: no PIE.
        rustflags: &["-C", "relocation-model=static"],
        pass_status: x86_64_qemu::QEMU_PASS_STATUS,
        fail_status: x86_64_qemu::QEMU_FAIL_STATUS,
        qemu_args: x86_64_qemu::qemu_args,
        qemu_args_el2: None,
    },
    Arch {
        name: "loongarch64",
        // The only prebuilt bare-metal loongarch target, on nightly.
        target: "loongarch64-unknown-none-softfloat",
        nightly: true,
        rustflags: &[],
        pass_status: loongarch64_qemu::QEMU_PASS_STATUS,
        fail_status: loongarch64_qemu::QEMU_FAIL_STATUS,
        qemu_args: loongarch64_qemu::qemu_args,
        qemu_args_el2: None,
    },
];

impl Arch {
    /// The architecture called `name`.
    pub fn find(name: &str) -> Result<&'static Arch, String> {
        ARCHES.iter().find(|arch| arch.name == name).ok_or_else(|| {
            let names: Vec<_> = ARCHES.iter().map(|arch| arch.name).collect();
            format!(
                "unknown architecture `{name}` (one of: {})",
                names.join(", ")
            )
        })
    }

    /// The QEMU command line (program name first) booting `kernel` on `smp`
    /// CPUs, entered at EL2 if `el2`.
    pub fn qemu_command(&self, smp: usize, kernel: &str, el2: bool) -> Result<Vec<String>, String> {
        match (el2, self.qemu_args_el2) {
            (false, _) => Ok((self.qemu_args)(smp, kernel)),
            (true, Some(args)) => Ok(args(smp, kernel)),
            (true, None) => Err(format!("{} has no EL2 entry", self.name)),
        }
    }

    /// The QEMU program booting this architecture.
    pub fn qemu_program(&self) -> String {
        (self.qemu_args)(1, "kernel").swap_remove(0)
    }
}
