// `static mut` is accepted (as percpu 0.4 does) with a warning that `mut` has no effect; denied here to
// show it.
#![deny(deprecated)]

#[percpu::def_percpu]
static mut COUNTER: u64 = 0;

fn main() {
    COUNTER.add_current(1);
}
