// `#[derive(PerCpuStats)]` in a crate that denies missing documentation, through a re-export of the
// runtime, with `#[cfg]` and documented fields.
#![deny(missing_docs)]
//! A crate.

mod reexport {
    pub use percpu as rt;
}

/// Statistics.
#[derive(percpu::PerCpuStats)]
#[percpu_stats(crate = crate::reexport::rt)]
pub struct Stats {
    /// Packets.
    pub rx_packets: u64,
    #[cfg(any())]
    pub absent: u64,
    pub(crate) errors: u8,
    private: i32,
}

#[percpu::def_percpu]
static STATS: percpu::stats::StatsCell<Stats> = percpu::stats::StatsCell::new();

fn main() {
    use percpu::stats::StatsStatic;
    let fields: StatsFields<'static> = STATS.fields();
    let _ = (fields.rx_packets, fields.errors, fields.private);
    let _ = Stats { rx_packets: 0, errors: 0, private: 0 };
}
