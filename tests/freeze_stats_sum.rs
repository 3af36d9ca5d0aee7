//! Summing a statistics static freezes the areas before it reads the CPU count (an outside review: a
//! concurrent re-initialization made `sum` read outside every area). Later initialization is refused.

mod common;

use percpu::stats::{StatsCell, StatsStatic};
use percpu::{def_percpu, InitError, PerCpuStats};

#[derive(PerCpuStats, Debug)]
struct Stats {
    packets: u64,
}

#[def_percpu]
static STATS: StatsCell<Stats> = StatsCell::new();

#[test]
fn initialization_is_refused_after_a_sum() {
    let cpu_zero = common::as_cpu_zero();
    STATS.fields().packets.inc();
    // Released: the claim alone would refuse an initialization.
    drop(cpu_zero);
    assert_eq!(STATS.sum().packets, 1);
    assert_eq!(common::init_again(), Err(InitError::InUse));
}
