//! `cargo xtask test`: the host steps, then the QEMU matrix (every architecture in every
//! configuration), then a summary table that fits a 100-column terminal.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use crate::arches::{Arch, ARCHES};
use crate::kernel::Build;
use crate::process::run;
use crate::{host, install, qemu};

/// Time limit of one QEMU run: the kernel takes about a second with up to 8
/// CPUs, and up to about 40 s with 128 or 256 on a loaded 2-core host.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// One line of the matrix: a kernel configuration, booted on each of `arches` with each CPU count.
pub struct Run {
    /// What the run checks, for the summary.
    pub name: &'static str,
    /// The architectures it runs on; empty: all of them.
    pub arches: &'static [&'static str],
    /// Kernel features.
    pub features: &'static [&'static str],
    /// CPU counts (`-smp`), one QEMU run each.
    pub smp: &'static [usize],
    /// Boot at EL2 (aarch64 `virtualization=on`).
    pub el2: bool,
    /// The kernel must report a failure (`selftest-fail`), and the run is judged by that.
    pub must_fail: bool,
}

/// A run of the default kernel configuration: all architectures, 4 CPUs, at EL1.
const RUN: Run = Run {
    name: "",
    arches: &[],
    features: &[],
    smp: &[4],
    el2: false,
    must_fail: false,
};

/// The QEMU matrix, in the order of each architecture's runs: one line per configuration.
#[rustfmt::skip]
pub const RUNS: &[Run] = &[
    Run { name: "default", smp: &[4, 1, 8], ..RUN },
    // riscv64 boots 64 harts (and more) only with OpenSBI 1.1, whose start-up alone takes seconds with
    // many harts: it runs 128 below.
    Run { name: "many cpus", arches: &["x86_64", "aarch64", "loongarch64"], smp: &[64], ..RUN },
    Run { name: "init-dynamic", features: &["init-dynamic"], ..RUN },
    Run { name: "preempt", features: &["preempt"], ..RUN },
    Run { name: "arm-el2 (runs at EL2)", arches: &["aarch64"], features: &["arm-el2"], el2: true, ..RUN },
    Run { name: "default, entered at EL2", arches: &["aarch64"], el2: true, ..RUN },
    Run { name: "large-template (over 64 KiB)", arches: &["aarch64"], features: &["large-template"], ..RUN },
    Run { name: "selftest-lose-cpu (must FAIL)", arches: &["aarch64"], features: &["selftest-lose-cpu"], smp: &[64], must_fail: true, ..RUN },
    Run { name: "non-zero-vma", arches: &["riscv64"], features: &["non-zero-vma"], ..RUN },
    Run { name: "most cpus (OpenSBI 1.1)", arches: &["riscv64"], smp: &[128], ..RUN },
    Run { name: "most cpus (virt machine)", arches: &["loongarch64"], smp: &[256], ..RUN },
    Run { name: "selftest-fail (must FAIL)", features: &["selftest-fail"], must_fail: true, ..RUN },
];

/// What `cargo xtask test` runs: by default everything.
#[derive(clap::Args)]
pub struct Selection {
    /// Only the host steps.
    #[arg(long, conflicts_with = "qemu")]
    host: bool,
    /// Only the QEMU runs.
    #[arg(long)]
    qemu: bool,
    /// List what would run, without running it.
    #[arg(long)]
    list: bool,
    /// Only the steps and runs whose label contains one of these (a step's label is its command
    /// line, a run's `ARCH CONFIGURATION smp N`), e.g. `miri`, `clippy`, `aarch64`.
    filters: Vec<String>,
}

impl Selection {
    /// Whether the step or run labelled `label` of the host (`host`) or QEMU part is selected.
    fn selects(&self, host: bool, label: &str) -> bool {
        let part = if host { !self.qemu } else { !self.host };
        part && (self.filters.is_empty() || self.filters.iter().any(|f| label.contains(f.as_str())))
    }
}

/// One line of the summary.
struct Row {
    /// `host`, or the architecture.
    arch: String,
    /// The host step's command, or the run's configuration and CPU count.
    label: String,
    /// `Ok(note)` or `Err(reason)`.
    result: Result<String, String>,
    seconds: f64,
}

/// Runs the selection; returns whether all passed.
pub fn test(root: &Path, selection: &Selection) -> bool {
    let steps: Vec<Vec<String>> = host::steps()
        .into_iter()
        .filter(|step| selection.selects(true, &step.join(" ")))
        .collect();
    let runs: Vec<(&Arch, &Run, usize)> = ARCHES
        .iter()
        .flat_map(|arch| RUNS.iter().map(move |run| (arch, run)))
        .filter(|(arch, run)| run.arches.is_empty() || run.arches.contains(&arch.name))
        .flat_map(|(arch, run)| run.smp.iter().map(move |&smp| (arch, run, smp)))
        .filter(|(arch, run, smp)| selection.selects(false, &run_label(arch, run, *smp)))
        .collect();
    if selection.list {
        steps
            .iter()
            .for_each(|step| println!("host  {}", step.join(" ")));
        runs.iter()
            .for_each(|(arch, run, smp)| println!("qemu  {}", run_label(arch, run, *smp)));
        return true;
    }
    let start = Instant::now();
    let mut rows: Vec<Row> = steps.iter().map(|step| host_step(root, step)).collect();
    rows.extend(qemu_matrix(root, &runs));
    println!("{}", summary(&rows, start.elapsed()));
    rows.iter().all(|row| row.result.is_ok())
}

/// The label of a QEMU run, which the filters match.
fn run_label(arch: &Arch, run: &Run, smp: usize) -> String {
    format!("{} {} smp {smp}", arch.name, run.name)
}

/// Runs one host step: `VAR=value` words first set the environment, then a program and its arguments.
fn host_step(root: &Path, step: &[String]) -> Row {
    let start = Instant::now();
    let assignments = step.iter().take_while(|word| word.contains('=')).count();
    let mut command = Command::new(&step[assignments]);
    command.args(&step[assignments + 1..]).current_dir(root);
    for word in &step[..assignments] {
        let (name, value) = word.split_once('=').expect("an assignment");
        command.env(name, value);
    }
    Row {
        arch: "host".to_string(),
        label: step.join(" "),
        result: run(&mut command).map(|()| String::new()),
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Builds each (architecture, features) once and boots every selected run.
fn qemu_matrix(root: &Path, runs: &[(&'static Arch, &Run, usize)]) -> Vec<Row> {
    let mut images: HashMap<String, Result<PathBuf, String>> = HashMap::new();
    let mut setup = HashMap::new();
    let mut rows = Vec::new();
    for &(arch, run, smp) in runs {
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
            features: run.features.iter().map(|f| f.to_string()).collect(),
            release: true,
        };
        let image = images
            .entry(build.label())
            .or_insert_with(|| {
                let start = Instant::now();
                let image = ready.and_then(|toolchain| build.build(root, toolchain, true));
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
        let row = boot(arch, run, smp, image);
        eprintln!("xtask: {}: {}", run_label(arch, run, smp), outcome(&row));
        rows.push(row);
    }
    rows
}

/// Boots one run of the matrix and judges it: QEMU's exit status and the kernel's marker line.
fn boot(arch: &Arch, config: &Run, smp: usize, image: Result<PathBuf, String>) -> Row {
    let mut seconds = 0.0;
    let result = image.and_then(|image| {
        let command = arch.qemu_command(smp, &image.to_string_lossy(), config.el2)?;
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
        label: format!("{} (smp {smp})", config.name),
        result,
        seconds,
    }
}

/// The result of a row as the progress messages show it.
fn outcome(row: &Row) -> String {
    match &row.result {
        Ok(note) if note.is_empty() => "PASS".to_string(),
        Ok(note) => format!("PASS {note}"),
        Err(reason) => format!("FAIL: {reason}"),
    }
}

/// The summary: a table fitted to a 100-column terminal (long labels wrapped), the failures' reasons,
/// and the overall result.
fn summary(rows: &[Row], elapsed: Duration) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::ASCII_BORDERS_ONLY_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(100)
        .set_header(["arch", "step or configuration", "seconds", "result"]);
    for row in rows {
        let verdict = if row.result.is_ok() { "PASS" } else { "FAIL" };
        let seconds = format!("{:.2}", row.seconds);
        table.add_row([&row.arch, &row.label, &seconds, verdict]);
    }
    table
        .column_mut(2)
        .expect("four columns")
        .set_cell_alignment(CellAlignment::Right);
    let mut text = format!("\n{table}\n");
    let failed: Vec<&Row> = rows.iter().filter(|row| row.result.is_err()).collect();
    if !failed.is_empty() {
        text.push_str("\nfailures:\n");
        for row in &failed {
            text.push_str(&format!("- {} {}: {}\n", row.arch, row.label, outcome(row)));
        }
    }
    let (passed, total) = (rows.len() - failed.len(), rows.len());
    text.push_str(&format!("\n{passed} passed, {} failed\n", failed.len()));
    if failed.is_empty() {
        let seconds = elapsed.as_secs_f64();
        text + &format!("xtask test: all {total} steps and runs passed ({seconds:.0} s)")
    } else {
        text + &format!(
            "xtask test: {} of {total} steps and runs FAILED",
            failed.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_fits_100_columns_and_names_every_failure() {
        let row = |label: &str, result: Result<String, String>| Row {
            arch: "host".to_string(),
            label: label.to_string(),
            result,
            seconds: 12.5,
        };
        let long = host::STEPS.iter().max_by_key(|step| step.len()).unwrap();
        let rows = [
            row(long, Ok(String::new())),
            row("cargo fmt", Err("`cargo fmt` failed".to_string())),
        ];
        let text = summary(&rows, Duration::from_secs(7));
        assert!(text.lines().all(|line| line.len() <= 100), "{text}");
        let words = |text: &str| {
            text.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let table = words(&text).join(" ");
        assert!(table.contains(&words(&long[..40]).join(" ")), "{text}");
        assert!(text.contains("- host cargo fmt: FAIL: `cargo fmt` failed"));
        assert!(text.ends_with("xtask test: 1 of 2 steps and runs FAILED"));
    }

    #[test]
    fn every_run_names_known_architectures_and_cpu_counts() {
        for run in RUNS {
            assert!(
                run.arches.iter().all(|name| Arch::find(name).is_ok()),
                "{}",
                run.name
            );
            assert!(!run.smp.is_empty(), "{}", run.name);
            assert!(run
                .smp
                .iter()
                .all(|&smp| (1..=usize::from(crate::MAX_SMP)).contains(&smp)));
            assert!(!run.el2 || run.arches == ["aarch64"], "{}", run.name);
        }
    }

    #[test]
    fn a_selection_filters_by_part_and_label() {
        let select = |args: &[&str]| {
            use clap::Parser;
            #[derive(Parser)]
            struct Test {
                #[command(flatten)]
                selection: Selection,
            }
            Test::parse_from(["test"].iter().chain(args)).selection
        };
        let all = select(&[]);
        assert!(all.selects(true, "cargo fmt") && all.selects(false, "x86_64 default smp 4"));
        let host = select(&["--host", "miri", "fmt"]);
        assert!(
            host.selects(true, "cargo fmt --all") && host.selects(true, "cargo +nightly miri test")
        );
        assert!(!host.selects(true, "cargo clippy") && !host.selects(false, "x86_64 fmt smp 4"));
        let qemu = select(&["--qemu", "aarch64"]);
        assert!(qemu.selects(false, "aarch64 preempt smp 4") && !qemu.selects(true, "aarch64"));
    }
}
