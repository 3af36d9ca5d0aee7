//! `cargo xtask bench [--no-run]`: runs the host benchmarks, then writes `benches/results.md` (median
//! ns per operation, ratio to the reference of each table, the memory efficiency of the allocator, each
//! goal met or not, the machine), the same tables into the README, and the SVG bar charts
//! `benches/results.svg` (accesses, `init`), `benches/ops.svg` (read-modify-write operations, the
//! batched counter's read, statistics structs) and `benches/alloc.svg` (counting, allocation).
//!
//! What runs: `benches/access.rs` and `benches/alloc.rs` for this repository's crates, in `sp-naive`
//! mode everywhere and in hosted mode on x86_64 Linux (threads as CPUs); `benches/peer` for crates.io
//! `percpu` 0.4, `sp-naive` everywhere and `non-zero-vma` on x86_64 Linux. `--no-run` only rewrites the
//! reports from the results of earlier runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Deserialize;

use crate::process::{self, output};

/// Whether this host runs the hosted mode of `percpu` (threads as CPUs through `GS`).
const HOSTED: bool = cfg!(all(target_arch = "x86_64", target_os = "linux"));

/// A benchmark run, and where criterion wrote its results.
#[derive(Clone, Copy, PartialEq)]
enum Source {
    /// `benches/access.rs` and `benches/alloc.rs` of the root package, hosted mode.
    Ours,
    /// The same with the `sp-naive` feature.
    OursSpNaive,
    /// `benches/peer`, both modes (their benchmark ids differ).
    Peer,
}

impl Source {
    /// The directory criterion wrote to.
    fn criterion_dir(self, root: &Path) -> PathBuf {
        match self {
            Source::Ours => root.join("target/criterion"),
            Source::OursSpNaive => root.join("target/criterion-sp-naive"),
            Source::Peer => root.join("benches/peer/target/criterion"),
        }
    }
}

/// One implementation: a criterion benchmark id in the runs of `sources` (the first that has it).
struct Implementation {
    /// The name tables and goals use.
    key: &'static str,
    /// The criterion benchmark id.
    id: &'static str,
    sources: &'static [Source],
    /// Its name in the tables (Markdown) and, without backticks, in the charts.
    label: &'static str,
    color: RGBColor,
}

/// The baselines measured by both runs of ours: the hosted one where there is one.
const EITHER: &[Source] = &[Source::Ours, Source::OursSpNaive];

/// Every implementation, in table and chart order.
#[rustfmt::skip]
const IMPLEMENTATIONS: &[Implementation] = &[
    Implementation { key: "percpu", id: "percpu", sources: &[Source::Ours], label: "`percpu` (ours), static", color: RGBColor(31, 119, 180) },
    Implementation { key: "percpu-raw", id: "percpu-raw", sources: &[Source::Ours], label: "`percpu::raw` (ours), VMA in a register", color: RGBColor(140, 190, 230) },
    Implementation { key: "percpu_alloc", id: "percpu_alloc", sources: &[Source::Ours], label: "`percpu_alloc` handles (ours), by `&`", color: RGBColor(20, 60, 120) },
    Implementation { key: "percpu_counter", id: "percpu_counter", sources: &[Source::Ours], label: "`percpu_alloc::PerCpuCounter::inc` (ours)", color: RGBColor(23, 190, 207) },
    Implementation { key: "percpu-sp-naive", id: "percpu", sources: &[Source::OursSpNaive], label: "`percpu` (ours) `sp-naive`, static", color: RGBColor(98, 78, 200) },
    Implementation { key: "percpu_alloc-sp-naive", id: "percpu_alloc", sources: &[Source::OursSpNaive], label: "`percpu_alloc` handles (ours) `sp-naive`, by `&`", color: RGBColor(60, 40, 140) },
    Implementation { key: "percpu_counter-sp-naive", id: "percpu_counter", sources: &[Source::OursSpNaive], label: "`percpu_alloc::PerCpuCounter::inc` (ours) `sp-naive`", color: RGBColor(150, 130, 230) },
    Implementation { key: "percpu-0.4", id: "percpu-0.4", sources: &[Source::Peer], label: "`percpu` 0.4, `non-zero-vma` + `-no-pie`", color: RGBColor(255, 127, 14) },
    Implementation { key: "percpu-0.4-sp-naive", id: "percpu-0.4-sp-naive", sources: &[Source::Peer], label: "`percpu` 0.4 `sp-naive`, static", color: RGBColor(250, 190, 120) },
    Implementation { key: "thread_local", id: "thread_local", sources: EITHER, label: "`thread_local!` + `Cell`", color: RGBColor(44, 160, 44) },
    Implementation { key: "static_mut", id: "static_mut", sources: EITHER, label: "`static mut`", color: RGBColor(127, 127, 127) },
    Implementation { key: "atomic_relaxed", id: "atomic_relaxed", sources: EITHER, label: "`AtomicU64`, relaxed", color: RGBColor(214, 39, 40) },
    Implementation { key: "cache_padded_box", id: "cache_padded_box", sources: EITHER, label: "`Box<[CachePadded<T>]>`, CPU id in a variable", color: RGBColor(140, 86, 75) },
    Implementation { key: "atomic_shared", id: "atomic_shared", sources: EITHER, label: "one shared `AtomicU64`, `fetch_add`", color: RGBColor(227, 119, 194) },
    Implementation { key: "mutex", id: "mutex", sources: EITHER, label: "one `Mutex<u64>`", color: RGBColor(188, 189, 34) },
    Implementation { key: "memcpy", id: "memcpy", sources: EITHER, label: "`copy_nonoverlapping` of the same bytes", color: RGBColor(148, 103, 189) },
    Implementation { key: "batched_counter", id: "batched_counter", sources: EITHER, label: "`percpu_alloc::BatchedCounter::inc` (ours)", color: RGBColor(0, 128, 128) },
    Implementation { key: "batched_counter_read", id: "batched_counter_read", sources: EITHER, label: "`BatchedCounter::read` (ours, approximate)", color: RGBColor(0, 128, 128) },
    Implementation { key: "batched_counter_sum", id: "batched_counter_sum", sources: EITHER, label: "`BatchedCounter::sum` (ours, exact)", color: RGBColor(100, 200, 200) },
    Implementation { key: "atomic_load", id: "atomic_load", sources: EITHER, label: "`AtomicU64::load`, relaxed", color: RGBColor(214, 39, 40) },
    Implementation { key: "percpu_stats_handle", id: "percpu_stats_handle", sources: EITHER, label: "`#[derive(PerCpuStats)]` (ours), `percpu_alloc::PerCpuStats` by `&`", color: RGBColor(20, 60, 120) },
    Implementation { key: "percpu_stats_static", id: "percpu_stats_static", sources: EITHER, label: "`#[derive(PerCpuStats)]` (ours), `#[def_percpu]` static", color: RGBColor(31, 119, 180) },
    Implementation { key: "atomic_per_field", id: "atomic_per_field", sources: EITHER, label: "one shared `AtomicU64` per field, `fetch_add`", color: RGBColor(227, 119, 194) },
    Implementation { key: "xchg_0_stores", id: "xchg_0_stores", sources: &[Source::Ours], label: "locked `xchg` (what `xchg_current` uses)", color: RGBColor(31, 119, 180) },
    Implementation { key: "cmpxchg_loop_0_stores", id: "cmpxchg_loop_0_stores", sources: &[Source::Ours], label: "load + unlocked `cmpxchg` loop", color: RGBColor(140, 190, 230) },
    Implementation { key: "xchg_4_stores", id: "xchg_4_stores", sources: &[Source::Ours], label: "4 stores, then locked `xchg`", color: RGBColor(20, 60, 120) },
    Implementation { key: "cmpxchg_loop_4_stores", id: "cmpxchg_loop_4_stores", sources: &[Source::Ours], label: "4 stores, then load + unlocked `cmpxchg` loop", color: RGBColor(98, 78, 200) },
];

/// One operation: a criterion group, and its name in a table's header and under its bars.
type Operation = (&'static str, &'static str);

/// What a table's ratios refer to.
enum Reference {
    /// This implementation (a key) in the same column.
    Implementation(&'static str),
    /// The same implementation in the first column.
    FirstColumn,
}

/// One table of the report (and a chart panel).
struct Table {
    /// Its heading.
    title: &'static str,
    /// The paragraph before it.
    text: &'static str,
    operations: &'static [Operation],
    reference: Reference,
    /// Its rows if not every implementation measured in its groups.
    rows: Option<&'static [&'static str]>,
}

const ACCESSES: Table = Table {
    title: "Accesses",
    text: "ns per operation, measured in batches of 100 (the loop and the `black_box` of each operand \
        included), and the ratio to `thread_local!`. The `percpu_alloc::PerCpuCell<u64>` handle and the \
        `Box<[CachePadded<AtomicU64>]>` slice are measured by `benches/alloc.rs`, the others by \
        `benches/access.rs` and `benches/peer`. `sp-naive`: the feature that makes per-CPU data plain \
        globals (one CPU), on any host.",
    operations: &[("read_u64", "read u64"), ("write_u64", "write u64"), ("add_u64", "add u64")],
    reference: Reference::Implementation("thread_local"),
    rows: None,
};

const INIT: Table = Table {
    title: "`init`",
    text: "ns per call, and the ratio to copying the same bytes.",
    operations: &[("init_4_areas", "init 4 areas")],
    reference: Reference::Implementation("memcpy"),
    // `sp-naive` has no areas to initialize.
    rows: Some(&["percpu", "percpu-0.4", "memcpy"]),
};

const COUNTING: Table = Table {
    title: "Counting under contention",
    text: "Each thread, acting as a CPU of its own (and pinned to a host CPU of its own), adds 1 to one \
        counter a fixed number of times per iteration (`INCREMENTS` in `benches/alloc.rs`); the threads \
        start together (a barrier) once per sample. ns per increment and thread, total increments per \
        µs on 2 threads, and throughput relative to one shared `AtomicU64` (`sp-naive` has one CPU: one \
        thread only).",
    operations: &[("count_1_thread", "1 thread"), ("count_2_threads", "2 threads")],
    reference: Reference::Implementation("atomic_shared"),
    rows: None,
};

/// The allocation sizes of `AGAINST_BOX` (its first operations), for the chart.
const ALLOC_SIZES: usize = 4;

const AGAINST_BOX: Table = Table {
    title: "`PerCpu<T>` against `Box<[CachePadded<T>]>`",
    text: "What users write without per-CPU allocation: a boxed slice of one cache-line-aligned slot per \
        CPU, indexed by a CPU id held in a variable. Allocation and drop of one object of `T = [u8; N]` \
        (4 CPUs: 4 copies written, like `PerCpu::new_with`), ns per pair; then the accesses of the table \
        above (`T = u64`, `AtomicU64` for the slice). Ratio to the `Box`. Objects up to 128 bytes come \
        from the CPU's cache of free offsets; larger ones take the allocator core's lock with local \
        interrupts off, which in hosted mode is two `rt_sigprocmask` system calls per lock, 4 per \
        pair (counted with `strace`), most of the time of those columns; in a kernel it is a few \
        instructions, and `sp-naive` has no interrupts to mask.",
    operations: &[
        ("alloc_free_8B", "alloc + drop 8 B"),
        ("alloc_free_64B", "alloc + drop 64 B"),
        ("alloc_free_512B", "alloc + drop 512 B"),
        ("alloc_free_4096B", "alloc + drop 4096 B"),
        ("read_u64", "read u64"),
        ("write_u64", "write u64"),
        ("add_u64", "add u64"),
    ],
    reference: Reference::Implementation("cache_padded_box"),
    rows: Some(&["percpu_alloc", "percpu_alloc-sp-naive", "cache_padded_box"]),
};

const LIVE: Table = Table {
    title: "Allocation with many live objects",
    text: "The 8-byte `PerCpu` allocation and drop with other 8-byte objects live (allocated beforehand, \
        one after the other, and kept during the measurement); ns per pair, and the ratio to 1 000 live \
        objects.",
    operations: &[
        ("alloc_free_8B_1000_live", "1 000 live"),
        ("alloc_free_8B_100000_live", "100 000 live"),
        ("alloc_free_8B_1000000_live", "1 000 000 live"),
    ],
    reference: Reference::FirstColumn,
    rows: None,
};

const OPS: Table = Table {
    title: "Read-modify-write operations",
    text: "Each guard-less operation of the statics on a `u64` (`percpu_alloc::PerCpuCell` handles and \
        `percpu::raw` have the same), ns per operation measured in batches of 100 as above, and the ratio \
        to a `thread_local!` `Cell` doing the same thing (`replace`, `get` and `set`, a comparison then \
        `set`); the shared `AtomicU64` does it with the atomic operation of the same name (locked \
        instructions on x86_64). `codegen/table.md` has the instructions of each on the four \
        architectures.",
    operations: &[
        ("add_u64", "add"),
        ("fetch_add_u64", "fetch_add"),
        ("xchg_u64", "xchg"),
        ("cmpxchg_u64", "cmpxchg"),
        ("and_u64", "and"),
        ("or_u64", "or"),
        ("xor_u64", "xor"),
    ],
    reference: Reference::Implementation("thread_local"),
    rows: Some(&["percpu", "percpu-raw", "percpu-sp-naive", "thread_local", "atomic_relaxed"]),
};

const XCHG_SEQUENCES: Table = Table {
    title: "A swap without a guard on x86_64",
    text: "The two correct one-CPU swaps of a `%gs:` operand: `xchg` with a memory operand (always \
        locked: what `xchg_current` emits) and a load followed by an unlocked `cmpxchg` loop, alone and \
        after 4 plain stores (a locked instruction waits for pending stores); ns per swap.",
    operations: &[("xchg_sequences_u64", "swap u64")],
    reference: Reference::Implementation("xchg_0_stores"),
    rows: None,
};

const BATCHED_READ: Table = Table {
    title: "Reading a batched counter",
    text:
        "`BatchedCounter::read` (the shared total: one load) and `sum` (the total and every CPU's \
        delta, 4 CPUs) against a relaxed `AtomicU64` load; ns per read, batches of 100.",
    operations: &[("batched_read", "read")],
    reference: Reference::Implementation("atomic_load"),
    rows: None,
};

const STATS: Table = Table {
    title: "Statistics structs",
    text: "One packet counted in a three-field statistics struct (`packets` + 1, `bytes` + 1500, \
        `errors` + 0) by each thread acting as a CPU of its own, as in the counting table: ns per packet \
        and thread, and the ratio to one shared `AtomicU64` per field.",
    operations: &[("stats_1_thread", "1 thread"), ("stats_2_threads", "2 threads")],
    reference: Reference::Implementation("atomic_per_field"),
    rows: None,
};

const ALLOC_THREADS: Table = Table {
    title: "Allocation on several CPUs at once",
    text: "The 8-byte `PerCpu` allocation and drop (4 copies written) repeated by each thread acting as a \
        CPU of its own, the threads started together: ns per pair and thread, and the ratio to one \
        thread (at most 1.0× when the two threads scale perfectly).",
    operations: &[("alloc_free_8B_1_thread", "1 thread"), ("alloc_free_8B_2_threads", "2 threads")],
    reference: Reference::FirstColumn,
    rows: None,
};

/// Every table, in report order.
const TABLES: [&Table; 10] = [
    &ACCESSES,
    &OPS,
    &XCHG_SEQUENCES,
    &BATCHED_READ,
    &INIT,
    &COUNTING,
    &STATS,
    &AGAINST_BOX,
    &ALLOC_THREADS,
    &LIVE,
];

/// A median in ns per operation, with its 95 % confidence interval.
#[derive(Clone, Copy)]
struct Measure {
    median: f64,
    low: f64,
    high: f64,
}

/// Every measure found, by criterion group and implementation key.
#[derive(Default)]
struct Results(BTreeMap<(&'static str, &'static str), Measure>);

impl Results {
    /// The median of implementation `key` in `group`.
    fn get(&self, group: &str, key: &str) -> Option<f64> {
        self.measure(group, key).map(|m| m.median)
    }

    fn measure(&self, group: &str, key: &str) -> Option<Measure> {
        self.0
            .iter()
            .find(|((g, k), _)| *g == group && *k == key)
            .map(|(_, measure)| *measure)
    }

    /// The implementations of `table` with a measure in one of its groups, in order.
    fn rows(&self, table: &Table) -> Vec<&'static Implementation> {
        IMPLEMENTATIONS
            .iter()
            .filter(|i| table.rows.is_none_or(|rows| rows.contains(&i.key)))
            .filter(|i| {
                table
                    .operations
                    .iter()
                    .any(|(g, _)| self.get(g, i.key).is_some())
            })
            .collect()
    }
}

/// criterion's `estimates.json`: the median and its confidence interval, in ns per iteration.
#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

/// criterion's `benchmark.json`: the throughput, `{"Elements": n}` for `n` operations per iteration.
#[derive(Deserialize)]
struct Benchmark {
    throughput: Option<BTreeMap<String, f64>>,
}

/// Reads a JSON file of criterion's.
fn read_json<T: for<'a> Deserialize<'a>>(path: &Path) -> Result<T, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the measure of every implementation in every group of the tables, per operation when the
/// group declared a throughput in elements (the batch, or the increments per thread).
fn read_results(root: &Path) -> Result<Results, String> {
    let mut results = Results::default();
    let groups = TABLES
        .into_iter()
        .flat_map(|table| table.operations.iter().map(|(group, _)| *group));
    for group in groups {
        for implementation in IMPLEMENTATIONS {
            let found = implementation.sources.iter().find_map(|source| {
                let dir = source
                    .criterion_dir(root)
                    .join(group)
                    .join(implementation.id)
                    .join("new");
                dir.join("estimates.json").exists().then_some(dir)
            });
            let Some(dir) = found else { continue };
            let estimates: Estimates = read_json(&dir.join("estimates.json"))?;
            let benchmark: Benchmark = read_json(&dir.join("benchmark.json"))?;
            let batch = benchmark
                .throughput
                .and_then(|t| t.get("Elements").copied())
                .unwrap_or(1.0);
            let median = &estimates.median;
            let measure = Measure {
                median: median.point_estimate / batch,
                low: median.confidence_interval.lower_bound / batch,
                high: median.confidence_interval.upper_bound / batch,
            };
            results.0.insert((group, implementation.key), measure);
        }
    }
    Ok(results)
}

/// Entry point: runs the benchmarks (with these options for criterion) unless `None`, then writes
/// the reports.
pub fn run(root: &Path, criterion: Option<&[String]>) -> Result<(), String> {
    if let Some(options) = criterion {
        let peer = root.join("benches/peer/Cargo.toml");
        let bench = |source: Source, args: &str| {
            let mut cargo = Command::new("cargo");
            cargo
                .arg("bench")
                .args(args.split_whitespace())
                .current_dir(root);
            if source == Source::Peer {
                // Tells both cargo and criterion (which otherwise asks `cargo metadata`) where to write.
                cargo.arg("--manifest-path").arg(&peer);
                cargo.env("CARGO_TARGET_DIR", peer.with_file_name("target"));
            } else {
                cargo.env("CRITERION_HOME", source.criterion_dir(root));
            }
            process::run(cargo.arg("--").args(options))
        };
        if HOSTED {
            bench(Source::Ours, "--bench access --bench alloc")?;
            bench(Source::Peer, "")?;
        }
        bench(
            Source::OursSpNaive,
            "--features sp-naive --bench access --bench alloc",
        )?;
        bench(Source::Peer, "--no-default-features --features sp-naive")?;
    }
    let results = read_results(root)?;
    let efficiency = Efficiency::read(root)?;
    let machine = machine()?;

    let results_md = root.join("benches/results.md");
    let report = format!(
        "# Host benchmarks: per-CPU accesses, counting and allocation\n\n{}",
        render_report(&machine, &results, efficiency.as_ref(), "##", "")
    );
    write(&results_md, &report)?;
    let section = render_report(&machine, &results, efficiency.as_ref(), "####", "benches/");
    crate::readme::update(root, "bench-table", &section)?;
    let (svg, ops_svg, alloc_svg) = (
        root.join("benches/results.svg"),
        root.join("benches/ops.svg"),
        root.join("benches/alloc.svg"),
    );
    draw_chart(&svg, &results, &[(&ACCESSES, false), (&INIT, false)])?;
    draw_chart(
        &ops_svg,
        &results,
        &[(&OPS, false), (&BATCHED_READ, false), (&STATS, true)],
    )?;
    let sizes = Table {
        operations: &AGAINST_BOX.operations[..ALLOC_SIZES],
        ..AGAINST_BOX
    };
    draw_chart(
        &alloc_svg,
        &results,
        &[
            (&COUNTING, true),
            (&sizes, true),
            (&ALLOC_THREADS, false),
            (&LIVE, false),
        ],
    )?;
    print!("{report}");
    println!(
        "wrote {}, the README, {}, {} and {}",
        results_md.display(),
        svg.display(),
        ops_svg.display(),
        alloc_svg.display()
    );
    Ok(())
}

/// Writes `text` to `path`.
fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The memory efficiency of the mixed workload, per CPU, as `benches/alloc.rs` measured it: its
/// `key=value` lines, from the hosted run if there is one.
struct Efficiency {
    values: BTreeMap<String, String>,
    /// Which run measured it.
    mode: &'static str,
}

impl Efficiency {
    /// Reads `memory_efficiency/mixed.txt` of criterion's directory; `None` if never written.
    fn read(root: &Path) -> Result<Option<Self>, String> {
        for (source, mode) in [
            (Source::Ours, "hosted"),
            (Source::OursSpNaive, "`sp-naive`"),
        ] {
            let path = source
                .criterion_dir(root)
                .join("memory_efficiency/mixed.txt");
            if let Ok(text) = fs::read_to_string(&path) {
                let values = text
                    .lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(key, value)| (key.to_string(), value.to_string()))
                    .collect();
                return Ok(Some(Efficiency { values, mode }));
            }
        }
        Ok(None)
    }

    /// The value of `key`.
    fn value(&self, key: &str) -> Result<&str, String> {
        self.values
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("no `{key}` in mixed.txt"))
    }
}

/// A line describing the machine and the toolchain.
fn machine() -> Result<String, String> {
    let lscpu = output(&mut Command::new("lscpu")).unwrap_or_default();
    let field = |name: &str| {
        let value = lscpu.lines().find_map(|line| line.strip_prefix(name));
        value.map_or("unknown", str::trim).to_string()
    };
    let kernel = output(Command::new("uname").args(["-s", "-r", "-m"]))?;
    let rustc = output(Command::new("rustc").arg("-V"))?;
    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d"]))?;
    // Other work on the machine shows in the numbers: the load average at the end of the run.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    Ok(format!(
        "{}, {} CPUs, {}, {}, {}, load average {}",
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
    match ns {
        _ if ns < 10.0 => format!("{ns:.2}"),
        _ if ns < 100.0 => format!("{ns:.1}"),
        _ => format!("{ns:.0}"),
    }
}

/// The report: a paragraph on the run, the charts, the tables (headings at `level`), the goals.
/// `charts` is the path from the report's directory to the charts'.
fn render_report(
    machine: &str,
    results: &Results,
    efficiency: Option<&Efficiency>,
    level: &str,
    charts: &str,
) -> String {
    let mut report = format!(
        "Generated by `cargo xtask bench` (do not edit): {machine}. Medians of criterion's estimates, \
         with this thread acting as CPU 0 of 4 (hosted mode, x86_64 Linux only) or as the only CPU \
         (`sp-naive`). The machine is shared and its load varies: a sub-ns access figure can change by \
         2× from one run to the next, so the goals below judge access differences against the noise of \
         the run.\n\n\
         ![accesses and init]({charts}results.svg)\n\
         ![operations, batched counter, statistics]({charts}ops.svg)\n\
         ![counting and allocation]({charts}alloc.svg)\n"
    );
    for table in TABLES {
        let _ = write!(report, "\n{level} {}\n\n{}\n\n", table.title, table.text);
        if std::ptr::eq(table, &COUNTING) {
            render_counting(&mut report, results);
        } else {
            render_table(&mut report, table, results);
        }
        if std::ptr::eq(table, &ACCESSES) {
            report.push_str(
                "\n`percpu` 0.4 has no `add_current`: its `add u64` is what its users write, \
                 `with_current(|v| *v += x)`; `AtomicU64` adds with `fetch_add` (a locked \
                 instruction); the `CachePadded` slot with a relaxed load and store, as a kernel does \
                 for its own CPU's slot with preemption disabled.\n",
            );
        }
    }
    let _ = write!(report, "\n{level} Memory efficiency\n\n");
    if let Err(e) = render_efficiency(&mut report, efficiency) {
        let _ = writeln!(report, "Not measured: {e}.");
    }
    let _ = write!(report, "\n{level} Goals\n\n");
    render_goals(&mut report, results);
    report
}

/// A Markdown table's header.
fn header(report: &mut String, columns: &[&str]) {
    let _ = writeln!(report, "| implementation | {} |", columns.join(" | "));
    let _ = writeln!(report, "|---|{}", "---|".repeat(columns.len()));
}

/// One Markdown table: a row per implementation, each cell the median and its ratio to the reference.
fn render_table(report: &mut String, table: &Table, results: &Results) {
    header(
        report,
        &table
            .operations
            .iter()
            .map(|(_, label)| *label)
            .collect::<Vec<_>>(),
    );
    for implementation in results.rows(table) {
        let _ = write!(report, "| {} |", implementation.label);
        for (group, _) in table.operations {
            let reference = match table.reference {
                Reference::Implementation(key) => results.get(group, key),
                Reference::FirstColumn => results.get(table.operations[0].0, implementation.key),
            };
            let cell = match (results.get(group, implementation.key), reference) {
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
fn render_counting(report: &mut String, results: &Results) {
    let [one, two] = [COUNTING.operations[0].0, COUNTING.operations[1].0];
    header(
        report,
        &[
            "1 thread",
            "2 threads, per thread",
            "2 threads, total",
            "throughput vs the shared `AtomicU64`, 1 / 2 threads",
        ],
    );
    let ns = |value: Option<f64>| value.map_or("—".into(), |ns| format!("{} ns", format_ns(ns)));
    for implementation in results.rows(&COUNTING) {
        let get = |group| results.get(group, implementation.key);
        let ratio = |group| match (get(group), results.get(group, "atomic_shared")) {
            (Some(ns), Some(reference)) => format!("{:.2}×", reference / ns),
            _ => "—".into(),
        };
        let total = get(two).map_or("—".into(), |ns| format!("{:.0} /µs", 2000.0 / ns));
        let _ = writeln!(
            report,
            "| {} | {} | {} | {total} | {} / {} |",
            implementation.label,
            ns(get(one)),
            ns(get(two)),
            ratio(one),
            ratio(two)
        );
    }
}

/// The memory-efficiency table.
fn render_efficiency(report: &mut String, efficiency: Option<&Efficiency>) -> Result<(), String> {
    let efficiency = efficiency.ok_or("`benches/alloc.rs` has not run")?;
    let _ = writeln!(
        report,
        "A mixed workload through the real `percpu_alloc` ({} mode, further chunks from the global \
         allocator), from an empty allocator: objects of {} bytes in a pseudo-random order, then a \
         pseudo-random half of them replaced by new ones. Figures per CPU from `percpu_alloc::stats()` \
         (deterministic): bytes asked for, bytes reserved (rounded up to 8-byte granules), and the bytes \
         of all chunks held, the first chunk (the 64 KiB dynamic reserve of the areas) included.\n\n\
         | phase | objects | bytes asked | bytes reserved | chunks (bytes) | asked / chunk bytes |\n\
         |---|---|---|---|---|---|",
        efficiency.mode,
        efficiency.value("sizes")?.replace(',', ", ")
    );
    for phase in ["allocated", "churned"] {
        let number = |key: &str| -> Result<f64, String> {
            let value = efficiency.value(&format!("{phase}.{key}"))?;
            value.parse().map_err(|e| format!("`{phase}.{key}`: {e}"))
        };
        let _ = writeln!(
            report,
            "| {phase} | {} | {} | {} | {} ({}) | {:.1} % |",
            number("objects")?,
            number("requested_bytes")?,
            number("reserved_bytes")?,
            number("chunks")?,
            number("chunk_bytes")?,
            100.0 * number("requested_bytes")? / number("chunk_bytes")?
        );
    }
    Ok(())
}

/// One goal's line: `goal: …, measured: …, met` or `not met (cause)`.
fn goal_line(report: &mut String, goal: &str, measured: Option<String>, met: bool, cause: &str) {
    let _ = match measured {
        None => writeln!(report, "- goal: {goal}, measured: not measured."),
        Some(measured) if met => writeln!(report, "- goal: {goal}, measured: {measured}: **met**."),
        Some(measured) => {
            writeln!(
                report,
                "- goal: {goal}, measured: {measured}: **not met** ({cause})."
            )
        }
    };
}

/// The ratios `a / b` of `operations` (groups of the same implementations), the goal's verdict, and
/// the cause if missed: noise where criterion's confidence intervals or the noise of the run (the ratio
/// between the static `percpu` and `percpu::raw`, the same instruction) cover the miss, else
/// `explanation` of the group.
fn ratio_goal(
    results: &Results,
    operations: &[Operation],
    (a, b): (&str, &str),
    limit: f64,
    explanation: &dyn Fn(&str) -> String,
) -> (Option<String>, bool, String) {
    let mut ratios = Vec::new();
    let mut causes = Vec::new();
    for &(group, label) in operations {
        let (Some(x), Some(y)) = (results.measure(group, a), results.measure(group, b)) else {
            return (None, false, String::new());
        };
        let ratio = x.median / y.median;
        ratios.push(format!("{label} {ratio:.2}×"));
        if ratio <= limit {
            continue;
        }
        let missed = format!(
            "{label} ({} against {} ns)",
            format_ns(x.median),
            format_ns(y.median)
        );
        let noise = results
            .get(group, "percpu")
            .zip(results.get(group, "percpu-raw"));
        let noise = noise.map(|(p, r)| p.max(r) / p.min(r));
        causes.push(match noise {
            _ if x.low / y.high <= limit => format!(
                "cause for {missed}: noise, criterion's 95 % confidence intervals still allow {limit}×"
            ),
            Some(noise) if ratio <= limit * noise => format!(
                "cause for {missed}: the noise of this run, in which the static `percpu` and \
                 `percpu::raw`, the same instruction, differ by {noise:.2}×"
            ),
            _ => format!("cause for {missed}: {}", explanation(group)),
        });
    }
    (
        Some(ratios.join(", ")),
        causes.is_empty(),
        causes.join("; "),
    )
}

/// The median of `key` in `group` formatted, or a dash.
fn ns_of(results: &Results, group: &str, key: &str) -> String {
    results.get(group, key).map_or("—".into(), format_ns)
}

/// Why a guard-less read-modify-write operation of group `group` can cost more than the `Cell`.
fn rmw_explanation(results: &Results, group: &str) -> String {
    let raw = ns_of(results, group, "percpu-raw");
    let instruction = match group {
        "xchg_u64" => {
            return format!(
                "`xchg` with a memory operand is always locked (the shared `AtomicU64::swap` takes {} \
                 ns here), and the unlocked alternative, a load and a `cmpxchg` loop, is no faster (see \
                 the swap table); the `Cell` stores without reading back through memory",
                ns_of(results, group, "atomic_relaxed")
            );
        }
        "fetch_add_u64" => "`xadd`",
        "cmpxchg_u64" => "`cmpxchg`",
        _ => "read-modify-write",
    };
    format!(
        "the one unlocked {instruction} on the `%gs:` operand, which an interrupt cannot split, costs \
         more on this CPU than the `Cell`'s separate load, operation and store, which an interrupt \
         could split (`percpu::raw`, the same instruction with the address in a register, takes {raw} \
         ns)"
    )
}

/// The goals of the issues, each with its measurement and verdict.
fn render_goals(report: &mut String, results: &Results) {
    // Why a difference beyond the noise of one run can remain: what the loops execute.
    let same_code = "the loops are the same instructions (one `%gs:` or `%fs:` access and the \
                     `black_box` stores), so the difference comes from the run, not from the code: \
                     compare two runs";
    let one_load = "the handle is used by reference, so every access first loads its VMA from \
                    memory: one load more than the static or `thread_local!` (`codegen/table.md`)";
    let goals = [
        (
            "percpu_alloc",
            "percpu",
            1.2,
            "a `PerCpuCell<u64>` handle within 1.2× of the static variable (handle / static)",
            one_load,
        ),
        (
            "percpu_alloc",
            "thread_local",
            1.1,
            "ours within 1.1× of `thread_local!`: the `PerCpuCell<u64>` handle / `thread_local!`",
            one_load,
        ),
        (
            "percpu",
            "thread_local",
            1.1,
            "ours within 1.1× of `thread_local!`: the static / `thread_local!`",
            same_code,
        ),
    ];
    for (a, b, limit, goal, explanation) in goals {
        let explanation = |_: &str| explanation.to_string();
        let (measured, met, cause) =
            ratio_goal(results, ACCESSES.operations, (a, b), limit, &explanation);
        goal_line(report, goal, measured, met, &cause);
    }
    let (measured, met, cause) = ratio_goal(
        results,
        OPS.operations,
        ("percpu", "thread_local"),
        1.2,
        &|group| rmw_explanation(results, group),
    );
    goal_line(
        report,
        "per-CPU read-modify-write operations within 1.2× of a `thread_local!` `Cell` doing the same \
         (static / `thread_local!`)",
        measured,
        met,
        &cause,
    );
    let read = results
        .get("batched_read", "batched_counter_read")
        .zip(results.get("batched_read", "atomic_load"));
    goal_line(
        report,
        "`BatchedCounter::read` at most 2× a relaxed `AtomicU64` load, whatever the CPU count",
        read.map(|(r, a)| format!("{:.2}× ({} against {} ns)", r / a, format_ns(r), format_ns(a))),
        read.is_some_and(|(r, a)| r / a <= 2.0),
        "cause: the handle is used by reference: its shared total's address is loaded first, one load \
         more than the atomic's (`codegen/table.md`: 2 instructions, whatever the CPU count)",
    );

    let ns = |value: Option<f64>| value.map_or("—".into(), format_ns);
    let one = |key| results.get("count_1_thread", key);
    let two = |key| results.get("count_2_threads", key);
    let ratio = two("atomic_shared").zip(two("percpu_counter"));
    // The counter shares nothing: on 2 threads with a CPU each, it takes its 1-thread time.
    let slowed = two("percpu_counter")
        .zip(one("percpu_counter"))
        .map_or(1.0, |(two, one)| two / one);
    let cause = if slowed > 1.3 {
        format!(
            "cause: the threads did not each have a CPU for the whole measurement: the counter, which \
             shares nothing, took {} ns per increment and thread on 2 threads against {} on 1 (other \
             load on this 2-vCPU machine)",
            ns(two("percpu_counter")),
            ns(one("percpu_counter"))
        )
    } else {
        format!(
            "cause: contention costs little between the two vCPUs of this virtual machine: the shared \
             atomic takes {} ns per increment and thread on 2 threads against {} on 1",
            ns(two("atomic_shared")),
            ns(one("atomic_shared"))
        )
    };
    goal_line(
        report,
        "`PerCpuCounter` throughput at least 10× one contended `AtomicU64` on 2 threads",
        ratio.map(|(atomic, ours)| {
            let (a, o) = (format_ns(atomic), format_ns(ours));
            format!(
                "{:.1}× ({o} against {a} ns per increment and thread)",
                atomic / ours
            )
        }),
        ratio.is_some_and(|(atomic, ours)| atomic / ours >= 10.0),
        &cause,
    );

    let alloc = results.get("alloc_free_8B", "percpu_alloc");
    goal_line(
        report,
        "8-byte `PerCpu` allocation + drop median at most 25 ns on one thread-CPU",
        alloc.map(|ns| format!("{} ns", format_ns(ns))),
        alloc.is_some_and(|ns| ns <= 25.0),
        &format!(
            "cause: the work of a pair on this machine: 4 copies written and dropped, and the CPU's \
             cache of free offsets taken and given back with interrupts off; the \
             `Box<[CachePadded<[u8; 8]>]>` pair (glibc's aligned allocation) takes {} ns on the same \
             machine",
            ns(results.get("alloc_free_8B", "cache_padded_box")),
        ),
    );
    let threads = results
        .get("alloc_free_8B_1_thread", "percpu_alloc")
        .zip(results.get("alloc_free_8B_2_threads", "percpu_alloc"));
    goal_line(
        report,
        "8-byte allocation + drop on 2 thread-CPUs at once: total throughput at least 1.8× one \
         thread's",
        threads.map(|(one, two)| {
            let (o, t) = (format_ns(one), format_ns(two));
            format!("{:.2}× ({t} against {o} ns per pair and thread)", 2.0 * one / two)
        }),
        threads.is_some_and(|(one, two)| 2.0 * one / two >= 1.8),
        &format!(
            "cause: the pairs share nothing on the common path (each CPU's cache of free offsets), so \
             the threads did not each have a CPU for the whole measurement (other load on this 2-vCPU \
             machine: the counter, which shares nothing either, took {} ns per increment and thread on \
             2 threads against {} on 1)",
            ns(two("percpu_counter")),
            ns(one("percpu_counter"))
        ),
    );

    let [first, .., last] = LIVE.operations else {
        unreachable!("three columns")
    };
    let growth = results
        .get(first.0, "percpu_alloc")
        .zip(results.get(last.0, "percpu_alloc"));
    goal_line(
        report,
        "with 1 000 000 live objects, the 8-byte allocation + drop at most 1.5× its cost with 1 000",
        growth.map(|(f, l)| format!("{:.2}× ({} against {} ns)", l / f, format_ns(l), format_ns(f))),
        growth.is_some_and(|(first, last)| last / first <= 1.5),
        "cause: allocator metadata and the live objects' copies no longer fit in the CPU's caches",
    );
}

/// A chart of `panels` side by side (a table each, on a logarithmic scale if its flag is set), the
/// legend below, written as SVG to `path`.
fn draw_chart(path: &Path, results: &Results, panels: &[(&Table, bool)]) -> Result<(), String> {
    let error = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let (plots, legend) = root.split_vertically(440);
    // Each panel as wide as its bars, and its axis.
    let weights: Vec<usize> = panels
        .iter()
        .map(|(t, _)| 8 + t.operations.len() * results.rows(t).len())
        .collect();
    let total: usize = weights.iter().sum();
    let mut rest = plots;
    let mut drawn = Vec::new();
    for ((table, log), weight) in panels.iter().zip(&weights) {
        let (area, right) = rest.split_horizontally(1200 * *weight as u32 / total as u32);
        rest = right;
        drawn.extend(draw_panel(&area, table, *log, results).map_err(|e| error(&e))?);
    }
    // The legend: a colour box and a name per implementation drawn.
    let (mut x, mut y) = (20, 10);
    for implementation in IMPLEMENTATIONS.iter().filter(|i| drawn.contains(&i.key)) {
        let label = implementation.label.replace('`', "");
        let width = 30 + 7 * label.len() as i32;
        if x + width > 1180 {
            (x, y) = (20, y + 22);
        }
        let color = implementation.color.filled();
        legend
            .draw(&Rectangle::new([(x, y), (x + 14, y + 14)], color))
            .map_err(|e| error(&e))?;
        legend
            .draw(&Text::new(label, (x + 20, y), ("sans-serif", 14)))
            .map_err(|e| error(&e))?;
        x += width;
    }
    root.present().map_err(|e| error(&e))
}

/// One panel: a group of bars per operation of `table`, the value above each bar; returns the keys
/// of the implementations drawn.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    table: &Table,
    log: bool,
    results: &Results,
) -> Result<Vec<&'static str>, DrawingAreaErrorKind<DB::ErrorType>> {
    let rows = results.rows(table);
    let values = || {
        let measured = rows
            .iter()
            .flat_map(|i| table.operations.iter().map(|(g, _)| results.get(g, i.key)));
        measured.flatten()
    };
    let max = values().fold(1e-3, f64::max);
    let min = values().fold(max, f64::min);
    let mut chart = ChartBuilder::on(area);
    chart.caption(table.title.replace('`', ""), ("sans-serif", 16));
    chart.margin(10).x_label_area_size(30).y_label_area_size(50);
    // The operations at 0..n, each labelled at its centre (ticks every 0.5, see `draw_bars`).
    let count = table.operations.len();
    let x = 0.0..count as f64;
    if log {
        // From the power of ten below the smallest value, so that every bar shows.
        let low = 10f64.powf(min.log10().floor());
        let high = 10f64.powf(max.log10().ceil()).max(low * 10.0);
        draw_bars(
            chart.build_cartesian_2d(x, (low..high).log_scale())?,
            table,
            &rows,
            results,
            low,
        )?;
    } else {
        draw_bars(
            chart.build_cartesian_2d(x, 0.0..max * 1.15)?,
            table,
            &rows,
            results,
            0.0,
        )?;
    }
    Ok(rows.iter().map(|i| i.key).collect())
}

/// The axes and the bars of a panel whose bars start at `floor`.
fn draw_bars<DB: DrawingBackend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    mut chart: ChartContext<DB, Cartesian2d<RangedCoordf64, Y>>,
    table: &Table,
    rows: &[&Implementation],
    results: &Results,
    floor: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let label = |x: &f64| match table.operations.get(*x as usize) {
        Some((_, label)) if x.fract() == 0.5 => label.to_string(),
        _ => String::new(),
    };
    let ticks = 2 * table.operations.len() + 1;
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(ticks)
        .x_label_formatter(&label)
        .y_desc("ns")
        .draw()?;
    // Each operation's bars fill 80 % of its unit of width.
    let width = 0.8 / rows.len().max(1) as f64;
    for (op, (group, _)) in table.operations.iter().enumerate() {
        for (slot, implementation) in rows.iter().enumerate() {
            let Some(ns) = results.get(group, implementation.key) else {
                continue;
            };
            let left = op as f64 + 0.1 + slot as f64 * width;
            let bar = Rectangle::new(
                [(left, floor), (left + width, ns)],
                implementation.color.filled(),
            );
            let value = EmptyElement::at((left, ns))
                + Text::new(format_ns(ns), (0, -12), ("sans-serif", 10));
            chart.plotting_area().draw(&bar)?;
            chart.plotting_area().draw(&value)?;
        }
    }
    Ok(())
}
