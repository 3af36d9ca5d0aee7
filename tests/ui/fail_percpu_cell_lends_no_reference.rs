// A cell-like handle (`PerCpuCell`) changes its copies in place with guard-less operations: it never
// lends a reference to them, which such an operation could invalidate.
use percpu::checked::IrqGuard;

fn main() {
    let hits = percpu_alloc::PerCpuCell::new(0u64).unwrap();
    let guard = IrqGuard::new();
    let mine: &u64 = hits.get(&guard);
    hits.add_current(1);
    let _ = *mine;
}
