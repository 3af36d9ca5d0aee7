//! The benchmarks of `benches/access.rs` for crates.io `percpu` 0.4.0, in the same groups, so that
//! `cargo xtask bench` can compare them: a static per-CPU `u64` read, written and incremented by this
//! thread acting as CPU 0, and `percpu::init` of 4 areas. The implementation is `percpu-0.4`, or
//! `percpu-0.4-sp-naive` with the `sp-naive` feature (which has no areas to initialize).
//!
//! 0.4 has no `add_current`: `add_u64` measures what its users write instead,
//! `with_current(|v| *v += x)`.

#[path = "../../shared/mod.rs"]
mod shared;

use std::hint::black_box;

use criterion::Criterion;
use shared::{access_group, batched, COUNTER};

/// The benchmarks' implementation name.
const ID: &str = if cfg!(feature = "sp-naive") {
    "percpu-0.4-sp-naive"
} else {
    "percpu-0.4"
};

/// `read_u64`, `write_u64` and `add_u64`.
fn access(c: &mut Criterion) {
    let mut group = access_group(c, "read_u64");
    batched(&mut group, ID, (), |(), _| {
        black_box(COUNTER.read_current());
    });
    group.finish();

    let mut group = access_group(c, "write_u64");
    batched(&mut group, ID, (), |(), i| COUNTER.write_current(i));
    group.finish();

    let mut group = access_group(c, "add_u64");
    batched(&mut group, ID, (), |(), i| {
        COUNTER.with_current(|value| *value = value.wrapping_add(i))
    });
    group.finish();
}

fn main() {
    let (base, _) = shared::become_cpu0();
    let mut c = shared::criterion();
    access(&mut c);
    if !cfg!(feature = "sp-naive") {
        let mut group = c.benchmark_group("init_4_areas");
        shared::init(&mut group, ID, base);
        group.finish();
    }
    c.final_summary();
}
