//! Build and test automation of the percpu workspace (`cargo xtask ...`).
//!
//! - `cargo xtask qemu [--arch ARCH] [--smp N] [--features A,B] [--release]`
//!   builds the bare-metal test kernel (`tests/kernel`) for one architecture
//!   and boots it under QEMU, showing its console: the demo of percpu in a
//!   real (if tiny) SMP kernel.
//! - `cargo xtask test` runs the host tests, then boots the kernel on every
//!   architecture in every configuration, and prints a summary table.
//! - `cargo xtask codegen [--bless]` counts the instructions of each per-CPU
//!   operation against percpu 0.4 and checks them against the committed counts.
//! - `cargo xtask bench [--no-run]` runs the host benchmarks and writes the
//!   tables and plot the README shows.
//!
//! Missing Rust targets and QEMU are installed on the way (QEMU only as root).

mod arches;
mod bench;
mod codegen;
mod host;
mod install;
mod kernel;
mod matrix;
mod process;
mod qemu;

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use arches::{Arch, ARCHES};
use kernel::Build;

/// Time limit of `cargo xtask qemu`.
const QEMU_LIMIT: Duration = Duration::from_secs(120);

/// CPUs the kernel supports (`-smp`; `MAX_CPUS` of `tests/kernel`).
const SMP_RANGE: std::ops::RangeInclusive<usize> = 1..=512;

const USAGE: &str = "\
usage:
  cargo xtask qemu [--arch ARCH] [--smp N] [--features A,B] [--release]
      Build the test kernel and boot it under QEMU (default: riscv64, 4 CPUs).
      ARCH: riscv64, aarch64, x86_64, loongarch64. N: 1 to 512 (the kernel
      runs at most 128 on riscv64, 256 on loongarch64).
      Kernel features: init-dynamic, preempt, arm-el2 (aarch64, boots at EL2),
      non-zero-vma, selftest-fail, selftest-lose-cpu.
  cargo xtask test
      Run the host tests, then the kernel on every architecture in every
      configuration; print a summary. Exits non-zero if anything failed.
  cargo xtask codegen [--bless]
      Count the instructions of each per-CPU operation on the four
      architectures, ours and percpu 0.4 side by side (codegen/table.md), and
      fail if one got more expensive than codegen/expected.toml allows.
  cargo xtask bench [--no-run]
      Run the host benchmarks, ours and percpu 0.4, and write
      benches/results.md and benches/results.png.";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command in `args`; returns whether it succeeded.
fn run(args: &[String]) -> Result<bool, String> {
    match args.first().map(String::as_str) {
        Some("qemu") => qemu(&Options::parse(&args[1..])?),
        Some("test") if args.len() == 1 => Ok(matrix::test(&root())),
        Some("codegen") => codegen::run(&root(), &args[1..]).map(|()| true),
        Some("bench") => bench::run(&root(), &args[1..]).map(|()| true),
        None | Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(true)
        }
        Some(_) => Err(format!("unexpected arguments: {}\n{USAGE}", args.join(" "))),
    }
}

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository root")
        .to_path_buf()
}

/// The options of `cargo xtask qemu`.
struct Options {
    arch: &'static Arch,
    smp: usize,
    features: Vec<String>,
    release: bool,
}

impl Options {
    /// Parses `--arch A`, `--smp N`, `--features A,B` (also `--flag=value`)
    /// and `--release`.
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            arch: &ARCHES[0],
            smp: 4,
            features: Vec::new(),
            release: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag {
                "--arch" => options.arch = Arch::find(&value()?)?,
                "--smp" => {
                    let smp = value()?;
                    options.smp = smp
                        .parse()
                        .ok()
                        .filter(|n| SMP_RANGE.contains(n))
                        .ok_or_else(|| format!("--smp {smp}: expected 1 to 512"))?;
                }
                "--features" => options.features.extend(
                    value()?
                        .split([',', ' '])
                        .filter(|f| !f.is_empty())
                        .map(String::from),
                ),
                "--release" if inline.is_none() => options.release = true,
                _ => return Err(format!("unexpected argument `{arg}`\n{USAGE}")),
            }
        }
        Ok(options)
    }
}

/// `cargo xtask qemu`: builds the kernel and boots it, streaming the console.
fn qemu(options: &Options) -> Result<bool, String> {
    let arch = options.arch;
    let toolchain = install::ensure_target(arch)?;
    install::ensure_qemu(arch)?;
    let build = Build {
        arch,
        features: options.features.clone(),
        release: options.release,
    };
    let image = build.build(&root(), toolchain, false)?;
    let el2 = options.features.iter().any(|f| f == "arm-el2");
    let command = arch.qemu_command(options.smp, &image.to_string_lossy(), el2)?;
    eprintln!("xtask: running `{}`", command.join(" "));
    let run = qemu::boot(&command, QEMU_LIMIT, true)?;
    match run.verdict(arch) {
        Ok(()) => {
            eprintln!(
                "xtask: {} kernel PASSED on {} cpus ({:.2} s)",
                arch.name,
                options.smp,
                run.elapsed.as_secs_f64()
            );
            Ok(true)
        }
        Err(reason) => {
            eprintln!("xtask: {} kernel FAILED: {reason}", arch.name);
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Options, String> {
        let args: Vec<String> = args.split_whitespace().map(String::from).collect();
        Options::parse(&args)
    }

    #[test]
    fn defaults_to_the_riscv64_demo() {
        let options = parse("").unwrap();
        assert_eq!((options.arch.name, options.smp), ("riscv64", 4));
        assert!(options.features.is_empty() && !options.release);
    }

    #[test]
    fn parses_every_option() {
        let options = parse("--arch=aarch64 --smp 8 --features arm-el2,preempt --release").unwrap();
        assert_eq!((options.arch.name, options.smp), ("aarch64", 8));
        assert_eq!(options.features, ["arm-el2", "preempt"]);
        assert!(options.release);
    }

    #[test]
    fn rejects_bad_options() {
        for args in [
            "--arch mips",
            "--smp 513",
            "--smp 0",
            "--smp",
            "--release=1",
            "--frob",
        ] {
            assert!(parse(args).is_err(), "{args}");
        }
    }
}
