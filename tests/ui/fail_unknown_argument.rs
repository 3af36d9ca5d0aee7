#[percpu::def_percpu(align = 64)]
static COUNTER: u64 = 0;

fn main() {}
