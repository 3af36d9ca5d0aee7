#[percpu::def_percpu]
#[unsafe(link_section = ".data")]
static COUNTER: u64 = 0;

fn main() {}
