// A field borrows the run-time allocated copies it designates: it cannot outlive them.
#[derive(percpu::PerCpuStats)]
pub struct NetStats {
    pub rx_packets: u64,
}

fn main() {
    let field = {
        let stats = percpu_alloc::PerCpuStats::<NetStats>::new().unwrap();
        stats.fields().rx_packets
    };
    field.inc();
}
