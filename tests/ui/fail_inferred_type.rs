#[percpu::def_percpu]
static COUNTER: _ = 0u64;

fn main() {}
