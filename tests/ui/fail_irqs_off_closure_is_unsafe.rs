// Running a closure with interrupts off is `unsafe`: a checked-tier `IrqGuard` returned from the closure
// would outlive the disabled interrupts and lend references that an interrupt handler could alias (an
// outside review found it safe).

use percpu::checked::IrqGuard;

fn main() {
    let _guard: IrqGuard = percpu::__priv::with_irqs_off(IrqGuard::new);
}
