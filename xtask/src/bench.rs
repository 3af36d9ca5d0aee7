//! `cargo xtask bench [--no-run]`: runs the host benchmarks (`benches/access.rs` for this repository's
//! `percpu`, `benches/peer` twice for crates.io `percpu` 0.4: `non-zero-vma` and `sp-naive`), then
//! writes `benches/results.md` (median ns per operation, ratio to the reference, the machine) and the
//! bar chart `benches/results.png`. `--no-run` only rewrites both from the existing criterion results.

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
const IMPLEMENTATIONS: [Implementation; 8] = [
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

/// Medians in ns per operation: `[operation][implementation]`, `None` where not measured.
type Medians = Vec<Vec<Option<f64>>>;

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
    let accesses = medians(root, &ACCESSES)?;
    let init = medians(root, &INIT)?;

    let results = root.join("benches/results.md");
    let report = render_report(&machine()?, &accesses, &init);
    fs::write(&results, &report).map_err(|e| format!("cannot write {}: {e}", results.display()))?;
    let chart = root.join("benches/results.png");
    fs::write(&chart, draw_chart(&accesses, &init))
        .map_err(|e| format!("cannot write {}: {e}", chart.display()))?;
    print!("{report}");
    println!("wrote {} and {}", results.display(), chart.display());
    Ok(())
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

/// Reads criterion's median (ns per iteration) of every implementation of `operations`, per operation
/// when the group declared a throughput in elements (the batch).
fn medians(root: &Path, operations: &[Operation]) -> Result<Medians, String> {
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
                    let median =
                        json_number_after(&estimates, &["\"median\"", "\"point_estimate\""])
                            .ok_or_else(|| format!("no median in {}", dir.display()))?;
                    let benchmark = fs::read_to_string(dir.join("benchmark.json"))
                        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
                    let batch = json_number_after(&benchmark, &["\"Elements\""]).unwrap_or(1.0);
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
fn render_report(machine: &str, accesses: &Medians, init: &Medians) -> String {
    let mut report = String::from("# Host benchmarks: per-CPU accesses\n\n");
    let _ = writeln!(
        report,
        "Generated by `cargo xtask bench` (do not edit): {machine}. Medians of criterion's \
         estimates, with this thread acting as CPU 0. Access operations: ns per operation, measured \
         in batches of 100 (the loop and the `black_box` of each operand included), and the ratio to \
         `thread_local!`. `init`: ns per call, and the ratio to copying the same bytes. Plot: \
         `results.png`.\n"
    );
    render_table(&mut report, &ACCESSES, accesses);
    report.push_str(
        "\n`percpu` 0.4 has no `add_current`: its `add u64` is what its users write, \
         `with_current(|v| *v += x)`; `AtomicU64` adds with `fetch_add` (a locked instruction).\n\n",
    );
    render_table(&mut report, &INIT, init);
    report
}

/// One Markdown table: a row per implementation measured in `operations`.
fn render_table(report: &mut String, operations: &[Operation], medians: &Medians) {
    report.push_str("| implementation |");
    for operation in operations {
        let _ = write!(report, " {} |", operation.label);
    }
    report.push_str("\n|---|");
    report.push_str(&"---|".repeat(operations.len()));
    report.push('\n');
    for (index, implementation) in IMPLEMENTATIONS.iter().enumerate() {
        if medians.iter().all(|row| row[index].is_none()) {
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

/// The chart: the access operations on the left, `init` on the right (each with its own scale), a
/// legend below; encoded as a PNG.
fn draw_chart(accesses: &Medians, init: &Medians) -> Vec<u8> {
    let mut canvas = Canvas::new(1200, 480);
    draw_panel(
        &mut canvas,
        (70, 40, 820, 330),
        "ns per operation (median)",
        &ACCESSES,
        accesses,
    );
    draw_panel(&mut canvas, (960, 40, 200, 330), "ns per call", &INIT, init);

    // The legend: a colour box and a name per implementation, wrapped.
    let (mut x, mut y) = (70, 425);
    for (index, implementation) in IMPLEMENTATIONS.iter().enumerate() {
        let width = 16 + text_width(implementation.legend, 2) + 24;
        if x + width > canvas.width - 20 {
            (x, y) = (70, y + 24);
        }
        canvas.fill(x, y, 12, 12, SERIES + index as u8);
        canvas.text(x + 18, y - 1, implementation.legend, BLACK, 2);
        x += width;
    }
    canvas.png()
}

/// One panel at `(x, y, width, height)`: y axis with grid and ticks, a group of bars per operation
/// with the value above each bar, the operation's name below.
fn draw_panel(
    canvas: &mut Canvas,
    (x, y, width, height): (usize, usize, usize, usize),
    title: &str,
    operations: &[Operation],
    medians: &Medians,
) {
    canvas.text(x, y - 30, title, BLACK, 2);
    let max = medians
        .iter()
        .flatten()
        .flatten()
        .fold(0.0f64, |a, &b| a.max(b));
    let step = nice_step(max / 5.0);
    let top = (max / step).ceil().max(1.0) * step;
    let bottom = y + height;
    let scale = |value: f64| (value / top * height as f64).round() as usize;
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let at = bottom - scale(tick);
        canvas.fill(x, at, width, 1, GRID);
        let label = format!("{tick:.decimals$}");
        canvas.text(x - 6 - text_width(&label, 1), at - 3, &label, BLACK, 1);
        tick += step;
    }
    canvas.fill(x, y, 1, height + 1, BLACK);
    canvas.fill(x, bottom, width, 1, BLACK);

    let group_width = width / operations.len();
    for (index, (operation, row)) in operations.iter().zip(medians).enumerate() {
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
        let label_x = center.saturating_sub(text_width(operation.label, 2) / 2);
        canvas.text(label_x, bottom + 8, operation.label, BLACK, 2);
    }
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
