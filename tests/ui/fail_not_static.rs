#[percpu::def_percpu]
fn counter() -> u64 {
    0
}

fn main() {}
