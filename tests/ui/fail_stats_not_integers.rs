// A statistics struct is a plain struct of integer fields: no other field type, no generics, no enum.
#[derive(percpu::PerCpuStats)]
pub struct WithFloat {
    pub rx_packets: u64,
    pub load: f64,
}

#[derive(percpu::PerCpuStats)]
pub struct Generic<T> {
    pub rx_packets: T,
}

#[derive(percpu::PerCpuStats)]
pub struct Tuple(u64);

#[derive(percpu::PerCpuStats)]
pub enum Kind {
    Rx,
}

#[derive(percpu::PerCpuStats)]
#[percpu_stats(krate = percpu)]
pub struct BadArgument {
    pub rx_packets: u64,
}

fn main() {}
