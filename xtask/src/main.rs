//! Build and test automation of the percpu workspace (`cargo xtask ...`; `--help` on each command).
//!
//! - `qemu`: builds the bare-metal test kernel (`tests/kernel`) for one architecture and boots it under
//!   QEMU, showing its console: the demo of percpu in a real (if tiny) SMP kernel.
//! - `test`: the host steps ([`host::STEPS`]), then the QEMU matrix ([`matrix::RUNS`]), and a summary.
//! - `codegen`: instruction counts of each per-CPU operation against percpu 0.4, checked.
//! - `bench`: the host benchmarks, and the tables and charts the README shows.
//! - `install`: what the host steps need beyond rustup (run by `test` itself).
//!
//! Missing Rust targets, QEMU and the other tools are installed on the way (apt packages only as root).

mod arches;
mod bench;
mod codegen;
mod host;
mod install;
mod kernel;
mod matrix;
mod package;
mod process;
mod qemu;
mod readme;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use arches::Arch;
use clap::{Parser, Subcommand};
use kernel::Build;

/// Time limit of `cargo xtask qemu`.
const QEMU_LIMIT: Duration = Duration::from_secs(120);

/// The CPUs (`-smp`) the test kernel supports at most (its `MAX_CPUS`: 512 on x86_64 and aarch64, 256
/// on loongarch64, 128 on riscv64; QEMU refuses more than its machine allows).
pub const MAX_SMP: u16 = 512;

#[derive(Parser)]
#[command(
    bin_name = "cargo xtask",
    about = "Build, test and measure the percpu workspace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the test kernel and boot it under QEMU, showing its console.
    Qemu {
        /// The architecture: riscv64, aarch64, x86_64 or loongarch64.
        #[arg(long, default_value = "riscv64", value_parser = Arch::find)]
        arch: &'static Arch,
        /// The number of CPUs.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=MAX_SMP as i64))]
        smp: u16,
        /// Kernel features: init-dynamic, preempt, arm-el2 (aarch64, boots at EL2), non-zero-vma,
        /// large-template (aarch64), selftest-fail, selftest-lose-cpu.
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
        /// An optimized kernel (debug assertions stay on).
        #[arg(long)]
        release: bool,
    },
    /// Run the host steps, then the kernel on every architecture in every configuration, and print a
    /// summary; exits non-zero if anything failed (what CI runs).
    Test(matrix::Selection),
    /// Count the instructions of each per-CPU operation on the four architectures, ours and percpu
    /// 0.4 side by side (codegen/table.md), and fail if one got more expensive than
    /// codegen/expected.toml allows.
    Codegen {
        /// Rewrite codegen/expected.toml with the counts measured now.
        #[arg(long)]
        bless: bool,
    },
    /// Run the host benchmarks (ours in hosted and sp-naive mode, percpu 0.4, the usual alternatives)
    /// and write benches/results.md and the charts.
    Bench {
        /// Only rewrite the tables and charts from the results of earlier runs.
        #[arg(long)]
        no_run: bool,
        /// Options for criterion, after `--` (e.g. `-- --warm-up-time 1 --measurement-time 2`).
        #[arg(last = true)]
        criterion: Vec<String>,
    },
    /// Package percpu_macros, percpu and percpu_alloc as crates.io gets them, and build each packaged
    /// crate on its own (what CI checks).
    Package,
    /// Install tools the host steps need, when missing (apt packages as root).
    Install {
        /// What to install.
        #[arg(required = true)]
        tools: Vec<install::Tool>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Qemu {
            arch,
            smp,
            features,
            release,
        } => qemu(arch, smp.into(), features, release),
        Command::Test(selection) => Ok(matrix::test(&root(), &selection)),
        Command::Codegen { bless } => codegen::run(&root(), bless).map(|()| true),
        Command::Bench { no_run, criterion } => {
            let criterion = (!no_run).then_some(criterion.as_slice());
            bench::run(&root(), criterion).map(|()| true)
        }
        Command::Package => package::run_package(&root()).map(|()| true),
        Command::Install { tools } => tools
            .iter()
            .try_for_each(|tool| tool.ensure())
            .map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::from(2)
        }
    }
}

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository root")
        .to_path_buf()
}

/// `cargo xtask qemu`: builds the kernel and boots it, streaming the console.
fn qemu(
    arch: &'static Arch,
    smp: usize,
    features: Vec<String>,
    release: bool,
) -> Result<bool, String> {
    let toolchain = install::ensure_target(arch)?;
    install::ensure_qemu(arch)?;
    let el2 = features.iter().any(|f| f == "arm-el2");
    let build = Build {
        arch,
        features,
        release,
    };
    let image = build.build(&root(), toolchain, false)?;
    let command = arch.qemu_command(smp, &image.to_string_lossy(), el2)?;
    eprintln!("xtask: running `{}`", command.join(" "));
    let run = qemu::boot(&command, QEMU_LIMIT, true)?;
    let verdict = run.verdict(arch);
    match &verdict {
        Ok(()) => eprintln!(
            "xtask: {} kernel PASSED on {smp} cpus ({:.2} s)",
            arch.name,
            run.elapsed.as_secs_f64()
        ),
        Err(reason) => eprintln!("xtask: {} kernel FAILED: {reason}", arch.name),
    }
    Ok(verdict.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(["cargo xtask"].into_iter().chain(args.split_whitespace()))
            .map(|cli| cli.command)
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn qemu_defaults_to_the_riscv64_demo() {
        let Ok(Command::Qemu {
            arch,
            smp,
            features,
            release,
        }) = parse("qemu")
        else {
            panic!("qemu parses");
        };
        assert_eq!((arch.name, smp), ("riscv64", 4));
        assert!(features.is_empty() && !release);
    }

    #[test]
    fn qemu_parses_every_option() {
        let parsed = parse("qemu --arch=aarch64 --smp 8 --features arm-el2,preempt --release");
        let Ok(Command::Qemu {
            arch,
            smp,
            features,
            release,
        }) = parsed
        else {
            panic!("qemu parses");
        };
        assert_eq!((arch.name, smp), ("aarch64", 8));
        assert_eq!(features, ["arm-el2", "preempt"]);
        assert!(release);
    }

    #[test]
    fn rejects_bad_options() {
        for args in [
            "qemu --arch mips",
            "qemu --smp 513",
            "qemu --smp 0",
            "qemu --smp",
            "qemu --release=1",
            "qemu --frob",
            "codegen --bless=no",
            "install",
            "frob",
        ] {
            assert!(parse(args).is_err(), "{args}");
        }
    }
}
