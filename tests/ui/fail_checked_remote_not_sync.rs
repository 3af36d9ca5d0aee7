// Another CPU's copy is reachable only for `T: Sync`: a `Cell` there would be shared with its owner.
use core::cell::Cell;

#[percpu::def_percpu]
static TICKS: Cell<u64> = Cell::new(0);

fn main() {
    TICKS.remote(1).set(1);
}
