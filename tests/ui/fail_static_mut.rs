#[percpu::def_percpu]
static mut COUNTER: u64 = 0;

fn main() {}
