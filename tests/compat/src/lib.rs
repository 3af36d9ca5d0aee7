//! Per-CPU variables of a program that uses `percpu` under another name (the tests link it with a
//! 0.4-style linker script). `#[def_percpu]` reaches it through `crate = per_cpu`, or, as with 0.4,
//! through a `use` that names it `percpu`.

use per_cpu::def_percpu;

/// A per-CPU counter.
#[def_percpu(crate = per_cpu)]
pub static EVENTS: u64 = 10;

mod aliased {
    // What a 0.4 user of a renamed dependency writes.
    use per_cpu as percpu;

    /// A per-CPU name.
    #[percpu::def_percpu]
    pub static NAME: [u8; 4] = *b"none";
}

pub use aliased::NAME;
