// A reference lent through a guard lives no longer than the handle (dropping it frees the copies).
use percpu::checked::IrqGuard;

fn main() {
    let guard = IrqGuard::new();
    let value = {
        let object = percpu_alloc::PerCpu::new_with(|cpu| cpu).unwrap();
        object.get(&guard)
    };
    let _ = *value;
}
