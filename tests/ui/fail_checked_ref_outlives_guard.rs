// A reference to this CPU's copy lives no longer than the guard that pins the task to this CPU.
use core::cell::Cell;
use percpu::checked::IrqGuard;

#[percpu::def_percpu]
static TICKS: Cell<u64> = Cell::new(0);

fn main() {
    let ticks = {
        let guard = IrqGuard::new();
        TICKS.get(&guard)
    };
    ticks.set(1);
}
