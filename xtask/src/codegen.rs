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
//! - ours is never more instructions than the peer, except the waivers listed in `expected.toml`;
//! - on x86_64, a static's `read_current`, `write_current`, `add_current`, `and_current`,
//!   `or_current` and `xor_current` are one instruction each;
//! - a probe is at most one instruction more than its base: the `percpu::raw` accessors (VMA in a
//!   register) than the static's, those loading the VMA from a handle than the `raw` ones, the
//!   run-time allocated `percpu_alloc` handles, by reference, than the static's.
//!
//! The table goes to standard output, to `codegen/table.md` and into the README.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;

use crate::arches::{Arch, ARCHES};
use crate::install::{self, Toolchain};
use crate::process::{self, output};

/// Every probe in table order, by groups: the symbols as a pattern (`{a,b}_c` is `a_c` then `b_c`,
/// the first braces varying slowest), then the label and the base (the probe it is at most one
/// instruction more than) where [`RULES`] do not give them.
#[rustfmt::skip]
const GROUPS: [(&str, &str, &str); 16] = [
    ("{read,write}_current_{u8,u32,u64,bool}", "", ""),
    ("add_current_u64", "", ""),
    ("with_current_inc_u64", "`with_current(|v| *v += 1)` u64", ""),
    ("current_ptr_u64", "", ""),
    ("remote_ptr_u64", "`remote_ptr(cpu)` u64", ""),
    ("{raw,handle,percpu_alloc}_{read,write,add}_current_u64", "", ""),
    ("percpu_counter_add", "`percpu_alloc::PerCpuCounter::add`, counter by `&`", "add_current_u64"),
    ("{fetch_add,xchg,cmpxchg,and,or,xor}_current_u8", "", ""),
    ("{fetch_add,xchg,cmpxchg,and,or,xor}_current_u32", "", ""),
    ("{fetch_add,xchg,cmpxchg,and,or,xor}_current_u64", "", ""),
    ("cmpxchg_current_bool", "", ""),
    ("{raw,percpu_alloc}_{fetch_add,xchg,cmpxchg,and,or,xor}_current_u64", "", ""),
    ("batched_counter_add", "`percpu_alloc::BatchedCounter::add`, counter by `&`", ""),
    ("batched_counter_read", "`percpu_alloc::BatchedCounter::read`, counter by `&`", ""),
    ("stats_static_add", "statistics field `add` (u64 at offset 8), `#[def_percpu]` static", ""),
    ("stats_handle_add", "statistics field `add` (u64 at offset 8), `percpu_alloc::PerCpuStats` by `&`", "add_current_u64"),
];

/// The naming rules of a symbol `<prefix><op>_<type>`: prefix, then the label and the base with
/// `{op}` and `{ty}` replaced; the first matching prefix applies.
#[rustfmt::skip]
const RULES: [(&str, &str, &str); 4] = [
    ("raw_", "`raw::{op}` {ty}, VMA in a register", "{op}_{ty}"),
    ("handle_", "`raw::{op}` {ty}, VMA loaded from `&usize`", "raw_{op}_{ty}"),
    ("percpu_alloc_", "`percpu_alloc::PerCpuCell<{ty}>::{op}`, handle by `&`", "{op}_{ty}"),
    ("", "`{op}` {ty}", ""),
];

/// The probes that the peer lacks but a 0.4 user writes otherwise: its probe is that code.
const WORKAROUNDS: [(&str, &str); 1] = [("add_current_u64", "`with_current(|v| *v += x)`")];

/// One probe function: one operation.
struct Probe {
    /// The `#[no_mangle]` function name, and the key in `expected.toml`.
    symbol: String,
    /// The row label of the table.
    label: String,
    /// The probe it must be at most one instruction more than.
    base: Option<String>,
    /// Whether the peer has it: `codegen/probes.rs` names it, or it is one of [`WORKAROUNDS`].
    in_peer: bool,
    /// Must be exactly one instruction on x86_64.
    one_on_x86: bool,
}

/// Every probe, in table order.
static PROBES: LazyLock<Vec<Probe>> = LazyLock::new(|| {
    let shared: BTreeSet<&str> = include_str!("../../codegen/probes.rs")
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .collect();
    let mut probes = Vec::new();
    for (pattern, label, base) in GROUPS {
        for symbol in expand(pattern) {
            let (name, ty) = symbol.rsplit_once('_').unwrap_or((&symbol, ""));
            let rule = RULES.iter().find(|rule| name.starts_with(rule.0)).unwrap();
            let op = &name[rule.0.len()..];
            let or_rule = |given: &str, rule: &str| match given {
                "" => rule.replace("{op}", op).replace("{ty}", ty),
                given => given.to_string(),
            };
            let simple = ["read", "write", "add", "and", "or", "xor"];
            let simple = op
                .strip_suffix("_current")
                .is_some_and(|op| simple.contains(&op));
            probes.push(Probe {
                label: or_rule(label, rule.1),
                base: Some(or_rule(base, rule.2)).filter(|base| !base.is_empty()),
                in_peer: shared.contains(&*symbol) || WORKAROUNDS.iter().any(|w| w.0 == symbol),
                one_on_x86: simple && rule.0.is_empty(),
                symbol,
            });
        }
    }
    probes
});

/// The symbols of a pattern: each `{a,b}` is `a`, then `b`; the first braces vary slowest.
fn expand(pattern: &str) -> Vec<String> {
    let Some((head, rest)) = pattern.split_once('{') else {
        return vec![pattern.to_string()];
    };
    let (alternatives, tail) = rest.split_once('}').expect("`{` closed by `}`");
    let expand_one = |alternative| expand(&format!("{head}{alternative}{tail}"));
    alternatives.split(',').flat_map(expand_one).collect()
}

/// The instruction count of one probe, final returns excluded.
#[derive(Clone, Copy)]
struct Count {
    /// The probe's own instructions.
    own: usize,
    /// The instructions of the functions it calls out of line.
    callees: usize,
}

impl Count {
    /// All instructions charged to the operation.
    fn total(self) -> usize {
        self.own + self.callees
    }

    /// The table cell: `own`, or `own+callees`.
    fn cell(self) -> String {
        match self.callees {
            0 => self.own.to_string(),
            callees => format!("{}+{callees}", self.own),
        }
    }
}

/// Counts per runtime: `[architecture index][probe symbol]`.
type Counts = Vec<BTreeMap<&'static str, Count>>;

/// Entry point: builds, counts, prints and writes the table, checks; `--bless` rewrites the
/// expectations instead of checking against them.
pub fn run(root: &Path, bless: bool) -> Result<(), String> {
    let libdir = output(Command::new("rustc").args(["--print", "target-libdir"]))?;
    // `<sysroot>/lib/rustlib/<host>/bin/llvm-objdump`, of rustup's component `llvm-tools`.
    let objdump = Path::new(libdir.trim()).with_file_name("bin/llvm-objdump");
    if !objdump.exists() {
        process::run(Command::new("rustup").args(["component", "add", "llvm-tools"]))?;
    }
    let (mut ours, mut peer) = (Counts::new(), Counts::new());
    for arch in &ARCHES {
        let toolchain = install::ensure_target(arch)?;
        ours.push(count(root, &objdump, arch, toolchain, false)?);
        peer.push(count(root, &objdump, arch, toolchain, true)?);
    }

    let path = root.join("codegen/expected.toml");
    let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {path:?}: {e}"))?;
    let mut expected: Expected = toml::from_str(&text).map_err(|e| format!("{path:?}: {e}"))?;
    let report = check(&ours, &peer, &mut expected, bless);
    if bless {
        for (arch, ours) in ARCHES.iter().zip(&ours) {
            let counts = ours.iter().map(|(p, count)| (p.to_string(), count.total()));
            expected.counts.insert(arch.name.into(), counts.collect());
        }
        fs::write(&path, expected.render()).map_err(|e| format!("cannot write {path:?}: {e}"))?;
        println!("blessed {}", path.display());
    }

    let table = render_table(&ours, &peer, &expected.waivers)?;
    print!("{table}");
    fs::write(root.join("codegen/table.md"), &table)
        .map_err(|e| format!("cannot write codegen/table.md: {e}"))?;
    // The README shows the table itself, without the title and the introduction.
    let body = &table[table.find("| operation").unwrap_or(0)..];
    crate::readme::update(root, "codegen-table", body)?;
    for note in &report.notes {
        println!("note: {note}");
    }
    if report.failures.is_empty() {
        println!("codegen: all checks passed");
        return Ok(());
    }
    let (number, failures) = (report.failures.len(), report.failures.join("\n  "));
    Err(format!("codegen: {number} check(s) failed:\n  {failures}"))
}

/// Builds `probe-ours` (or, with `peer`, `probe-peer`) for `arch`, and counts its probes.
fn count(
    root: &Path,
    objdump: &Path,
    arch: &Arch,
    toolchain: Toolchain,
    peer: bool,
) -> Result<BTreeMap<&'static str, Count>, String> {
    let name = if peer { "probe-peer" } else { "probe-ours" };
    let target_dir = root.join("target/codegen").join(name);
    let mut cargo = Command::new("cargo");
    if arch.nightly {
        cargo.arg("+nightly");
    }
    let manifest = root.join("codegen").join(name).join("Cargo.toml");
    cargo.args(["build", "--quiet", "--release", "--target", arch.target]);
    cargo.arg("--manifest-path").arg(manifest);
    cargo.arg("--target-dir").arg(&target_dir);
    if toolchain == Toolchain::BuildStd {
        // `percpu_alloc` (a dependency of `probe-ours`) needs `alloc` as well.
        cargo.arg("-Zbuild-std=core,alloc");
    }
    process::run(&mut cargo)?;

    let out_dir = target_dir.join(arch.target).join("release");
    let rlib = out_dir.join(format!("lib{}.rlib", name.replace('-', "_")));
    let probes = disassemble(objdump, &[rlib])?;
    // The functions that the probes call, in the probe crate itself or its dependencies.
    let deps = fs::read_dir(out_dir.join("deps")).map_err(|e| format!("{out_dir:?}: {e}"))?;
    let paths = deps.filter_map(|entry| Some(entry.ok()?.path()));
    let is_rlib = |path: &PathBuf| path.extension() == Some("rlib".as_ref());
    let deps = disassemble(objdump, &paths.filter(is_rlib).collect::<Vec<_>>())?;
    let missing = |symbol: &str| format!("{name} for {}: no function `{symbol}`", arch.target);
    let mut counts = BTreeMap::new();
    for probe in PROBES.iter().filter(|probe| probe.in_peer || !peer) {
        let symbol = probe.symbol.as_str();
        let body = probes.get(symbol).ok_or_else(|| missing(symbol))?;
        let mut callees = 0;
        for callee in &body.calls {
            callees += deps.get(callee).ok_or_else(|| missing(callee))?.size();
        }
        let own = body.size();
        counts.insert(symbol, Count { own, callees });
    }
    Ok(counts)
}

/// A disassembled function.
#[derive(Clone, Default)]
struct Function {
    /// Its instructions, whitespace collapsed (`addq %rdi, %gs:0x0`), cold paths included.
    insns: Vec<String>,
    /// The functions it calls or tail-calls, from their relocations.
    calls: BTreeSet<String>,
}

impl Function {
    /// The number of instructions, the final return excluded.
    fn size(&self) -> usize {
        let last = self.insns.last().map_or("", String::as_str);
        let ret = matches!(
            last,
            "ret" | "retq" | "jr ra" | "jalr zero, 0(ra)" | "jirl $zero, $ra, 0"
        );
        self.insns.len() - usize::from(ret)
    }
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

/// Disassembles `files` (with relocations); returns every function by each of its symbols, the
/// first definition winning.
///
/// Whole files, never `--disassemble-symbols`: that option ends a function at the next label, and
/// riscv64 code is full of `.Lpcrel_hi` labels. With `--show-all-symbols`, the aliases that LLVM's
/// function merging makes of identical functions (e.g. `percpu_alloc_read_current_u64` of
/// `handle_read_current_u64`) head the code one after the other.
fn disassemble(objdump: &Path, files: &[PathBuf]) -> Result<BTreeMap<String, Function>, String> {
    // `--disassemble --reloc`, all symbols, no instruction bytes.
    let args = ["-d", "-r", "--show-all-symbols", "--no-show-raw-insn"];
    let listing = output(Command::new(objdump).args(args).args(files))?;
    // Every function with all its names, in listing order.
    let mut found: Vec<(Vec<&str>, Function)> = Vec::new();
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let is_hex = |word: &str| u64::from_str_radix(word, 16).is_ok();
        let address = |word: &str| word.strip_suffix(':').is_some_and(is_hex);
        let current = found.last_mut();
        match words[..] {
            // `0000000000000000 <name>:`; `.L` labels and `$x` mapping symbols are inside a function.
            [at, name] if is_hex(at) && name.starts_with('<') && name.ends_with(">:") => {
                let name = &name[1..name.len() - 2];
                match current {
                    _ if name.starts_with(['.', '$']) => {}
                    Some((names, function)) if function.insns.is_empty() => names.push(name),
                    _ => found.push((vec![name], Function::default())),
                }
            }
            // A relocation of the last instruction: `1c: R_TYPE symbol+addend`.
            [at, kind, ref symbol @ ..] if address(at) && kind.starts_with("R_") => {
                let (Some((_, function)), Some(symbol)) = (current, symbol.first()) else {
                    continue;
                };
                let last = function.insns.last().map_or("", String::as_str);
                let by_mnemonic = last.starts_with("call") || last.starts_with("jmp");
                if by_mnemonic || CALL_RELOCATIONS.contains(&kind) {
                    let callee = symbol.split(['+', '-']).next().unwrap_or(symbol);
                    function.calls.insert(callee.to_string());
                }
            }
            // An instruction: `1c: mnemonic operands`.
            [at, mnemonic, ..] if address(at) && mnemonic != "..." => {
                if let Some((_, function)) = current {
                    function.insns.push(words[1..].join(" "));
                }
            }
            _ => {}
        }
    }
    // Collected backwards, so that the first definition of a name wins.
    let named = found.into_iter().rev().flat_map(|(names, function)| {
        names
            .into_iter()
            .map(move |name| (name.to_string(), function.clone()))
    });
    Ok(named.collect())
}

/// What the checks found.
#[derive(Default)]
struct Report {
    /// Failed checks.
    failures: Vec<String>,
    /// Remarks that do not fail the command.
    notes: Vec<String>,
}

/// The checks of the module documentation (with `bless`, all but the committed counts); drops the
/// waivers whose case no longer occurs.
fn check(ours: &Counts, peer: &Counts, expected: &mut Expected, bless: bool) -> Report {
    let mut report = Report::default();
    let (failures, notes) = (&mut report.failures, &mut report.notes);
    let mut needed = BTreeSet::new();
    for (index, arch) in ARCHES.iter().enumerate() {
        for probe in PROBES.iter() {
            let key = format!("{}.{}", arch.name, probe.symbol);
            let count = ours[index][probe.symbol.as_str()].total();
            let finding = |what: String| format!("{key}: {count} instructions, {what}");
            if probe.one_on_x86 && arch.name == "x86_64" && count != 1 {
                failures.push(finding("must be exactly 1".into()));
            }
            if let Some(base) = &probe.base {
                let limit = ours[index][base.as_str()].total() + 1;
                if count > limit {
                    failures.push(finding(format!("more than {base} + 1 = {limit}")));
                }
            }
            let bless_hint = "`cargo xtask codegen --bless`";
            match expected.count(arch, probe) {
                _ if bless => {}
                None => failures.push(format!("{key}: no committed count; run {bless_hint}")),
                Some(committed) if count > committed => {
                    failures.push(finding(format!("the committed count is {committed}")));
                }
                Some(committed) if count < committed => notes.push(finding(format!(
                    "fewer than the committed {committed}: update with {bless_hint}"
                ))),
                Some(_) => {}
            }
            let waived = expected.waivers.contains_key(&key);
            match peer[index].get(probe.symbol.as_str()) {
                Some(theirs) if count > theirs.total() => {
                    let message = finding(format!("more than the peer's {}", theirs.total()));
                    if waived {
                        notes.push(format!("waived in expected.toml: {message}"));
                        needed.insert(key);
                    } else {
                        failures.push(message);
                    }
                }
                _ if waived => notes.push(format!(
                    "{key}: no longer more than the peer; `--bless` drops its waiver"
                )),
                _ => {}
            }
        }
    }
    expected.waivers.retain(|key, _| needed.contains(key));
    report
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
    /// The committed count of `probe` on `arch`.
    fn count(&self, arch: &Arch, probe: &Probe) -> Option<usize> {
        self.counts.get(arch.name)?.get(&probe.symbol).copied()
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
            for probe in PROBES.iter() {
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
            let (key, reason) = (toml::Value::from(&**key), toml::Value::from(&**reason));
            let _ = writeln!(text, "{key} = {reason}");
        }
        text
    }
}

/// The Markdown table of all counts, ours / peer, with the toolchains and the waivers.
fn render_table(
    ours: &Counts,
    peer: &Counts,
    waivers: &BTreeMap<String, String>,
) -> Result<String, String> {
    let current = output(Command::new("rustc").arg("-V"))?;
    let nightly = output(Command::new("rustc").args(["+nightly", "-V"]))?;
    let nightly_arches = ARCHES.iter().filter(|arch| arch.nightly);
    let nightly_arches: Vec<&str> = nightly_arches.map(|arch| arch.name).collect();
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
    let names = ARCHES.map(|arch| arch.name).join(" | ");
    let rule = "---|".repeat(ARCHES.len());
    let _ = writeln!(table, "| operation | {names} |\n|---|{rule}");
    let mut footnotes = Vec::new();
    for probe in PROBES.iter() {
        // A `|` inside a cell, even in a code span, must be escaped.
        let _ = write!(table, "| {}", probe.label.replace('|', "\\|"));
        if let Some((_, code)) = WORKAROUNDS.iter().find(|w| w.0 == probe.symbol) {
            let label = &probe.label;
            footnotes.push(format!(
                "{label}: the peer lacks it; its column is a 0.4 user's {code}."
            ));
            let _ = write!(table, " [{}]", footnotes.len());
        }
        table.push_str(" |");
        for (ours, peer) in ours.iter().zip(peer) {
            let (mine, theirs) = (ours[probe.symbol.as_str()], peer.get(probe.symbol.as_str()));
            let bold = theirs.is_some_and(|theirs| mine.total() > theirs.total());
            let stars = if bold { "**" } else { "" };
            let theirs = theirs.map_or("—".into(), |theirs| theirs.cell());
            let _ = write!(table, " {stars}{}{stars} / {theirs} |", mine.cell());
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
        let expected: Expected = toml::from_str(text).unwrap();
        let read_current_u8 = expected.count(&ARCHES[2], &PROBES[0]);
        assert_eq!(read_current_u8, Some(1), "x86_64 read_current_u8");
        assert_eq!(expected.render(), text);
    }

    #[test]
    fn waivers_are_written_as_toml_strings() {
        let reason = "a \"quoted\" \\ reason".to_string();
        let waivers = [("x86_64.p".to_string(), reason.clone())].into();
        let counts = BTreeMap::new();
        let text = Expected { waivers, counts }.render();
        let parsed: Expected = toml::from_str(&text).unwrap();
        assert_eq!(parsed.waivers["x86_64.p"], reason);
    }

    #[test]
    fn the_probes_follow_from_their_names() {
        let symbols: BTreeSet<&str> = PROBES.iter().map(|p| p.symbol.as_str()).collect();
        assert_eq!((PROBES.len(), symbols.len()), (57, 57));
        let mut bases = PROBES.iter().flat_map(|p| &p.base);
        assert!(bases.all(|base| symbols.contains(&**base)));
        // Symbol, base, in the peer, one instruction on x86_64.
        #[rustfmt::skip]
        const CASES: [(&str, Option<&str>, bool, bool); 10] = [
            ("read_current_bool", None, true, true),
            ("add_current_u64", None, true, true),
            ("remote_ptr_u64", None, true, false),
            ("xchg_current_u8", None, false, false),
            ("xor_current_u32", None, false, true),
            ("raw_and_current_u64", Some("and_current_u64"), false, false),
            ("handle_add_current_u64", Some("raw_add_current_u64"), false, false),
            ("percpu_alloc_xchg_current_u64", Some("xchg_current_u64"), false, false),
            ("stats_handle_add", Some("add_current_u64"), false, false),
            ("batched_counter_add", None, false, false),
        ];
        for (symbol, base, in_peer, one_on_x86) in CASES {
            let p = PROBES.iter().find(|p| p.symbol == symbol).unwrap();
            let derived = (p.base.as_deref(), p.in_peer, p.one_on_x86);
            assert_eq!(derived, (base, in_peer, one_on_x86), "{symbol}");
        }

        // The labels are those of the committed table, in its order.
        let is_row = |line: &&str| line.starts_with("| ") && !line.starts_with("| operation");
        let rows = include_str!("../../codegen/table.md")
            .lines()
            .filter(is_row);
        let labels = rows.map(|row| row[2..].split_once(" |").unwrap().0);
        let labels = labels.map(|label| label.trim_end_matches(" [1]"));
        assert!(labels.eq(PROBES.iter().map(|p| p.label.replace('|', "\\|"))));
    }
}
