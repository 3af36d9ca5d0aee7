// Per-CPU integers are cell-like: their operations never lend a reference, and no reference is lent,
// which an operation could invalidate.
use percpu::checked::IrqGuard;

#[percpu::def_percpu]
static COUNT: u64 = 0;

fn main() {
    let guard = IrqGuard::new();
    let count: &u64 = COUNT.get(&guard);
    COUNT.add_current(1);
    let _ = *count;
}
