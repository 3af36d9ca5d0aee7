// A copy serves every task that runs on its CPU in turn: a `!Send` value (an `Rc`) could be cloned by
// one task and kept after it migrated. The checked tier refuses it.
use std::rc::Rc;
use percpu::checked::IrqGuard;

#[percpu::def_percpu(allow_non_send)]
static SHARED: Option<Rc<u32>> = None;

fn main() {
    let guard = IrqGuard::new();
    let _ = SHARED.get(&guard).clone();
}
