//! Instruction-count probes of crates.io `percpu` 0.4.0, disassembled by `cargo xtask codegen`.
//! Never run: only compiled for the bare-metal targets.
#![no_std]

include!("../../probes.rs");

/// What a `percpu` 0.4 user writes for `add_current`, which 0.4 lacks: `with_current(|v| *v += value)`.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn add_current_u64(value: u64) {
    U64.with_current(|current| *current += value)
}
