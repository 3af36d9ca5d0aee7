//! `cargo xtask bench [--no-run]`: runs the host benchmarks (unless `--no-run`), then writes
//! `benches/results.md` (median ns per operation and ratio to the reference of each table, the memory
//! efficiency of the allocator, each goal met or not, the machine), the same into the README, and the
//! SVG bar charts of `CHARTS`. What runs: `benches/access.rs` and `benches/alloc.rs` for this
//! repository's crates and `benches/peer` for crates.io `percpu` 0.4, in `sp-naive` mode everywhere
//! and in hosted mode (ours: threads as CPUs; `percpu` 0.4: `non-zero-vma`) on x86_64 Linux.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

use crate::process::{self, output};

/// Whether this host runs the hosted mode of `percpu` (threads as CPUs through `GS`).
const HOSTED: bool = cfg!(all(target_arch = "x86_64", target_os = "linux"));

/// Where criterion writes (`CRITERION_HOME`): `benches/access.rs` and `benches/alloc.rs` of the root
/// package in hosted mode, the same with the `sp-naive` feature, `benches/peer` in both modes (their
/// benchmark ids differ).
const OURS: &str = "target/criterion";
const SP_NAIVE: &str = "target/criterion-sp-naive";
const PEER: &str = "benches/peer/target/criterion";
/// The baselines measured by both runs of ours: the hosted one where there is one.
const EITHER: &[&str] = &[OURS, SP_NAIVE];

/// The benchmark runs: whether on this host, where criterion writes, cargo's arguments.
#[rustfmt::skip]
const RUNS: [(bool, &str, &str); 4] = [
    (HOSTED, OURS, "--bench access --bench alloc"),
    (HOSTED, PEER, "--manifest-path benches/peer/Cargo.toml"),
    (true, SP_NAIVE, "--features sp-naive --bench access --bench alloc"),
    (true, PEER, "--manifest-path benches/peer/Cargo.toml --no-default-features --features sp-naive"),
];

/// One implementation: its name in tables and goals, its criterion benchmark id in the first of
/// `dirs` that has it, its name in the tables (Markdown) and, without backticks, in the charts.
struct Implementation {
    key: &'static str,
    id: &'static str,
    dirs: &'static [&'static str],
    label: &'static str,
    color: RGBColor,
}

/// Every implementation, in table and chart order.
#[rustfmt::skip]
const IMPLEMENTATIONS: &[Implementation] = &[
    Implementation { key: "percpu", id: "percpu", dirs: &[OURS], label: "`percpu` (ours), static", color: RGBColor(31, 119, 180) },
    Implementation { key: "percpu-raw", id: "percpu-raw", dirs: &[OURS], label: "`percpu::raw` (ours), VMA in a register", color: RGBColor(140, 190, 230) },
    Implementation { key: "percpu_alloc", id: "percpu_alloc", dirs: &[OURS], label: "`percpu_alloc` handles (ours), by `&`", color: RGBColor(20, 60, 120) },
    Implementation { key: "percpu_counter", id: "percpu_counter", dirs: &[OURS], label: "`percpu_alloc::PerCpuCounter::inc` (ours)", color: RGBColor(23, 190, 207) },
    Implementation { key: "percpu-sp-naive", id: "percpu", dirs: &[SP_NAIVE], label: "`percpu` (ours) `sp-naive`, static", color: RGBColor(98, 78, 200) },
    Implementation { key: "percpu_alloc-sp-naive", id: "percpu_alloc", dirs: &[SP_NAIVE], label: "`percpu_alloc` handles (ours) `sp-naive`, by `&`", color: RGBColor(60, 40, 140) },
    Implementation { key: "percpu_counter-sp-naive", id: "percpu_counter", dirs: &[SP_NAIVE], label: "`percpu_alloc::PerCpuCounter::inc` (ours) `sp-naive`", color: RGBColor(150, 130, 230) },
    Implementation { key: "percpu-0.4", id: "percpu-0.4", dirs: &[PEER], label: "`percpu` 0.4, `non-zero-vma` + `-no-pie`", color: RGBColor(255, 127, 14) },
    Implementation { key: "percpu-0.4-sp-naive", id: "percpu-0.4-sp-naive", dirs: &[PEER], label: "`percpu` 0.4 `sp-naive`, static", color: RGBColor(250, 190, 120) },
    Implementation { key: "thread_local", id: "thread_local", dirs: EITHER, label: "`thread_local!` + `Cell`", color: RGBColor(44, 160, 44) },
    Implementation { key: "static_mut", id: "static_mut", dirs: EITHER, label: "`static mut`", color: RGBColor(127, 127, 127) },
    Implementation { key: "atomic_relaxed", id: "atomic_relaxed", dirs: EITHER, label: "`AtomicU64`, relaxed", color: RGBColor(214, 39, 40) },
    Implementation { key: "cache_padded_box", id: "cache_padded_box", dirs: EITHER, label: "`Box<[CachePadded<T>]>`, CPU id in a variable", color: RGBColor(140, 86, 75) },
    Implementation { key: "atomic_shared", id: "atomic_shared", dirs: EITHER, label: "one shared `AtomicU64`, `fetch_add`", color: RGBColor(227, 119, 194) },
    Implementation { key: "mutex", id: "mutex", dirs: EITHER, label: "one `Mutex<u64>`", color: RGBColor(188, 189, 34) },
    Implementation { key: "memcpy", id: "memcpy", dirs: EITHER, label: "`copy_nonoverlapping` of the same bytes", color: RGBColor(148, 103, 189) },
    Implementation { key: "batched_counter", id: "batched_counter", dirs: EITHER, label: "`percpu_alloc::BatchedCounter::inc` (ours)", color: RGBColor(0, 128, 128) },
    Implementation { key: "batched_counter_read", id: "batched_counter_read", dirs: EITHER, label: "`BatchedCounter::read` (ours, approximate)", color: RGBColor(0, 128, 128) },
    Implementation { key: "batched_counter_sum", id: "batched_counter_sum", dirs: EITHER, label: "`BatchedCounter::sum` (ours, exact)", color: RGBColor(100, 200, 200) },
    Implementation { key: "atomic_load", id: "atomic_load", dirs: EITHER, label: "`AtomicU64::load`, relaxed", color: RGBColor(214, 39, 40) },
    Implementation { key: "percpu_stats_handle", id: "percpu_stats_handle", dirs: EITHER, label: "`#[derive(PerCpuStats)]` (ours), `percpu_alloc::PerCpuStats` by `&`", color: RGBColor(20, 60, 120) },
    Implementation { key: "percpu_stats_static", id: "percpu_stats_static", dirs: EITHER, label: "`#[derive(PerCpuStats)]` (ours), `#[def_percpu]` static", color: RGBColor(31, 119, 180) },
    Implementation { key: "atomic_per_field", id: "atomic_per_field", dirs: EITHER, label: "one shared `AtomicU64` per field, `fetch_add`", color: RGBColor(227, 119, 194) },
    Implementation { key: "xchg_0_stores", id: "xchg_0_stores", dirs: &[OURS], label: "locked `xchg` (what `xchg_current` uses)", color: RGBColor(31, 119, 180) },
    Implementation { key: "cmpxchg_loop_0_stores", id: "cmpxchg_loop_0_stores", dirs: &[OURS], label: "load + unlocked `cmpxchg` loop", color: RGBColor(140, 190, 230) },
    Implementation { key: "xchg_4_stores", id: "xchg_4_stores", dirs: &[OURS], label: "4 stores, then locked `xchg`", color: RGBColor(20, 60, 120) },
    Implementation { key: "cmpxchg_loop_4_stores", id: "cmpxchg_loop_4_stores", dirs: &[OURS], label: "4 stores, then load + unlocked `cmpxchg` loop", color: RGBColor(98, 78, 200) },
];

/// One operation: a criterion group, and its name in a table's header and under its bars.
type Operation = (&'static str, &'static str);

/// What the ratios of a table or a goal divide by.
#[derive(Clone, Copy)]
enum Reference {
    /// This implementation (a key) in the same group.
    Implementation(&'static str),
    /// The same implementation in this group.
    Group(&'static str),
    /// Nothing (goals only): the limit is in ns.
    Absolute,
}

/// One table of the report (and a chart panel): its heading, the paragraph before it, its operations,
/// and its rows if not every implementation measured in its groups.
struct Table {
    title: &'static str,
    text: &'static str,
    operations: &'static [Operation],
    reference: Reference,
    rows: &'static [&'static str],
}

const ACCESSES: Table = Table {
    title: "Accesses",
    text: "ns per operation, measured in batches of 100 (the loop and the `black_box` of each operand \
        included), and the ratio to `thread_local!`. The `percpu_alloc::PerCpuCell<u64>` handle and the \
        `Box<[CachePadded<AtomicU64>]>` slice are measured by `benches/alloc.rs`, the others by \
        `benches/access.rs` and `benches/peer`. `sp-naive`: the feature that makes per-CPU data plain \
        globals (one CPU), on any host. `percpu` 0.4 has no `add_current`: its `add u64` is what its \
        users write, `with_current(|v| *v += x)`; `AtomicU64` adds with `fetch_add` (a locked \
        instruction); the `CachePadded` slot with a relaxed load and store, as a kernel does for its \
        own CPU's slot with preemption disabled.",
    operations: &[("read_u64", "read u64"), ("write_u64", "write u64"), ("add_u64", "add u64")],
    reference: Reference::Implementation("thread_local"),
    rows: &[],
};

const INIT: Table = Table {
    title: "`init`",
    text: "ns per call, and the ratio to copying the same bytes (`sp-naive` has no areas to initialize).",
    operations: &[("init_4_areas", "init 4 areas")],
    reference: Reference::Implementation("memcpy"),
    rows: &["percpu", "percpu-0.4", "memcpy"],
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
    rows: &[],
};

const VS_BOX: Table = Table {
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
    rows: &["percpu_alloc", "percpu_alloc-sp-naive", "cache_padded_box"],
};

/// The allocations of `VS_BOX` only, for the chart.
const SIZES: Table = Table {
    operations: VS_BOX.operations.split_at(4).0,
    ..VS_BOX
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
    reference: Reference::Group("alloc_free_8B_1000_live"),
    rows: &[],
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
    rows: &["percpu", "percpu-raw", "percpu-sp-naive", "thread_local", "atomic_relaxed"],
};

const XCHG: Table = Table {
    title: "A swap without a guard on x86_64",
    text: "The two correct one-CPU swaps of a `%gs:` operand: `xchg` with a memory operand (always \
        locked: what `xchg_current` emits) and a load followed by an unlocked `cmpxchg` loop, alone and \
        after 4 plain stores (a locked instruction waits for pending stores); ns per swap.",
    operations: &[("xchg_sequences_u64", "swap u64")],
    reference: Reference::Implementation("xchg_0_stores"),
    rows: &[],
};

const BATCHED: Table = Table {
    title: "Reading a batched counter",
    text:
        "`BatchedCounter::read` (the shared total: one load) and `sum` (the total and every CPU's \
        delta, 4 CPUs) against a relaxed `AtomicU64` load; ns per read, batches of 100.",
    operations: &[("batched_read", "read")],
    reference: Reference::Implementation("atomic_load"),
    rows: &[],
};

const STATS: Table = Table {
    title: "Statistics structs",
    text: "One packet counted in a three-field statistics struct (`packets` + 1, `bytes` + 1500, \
        `errors` + 0) by each thread acting as a CPU of its own, as in the counting table: ns per packet \
        and thread, and the ratio to one shared `AtomicU64` per field.",
    operations: &[("stats_1_thread", "1 thread"), ("stats_2_threads", "2 threads")],
    reference: Reference::Implementation("atomic_per_field"),
    rows: &[],
};

const THREADS: Table = Table {
    title: "Allocation on several CPUs at once",
    text: "The 8-byte `PerCpu` allocation and drop (4 copies written) repeated by each thread acting as a \
        CPU of its own, the threads started together: ns per pair and thread, and the ratio to one \
        thread (at most 1.0× when the two threads scale perfectly).",
    operations: &[("alloc_free_8B_1_thread", "1 thread"), ("alloc_free_8B_2_threads", "2 threads")],
    reference: Reference::Group("alloc_free_8B_1_thread"),
    rows: &[],
};

/// Every table, in report order.
const TABLES: [&Table; 10] = [
    &ACCESSES, &OPS, &XCHG, &BATCHED, &INIT, &COUNTING, &STATS, &VS_BOX, &THREADS, &LIVE,
];

/// A chart's panel: a table, and whether on a logarithmic scale.
type Panel = (&'static Table, bool);

/// The charts: file in `benches/`, description, panels.
#[rustfmt::skip]
const CHARTS: [(&str, &str, &[Panel]); 3] = [
    ("results.svg", "accesses and init", &[(&ACCESSES, false), (&INIT, false)]),
    ("ops.svg", "operations, batched counter, statistics", &[(&OPS, false), (&BATCHED, false), (&STATS, true)]),
    ("alloc.svg", "counting and allocation", &[(&COUNTING, true), (&SIZES, true), (&THREADS, false), (&LIVE, false)]),
];

/// A goal of the issues: the median of `key` in each of `operations` against `reference` there within
/// `limit`, and the cause of a miss beyond the noise of the run.
struct Goal {
    text: &'static str,
    operations: &'static [Operation],
    key: &'static str,
    reference: Reference,
    limit: Limit,
    cause: &'static str,
}

/// A goal's limit on the time ratio `x / y` of its implementation to its reference.
enum Limit {
    /// `x / y` (`x` in ns if there is no reference) at most this.
    AtMost(f64),
    /// The throughput ratio `threads × y / x` at least `.0`, `x` on `.1` times as many threads as `y`.
    AtLeast(f64, f64),
}

/// Why a handle's access can miss.
const ONE_LOAD: &str = "the handle is used by reference, so every access first loads its VMA from \
    memory: one load more than the static or `thread_local!` (`codegen/table.md`)";

/// The goals of the issues.
#[rustfmt::skip]
const GOALS: [Goal; 9] = [
    Goal {
        text: "a `PerCpuCell<u64>` handle within 1.2× of the static variable (handle / static)",
        operations: ACCESSES.operations, key: "percpu_alloc", reference: Reference::Implementation("percpu"), limit: Limit::AtMost(1.2),
        cause: ONE_LOAD,
    },
    Goal {
        text: "ours within 1.1× of `thread_local!`: the `PerCpuCell<u64>` handle / `thread_local!`",
        operations: ACCESSES.operations, key: "percpu_alloc", reference: ACCESSES.reference, limit: Limit::AtMost(1.1),
        cause: ONE_LOAD,
    },
    Goal {
        text: "ours within 1.1× of `thread_local!`: the static / `thread_local!`",
        operations: ACCESSES.operations, key: "percpu", reference: ACCESSES.reference, limit: Limit::AtMost(1.1),
        cause: "the loops are the same instructions (one `%gs:` or `%fs:` access and the `black_box` stores), so the \
            difference comes from the run, not from the code: compare two runs",
    },
    Goal {
        text: "per-CPU read-modify-write operations within 1.2× of a `thread_local!` `Cell` doing the same (static / \
            `thread_local!`)",
        operations: OPS.operations, key: "percpu", reference: OPS.reference, limit: Limit::AtMost(1.2),
        cause: "the one instruction on the `%gs:` operand, which an interrupt cannot split (unlocked `xadd` or `cmpxchg`; \
            `xchg` with a memory operand is always locked, and the unlocked load and `cmpxchg` loop is no faster: see \
            the swap table), costs more on this CPU than the `Cell`'s separate load, operation and store, which an \
            interrupt could split; the table shows `percpu::raw`, the same instruction with the address in a \
            register, and the locked atomics",
    },
    Goal {
        text: "`BatchedCounter::read` at most 2× a relaxed `AtomicU64` load, whatever the CPU count",
        operations: BATCHED.operations, key: "batched_counter_read", reference: BATCHED.reference, limit: Limit::AtMost(2.0),
        cause: "the handle is used by reference: its shared total's address is loaded first, one load more than the \
            atomic's (`codegen/table.md`: 2 instructions, whatever the CPU count)",
    },
    Goal {
        text: "`PerCpuCounter` throughput at least 10× one contended `AtomicU64` on 2 threads",
        operations: COUNTING.operations.split_at(1).1, key: "percpu_counter", reference: COUNTING.reference, limit: Limit::AtLeast(10.0, 1.0),
        cause: "either the threads did not each have a CPU for the whole measurement (the counting table then shows the \
            counter, which shares nothing, slower on 2 threads than on 1), or contention costs little between the \
            CPUs of this machine (the shared atomic's times there)",
    },
    Goal {
        text: "8-byte `PerCpu` allocation + drop median at most 25 ns on one thread-CPU",
        operations: VS_BOX.operations.split_at(1).0, key: "percpu_alloc", reference: Reference::Absolute, limit: Limit::AtMost(25.0),
        cause: "the work of a pair on this machine: 4 copies written and dropped, and the CPU's cache of free offsets \
            taken and given back with interrupts off; the `Box<[CachePadded<T>]>` table has the pair of glibc's \
            aligned allocation on the same machine",
    },
    Goal {
        text: "8-byte allocation + drop on 2 thread-CPUs at once: total throughput at least 1.8× one thread's",
        operations: THREADS.operations.split_at(1).1, key: "percpu_alloc", reference: THREADS.reference, limit: Limit::AtLeast(1.8, 2.0),
        cause: "the pairs share nothing on the common path (each CPU's cache of free offsets), so the threads did not \
            each have a CPU for the whole measurement (other load on this machine: the counting table shows whether \
            the counter, which shares nothing either, slowed too)",
    },
    Goal {
        text: "with 1 000 000 live objects, the 8-byte allocation + drop at most 1.5× its cost with 1 000",
        operations: LIVE.operations.split_at(2).1, key: "percpu_alloc", reference: LIVE.reference, limit: Limit::AtMost(1.5),
        cause: "allocator metadata and the live objects' copies no longer fit in the CPU's caches",
    },
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
    fn measure(&self, group: &'static str, key: &'static str) -> Option<Measure> {
        self.0.get(&(group, key)).copied()
    }

    /// The median of implementation `key` in `group`.
    fn get(&self, group: &'static str, key: &'static str) -> Option<f64> {
        self.measure(group, key).map(|m| m.median)
    }

    /// What `to` designates for implementation `key` in `group`.
    fn reference(&self, group: &'static str, key: &'static str, to: Reference) -> Option<Measure> {
        match to {
            Reference::Implementation(other) => self.measure(group, other),
            Reference::Group(other) => self.measure(other, key),
            Reference::Absolute => Some(Measure {
                median: 1.0,
                low: 1.0,
                high: 1.0,
            }),
        }
    }

    /// The implementations of `table` with a measure in one of its groups, in order.
    fn rows(&self, table: &Table) -> Vec<&'static Implementation> {
        let (groups, listed) = (table.operations, table.rows);
        let mut rows: Vec<_> = IMPLEMENTATIONS.iter().collect();
        rows.retain(|i| listed.is_empty() || listed.contains(&i.key));
        rows.retain(|i| groups.iter().any(|(g, _)| self.0.contains_key(&(g, i.key))));
        rows
    }
}

/// Reads a JSON file of criterion's.
fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads the measure of every implementation in every group of the tables from criterion's
/// `estimates.json` (ns per iteration), per operation when the group declared a throughput in elements
/// in `benchmark.json` (the batch, or the increments per thread).
fn read_results(root: &Path) -> Result<Results, String> {
    let mut results = Results::default();
    for &(group, _) in TABLES.iter().flat_map(|table| table.operations) {
        for implementation in IMPLEMENTATIONS {
            let id = implementation.id;
            let path = |dir: &&str| root.join(dir).join(group).join(id).join("new");
            let mut dirs = implementation.dirs.iter().map(path);
            let Some(dir) = dirs.find(|dir| dir.join("estimates.json").exists()) else {
                continue;
            };
            let estimates = read_json(&dir.join("estimates.json"))?;
            let benchmark = read_json(&dir.join("benchmark.json"))?;
            let batch = benchmark["throughput"]["Elements"].as_f64().unwrap_or(1.0);
            let median = &estimates["median"];
            let interval = &median["confidence_interval"];
            let ns = |value: &Value| value.as_f64().map(|ns| ns / batch);
            let missing = || format!("{}: no median", dir.display());
            let measure = Measure {
                median: ns(&median["point_estimate"]).ok_or_else(missing)?,
                low: ns(&interval["lower_bound"]).ok_or_else(missing)?,
                high: ns(&interval["upper_bound"]).ok_or_else(missing)?,
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
        for (_, dir, args) in RUNS.iter().filter(|run| run.0) {
            let (mut cargo, home) = (Command::new("cargo"), root.join(dir));
            cargo.current_dir(root).env("CRITERION_HOME", home);
            cargo.arg("bench").args(args.split_whitespace());
            process::run(cargo.arg("--").args(options))?;
        }
    }
    let results = read_results(root)?;
    let machine = machine()?;
    let title = "# Host benchmarks: per-CPU accesses, counting and allocation";
    let report = render_report(root, &machine, &results, false);
    let report = format!("{title}\n\n{report}");
    fs::write(root.join("benches/results.md"), &report)
        .map_err(|e| format!("cannot write benches/results.md: {e}"))?;
    let section = render_report(root, &machine, &results, true);
    crate::readme::update(root, "bench-table", &section)?;
    for (file, _, panels) in CHARTS {
        let path = root.join("benches").join(file);
        draw_chart(&path, &results, panels).map_err(|e| format!("cannot draw {file}: {e}"))?;
    }
    print!("{report}");
    println!("wrote benches/results.md, the README and the charts in benches/");
    Ok(())
}

/// A line describing the machine and the toolchain.
fn machine() -> Result<String, String> {
    let run = |program: &str, args: &[&str]| output(Command::new(program).args(args));
    let lscpu = run("lscpu", &[]).unwrap_or_default();
    let field = |name: &str| {
        let value = lscpu.lines().find_map(|line| line.strip_prefix(name));
        value.map_or("unknown", str::trim).to_string()
    };
    let (model, cpus) = (field("Model name:"), field("CPU(s):"));
    let kernel = run("uname", &["-s", "-r", "-m"])?;
    let (rustc, date) = (run("rustc", &["-V"])?, run("date", &["-u", "+%Y-%m-%d"])?);
    // Other work on the machine shows in the numbers: the load average at the end of the run.
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split(' ').take(3).collect::<Vec<_>>().join(" ");
    let (kernel, rustc, date) = (kernel.trim(), rustc.trim(), date.trim());
    Ok(format!(
        "{model}, {cpus} CPUs, {kernel}, {rustc}, {date}, load average {load}"
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

/// The report (for `benches/results.md` or the README): a paragraph on the run, the charts, the
/// tables, the memory efficiency, the goals.
fn render_report(root: &Path, machine: &str, results: &Results, readme: bool) -> String {
    let (level, charts) = if readme {
        ("####", "benches/")
    } else {
        ("##", "")
    };
    let mut report = format!(
        "Generated by `cargo xtask bench` (do not edit): {machine}. Medians of criterion's estimates, \
         with this thread acting as CPU 0 of 4 (hosted mode, x86_64 Linux only) or as the only CPU \
         (`sp-naive`). The machine is shared and its load varies: a sub-ns access figure can change by \
         2× from one run to the next, so the goals below judge access differences against the noise of \
         the run.\n\n"
    );
    for (file, description, _) in CHARTS {
        let _ = writeln!(report, "![{description}]({charts}{file})");
    }
    for table in TABLES {
        let _ = write!(report, "\n{level} {}\n\n{}\n\n", table.title, table.text);
        if table.title == COUNTING.title {
            render_counting(&mut report, results);
        } else {
            render_table(&mut report, table, results);
        }
    }
    let _ = write!(report, "\n{level} Memory efficiency\n\n");
    if let Err(e) = render_efficiency(&mut report, root) {
        let _ = writeln!(report, "Not measured: {e}.");
    }
    let _ = write!(report, "\n{level} Goals\n\n");
    for goal in &GOALS {
        render_goal(&mut report, goal, results);
    }
    report
}

/// One Markdown table: a row per implementation, each cell the median and its ratio to the reference.
fn render_table(report: &mut String, table: &Table, results: &Results) {
    let labels: Vec<_> = table.operations.iter().map(|(_, label)| *label).collect();
    let _ = writeln!(report, "| implementation | {} |", labels.join(" | "));
    let _ = writeln!(report, "|---|{}", "---|".repeat(labels.len()));
    for implementation in results.rows(table) {
        let _ = write!(report, "| {} |", implementation.label);
        for &(group, _) in table.operations {
            let key = implementation.key;
            let to = results.reference(group, key, table.reference);
            let cell = match (results.get(group, key), to) {
                (Some(ns), Some(to)) => format!("{} ns ({:.2}×)", format_ns(ns), ns / to.median),
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
    let _ = writeln!(
        report,
        "| implementation | 1 thread | 2 threads, per thread | 2 threads, total | throughput vs the \
         shared `AtomicU64`, 1 / 2 threads |\n|---|---|---|---|---|"
    );
    let (one, two) = (COUNTING.operations[0].0, COUNTING.operations[1].0);
    for implementation in results.rows(&COUNTING) {
        let get = |group| results.get(group, implementation.key);
        let ns = |group| get(group).map_or("—".into(), |ns| format!("{} ns", format_ns(ns)));
        let ratio = |group| match get(group).zip(results.get(group, "atomic_shared")) {
            Some((ns, atomic)) => format!("{:.2}×", atomic / ns),
            None => "—".into(),
        };
        let total = get(two).map_or("—".into(), |ns| format!("{:.0} /µs", 2000.0 / ns));
        let (ns_one, ns_two, ratios) = (ns(one), ns(two), [ratio(one), ratio(two)].join(" / "));
        let row = format!("{ns_one} | {ns_two} | {total} | {ratios}");
        let _ = writeln!(report, "| {} | {row} |", implementation.label);
    }
}

/// The memory efficiency of the mixed workload, per CPU, from the `key=value` lines `benches/alloc.rs`
/// writes to `memory_efficiency/mixed.txt` of criterion's directory, the hosted run's if there is one.
fn render_efficiency(report: &mut String, root: &Path) -> Result<(), String> {
    let read = |dir: &str| fs::read_to_string(root.join(dir).join("memory_efficiency/mixed.txt"));
    let (text, mode) = match (read(OURS), read(SP_NAIVE)) {
        (Ok(text), _) => (text, "hosted"),
        (_, Ok(text)) => (text, "`sp-naive`"),
        _ => return Err("`benches/alloc.rs` has not run".into()),
    };
    let values: BTreeMap<_, _> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let value = |key: &str| values.get(key).ok_or(format!("no `{key}` in mixed.txt"));
    let _ = writeln!(
        report,
        "A mixed workload through the real `percpu_alloc` ({mode} mode, further chunks from the global \
         allocator), from an empty allocator: objects of {} bytes in a pseudo-random order, then a \
         pseudo-random half of them replaced by new ones. Figures per CPU from `percpu_alloc::stats()` \
         (deterministic): bytes asked for, bytes reserved (rounded up to 8-byte granules), and the bytes \
         of all chunks held, the first chunk (the 64 KiB dynamic reserve of the areas) included.\n\n\
         | phase | objects | bytes asked | bytes reserved | chunks (bytes) | asked / chunk bytes |\n\
         |---|---|---|---|---|---|",
        value("sizes")?.replace(',', ", ")
    );
    for phase in ["allocated", "churned"] {
        let number = |key: &str| -> Result<f64, String> {
            let value = value(&format!("{phase}.{key}"))?;
            value.parse().map_err(|e| format!("`{phase}.{key}`: {e}"))
        };
        let (objects, reserved) = (number("objects")?, number("reserved_bytes")?);
        let (asked, bytes) = (number("requested_bytes")?, number("chunk_bytes")?);
        let chunks = number("chunks")?;
        let share = 100.0 * asked / bytes;
        let row = format!("{objects} | {asked} | {reserved} | {chunks} ({bytes}) | {share:.1} %");
        let _ = writeln!(report, "| {phase} | {row} |");
    }
    Ok(())
}

/// One goal's line: what it measures, met or not, and for a miss its cause: noise where criterion's
/// confidence intervals or the noise of the run (the static `percpu` against `percpu::raw`, the same
/// instruction) allow the limit, else the goal's cause.
fn render_goal(report: &mut String, goal: &Goal, results: &Results) {
    let (mut measured, mut causes, mut missed) = (Vec::new(), Vec::new(), Vec::new());
    let (Limit::AtMost(limit) | Limit::AtLeast(limit, _)) = goal.limit;
    let absolute = matches!(goal.reference, Reference::Absolute);
    for &(group, label) in goal.operations {
        let x = results.measure(group, goal.key);
        let (Some(x), Some(y)) = (x, results.reference(group, goal.key, goal.reference)) else {
            let _ = writeln!(report, "- goal: {}, measured: not measured.", goal.text);
            return;
        };
        let ratio = x.median / y.median;
        // The value the goal states, and the largest time ratio it allows.
        let (value, allowed) = match goal.limit {
            Limit::AtMost(limit) => (ratio, limit),
            Limit::AtLeast(limit, threads) => (threads / ratio, threads / limit),
        };
        let (x_ns, y_ns) = (format_ns(x.median), format_ns(y.median));
        measured.push(match absolute {
            true => format!("{label} {x_ns} ns"),
            false => format!("{label} {value:.2}× ({x_ns} against {y_ns} ns)"),
        });
        let get = |key| results.get(group, key);
        let (p, r) = (get("percpu"), get("percpu-raw"));
        let run = p.zip(r).map_or(1.0, |(p, r)| p.max(r) / p.min(r));
        let unit = if absolute { " ns" } else { "×" };
        if ratio <= allowed {
            continue;
        } else if x.low / y.high <= allowed {
            causes.push(format!(
                "cause for {label}: noise, criterion's 95 % confidence intervals still allow {limit}{unit}"
            ));
        } else if ratio <= allowed * run {
            causes.push(format!(
                "cause for {label}: the noise of this run, in which the static `percpu` and \
                 `percpu::raw`, the same instruction, differ by {run:.2}×"
            ));
        } else {
            missed.push(label);
        }
    }
    if !missed.is_empty() {
        causes.push(format!("cause for {}: {}", missed.join(", "), goal.cause));
    }
    let verdict = match causes.join("; ") {
        causes if causes.is_empty() => "**met**".to_string(),
        causes => format!("**not met** ({causes})"),
    };
    let (text, measured) = (goal.text, measured.join(", "));
    let _ = writeln!(report, "- goal: {text}, measured: {measured}: {verdict}.");
}

/// A chart of `panels` side by side (a table each, on a logarithmic scale if its flag is set), each as
/// wide as its bars and its axis, the legend below, written as SVG to `path`.
fn draw_chart(path: &Path, results: &Results, panels: &[Panel]) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (mut rest, legend) = root.split_vertically(440);
    let weight = |table: &Table| 8 + table.operations.len() * results.rows(table).len();
    let total: usize = panels.iter().map(|(table, _)| weight(table)).sum();
    let mut drawn = Vec::new();
    for &(table, log) in panels {
        let (area, right) = rest.split_horizontally(1200 * weight(table) as u32 / total as u32);
        rest = right;
        let rows = results.rows(table);
        let mut values = Vec::new();
        for (group, _) in table.operations {
            values.extend(rows.iter().filter_map(|i| results.get(group, i.key)));
        }
        let max = values.iter().copied().fold(1e-3, f64::max);
        let min = values.iter().copied().fold(max, f64::min);
        if log {
            // From the power of ten below the smallest value, so that every bar shows.
            let low = 10f64.powf(min.log10().floor());
            let high = 10f64.powf(max.log10().ceil()).max(low * 10.0);
            draw_panel(&area, table, &rows, results, (low..high).log_scale(), low)?;
        } else {
            draw_panel(&area, table, &rows, results, 0.0..max * 1.15, 0.0)?;
        }
        drawn.extend(rows.iter().map(|i| i.key));
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
        legend.draw(&Rectangle::new([(x, y), (x + 14, y + 14)], color))?;
        legend.draw(&Text::new(label, (x + 20, y), ("sans-serif", 14)))?;
        x += width;
    }
    Ok(root.present()?)
}

/// One panel: a group of bars per operation of `table` (at 0..n, each labelled at its centre: ticks
/// every 0.5) filling 80 % of its width, from `floor` on the `y` axis, the value above each bar.
fn draw_panel<Y: AsRangedCoord<Value = f64>>(
    area: &DrawingArea<SVGBackend, Shift>,
    table: &Table,
    rows: &[&Implementation],
    results: &Results,
    y: Y,
    floor: f64,
) -> Result<(), Box<dyn Error>>
where
    Y::CoordDescType: ValueFormatter<f64>,
{
    let count = table.operations.len();
    let mut chart = ChartBuilder::on(area)
        .caption(table.title.replace('`', ""), ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..count as f64, y)?;
    let label = |x: &f64| match table.operations.get(*x as usize) {
        Some((_, label)) if x.fract() == 0.5 => label.to_string(),
        _ => String::new(),
    };
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh().light_line_style(TRANSPARENT);
    mesh.x_labels(2 * count + 1).x_label_formatter(&label);
    mesh.y_desc("ns").draw()?;
    let plot = chart.plotting_area();
    let width = 0.8 / rows.len().max(1) as f64;
    for (op, (group, _)) in table.operations.iter().enumerate() {
        for (slot, implementation) in rows.iter().enumerate() {
            let Some(ns) = results.get(group, implementation.key) else {
                continue;
            };
            let left = op as f64 + 0.1 + slot as f64 * width;
            let color = implementation.color.filled();
            let text = Text::new(format_ns(ns), (0, -12), ("sans-serif", 10));
            plot.draw(&Rectangle::new([(left, floor), (left + width, ns)], color))?;
            plot.draw(&(EmptyElement::at((left, ns)) + text))?;
        }
    }
    Ok(())
}
