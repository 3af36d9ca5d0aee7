//! `cargo xtask bench [--no-run]`: runs the host benchmarks (`benches/access.rs` for this repository's
//! `percpu`, `benches/alloc.rs` for `percpu_alloc`, `benches/peer` twice for crates.io `percpu` 0.4:
//! `non-zero-vma` and `sp-naive`), then writes `benches/results.md` (median ns per operation, ratio to
//! the reference of each table, the memory efficiency of the allocator, each goal met or not, the
//! machine) and the bar charts `benches/results.png` (accesses, `init`) and `benches/alloc.png`
//! (counting under contention, allocation). `--no-run` only rewrites them from the existing results.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{self, output};

/// Which benchmark crate measures an implementation.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// `benches/access.rs` of the root package.
    Ours,
    /// `benches/peer`.
    Peer,
}

/// One implementation: a criterion benchmark id, in every group that measures it.
struct Implementation {
    /// The criterion benchmark id.
    id: &'static str,
    /// Its name in the table (Markdown).
    label: &'static str,
    /// Its name in the chart's legend.
    legend: &'static str,
    /// Its colour in the chart.
    color: [u8; 3],
    /// The crate that measures it.
    source: Source,
}

/// Every implementation, in table and chart order.
const IMPLEMENTATIONS: [Implementation; 13] = [
    Implementation {
        id: "percpu",
        label: "`percpu` (ours), static",
        legend: "percpu",
        color: [31, 119, 180],
        source: Source::Ours,
    },
    Implementation {
        id: "percpu-raw",
        label: "`percpu::raw` (ours), VMA in a register",
        legend: "percpu raw",
        color: [140, 190, 230],
        source: Source::Ours,
    },
    Implementation {
        id: "percpu_alloc",
        label: "`percpu_alloc::PerCpu` (ours), handle by `&`",
        legend: "percpu_alloc PerCpu",
        color: [20, 60, 120],
        source: Source::Ours,
    },
    Implementation {
        id: "percpu_counter",
        label: "`percpu_alloc::PerCpuCounter::inc` (ours)",
        legend: "PerCpuCounter",
        color: [23, 190, 207],
        source: Source::Ours,
    },
    Implementation {
        id: "percpu-0.4",
        label: "`percpu` 0.4, `non-zero-vma` + `-no-pie`",
        legend: "percpu 0.4",
        color: [255, 127, 14],
        source: Source::Peer,
    },
    Implementation {
        id: "percpu-0.4-sp-naive",
        label: "`percpu` 0.4, `sp-naive`",
        legend: "percpu 0.4 sp-naive",
        color: [250, 190, 120],
        source: Source::Peer,
    },
    Implementation {
        id: "thread_local",
        label: "`thread_local!` + `Cell`",
        legend: "thread_local",
        color: [44, 160, 44],
        source: Source::Ours,
    },
    Implementation {
        id: "static_mut",
        label: "`static mut`",
        legend: "static mut",
        color: [127, 127, 127],
        source: Source::Ours,
    },
    Implementation {
        id: "atomic_relaxed",
        label: "`AtomicU64`, relaxed",
        legend: "atomic relaxed",
        color: [214, 39, 40],
        source: Source::Ours,
    },
    Implementation {
        id: "cache_padded_box",
        label: "`Box<[CachePadded<T>]>`, CPU id in a variable",
        legend: "CachePadded box",
        color: [140, 86, 75],
        source: Source::Ours,
    },
    Implementation {
        id: "atomic_shared",
        label: "one shared `AtomicU64`, `fetch_add`",
        legend: "shared atomic",
        color: [227, 119, 194],
        source: Source::Ours,
    },
    Implementation {
        id: "mutex",
        label: "one `Mutex<u64>`",
        legend: "mutex",
        color: [188, 189, 34],
        source: Source::Ours,
    },
    Implementation {
        id: "memcpy",
        label: "`copy_nonoverlapping` of the same bytes",
        legend: "memcpy",
        color: [148, 103, 189],
        source: Source::Ours,
    },
];

/// One operation: a criterion group.
struct Operation {
    /// The criterion group name.
    group: &'static str,
    /// Its name in the table's header and under its bars.
    label: &'static str,
    /// The implementation that ratios refer to.
    reference: &'static str,
}

/// The access operations (ns per operation), then `init`.
const ACCESSES: [Operation; 3] = [
    Operation {
        group: "read_u64",
        label: "read u64",
        reference: "thread_local",
    },
    Operation {
        group: "write_u64",
        label: "write u64",
        reference: "thread_local",
    },
    Operation {
        group: "add_u64",
        label: "add u64",
        reference: "thread_local",
    },
];

/// `init` of 4 areas (ns per call).
const INIT: [Operation; 1] = [Operation {
    group: "init_4_areas",
    label: "init 4 areas",
    reference: "memcpy",
}];

/// Counting under contention (`benches/alloc.rs`): ns per increment and thread.
const COUNTING: [Operation; 2] = [
    Operation {
        group: "count_1_thread",
        label: "1 thread",
        reference: "atomic_shared",
    },
    Operation {
        group: "count_2_threads",
        label: "2 threads",
        reference: "atomic_shared",
    },
];

/// Allocation and drop of one per-CPU object (ns per pair), then the accesses: `PerCpu<T>` against
/// `Box<[CachePadded<T>]>`.
const AGAINST_BOX: [Operation; 7] = [
    Operation {
        group: "alloc_free_8B",
        label: "alloc + drop 8 B",
        reference: "cache_padded_box",
    },
    Operation {
        group: "alloc_free_64B",
        label: "alloc + drop 64 B",
        reference: "cache_padded_box",
    },
    Operation {
        group: "alloc_free_512B",
        label: "alloc + drop 512 B",
        reference: "cache_padded_box",
    },
    Operation {
        group: "alloc_free_4096B",
        label: "alloc + drop 4096 B",
        reference: "cache_padded_box",
    },
    Operation {
        group: "read_u64",
        label: "read u64",
        reference: "cache_padded_box",
    },
    Operation {
        group: "write_u64",
        label: "write u64",
        reference: "cache_padded_box",
    },
    Operation {
        group: "add_u64",
        label: "add u64",
        reference: "cache_padded_box",
    },
];

/// The rows of the `AGAINST_BOX` table.
const AGAINST_BOX_ROWS: [&str; 2] = ["percpu_alloc", "cache_padded_box"];

/// The sizes of `AGAINST_BOX` (its first operations), for the chart.
const ALLOC_SIZES: usize = 4;

/// The 8-byte allocation and drop with other objects live (ns per pair). Its ratios refer to the
/// first of them (1 000 live), not to an implementation: `reference` is unused.
const LIVE: [Operation; 3] = [
    Operation {
        group: "alloc_free_8B_1000_live",
        label: "1 000 live",
        reference: "percpu_alloc",
    },
    Operation {
        group: "alloc_free_8B_100000_live",
        label: "100 000 live",
        reference: "percpu_alloc",
    },
    Operation {
        group: "alloc_free_8B_1000000_live",
        label: "1 000 000 live",
        reference: "percpu_alloc",
    },
];

/// Medians in ns per operation: `[operation][implementation]`, `None` where not measured.
type Medians = Vec<Vec<Option<f64>>>;

/// Every measured median the report uses.
struct Results {
    accesses: Medians,
    init: Medians,
    counting: Medians,
    against_box: Medians,
    live: Medians,
    /// The memory-efficiency figures of `benches/alloc.rs`, if it ran.
    efficiency: Option<Efficiency>,
    /// The confidence intervals of the medians.
    intervals: Intervals,
}

/// The median of implementation `id` in the operation `group` of `operations`.
fn median_of(medians: &Medians, operations: &[Operation], group: &str, id: &str) -> Option<f64> {
    let at = operations.iter().position(|o| o.group == group)?;
    let index = IMPLEMENTATIONS.iter().position(|i| i.id == id)?;
    medians[at][index]
}

/// Entry point.
pub fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let measure = match args {
        [] => true,
        [flag] if flag == "--no-run" => false,
        _ => return Err("usage: cargo xtask bench [--no-run]".into()),
    };
    let peer_manifest = root.join("benches/peer/Cargo.toml");
    if measure {
        process::run(bench_command(root, Source::Ours).args(["--bench", "access"]))?;
        process::run(bench_command(root, Source::Ours).args(["--bench", "alloc"]))?;
        process::run(
            bench_command(root, Source::Peer)
                .arg("--manifest-path")
                .arg(&peer_manifest),
        )?;
        process::run(
            bench_command(root, Source::Peer)
                .arg("--manifest-path")
                .arg(&peer_manifest)
                .args(["--no-default-features", "--features", "sp-naive"]),
        )?;
    }
    let mut intervals = Intervals::new();
    let results = Results {
        accesses: medians(root, &ACCESSES, &mut intervals)?,
        init: medians(root, &INIT, &mut intervals)?,
        counting: medians(root, &COUNTING, &mut intervals)?,
        against_box: medians(root, &AGAINST_BOX, &mut intervals)?,
        live: medians(root, &LIVE, &mut intervals)?,
        efficiency: Efficiency::read(root)?,
        intervals,
    };

    let report_path = root.join("benches/results.md");
    let report = render_report(&machine()?, &results);
    fs::write(&report_path, &report)
        .map_err(|e| format!("cannot write {}: {e}", report_path.display()))?;
    let chart = root.join("benches/results.png");
    fs::write(&chart, draw_chart(&results))
        .map_err(|e| format!("cannot write {}: {e}", chart.display()))?;
    let alloc_chart = root.join("benches/alloc.png");
    fs::write(&alloc_chart, draw_alloc_chart(&results))
        .map_err(|e| format!("cannot write {}: {e}", alloc_chart.display()))?;
    print!("{report}");
    println!(
        "wrote {}, {} and {}",
        report_path.display(),
        chart.display(),
        alloc_chart.display()
    );
    Ok(())
}

/// The memory efficiency of the mixed workload, per CPU, as `benches/alloc.rs` measured it.
struct Efficiency {
    /// The object sizes of the workload.
    sizes: String,
    /// After allocating every object, then after replacing a random half.
    phases: Vec<Phase>,
}

/// The allocator's usage figures at one point of the workload (`percpu_alloc::stats()`).
struct Phase {
    name: &'static str,
    objects: u64,
    requested: u64,
    reserved: u64,
    chunk_bytes: u64,
    chunks: u64,
}

impl Efficiency {
    /// Reads `criterion/memory_efficiency/mixed.txt` (`key=value` lines); `None` if never written.
    fn read(root: &Path) -> Result<Option<Self>, String> {
        let path = target_dir(root, Source::Ours).join("criterion/memory_efficiency/mixed.txt");
        let Ok(text) = fs::read_to_string(&path) else {
            return Ok(None);
        };
        let value = |key: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .ok_or_else(|| format!("no `{key}` in {}", path.display()))
        };
        let number = |key: &str| {
            value(key)?
                .parse::<u64>()
                .map_err(|e| format!("`{key}` in {}: {e}", path.display()))
        };
        let phase = |name: &'static str| -> Result<Phase, String> {
            Ok(Phase {
                name,
                objects: number(&format!("{name}.objects"))?,
                requested: number(&format!("{name}.requested_bytes"))?,
                reserved: number(&format!("{name}.reserved_bytes"))?,
                chunk_bytes: number(&format!("{name}.chunk_bytes"))?,
                chunks: number(&format!("{name}.chunks"))?,
            })
        };
        Ok(Some(Efficiency {
            sizes: value("sizes")?.replace(',', ", "),
            phases: vec![phase("allocated")?, phase("churned")?],
        }))
    }
}

/// The target directory of a benchmark crate, under which criterion writes `criterion/`.
fn target_dir(root: &Path, source: Source) -> PathBuf {
    match source {
        Source::Ours => root.join("target"),
        Source::Peer => root.join("benches/peer/target"),
    }
}

/// `cargo bench` for a benchmark crate, run from the workspace root. `CARGO_TARGET_DIR` tells both
/// cargo and criterion (which otherwise asks `cargo metadata`) where to write.
fn bench_command(root: &Path, source: Source) -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("bench")
        .current_dir(root)
        .env("CARGO_TARGET_DIR", target_dir(root, source));
    command
}

/// The 95 % confidence interval of each median, in ns per operation, by `(group, implementation id)`.
type Intervals = BTreeMap<(&'static str, &'static str), (f64, f64)>;

/// Reads criterion's median (ns per iteration) of every implementation of `operations`, per operation
/// when the group declared a throughput in elements (the batch, or the increments per thread); records
/// the medians' confidence intervals in `intervals`.
fn medians(
    root: &Path,
    operations: &[Operation],
    intervals: &mut Intervals,
) -> Result<Medians, String> {
    operations
        .iter()
        .map(|operation| {
            IMPLEMENTATIONS
                .iter()
                .map(|implementation| {
                    let dir = target_dir(root, implementation.source)
                        .join("criterion")
                        .join(operation.group)
                        .join(implementation.id)
                        .join("new");
                    let Ok(estimates) = fs::read_to_string(dir.join("estimates.json")) else {
                        return Ok(None);
                    };
                    let number = |key: &str| {
                        json_number_after(&estimates, &["\"median\"", key])
                            .ok_or_else(|| format!("no median {key} in {}", dir.display()))
                    };
                    let median = number("\"point_estimate\"")?;
                    let (lower, upper) = (number("\"lower_bound\"")?, number("\"upper_bound\"")?);
                    let benchmark = fs::read_to_string(dir.join("benchmark.json"))
                        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
                    let batch = json_number_after(&benchmark, &["\"Elements\""]).unwrap_or(1.0);
                    intervals.insert(
                        (operation.group, implementation.id),
                        (lower / batch, upper / batch),
                    );
                    Ok(Some(median / batch))
                })
                .collect()
        })
        .collect()
}

/// The number after the successive `keys` in `json` (enough for criterion's flat output files).
fn json_number_after(json: &str, keys: &[&str]) -> Option<f64> {
    let mut rest = json;
    for key in keys {
        rest = &rest[rest.find(key)? + key.len()..];
    }
    let rest = rest.trim_start_matches([':', ' ', '{', '"']);
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A line describing the machine and the toolchain.
fn machine() -> Result<String, String> {
    let lscpu = output(&mut Command::new("lscpu")).unwrap_or_default();
    let field = |name: &str| {
        lscpu
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map_or("unknown", str::trim)
            .to_string()
    };
    let kernel = output(Command::new("uname").arg("-r"))?;
    let rustc = output(Command::new("rustc").arg("-V"))?;
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d"]))?;
    // Other work on the machine shows in the numbers: the load average at the end of the run.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    Ok(format!(
        "{}, {} CPUs, Linux {}, {}, {}, load average {}",
        field("Model name:"),
        field("CPU(s):"),
        kernel.trim(),
        rustc.trim(),
        date.trim(),
        load.split(' ').take(3).collect::<Vec<_>>().join(" ")
    ))
}

/// A duration in ns with a precision that suits it.
fn format_ns(ns: f64) -> String {
    if ns < 10.0 {
        format!("{ns:.2}")
    } else if ns < 100.0 {
        format!("{ns:.1}")
    } else {
        format!("{ns:.0}")
    }
}

/// `benches/results.md`.
fn render_report(machine: &str, results: &Results) -> String {
    let mut report =
        String::from("# Host benchmarks: per-CPU accesses, counting and allocation\n\n");
    let _ = writeln!(
        report,
        "Generated by `cargo xtask bench` (do not edit): {machine}. Medians of criterion's \
         estimates, with this thread acting as CPU 0 of 4. The machine is shared and its load \
         varies: a sub-ns access figure can change by 2× from one run to the next, so the goals \
         below judge access differences against the noise of the run. Plots: `results.png` \
         (accesses, `init`), `alloc.png` (counting, allocation).\n"
    );
    report.push_str(
        "## Accesses\n\nns per operation, measured in batches of 100 (the loop and the `black_box` \
         of each operand included), and the ratio to `thread_local!`. The `percpu_alloc::PerCpu<u64>` \
         handle and the `Box<[CachePadded<AtomicU64>]>` slice are measured by `benches/alloc.rs`, \
         the others by `benches/access.rs` and `benches/peer`.\n\n",
    );
    render_table(&mut report, &ACCESSES, &results.accesses, None);
    report.push_str(
        "\n`percpu` 0.4 has no `add_current`: its `add u64` is what its users write, \
         `with_current(|v| *v += x)`; `AtomicU64` adds with `fetch_add` (a locked instruction); the \
         `CachePadded` slot with a relaxed load and store, as a kernel does for its own CPU's slot \
         with preemption disabled.\n\n## `init`\n\nns per call, and the ratio to copying the \
         same bytes.\n\n",
    );
    render_table(&mut report, &INIT, &results.init, None);
    render_counting(&mut report, &results.counting);
    report.push_str(
        "\n## `PerCpu<T>` against `Box<[CachePadded<T>]>`\n\nWhat users write without per-CPU \
         allocation: a boxed slice of one cache-line-aligned slot per CPU, indexed by a CPU id held \
         in a variable. Allocation and drop of one object of `T = [u8; N]` (4 CPUs: 4 copies \
         written, like `PerCpu::new_with`), ns per pair; then the accesses of the table above \
         (`T = u64`, `AtomicU64` for the slice). Ratio to the `Box`.\n\n",
    );
    render_table(
        &mut report,
        &AGAINST_BOX,
        &results.against_box,
        Some(&AGAINST_BOX_ROWS),
    );
    render_live(&mut report, &results.live);
    render_efficiency(&mut report, results.efficiency.as_ref());
    render_goals(&mut report, results);
    report
}

/// One Markdown table: a row per implementation measured in `operations` (only those of `rows`, if
/// given), each cell the median and its ratio to the operation's reference.
fn render_table(
    report: &mut String,
    operations: &[Operation],
    medians: &Medians,
    rows: Option<&[&str]>,
) {
    report.push_str("| implementation |");
    for operation in operations {
        let _ = write!(report, " {} |", operation.label);
    }
    report.push_str("\n|---|");
    report.push_str(&"---|".repeat(operations.len()));
    report.push('\n');
    for (index, implementation) in IMPLEMENTATIONS.iter().enumerate() {
        if medians.iter().all(|row| row[index].is_none())
            || rows.is_some_and(|rows| !rows.contains(&implementation.id))
        {
            continue;
        }
        let _ = write!(report, "| {} |", implementation.label);
        for (operation, row) in operations.iter().zip(medians) {
            let reference = IMPLEMENTATIONS
                .iter()
                .position(|i| i.id == operation.reference)
                .and_then(|at| row[at]);
            let cell = match (row[index], reference) {
                (Some(ns), Some(reference)) => {
                    format!("{} ns ({:.2}×)", format_ns(ns), ns / reference)
                }
                (Some(ns), None) => format!("{} ns", format_ns(ns)),
                (None, _) => "—".into(),
            };
            let _ = write!(report, " {cell} |");
        }
        report.push('\n');
    }
}

/// The counting table: ns per increment and thread, total throughput on 2 threads, and the
/// throughput ratio to the shared atomic.
fn render_counting(report: &mut String, counting: &Medians) {
    report.push_str(
        "\n## Counting under contention\n\nEach thread, acting as a CPU of its own (and pinned to \
         a host CPU of its own), adds 1 to one counter a fixed number of times per iteration \
         (`INCREMENTS` in `benches/alloc.rs`); the threads start together (a barrier) once per \
         sample. ns per increment and thread, total increments \
         per µs on 2 threads, and throughput relative to one shared `AtomicU64`.\n\n\
         | implementation | 1 thread | 2 threads, per thread | 2 threads, total | throughput \
         vs the shared `AtomicU64`, 1 / 2 threads |\n|---|---|---|---|---|\n",
    );
    let reference = IMPLEMENTATIONS
        .iter()
        .position(|i| i.id == COUNTING[0].reference);
    for (index, implementation) in IMPLEMENTATIONS.iter().enumerate() {
        let [one, two] = [&counting[0], &counting[1]].map(|row| row[index]);
        if one.is_none() && two.is_none() {
            continue;
        }
        let ns =
            |value: Option<f64>| value.map_or("—".into(), |ns| format!("{} ns", format_ns(ns)));
        let total = two.map_or("—".into(), |ns| format!("{:.0} /µs", 2000.0 / ns));
        let ratio = |row: &Vec<Option<f64>>| match (row[index], reference.and_then(|at| row[at])) {
            (Some(ns), Some(reference)) => format!("{:.2}×", reference / ns),
            _ => "—".into(),
        };
        let _ = writeln!(
            report,
            "| {} | {} | {} | {total} | {} / {} |",
            implementation.label,
            ns(one),
            ns(two),
            ratio(&counting[0]),
            ratio(&counting[1])
        );
    }
}

/// The live-object scaling of the 8-byte allocation: ns per pair and the ratio to the first column.
fn render_live(report: &mut String, live: &Medians) {
    report.push_str(
        "\n## Allocation with many live objects\n\nThe 8-byte `PerCpu` allocation and drop with \
         other 8-byte objects live (allocated beforehand, one after the other, and kept during the \
         measurement); ns per pair, and the ratio to 1 000 live objects.\n\n| implementation |",
    );
    for operation in &LIVE {
        let _ = write!(report, " {} |", operation.label);
    }
    report.push_str("\n|---|");
    report.push_str(&"---|".repeat(LIVE.len()));
    report.push('\n');
    for (index, implementation) in IMPLEMENTATIONS.iter().enumerate() {
        if live.iter().all(|row| row[index].is_none()) {
            continue;
        }
        let _ = write!(report, "| {} |", implementation.label);
        for row in live {
            let cell = match (row[index], live[0][index]) {
                (Some(ns), Some(first)) => format!("{} ns ({:.2}×)", format_ns(ns), ns / first),
                (Some(ns), None) => format!("{} ns", format_ns(ns)),
                (None, _) => "—".into(),
            };
            let _ = write!(report, " {cell} |");
        }
        report.push('\n');
    }
}

/// The memory-efficiency table.
fn render_efficiency(report: &mut String, efficiency: Option<&Efficiency>) {
    report.push_str("\n## Memory efficiency\n\n");
    let Some(efficiency) = efficiency else {
        report.push_str("Not measured: `benches/alloc.rs` has not run.\n");
        return;
    };
    let _ = writeln!(
        report,
        "A mixed workload through the real `percpu_alloc` (4 CPUs, further chunks from the global \
         allocator), from an empty allocator: objects of {} bytes in a pseudo-random order, then a \
         pseudo-random half of them replaced by new ones. Figures per CPU from `percpu_alloc::stats()` \
         (deterministic): bytes asked for, bytes reserved (rounded up to 8-byte granules), and the \
         bytes of all chunks held, the first chunk (the 64 KiB dynamic reserve of the areas) \
         included.\n\n\
         | phase | objects | bytes asked | bytes reserved | chunks (bytes) | asked / chunk bytes |\n\
         |---|---|---|---|---|---|",
        efficiency.sizes
    );
    for phase in &efficiency.phases {
        let _ = writeln!(
            report,
            "| {} | {} | {} | {} | {} ({}) | {:.1} % |",
            phase.name,
            phase.objects,
            phase.requested,
            phase.reserved,
            phase.chunks,
            phase.chunk_bytes,
            100.0 * phase.requested as f64 / phase.chunk_bytes as f64
        );
    }
}

/// One goal's line: `goal: …, measured: …, met` or `not met (cause)`.
fn goal_line(report: &mut String, goal: &str, measured: Option<String>, met: bool, cause: &str) {
    match measured {
        None => {
            let _ = writeln!(report, "- goal: {goal}, measured: not measured.");
        }
        Some(measured) if met => {
            let _ = writeln!(report, "- goal: {goal}, measured: {measured}: **met**.");
        }
        Some(measured) => {
            let _ = writeln!(
                report,
                "- goal: {goal}, measured: {measured}: **not met** ({cause})."
            );
        }
    }
}

/// The noise of this run for one access operation: the ratio between the static `percpu` and
/// `percpu::raw`, which are the same single instruction (only the addressing mode differs), so
/// that any gap between them comes from the run.
fn noise_of_run(results: &Results, group: &str) -> Option<f64> {
    let get = |id| median_of(&results.accesses, &ACCESSES, group, id);
    let (a, b) = (get("percpu")?, get("percpu-raw")?);
    Some(a.max(b) / a.min(b))
}

/// Whether the confidence intervals of `a` and `b` in `group` still allow `a / b <= limit`.
fn within_intervals(results: &Results, group: &'static str, a: &str, b: &str, limit: f64) -> bool {
    let interval = |id: &str| {
        results
            .intervals
            .iter()
            .find(|((g, i), _)| *g == group && *i == id)
            .map(|(_, interval)| *interval)
    };
    match (interval(a), interval(b)) {
        (Some((a_low, _)), Some((_, b_high))) => a_low / b_high <= limit,
        _ => false,
    }
}

/// The ratios `a / b` of the three access operations, the goal's verdict, and the cause if missed:
/// noise where criterion's confidence intervals or the noise of the run (`noise_of_run`) cover
/// the miss, else `explanation`.
fn access_goal(
    results: &Results,
    (a, b): (&str, &str),
    limit: f64,
    explanation: &str,
) -> (Option<String>, bool, String) {
    let mut ratios = Vec::new();
    let mut causes = Vec::new();
    for operation in &ACCESSES {
        let get = |id| median_of(&results.accesses, &ACCESSES, operation.group, id);
        let (Some(x), Some(y)) = (get(a), get(b)) else {
            return (None, false, String::new());
        };
        ratios.push(format!("{} {:.2}×", operation.label, x / y));
        if x / y <= limit {
            continue;
        }
        let missed = format!(
            "{} ({} against {} ns)",
            operation.label,
            format_ns(x),
            format_ns(y)
        );
        let noise = noise_of_run(results, operation.group);
        causes.push(match noise {
            _ if within_intervals(results, operation.group, a, b, limit) => format!(
                "cause for {missed}: noise, criterion's 95 % confidence intervals still allow \
                 {limit}×"
            ),
            Some(noise) if x / y <= limit * noise => format!(
                "cause for {missed}: the noise of this run, in which the static `percpu` and \
                 `percpu::raw`, the same single instruction, differ by {noise:.2}×"
            ),
            _ => format!("cause for {missed}: {explanation}"),
        });
    }
    let met = causes.is_empty();
    (Some(ratios.join(", ")), met, causes.join("; "))
}

/// The goals of the issue, each with its measurement and verdict.
fn render_goals(report: &mut String, results: &Results) {
    report.push_str("\n## Goals\n\n");
    // Why a difference beyond the noise of one run can remain: what the loops execute.
    let same_code = "the loops are the same instructions (one `%gs:` or `%fs:` access and the \
                     `black_box` stores), so the difference comes from the run, not from the code: \
                     compare two runs";
    let one_load = "the handle is used by reference, so every access first loads its VMA from \
                    memory: one load more than the static or `thread_local!` (`codegen/table.md`)";
    let (measured, met, cause) = access_goal(results, ("percpu_alloc", "percpu"), 1.2, one_load);
    goal_line(
        report,
        "a `PerCpu<u64>` handle within 1.2× of the static variable (handle / static)",
        measured,
        met,
        &cause,
    );
    for (id, name, explanation) in [
        ("percpu_alloc", "the `PerCpu<u64>` handle", one_load),
        ("percpu", "the static", same_code),
    ] {
        let (measured, met, cause) = access_goal(results, (id, "thread_local"), 1.1, explanation);
        goal_line(
            report,
            &format!("ours within 1.1× of `thread_local!`: {name} / `thread_local!`"),
            measured,
            met,
            &cause,
        );
    }

    let counting = |group, id| median_of(&results.counting, &COUNTING, group, id);
    let two = |id| counting("count_2_threads", id);
    let one = |id| counting("count_1_thread", id);
    let ratio = two("atomic_shared").zip(two("percpu_counter"));
    let ns = |value: Option<f64>| value.map_or("—".into(), format_ns);
    // The counter shares nothing: on 2 threads with a CPU each, it takes its 1-thread time.
    let slowed = two("percpu_counter")
        .zip(one("percpu_counter"))
        .map_or(1.0, |(two, one)| two / one);
    let cause = if slowed > 1.3 {
        format!(
            "cause: the threads did not each have a CPU for the whole measurement: the counter, \
             which shares nothing, took {} ns per increment and thread on 2 threads against {} on \
             1 (other load on this 2-vCPU machine)",
            ns(two("percpu_counter")),
            ns(one("percpu_counter"))
        )
    } else {
        format!(
            "cause: contention costs little between the two vCPUs of this virtual machine: the \
             shared atomic takes {} ns per increment and thread on 2 threads against {} on 1",
            ns(two("atomic_shared")),
            ns(one("atomic_shared"))
        )
    };
    goal_line(
        report,
        "`PerCpuCounter` throughput at least 10× one contended `AtomicU64` on 2 threads",
        ratio.map(|(atomic, ours)| {
            format!(
                "{:.1}× ({} against {} ns per increment and thread)",
                atomic / ours,
                format_ns(ours),
                format_ns(atomic)
            )
        }),
        ratio.is_some_and(|(atomic, ours)| atomic / ours >= 10.0),
        &cause,
    );

    let alloc = median_of(
        &results.against_box,
        &AGAINST_BOX,
        "alloc_free_8B",
        "percpu_alloc",
    );
    let locked = median_of(&results.accesses, &ACCESSES, "add_u64", "atomic_relaxed");
    let boxed = median_of(
        &results.against_box,
        &AGAINST_BOX,
        "alloc_free_8B",
        "cache_padded_box",
    );
    goal_line(
        report,
        "8-byte `PerCpu` allocation + drop median at most 100 ns",
        alloc.map(|ns| format!("{} ns", format_ns(ns))),
        alloc.is_some_and(|ns| ns <= 100.0),
        &format!(
            "cause: the work of a pair on this machine: the allocator's spin lock taken twice (a \
             locked instruction each; an uncontended `AtomicU64::fetch_add` costs {} ns here), the \
             allocator core's search and bitmap and tree updates, and 4 copies written; the \
             `Box<[CachePadded<[u8; 8]>]>` pair (glibc's aligned allocation) takes {} ns on the \
             same machine",
            locked.map_or("—".into(), format_ns),
            boxed.map_or("—".into(), format_ns),
        ),
    );

    let first = median_of(&results.live, &LIVE, LIVE[0].group, "percpu_alloc");
    let last = median_of(&results.live, &LIVE, LIVE[2].group, "percpu_alloc");
    let growth = first.zip(last);
    goal_line(
        report,
        "with 1 000 000 live objects, the 8-byte allocation + drop at most 2× its cost with 1 000",
        growth.map(|(first, last)| {
            format!(
                "{:.2}× ({} against {} ns)",
                last / first,
                format_ns(last),
                format_ns(first)
            )
        }),
        growth.is_some_and(|(first, last)| last / first <= 2.0),
        "cause: more chunks to search (O(log chunks)) and allocator metadata that no longer \
         fits in the caches",
    );
}

/// The chart: the access operations on the left, `init` on the right (each with its own scale), a
/// legend below; encoded as a PNG.
fn draw_chart(results: &Results) -> Vec<u8> {
    let mut canvas = Canvas::new(1200, 480);
    draw_panel(
        &mut canvas,
        (70, 40, 820, 330),
        "ns per operation (median)",
        &ACCESSES,
        &results.accesses,
        Scale::Linear,
    );
    draw_panel(
        &mut canvas,
        (960, 40, 200, 330),
        "ns per call",
        &INIT,
        &results.init,
        Scale::Linear,
    );
    draw_legend(&mut canvas, 425, &[&results.accesses, &results.init]);
    canvas.png()
}

/// The allocation chart: counting under contention, allocation and drop by size against the boxed
/// slice (both on a logarithmic scale), and the 8-byte allocation with many live objects.
fn draw_alloc_chart(results: &Results) -> Vec<u8> {
    let mut canvas = Canvas::new(1200, 480);
    draw_panel(
        &mut canvas,
        (70, 40, 260, 330),
        "ns/increment/thread",
        &COUNTING,
        &results.counting,
        Scale::Log,
    );
    let sizes = results.against_box[..ALLOC_SIZES].to_vec();
    draw_panel(
        &mut canvas,
        (400, 40, 380, 330),
        "ns per alloc + drop",
        &AGAINST_BOX[..ALLOC_SIZES],
        &sizes,
        Scale::Log,
    );
    draw_panel(
        &mut canvas,
        (850, 40, 336, 330),
        "8 B alloc + drop, live",
        &LIVE,
        &results.live,
        Scale::Linear,
    );
    draw_legend(
        &mut canvas,
        425,
        &[&results.counting, &sizes, &results.live],
    );
    canvas.png()
}

/// The legend at height `y`: a colour box and a name per implementation drawn in one of `panels`,
/// wrapped.
fn draw_legend(canvas: &mut Canvas, y: usize, panels: &[&Medians]) {
    let (mut x, mut y) = (70, y);
    for (index, implementation) in IMPLEMENTATIONS.iter().enumerate() {
        let drawn = panels
            .iter()
            .any(|medians| medians.iter().any(|row| row[index].is_some()));
        if !drawn {
            continue;
        }
        let width = 16 + text_width(implementation.legend, 2) + 24;
        if x + width > canvas.width - 20 {
            (x, y) = (70, y + 24);
        }
        canvas.fill(x, y, 12, 12, SERIES + index as u8);
        canvas.text(x + 18, y - 1, implementation.legend, BLACK, 2);
        x += width;
    }
}

/// The value axis of a panel.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    /// From 0, ticks at round steps.
    Linear,
    /// Powers of ten, for values that span several orders of magnitude.
    Log,
}

/// One panel at `(x, y, width, height)`: y axis with grid and ticks, a group of bars per operation
/// with the value above each bar, the operation's name below.
fn draw_panel(
    canvas: &mut Canvas,
    (x, y, width, height): (usize, usize, usize, usize),
    title: &str,
    operations: &[Operation],
    medians: &Medians,
    axis: Scale,
) {
    canvas.text(x, y - 30, title, BLACK, 2);
    let values = || medians.iter().flatten().flatten().copied();
    let max = values().fold(0.0f64, f64::max);
    let bottom = y + height;
    // The axis: its ticks, and the height of a value.
    let (ticks, scale): (Vec<f64>, Box<dyn Fn(f64) -> usize>) = match axis {
        Scale::Linear => {
            let step = nice_step(max / 5.0);
            let top = (max / step).ceil().max(1.0) * step;
            let count = (top / step).round() as usize;
            (
                (0..=count).map(|tick| tick as f64 * step).collect(),
                Box::new(move |value: f64| (value / top * height as f64).round() as usize),
            )
        }
        Scale::Log => {
            let min = values().fold(f64::INFINITY, f64::min);
            // One decade below the smallest value, so that every bar shows.
            let low = 10f64.powf(min.max(1e-3).log10().floor() - 1.0);
            let high = 10f64.powf(max.max(low * 10.0).log10().ceil());
            let decades = (high / low).log10().round() as i32;
            (
                (0..=decades).map(|d| low * 10f64.powi(d)).collect(),
                Box::new(move |value: f64| {
                    let fraction = (value.max(low) / low).log10() / (high / low).log10();
                    (fraction * height as f64).round() as usize
                }),
            )
        }
    };
    // Linear ticks have the decimals of their step, logarithmic ones those of each power of ten.
    let step = ticks.get(1).map_or(1.0, |tick| tick - ticks[0]);
    for &tick in &ticks {
        let at = bottom - scale(tick);
        canvas.fill(x, at, width, 1, GRID);
        let label = format_tick(if axis == Scale::Linear { step } else { tick }, tick);
        canvas.text(x - 6 - text_width(&label, 1), at - 3, &label, BLACK, 1);
    }
    canvas.fill(x, y, 1, height + 1, BLACK);
    canvas.fill(x, bottom, width, 1, BLACK);

    let group_width = width / operations.len();
    // Under the bars: the operations without what the title says, smaller if one does not fit.
    let labels: Vec<&str> = operations
        .iter()
        .map(|operation| {
            operation
                .label
                .trim_start_matches("alloc + drop ")
                .trim_end_matches(" live")
        })
        .collect();
    let label_size = if labels
        .iter()
        .any(|label| text_width(label, 2) + 4 > group_width)
    {
        1
    } else {
        2
    };
    for (index, (label, row)) in labels.iter().zip(medians).enumerate() {
        let bars: Vec<(usize, f64)> = row
            .iter()
            .enumerate()
            .filter_map(|(at, value)| value.map(|value| (at, value)))
            .collect();
        let bar_width = ((group_width - 20) / bars.len().max(1)).min(40);
        let start = x + index * group_width + (group_width - bar_width * bars.len()) / 2;
        for (slot, &(implementation, value)) in bars.iter().enumerate() {
            let left = start + slot * bar_width;
            let bar = scale(value);
            canvas.fill(
                left + 1,
                bottom - bar,
                bar_width - 2,
                bar,
                SERIES + implementation as u8,
            );
            let label = format_ns(value);
            let centered = (left + bar_width / 2).saturating_sub(text_width(&label, 1) / 2);
            canvas.text(centered, bottom - bar - 10, &label, BLACK, 1);
        }
        let center = x + index * group_width + group_width / 2;
        let label_x = center.saturating_sub(text_width(label, label_size) / 2);
        canvas.text(label_x, bottom + 8, label, BLACK, label_size);
    }
}

/// A tick label: `tick` with as many decimals as `precision` (a step or a power of ten) needs.
fn format_tick(precision: f64, tick: f64) -> String {
    let decimals = (-precision.log10().floor()).max(0.0) as usize;
    format!("{tick:.decimals$}")
}

/// A round tick step (1, 2 or 5 times a power of ten) close to `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.max(1e-9).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * power)
}

/// Palette index: the background.
const WHITE: u8 = 0;
/// Palette index: axes and text.
const BLACK: u8 = 1;
/// Palette index: grid lines.
const GRID: u8 = 2;
/// Palette index of the first implementation's colour.
const SERIES: u8 = 3;

/// An image of palette indexes.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    fn new(width: usize, height: usize) -> Self {
        Canvas {
            width,
            height,
            pixels: vec![WHITE; width * height],
        }
    }

    /// Fills a rectangle, clipped to the canvas.
    fn fill(&mut self, x: usize, y: usize, width: usize, height: usize, color: u8) {
        for row in y..(y + height).min(self.height) {
            let line = row * self.width;
            let (from, to) = (x.min(self.width), (x + width).min(self.width));
            self.pixels[line + from..line + to].fill(color);
        }
    }

    /// Draws `text` (upper-cased) with its top-left corner at `(x, y)`, each font pixel `scale` wide.
    fn text(&mut self, x: usize, y: usize, text: &str, color: u8, scale: usize) {
        for (index, c) in text.chars().enumerate() {
            let rows = glyph(c.to_ascii_uppercase());
            let left = x + index * 6 * scale;
            for (row, bits) in rows.iter().enumerate() {
                for column in 0..5 {
                    if bits & (0x10 >> column) != 0 {
                        let px = left + column * scale;
                        self.fill(px, y + row * scale, scale, scale, color);
                    }
                }
            }
        }
    }

    /// The PNG file: 8-bit palette, one deflate block with fixed codes.
    fn png(&self) -> Vec<u8> {
        let mut palette = vec![255, 255, 255, 0, 0, 0, 225, 225, 225];
        for implementation in &IMPLEMENTATIONS {
            palette.extend_from_slice(&implementation.color);
        }
        // Each scanline: filter type 0 (none), then the row.
        let mut raw = Vec::with_capacity((self.width + 1) * self.height);
        for row in self.pixels.chunks(self.width) {
            raw.push(0);
            raw.extend_from_slice(row);
        }
        let mut header = Vec::new();
        header.extend_from_slice(&(self.width as u32).to_be_bytes());
        header.extend_from_slice(&(self.height as u32).to_be_bytes());
        // Bit depth 8, colour type 3 (palette), deflate, filtering method 0, no interlace.
        header.extend_from_slice(&[8, 3, 0, 0, 0]);

        let mut png = vec![0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
        for (kind, data) in [
            (b"IHDR", header),
            (b"PLTE", palette),
            (b"IDAT", zlib(&raw, self.width + 1)),
            (b"IEND", Vec::new()),
        ] {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = png.len();
            png.extend_from_slice(kind);
            png.extend_from_slice(&data);
            let crc = crc32(&png[start..]);
            png.extend_from_slice(&crc.to_be_bytes());
        }
        png
    }
}

/// The width in pixels of `text` drawn at `scale`.
fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * 6).saturating_sub(1) * scale
}

/// The 5×7 bitmap of `c` (rows top to bottom, bit 4 the leftmost column); a full block for a
/// character the font lacks.
fn glyph(c: char) -> [u8; 7] {
    match c {
        ' ' => [0; 7],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        '-' => [0, 0, 0, 0x0E, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        _ => [0x1F; 7],
    }
}

/// Base lengths of the deflate length codes 257..=285 (RFC 1951, 3.2.5).
const LENGTH_BASE: [usize; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
/// Extra bits of the deflate length codes.
const LENGTH_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Base distances of the deflate distance codes 0..=29.
const DISTANCE_BASE: [usize; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
/// Extra bits of the deflate distance codes.
const DISTANCE_EXTRA: [u32; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// A deflate bit stream: values packed least significant bit first.
#[derive(Default)]
struct Bits {
    bytes: Vec<u8>,
    pending: u32,
    count: u32,
}

impl Bits {
    /// Appends the `count` low bits of `value`.
    fn put(&mut self, value: u32, count: u32) {
        self.pending |= value << self.count;
        self.count += count;
        while self.count >= 8 {
            self.bytes.push(self.pending as u8);
            self.pending >>= 8;
            self.count -= 8;
        }
    }

    /// Appends a Huffman code of `count` bits, which deflate stores most significant bit first.
    fn code(&mut self, code: u32, count: u32) {
        self.put(code.reverse_bits() >> (32 - count), count);
    }

    /// Appends a literal/length symbol in the fixed Huffman code (RFC 1951, 3.2.6).
    fn symbol(&mut self, symbol: usize) {
        let s = symbol as u32;
        match symbol {
            0..=143 => self.code(0x30 + s, 8),
            144..=255 => self.code(0x190 + s - 144, 9),
            256..=279 => self.code(s - 256, 7),
            _ => self.code(0xC0 + s - 280, 8),
        }
    }

    /// Appends a back-reference of `length` (3..=258) bytes at `distance` (1..=32768).
    fn reference(&mut self, length: usize, distance: usize) {
        let code = LENGTH_BASE
            .iter()
            .rposition(|&base| base <= length)
            .unwrap_or(0);
        self.symbol(257 + code);
        self.put((length - LENGTH_BASE[code]) as u32, LENGTH_EXTRA[code]);
        let code = DISTANCE_BASE
            .iter()
            .rposition(|&base| base <= distance)
            .unwrap_or(0);
        self.code(code as u32, 5);
        self.put(
            (distance - DISTANCE_BASE[code]) as u32,
            DISTANCE_EXTRA[code],
        );
    }

    /// The bytes, the last one padded with zero bits.
    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.bytes.push(self.pending as u8);
        }
        self.bytes
    }
}

/// `data` as a zlib stream: one fixed-code deflate block whose back-references repeat the previous
/// byte or the byte one scanline (`stride`) above, which is what a chart of flat rectangles needs.
fn zlib(data: &[u8], stride: usize) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // last block
    bits.put(1, 2); // fixed Huffman codes
    let mut at = 0;
    while at < data.len() {
        let longest = (data.len() - at).min(258);
        let (length, distance) = [1, stride]
            .into_iter()
            .filter(|&distance| distance <= at)
            .map(|distance| {
                let same = (0..longest)
                    .take_while(|&i| data[at + i] == data[at + i - distance])
                    .count();
                (same, distance)
            })
            .max()
            .unwrap_or((0, 1));
        if length >= 3 {
            bits.reference(length, distance);
            at += length;
        } else {
            bits.symbol(data[at].into());
            at += 1;
        }
    }
    bits.symbol(256); // end of block

    let mut stream = vec![0x78, 0x01]; // deflate, 32 KiB window, no dictionary
    stream.extend_from_slice(&bits.finish());
    stream.extend_from_slice(&adler32(data).to_be_bytes());
    stream
}

/// The Adler-32 checksum of zlib.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    b << 16 | a
}

/// The CRC-32 of PNG chunks (reflected polynomial 0xEDB88320).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
