//! `cargo xtask test`: the host tests, then the QEMU matrix (every
//! architecture in every configuration), then a summary table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::arches::{Arch, ARCHES};
use crate::kernel::Build;
use crate::process::{describe, run};
use crate::{host, install, qemu};

/// Time limit of one QEMU run: the kernel takes about a second with up to 8
/// CPUs, and up to about 40 s with 128 or 256 on a loaded 2-core host.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// One QEMU run of the matrix.
struct Config {
    arch: &'static Arch,
    /// What the run checks, for the summary.
    name: &'static str,
    /// Kernel features.
    features: &'static [&'static str],
    /// CPUs (`-smp`).
    smp: usize,
    /// Boot at EL2 (aarch64 `virtualization=on`).
    el2: bool,
    /// The kernel must report a failure (`selftest-fail`).
    must_fail: bool,
}

/// The QEMU runs, grouped by architecture.
fn configs() -> Vec<Config> {
    let mut configs = Vec::new();
    for arch in &ARCHES {
        let config = |name, features, smp| Config {
            arch,
            name,
            features,
            smp,
            el2: false,
            must_fail: false,
        };
        configs.push(config("default", &[], 4));
        configs.push(config("default", &[], 1));
        configs.push(config("default", &[], 8));
        // riscv64 boots 64 harts (and more) only with OpenSBI 1.1, whose
        // start-up alone takes seconds with many harts: it runs 128 below.
        if arch.name != "riscv64" {
            configs.push(config("many cpus", &[], 64));
        }
        configs.push(config("init-dynamic", &["init-dynamic"], 4));
        configs.push(config("preempt", &["preempt"], 4));
        match arch.name {
            "aarch64" => {
                configs.push(Config {
                    el2: true,
                    ..config("arm-el2 (runs at EL2)", &["arm-el2"], 4)
                });
                configs.push(Config {
                    el2: true,
                    ..config("default, entered at EL2", &[], 4)
                });
                configs.push(Config {
                    must_fail: true,
                    ..config("selftest-lose-cpu (must FAIL)", &["selftest-lose-cpu"], 64)
                });
            }
            "riscv64" => {
                configs.push(config("non-zero-vma", &["non-zero-vma"], 4));
                configs.push(config("most cpus (OpenSBI 1.1)", &[], 128));
            }
            "loongarch64" => configs.push(config("most cpus (virt machine)", &[], 256)),
            _ => {}
        }
        configs.push(Config {
            must_fail: true,
            ..config("selftest-fail (must FAIL)", &["selftest-fail"], 4)
        });
    }
    configs
}

/// One line of the summary.
struct Row {
    arch: String,
    config: String,
    smp: String,
    /// `Ok(note)` or `Err(reason)`.
    result: Result<String, String>,
    seconds: f64,
}

impl Row {
    /// The result as shown to the user.
    fn outcome(&self) -> String {
        match &self.result {
            Ok(note) if note.is_empty() => "PASS".to_string(),
            Ok(note) => format!("PASS {note}"),
            Err(reason) => format!("FAIL: {reason}"),
        }
    }
}

/// Runs everything; returns whether all passed.
pub fn test(root: &Path) -> bool {
    let mut rows = host_tests(root);
    rows.extend(qemu_matrix(root));
    print_summary(&rows);
    rows.iter().all(|row| row.result.is_ok())
}

/// Runs the host steps of [`host::steps`].
fn host_tests(root: &Path) -> Vec<Row> {
    host::steps()
        .into_iter()
        .map(|words| {
            let mut command = Command::new(&words[0]);
            command.args(&words[1..]).current_dir(root);
            let start = Instant::now();
            let result = run(&mut command).map(|()| String::new());
            Row {
                arch: "host".to_string(),
                config: describe(&command),
                smp: String::new(),
                result,
                seconds: start.elapsed().as_secs_f64(),
            }
        })
        .collect()
}

/// Builds each (architecture, features) once and runs every configuration.
fn qemu_matrix(root: &Path) -> Vec<Row> {
    let mut images: HashMap<String, Result<PathBuf, String>> = HashMap::new();
    let mut rows = Vec::new();
    let mut setup = HashMap::new();
    for config in configs() {
        let arch = config.arch;
        let ready = setup
            .entry(arch.name)
            .or_insert_with(|| {
                let toolchain = install::ensure_target(arch)?;
                install::ensure_qemu(arch)?;
                Ok::<_, String>(toolchain)
            })
            .clone();
        let build = Build {
            arch,
            features: config.features.iter().map(|f| f.to_string()).collect(),
            release: true,
        };
        let image = images
            .entry(build.label())
            .or_insert_with(|| {
                let toolchain = ready?;
                let start = Instant::now();
                let image = build.build(root, toolchain, true);
                let outcome = if image.is_ok() {
                    "built"
                } else {
                    "failed to build"
                };
                let seconds = start.elapsed().as_secs_f64();
                eprintln!("xtask: {outcome} {} in {seconds:.1} s", build.label());
                image
            })
            .clone();
        let row = run_config(&config, image);
        eprintln!(
            "xtask: {} {} smp {}: {}",
            arch.name,
            config.name,
            config.smp,
            row.outcome()
        );
        rows.push(row);
    }
    rows
}

/// Boots one configuration of the matrix and judges it.
fn run_config(config: &Config, image: Result<PathBuf, String>) -> Row {
    let arch = config.arch;
    let mut seconds = 0.0;
    let result = image.and_then(|image| {
        let command = arch.qemu_command(config.smp, &image.to_string_lossy(), config.el2)?;
        let run = qemu::boot(&command, RUN_LIMIT, false)?;
        seconds = run.elapsed.as_secs_f64();
        let verdict = if config.must_fail {
            run.failed_as_required(arch)
                .map(|line| format!("(failed as required: {line})"))
        } else {
            run.verdict(arch).map(|()| String::new())
        };
        if verdict.is_err() {
            eprintln!("---- output of `{}` ----", command.join(" "));
            eprint!("{}", run.output);
            eprintln!("---- end of output ----");
        }
        verdict
    });
    Row {
        arch: arch.name.to_string(),
        config: config.name.to_string(),
        smp: config.smp.to_string(),
        result,
        seconds,
    }
}

/// Prints the summary table and the overall result.
fn print_summary(rows: &[Row]) {
    let width = |column: &dyn Fn(&Row) -> String, title: &str| {
        rows.iter()
            .map(|row| column(row).len())
            .chain([title.len()])
            .max()
            .unwrap_or(0)
    };
    let arch_width = width(&|row| row.arch.clone(), "arch");
    let config_width = width(&|row| row.config.clone(), "configuration");
    println!();
    println!(
        "{:arch_width$}  {:config_width$}  smp  seconds  result",
        "arch", "configuration"
    );
    for row in rows {
        println!(
            "{:arch_width$}  {:config_width$}  {:>3}  {:>7.2}  {}",
            row.arch,
            row.config,
            row.smp,
            row.seconds,
            row.outcome()
        );
    }
    let failed = rows.iter().filter(|row| row.result.is_err()).count();
    println!();
    println!("{} passed, {failed} failed", rows.len() - failed);
    if failed == 0 {
        println!("xtask test: all {} runs passed", rows.len());
    } else {
        println!("xtask test: {failed} of {} runs FAILED", rows.len());
    }
}
