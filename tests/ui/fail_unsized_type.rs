#[percpu::def_percpu]
static NAME: str = *"cpu";

#[percpu::def_percpu]
static LIST: [u8] = [];

fn main() {}
