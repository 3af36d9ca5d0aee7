// A `StatsCell` lends no reference that another CPU or an interrupt handler could share while the
// owner's field operations change the copy: neither `remote(cpu)` nor `get` through a `PreemptGuard`.
use percpu::checked::PreemptGuard;
use percpu::stats::StatsCell;

#[derive(percpu::PerCpuStats)]
pub struct NetStats {
    pub rx_packets: u64,
}

#[percpu::def_percpu]
static NET: StatsCell<NetStats> = StatsCell::new();

fn main() {
    let _ = NET.remote(1);
    let guard = PreemptGuard::new();
    let _ = NET.get(&guard);
}
