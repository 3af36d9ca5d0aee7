//! `cargo xtask codegen [--bless]`: counts the instructions of every per-CPU operation on the four
//! kernel architectures, ours against crates.io `percpu` 0.4.0 (the peer), and checks them.
//!
//! The probe crates `codegen/probe-ours` and `codegen/probe-peer` (separate workspaces: two per-CPU
//! runtimes never share a binary) compile `codegen/probes.rs`, one `#[inline(never)]` function per
//! operation, for each bare-metal target. The functions are disassembled with rustup's `llvm-objdump`
//! and their instructions counted, the final return excluded. A probe that calls a function out of
//! line is charged the whole body of the callee as well (one level: the callee's own calls are one
//! instruction each), so that a call never looks cheaper than inline code.
//!
//! Checks, each failing the command:
//! - no count of ours exceeds the committed one in `codegen/expected.toml` (`--bless` rewrites it);
//! - on x86_64, static `read_current`, `write_current`, `add_current` and `and/or/xor_current` are
//!   exactly one instruction;
//! - ours is never more instructions than the peer, except the waivers listed in `expected.toml`;
//! - the `percpu::raw` accessors (VMA in a register) are at most one instruction more than the static
//!   ones, and those loading the VMA from a handle at most one more than that;
//! - the accessors of a run-time allocated `percpu_alloc::PerCpuCell<u64>` handle (and
//!   `PerCpuCounter::add`), passed by reference, are at most one instruction more than the static
//!   variable's: the load of the VMA from the handle.
//!
//! The table goes to standard output, to `codegen/table.md` and into the README.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::arches::{Arch, ARCHES};
use crate::install::{self, Toolchain};
use crate::process::{self, output};

/// One of the two per-CPU runtimes compared.
#[derive(Clone, Copy)]
enum Runtime {
    /// This repository's `percpu`.
    Ours,
    /// crates.io `percpu` 0.4.0.
    Peer,
}

impl Runtime {
    /// The probe crate's directory under `codegen/`.
    fn dir(self) -> &'static str {
        match self {
            Runtime::Ours => "probe-ours",
            Runtime::Peer => "probe-peer",
        }
    }
}

/// How the peer offers an operation.
#[derive(PartialEq)]
enum PeerForm {
    /// With the same API: the probe source is shared.
    Same,
    /// Not at all; the peer's probe is what a 0.4 user writes instead (shown in the table).
    Workaround(&'static str),
    /// Not at all, with no equivalent: ours only.
    Missing,
}

/// One probe function: one operation.
struct Probe {
    /// The `#[no_mangle]` function name, and the key in `expected.toml`.
    symbol: &'static str,
    /// The row label of the table.
    label: &'static str,
    /// How the peer offers it.
    peer: PeerForm,
    /// Must be exactly one instruction on x86_64.
    one_on_x86: bool,
    /// Must be at most one instruction more than this other probe.
    at_most_one_more_than: Option<&'static str>,
}

/// A probe whose operation the peer offers with the same API.
const fn shared(symbol: &'static str, label: &'static str, one_on_x86: bool) -> Probe {
    Probe {
        symbol,
        label,
        peer: PeerForm::Same,
        one_on_x86,
        at_most_one_more_than: None,
    }
}

/// A probe of ours only, at most one instruction more than `base`.
const fn ours_only(symbol: &'static str, label: &'static str, base: &'static str) -> Probe {
    Probe {
        symbol,
        label,
        peer: PeerForm::Missing,
        one_on_x86: false,
        at_most_one_more_than: Some(base),
    }
}

/// A probe of ours only, with no base to compare with.
const fn ours(symbol: &'static str, label: &'static str, one_on_x86: bool) -> Probe {
    Probe {
        symbol,
        label,
        peer: PeerForm::Missing,
        one_on_x86,
        at_most_one_more_than: None,
    }
}

/// Every probe, in table order.
const PROBES: [Probe; 57] = [
    shared("read_current_u8", "`read_current` u8", true),
    shared("read_current_u32", "`read_current` u32", true),
    shared("read_current_u64", "`read_current` u64", true),
    shared("read_current_bool", "`read_current` bool", true),
    shared("write_current_u8", "`write_current` u8", true),
    shared("write_current_u32", "`write_current` u32", true),
    shared("write_current_u64", "`write_current` u64", true),
    shared("write_current_bool", "`write_current` bool", true),
    Probe {
        symbol: "add_current_u64",
        label: "`add_current` u64",
        peer: PeerForm::Workaround("`with_current(|v| *v += x)`"),
        one_on_x86: true,
        at_most_one_more_than: None,
    },
    shared(
        "with_current_inc_u64",
        "`with_current(|v| *v += 1)` u64",
        false,
    ),
    shared("current_ptr_u64", "`current_ptr` u64", false),
    shared("remote_ptr_u64", "`remote_ptr(cpu)` u64", false),
    ours_only(
        "raw_read_current_u64",
        "`raw::read_current` u64, VMA in a register",
        "read_current_u64",
    ),
    ours_only(
        "raw_write_current_u64",
        "`raw::write_current` u64, VMA in a register",
        "write_current_u64",
    ),
    ours_only(
        "raw_add_current_u64",
        "`raw::add_current` u64, VMA in a register",
        "add_current_u64",
    ),
    ours_only(
        "handle_read_current_u64",
        "`raw::read_current` u64, VMA loaded from `&usize`",
        "raw_read_current_u64",
    ),
    ours_only(
        "handle_write_current_u64",
        "`raw::write_current` u64, VMA loaded from `&usize`",
        "raw_write_current_u64",
    ),
    ours_only(
        "handle_add_current_u64",
        "`raw::add_current` u64, VMA loaded from `&usize`",
        "raw_add_current_u64",
    ),
    ours_only(
        "percpu_alloc_read_u64",
        "`percpu_alloc::PerCpuCell<u64>::read_current`, handle by `&`",
        "read_current_u64",
    ),
    ours_only(
        "percpu_alloc_write_u64",
        "`percpu_alloc::PerCpuCell<u64>::write_current`, handle by `&`",
        "write_current_u64",
    ),
    ours_only(
        "percpu_alloc_add_u64",
        "`percpu_alloc::PerCpuCell<u64>::add_current`, handle by `&`",
        "add_current_u64",
    ),
    ours_only(
        "percpu_counter_add",
        "`percpu_alloc::PerCpuCounter::add`, counter by `&`",
        "add_current_u64",
    ),
    ours("fetch_add_current_u8", "`fetch_add_current` u8", false),
    ours("xchg_current_u8", "`xchg_current` u8", false),
    ours("cmpxchg_current_u8", "`cmpxchg_current` u8", false),
    ours("and_current_u8", "`and_current` u8", true),
    ours("or_current_u8", "`or_current` u8", true),
    ours("xor_current_u8", "`xor_current` u8", true),
    ours("fetch_add_current_u32", "`fetch_add_current` u32", false),
    ours("xchg_current_u32", "`xchg_current` u32", false),
    ours("cmpxchg_current_u32", "`cmpxchg_current` u32", false),
    ours("and_current_u32", "`and_current` u32", true),
    ours("or_current_u32", "`or_current` u32", true),
    ours("xor_current_u32", "`xor_current` u32", true),
    ours("fetch_add_current_u64", "`fetch_add_current` u64", false),
    ours("xchg_current_u64", "`xchg_current` u64", false),
    ours("cmpxchg_current_u64", "`cmpxchg_current` u64", false),
    ours("and_current_u64", "`and_current` u64", true),
    ours("or_current_u64", "`or_current` u64", true),
    ours("xor_current_u64", "`xor_current` u64", true),
    ours("cmpxchg_current_bool", "`cmpxchg_current` bool", false),
    ours_only(
        "raw_fetch_add_current_u64",
        "`raw::fetch_add_current` u64, VMA in a register",
        "fetch_add_current_u64",
    ),
    ours_only(
        "raw_xchg_current_u64",
        "`raw::xchg_current` u64, VMA in a register",
        "xchg_current_u64",
    ),
    ours_only(
        "raw_cmpxchg_current_u64",
        "`raw::cmpxchg_current` u64, VMA in a register",
        "cmpxchg_current_u64",
    ),
    ours_only(
        "raw_and_current_u64",
        "`raw::and_current` u64, VMA in a register",
        "and_current_u64",
    ),
    ours_only(
        "raw_or_current_u64",
        "`raw::or_current` u64, VMA in a register",
        "or_current_u64",
    ),
    ours_only(
        "raw_xor_current_u64",
        "`raw::xor_current` u64, VMA in a register",
        "xor_current_u64",
    ),
    ours_only(
        "percpu_alloc_fetch_add_u64",
        "`percpu_alloc::PerCpuCell<u64>::fetch_add_current`, handle by `&`",
        "fetch_add_current_u64",
    ),
    ours_only(
        "percpu_alloc_xchg_u64",
        "`percpu_alloc::PerCpuCell<u64>::xchg_current`, handle by `&`",
        "xchg_current_u64",
    ),
    ours_only(
        "percpu_alloc_cmpxchg_u64",
        "`percpu_alloc::PerCpuCell<u64>::cmpxchg_current`, handle by `&`",
        "cmpxchg_current_u64",
    ),
    ours_only(
        "percpu_alloc_and_u64",
        "`percpu_alloc::PerCpuCell<u64>::and_current`, handle by `&`",
        "and_current_u64",
    ),
    ours_only(
        "percpu_alloc_or_u64",
        "`percpu_alloc::PerCpuCell<u64>::or_current`, handle by `&`",
        "or_current_u64",
    ),
    ours_only(
        "percpu_alloc_xor_u64",
        "`percpu_alloc::PerCpuCell<u64>::xor_current`, handle by `&`",
        "xor_current_u64",
    ),
    ours(
        "batched_counter_add",
        "`percpu_alloc::BatchedCounter::add`, counter by `&`",
        false,
    ),
    ours(
        "batched_counter_read",
        "`percpu_alloc::BatchedCounter::read`, counter by `&`",
        false,
    ),
    ours(
        "stats_static_add",
        "statistics field `add` (u64 at offset 8), `#[def_percpu]` static",
        false,
    ),
    ours_only(
        "stats_handle_add",
        "statistics field `add` (u64 at offset 8), `percpu_alloc::PerCpuStats` by `&`",
        "add_current_u64",
    ),
];

/// The instruction count of one probe.
#[derive(Clone, Copy, Default, PartialEq)]
struct Count {
    /// The probe's own instructions, final return excluded.
    own: usize,
    /// The instructions of the functions it calls out of line, final returns excluded.
    callees: usize,
}

impl Count {
    /// All instructions charged to the operation.
    fn total(self) -> usize {
        self.own + self.callees
    }

    /// The table cell: `own`, or `own+callees`.
    fn cell(self) -> String {
        if self.callees == 0 {
            self.own.to_string()
        } else {
            format!("{}+{}", self.own, self.callees)
        }
    }
}

/// Counts per runtime: `[architecture index][probe symbol]`.
type Counts = Vec<BTreeMap<&'static str, Count>>;

/// Entry point: builds, counts, prints and writes the table, checks; `--bless` rewrites the
/// expectations instead of checking against them.
pub fn run(root: &Path, bless: bool) -> Result<(), String> {
    let objdump = llvm_objdump()?;
    let mut ours = Counts::new();
    let mut peer = Counts::new();
    for arch in &ARCHES {
        let toolchain = install::ensure_target(arch)?;
        ours.push(count_runtime(
            root,
            &objdump,
            arch,
            toolchain,
            Runtime::Ours,
        )?);
        peer.push(count_runtime(
            root,
            &objdump,
            arch,
            toolchain,
            Runtime::Peer,
        )?);
    }

    let expected_path = root.join("codegen/expected.toml");
    let expected = fs::read_to_string(&expected_path)
        .map_err(|e| format!("cannot read {}: {e}", expected_path.display()))
        .and_then(|text| Expected::parse(&text))?;
    let mut report = Report::default();
    check_targets(&ours, &peer, &expected.waivers, &mut report);
    if bless {
        let blessed = Expected::from_counts(&ours, &report.needed_waivers, &expected.waivers);
        fs::write(&expected_path, blessed.render())
            .map_err(|e| format!("cannot write {}: {e}", expected_path.display()))?;
        println!("blessed {}", expected_path.display());
    } else {
        check_expected(&ours, &expected, &mut report);
    }

    let applied = expected
        .waivers
        .iter()
        .filter(|(key, _)| report.needed_waivers.contains(key))
        .collect();
    let table = render_table(&ours, &peer, &applied)?;
    print!("{table}");
    let table_path = root.join("codegen/table.md");
    fs::write(&table_path, &table)
        .map_err(|e| format!("cannot write {}: {e}", table_path.display()))?;
    // The README shows the table itself, without the title and the introduction.
    let body = table
        .find("| operation")
        .map_or(&table[..], |start| &table[start..]);
    crate::readme::update(root, "codegen-table", body)?;

    for note in &report.notes {
        println!("note: {note}");
    }
    if report.failures.is_empty() {
        println!("codegen: all checks passed");
        Ok(())
    } else {
        Err(format!(
            "codegen: {} check(s) failed:\n  {}",
            report.failures.len(),
            report.failures.join("\n  ")
        ))
    }
}

/// The path of rustup's `llvm-objdump` (component `llvm-tools`, installed if missing).
fn llvm_objdump() -> Result<PathBuf, String> {
    let sysroot = output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let version = output(Command::new("rustc").arg("-vV"))?;
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .ok_or("`rustc -vV` names no host")?;
    let objdump = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-objdump");
    if !objdump.exists() {
        process::run(Command::new("rustup").args(["component", "add", "llvm-tools"]))?;
    }
    Ok(objdump)
}

/// Builds one probe crate for one architecture and counts every probe.
fn count_runtime(
    root: &Path,
    objdump: &Path,
    arch: &Arch,
    toolchain: Toolchain,
    runtime: Runtime,
) -> Result<BTreeMap<&'static str, Count>, String> {
    let target_dir = root.join("target/codegen").join(runtime.dir());
    let mut cargo = Command::new("cargo");
    if arch.nightly {
        cargo.arg("+nightly");
    }
    cargo
        .args(["build", "--quiet", "--release", "--target", arch.target])
        .arg("--manifest-path")
        .arg(root.join("codegen").join(runtime.dir()).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if toolchain == Toolchain::BuildStd {
        // `percpu_alloc` (a dependency of `probe-ours`) needs `alloc` as well.
        cargo.arg("-Zbuild-std=core,alloc");
    }
    process::run(&mut cargo)?;
    let out_dir = target_dir.join(arch.target).join("release");
    let rlib = out_dir.join(format!("lib{}.rlib", runtime.dir().replace('-', "_")));
    let functions = disassemble(objdump, &[rlib])?;

    // The functions that the probes call, found in the probe crate itself or its dependencies.
    let mut callees: BTreeMap<String, usize> = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for probe in &PROBES {
        if runtime_lacks(runtime, probe) {
            continue;
        }
        let body = functions.get(probe.symbol).ok_or_else(|| {
            format!(
                "{} has no function `{}` for {}",
                runtime.dir(),
                probe.symbol,
                arch.target
            )
        })?;
        for target in body.iter().filter_map(|insn| insn.call.as_ref()) {
            callees.insert(target.clone(), 0);
        }
        counts.insert(probe.symbol, body);
    }
    if !callees.is_empty() {
        let deps = fs::read_dir(out_dir.join("deps"))
            .map_err(|e| format!("cannot list {}: {e}", out_dir.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "rlib"))
            .collect::<Vec<_>>();
        let bodies = disassemble(objdump, &deps)?;
        for (name, size) in &mut callees {
            let body = bodies.get(name).ok_or_else(|| {
                format!(
                    "a {} probe calls `{name}`, found in no dependency",
                    runtime.dir()
                )
            })?;
            *size = instructions_before_return(body);
        }
    }
    Ok(counts
        .into_iter()
        .map(|(symbol, body)| {
            let mut called: Vec<&String> = body.iter().filter_map(|i| i.call.as_ref()).collect();
            called.sort();
            called.dedup();
            let count = Count {
                own: instructions_before_return(body),
                callees: called.iter().map(|name| callees[*name]).sum(),
            };
            (symbol, count)
        })
        .collect())
}

/// Whether `runtime` has no probe for `probe`.
fn runtime_lacks(runtime: Runtime, probe: &Probe) -> bool {
    matches!(runtime, Runtime::Peer) && probe.peer == PeerForm::Missing
}

/// One disassembled instruction.
#[derive(Clone)]
struct Insn {
    /// The instruction text, whitespace collapsed (`addq %rdi, %gs:0x0`).
    text: String,
    /// The function it calls or tail-calls, from its relocation.
    call: Option<String>,
}

/// Relocation types of calls and tail calls (x86_64 calls are recognised by their mnemonic: their
/// relocations also serve data accesses).
const CALL_RELOCATIONS: [&str; 6] = [
    "R_AARCH64_CALL26",
    "R_AARCH64_JUMP26",
    "R_RISCV_CALL",
    "R_RISCV_CALL_PLT",
    "R_LARCH_B26",
    "R_LARCH_CALL36",
];

/// Disassembles `files` (with relocations); returns every function's instructions by symbol name (the
/// first definition wins), cold paths included.
///
/// Whole files, never `--disassemble-symbols`: that option ends a function at the next label, and
/// riscv64 code is full of `.Lpcrel_hi` labels. `llvm-objdump` names a function by one of its symbols
/// only; the others (aliases, which LLVM's function merging makes of identical functions, e.g.
/// `percpu_alloc_read_u64` of `handle_read_current_u64`) are found in the symbol table.
fn disassemble(objdump: &Path, files: &[PathBuf]) -> Result<BTreeMap<String, Vec<Insn>>, String> {
    let listing = output(
        Command::new(objdump)
            .args(["--disassemble", "--reloc", "--no-show-raw-insn"])
            .args(files),
    )?;

    let mut functions = BTreeMap::new();
    let mut current: Option<(String, Vec<Insn>)> = None;
    for line in listing.lines() {
        // A symbol header: `0000000000000000 <name>:`; `.L` labels are inside a function.
        if let Some(name) = line
            .split_once(" <")
            .filter(|(address, _)| is_hex(address))
            .and_then(|(_, rest)| rest.strip_suffix(">:"))
        {
            if !name.starts_with(".L") {
                if let Some((name, body)) = current.take() {
                    functions.entry(name).or_insert(body);
                }
                current = Some((name.to_string(), Vec::new()));
            }
            continue;
        }
        // An instruction `   1c: mnemonic operands`, or its relocation `   0000001c:  R_TYPE symbol+addend`.
        let Some((address, text)) = line.split_once(':') else {
            continue;
        };
        let (Some((_, body)), true) = (current.as_mut(), is_hex(address.trim())) else {
            continue;
        };
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if let Some(relocation) = text.strip_prefix("R_") {
            let (kind, symbol) = relocation.split_once(' ').unwrap_or((relocation, ""));
            let kind = format!("R_{kind}");
            if let Some(insn) = body.last_mut() {
                let mnemonic = insn.text.split(' ').next().unwrap_or("");
                if CALL_RELOCATIONS.contains(&kind.as_str())
                    || mnemonic.starts_with("call")
                    || mnemonic.starts_with("jmp")
                {
                    insn.call = Some(strip_addend(symbol).to_string());
                }
            }
        } else if !text.is_empty() && text != "..." {
            body.push(Insn { text, call: None });
        }
    }
    if let Some((name, body)) = current {
        functions.entry(name).or_insert(body);
    }

    for aliases in function_aliases(objdump, files)? {
        let Some(body) = aliases.iter().find_map(|name| functions.get(name)).cloned() else {
            continue;
        };
        for name in aliases {
            functions.entry(name).or_insert_with(|| body.clone());
        }
    }
    Ok(functions)
}

/// The function symbols of `files` that share an address: one list per address with several.
fn function_aliases(objdump: &Path, files: &[PathBuf]) -> Result<Vec<Vec<String>>, String> {
    let table = output(Command::new(objdump).arg("--syms").args(files))?;
    // `(object file, section, address)` → the function symbols defined there.
    let mut at: BTreeMap<(usize, &str, &str), Vec<String>> = BTreeMap::new();
    let mut object = 0;
    for line in table.lines() {
        // Each archive member starts with `file(member): file format ...`.
        if line.contains("file format") {
            object += 1;
            continue;
        }
        // `0000000000000000 g     F .text.name\t0000000000000008 name`
        let Some((left, right)) = line.split_once('\t') else {
            continue;
        };
        let fields: Vec<&str> = left.split_whitespace().collect();
        let (Some(&address), Some(&section)) = (fields.first(), fields.last()) else {
            continue;
        };
        if !is_hex(address) || !fields[1..fields.len() - 1].contains(&"F") {
            continue;
        }
        if let Some((_, name)) = right.split_once(' ') {
            at.entry((object, section, address))
                .or_default()
                .push(name.trim().to_string());
        }
    }
    Ok(at.into_values().filter(|names| names.len() > 1).collect())
}

/// Whether `text` is a non-empty hexadecimal number.
fn is_hex(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A relocation's symbol without its addend (`sym-0x4` → `sym`).
fn strip_addend(symbol: &str) -> &str {
    [symbol.find("+0x"), symbol.find("-0x")]
        .into_iter()
        .flatten()
        .min()
        .map_or(symbol, |at| &symbol[..at])
}

/// The number of instructions of a function, its final return excluded.
fn instructions_before_return(body: &[Insn]) -> usize {
    let is_return = |insn: &Insn| {
        matches!(
            insn.text.as_str(),
            "ret" | "retq" | "jr ra" | "jalr zero, 0(ra)" | "jirl $zero, $ra, 0"
        )
    };
    body.len() - usize::from(body.last().is_some_and(is_return))
}

/// What the checks found.
#[derive(Default)]
struct Report {
    /// Failed checks.
    failures: Vec<String>,
    /// Remarks that do not fail the command.
    notes: Vec<String>,
    /// Waiver keys (`arch.probe`) whose case still occurs.
    needed_waivers: Vec<String>,
}

/// The waiver key of a probe on an architecture.
fn waiver_key(arch: &Arch, probe: &Probe) -> String {
    format!("{}.{}", arch.name, probe.symbol)
}

/// The targets: one instruction on x86_64, never more than the peer (unless waived), raw, handle and
/// `percpu_alloc` accessors at most one instruction more than their base.
fn check_targets(
    ours: &Counts,
    peer: &Counts,
    waivers: &BTreeMap<String, String>,
    report: &mut Report,
) {
    for (index, arch) in ARCHES.iter().enumerate() {
        for probe in &PROBES {
            let count = ours[index][probe.symbol].total();
            if probe.one_on_x86 && arch.name == "x86_64" && count != 1 {
                report.failures.push(format!(
                    "x86_64 {}: {count} instructions, must be exactly 1",
                    probe.symbol
                ));
            }
            if let Some(base) = probe.at_most_one_more_than {
                let limit = ours[index][base].total() + 1;
                if count > limit {
                    report.failures.push(format!(
                        "{} {}: {count} instructions, more than {base} + 1 = {limit}",
                        arch.name, probe.symbol
                    ));
                }
            }
            let key = waiver_key(arch, probe);
            let waiver = waivers.get(&key);
            match peer[index].get(probe.symbol) {
                Some(theirs) if count > theirs.total() => {
                    let message = format!(
                        "{key}: ours {count} instructions, more than the peer's {}",
                        theirs.total()
                    );
                    match waiver {
                        Some(_) => {
                            report
                                .notes
                                .push(format!("waived in expected.toml: {message}"));
                            report.needed_waivers.push(key);
                        }
                        None => report.failures.push(message),
                    }
                }
                _ if waiver.is_some() => report.notes.push(format!(
                    "{key}: no longer more than the peer; `--bless` drops its waiver"
                )),
                _ => {}
            }
        }
    }
}

/// Our counts against the committed ones: more fails, fewer is a note.
fn check_expected(ours: &Counts, expected: &Expected, report: &mut Report) {
    for (index, arch) in ARCHES.iter().enumerate() {
        for probe in &PROBES {
            let count = ours[index][probe.symbol].total();
            match expected.count(arch, probe) {
                None => report.failures.push(format!(
                    "{} {}: no committed count; run `cargo xtask codegen --bless`",
                    arch.name, probe.symbol
                )),
                Some(committed) if count > committed => report.failures.push(format!(
                    "{} {}: {count} instructions, the committed count is {committed}",
                    arch.name, probe.symbol
                )),
                Some(committed) if count < committed => report.notes.push(format!(
                    "{} {}: {count} instructions, fewer than the committed {committed}: \
                     update with `cargo xtask codegen --bless`",
                    arch.name, probe.symbol
                )),
                Some(_) => {}
            }
        }
    }
}

/// The committed expectations: `codegen/expected.toml`, one `[architecture]` table of
/// `probe = count`, and a `[waivers]` table of `"architecture.probe" = "reason"` (the cases where ours
/// may be more instructions than the peer).
#[derive(serde::Deserialize)]
struct Expected {
    /// `architecture.probe` → why ours is more instructions than the peer there.
    #[serde(default)]
    waivers: BTreeMap<String, String>,
    /// Architecture → probe → committed count.
    #[serde(flatten)]
    counts: BTreeMap<String, BTreeMap<String, usize>>,
}

impl Expected {
    /// Parses the file.
    fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("codegen/expected.toml: {e}"))
    }

    /// The committed count of `probe` on `arch`.
    fn count(&self, arch: &Arch, probe: &Probe) -> Option<usize> {
        self.counts.get(arch.name)?.get(probe.symbol).copied()
    }

    /// The expectations for `ours`, keeping the `needed` ones of the `old` waivers.
    fn from_counts(ours: &Counts, needed: &[String], old: &BTreeMap<String, String>) -> Self {
        let counts = ARCHES.iter().zip(ours).map(|(arch, counts)| {
            let counts = counts
                .iter()
                .map(|(probe, count)| (probe.to_string(), count.total()));
            (arch.name.to_string(), counts.collect())
        });
        let mut waivers = old.clone();
        waivers.retain(|key, _| needed.contains(key));
        Expected {
            counts: counts.collect(),
            waivers,
        }
    }

    /// The file's text: comments, the counts in table order, the waivers.
    fn render(&self) -> String {
        let mut text = String::from(
            "# Committed instruction counts of `codegen/probe-ours` (final return excluded, out-of-line\n\
             # callees included): `cargo xtask codegen` fails if one grows. Rewritten by\n\
             # `cargo xtask codegen --bless`.\n",
        );
        for arch in &ARCHES {
            let _ = write!(text, "\n[{}]\n", arch.name);
            for probe in &PROBES {
                if let Some(count) = self.count(arch, probe) {
                    let _ = writeln!(text, "{} = {count}", probe.symbol);
                }
            }
        }
        text.push_str(
            "\n# Where ours may be more instructions than the peer, and why; any other case fails.\n\
             # `--bless` drops the waivers that no longer apply, and never adds one.\n[waivers]\n",
        );
        for (key, reason) in &self.waivers {
            // TOML strings, quoted and escaped as TOML requires.
            let _ = writeln!(
                text,
                "{} = {}",
                toml::Value::from(key.as_str()),
                toml::Value::from(reason.as_str())
            );
        }
        text
    }
}

/// The Markdown table of all counts, ours / peer, with the toolchains and the waivers.
fn render_table(
    ours: &Counts,
    peer: &Counts,
    waivers: &BTreeMap<&String, &String>,
) -> Result<String, String> {
    let current = output(Command::new("rustc").arg("-V"))?;
    let nightly = output(Command::new("rustc").args(["+nightly", "-V"]))?;
    let nightly_arches: Vec<&str> = ARCHES
        .iter()
        .filter(|arch| arch.nightly)
        .map(|arch| arch.name)
        .collect();
    let mut table = String::from("# Instructions per per-CPU operation: ours / `percpu` 0.4.0\n\n");
    let _ = writeln!(
        table,
        "Generated by `cargo xtask codegen` (do not edit) with `{}` (`{}` for {}), release builds \
         for the bare-metal targets, default features. Each cell counts the instructions of one \
         `#[inline(never)]` probe function (`codegen/probes.rs`), its final return excluded; \
         `n+m`: the probe calls out of line, and `m` is the size of the callees (all their \
         instructions, cold paths included). **Bold**: ours is more than the peer. `—`: the peer \
         has no such operation.\n",
        current.trim(),
        nightly.trim(),
        nightly_arches.join(", ")
    );
    table.push_str("| operation |");
    for arch in &ARCHES {
        let _ = write!(table, " {} |", arch.name);
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(ARCHES.len()));
    table.push('\n');
    let mut footnotes = Vec::new();
    for probe in &PROBES {
        // A `|` inside a cell, even in a code span, must be escaped.
        let _ = write!(table, "| {}", probe.label.replace('|', "\\|"));
        if let PeerForm::Workaround(code) = probe.peer {
            footnotes.push(format!(
                "{}: the peer lacks it; its column is a 0.4 user's {code}.",
                probe.label
            ));
            let _ = write!(table, " [{}]", footnotes.len());
        }
        table.push_str(" |");
        for index in 0..ARCHES.len() {
            let mine = ours[index][probe.symbol];
            let cell = match peer[index].get(probe.symbol) {
                Some(theirs) if mine.total() > theirs.total() => {
                    format!("**{}** / {}", mine.cell(), theirs.cell())
                }
                Some(theirs) => format!("{} / {}", mine.cell(), theirs.cell()),
                None => format!("{} / —", mine.cell()),
            };
            let _ = write!(table, " {cell} |");
        }
        table.push('\n');
    }
    table.push('\n');
    for (number, note) in footnotes.iter().enumerate() {
        let _ = writeln!(table, "[{}] {note}\n", number + 1);
    }
    if !waivers.is_empty() {
        table.push_str("Waived cases where ours is more instructions than the peer:\n\n");
        for (key, reason) in waivers {
            let _ = writeln!(table, "- `{key}`: {reason}");
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_expectations_read_and_write_back_unchanged() {
        let text = include_str!("../../codegen/expected.toml");
        let expected = Expected::parse(text).unwrap();
        assert_eq!(
            expected.count(&ARCHES[2], &PROBES[0]),
            Some(1),
            "x86_64 read_current_u8"
        );
        assert_eq!(expected.render(), text);
    }

    #[test]
    fn waivers_are_written_as_toml_strings() {
        let waivers = [("x86_64.p".to_string(), "a \"quoted\" \\ reason".to_string())].into();
        let text = Expected {
            waivers,
            counts: BTreeMap::new(),
        }
        .render();
        assert_eq!(
            Expected::parse(&text).unwrap().waivers["x86_64.p"],
            "a \"quoted\" \\ reason"
        );
    }
}
