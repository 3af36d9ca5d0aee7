// Another CPU's copy of a run-time allocated object is lent only for `T: Sync`.
use core::cell::Cell;

fn main() {
    let ticks = percpu_alloc::PerCpu::new_with(|_| Cell::new(0u64)).unwrap();
    ticks.remote(1).set(1);
}
