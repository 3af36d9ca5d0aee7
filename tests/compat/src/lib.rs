//! Per-CPU variables of a program that uses `percpu` under another name (the tests link it with a
//! 0.4-style linker script).

use per_cpu::def_percpu;

/// A per-CPU counter.
#[def_percpu]
pub static EVENTS: u64 = 10;

/// A per-CPU name.
#[def_percpu]
pub static NAME: [u8; 4] = *b"none";
