//! Generates the kernel's linker script.
//!
//! `link/<target_arch>.ld` describes the memory layout of one architecture and
//! carries a line `/* @PERCPU_SECTION@ */` where the standard `.percpu` snippet
//! of the percpu crate (`percpu/percpu.x`, the text its README tells kernel
//! authors to paste) is spliced in, exactly as a kernel author would do by hand.
//! The script also defines `CPU_NUM`, the number of per-CPU areas reserved in
//! the image; it is passed on to the kernel as `PERCPU_KERNEL_CPU_NUM` so that
//! the kernel can check what `percpu::init_in_place()` reports.
//!
//! With the `non-zero-vma` feature the section is linked at a non-zero address
//! ([`NON_ZERO_VMA`]) instead of `0x0`; the address is passed on as
//! `PERCPU_KERNEL_PERCPU_VMA` (0 without the feature).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// The line of `link/<arch>.ld` replaced by the contents of `percpu.x`.
const MARKER: &str = "/* @PERCPU_SECTION@ */";

/// The section header in `percpu.x` whose address `non-zero-vma` replaces.
const ZERO_VMA_HEADER: &str = ".percpu 0x0 :";

/// The address at which the `.percpu` section is linked with `non-zero-vma`.
///
/// With that feature percpu reaches a variable's link-time address with
/// 32-bit absolute or PC-relative forms, so the address stays below 2 GiB
/// (sign-extended 32-bit immediates) and within 2 GiB of the kernel code.
/// It overlaps none of the kernel images, which are linked at 0x100_0000
/// (x86_64, loongarch64: above the `.percpu` section's own range at address 0,
/// `CPU_NUM` areas), 0x4020_0000 (aarch64) and 0x8020_0000 (riscv64), and
/// nothing is loaded there: the section's contents are loaded at
/// `_percpu_start` inside the image.
const NON_ZERO_VMA: u64 = 0x2000_0000;

fn main() {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("CARGO_CFG_TARGET_ARCH not set");
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("no manifest dir"));
    let script_path = manifest_dir.join("link").join(format!("{arch}.ld"));
    let snippet_path = manifest_dir.join("../../percpu/percpu.x");
    println!("cargo:rerun-if-changed={}", script_path.display());
    println!("cargo:rerun-if-changed={}", snippet_path.display());

    let script = read(&script_path);
    let mut snippet = read(&snippet_path);
    let mut vma = 0;
    if env::var_os("CARGO_FEATURE_NON_ZERO_VMA").is_some() {
        assert!(
            snippet.contains(ZERO_VMA_HEADER),
            "{} has no `{ZERO_VMA_HEADER}` to relocate for `non-zero-vma`",
            snippet_path.display()
        );
        vma = NON_ZERO_VMA;
        let header = format!(".percpu {vma:#x} :");
        snippet = snippet.replace(ZERO_VMA_HEADER, &header);
    }

    let mut spliced = String::new();
    let mut found = false;
    for line in script.lines() {
        if line.trim() == MARKER {
            spliced.push_str(&snippet);
            found = true;
        } else {
            spliced.push_str(line);
        }
        spliced.push('\n');
    }
    assert!(found, "{} has no line `{MARKER}`", script_path.display());

    let cpu_num = cpu_num(&script)
        .unwrap_or_else(|| panic!("{} does not define `CPU_NUM = <n>;`", script_path.display()));
    println!("cargo:rustc-env=PERCPU_KERNEL_CPU_NUM={cpu_num}");
    println!("cargo:rustc-env=PERCPU_KERNEL_PERCPU_VMA={vma}");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR not set")).join("kernel.ld");
    fs::write(&out, spliced).unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    println!("cargo:rustc-link-arg=-T{}", out.display());
}

/// Reads a text file, panicking with its path on error.
fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Finds the value of the `CPU_NUM = <n>;` assignment of a linker script.
fn cpu_num(script: &str) -> Option<usize> {
    script.lines().find_map(|line| {
        let value = line.trim().strip_prefix("CPU_NUM")?.trim_start();
        value
            .strip_prefix('=')?
            .trim()
            .strip_suffix(';')?
            .trim()
            .parse()
            .ok()
    })
}
