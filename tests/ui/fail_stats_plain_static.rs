// A per-CPU static of the plain statistics struct is reference-like (`get` lends `&NetStats`): it has
// no field operations, which would mutate the copy under that reference. They come with a static of
// `StatsCell<NetStats>`, which lends nothing.
use percpu::stats::StatsStatic;

#[derive(percpu::PerCpuStats)]
pub struct NetStats {
    pub rx_packets: u64,
}

#[percpu::def_percpu]
static NET: NetStats = NetStats { rx_packets: 0 };

fn main() {
    NET.fields().rx_packets.inc();
}
