// A per-CPU static whose type is not `Send` compiles, as with percpu 0.4, with a warning (denied here to
// show it); `allow_non_send` silences it for values that never leave their CPU.
#![deny(deprecated)]
use std::rc::Rc;

#[percpu::def_percpu]
static SHARED: Option<Rc<u32>> = None;

#[percpu::def_percpu(allow_non_send)]
static CPU_BOUND: Option<Rc<u32>> = None;

fn main() {
    let _ = (SHARED.offset(), CPU_BOUND.offset());
}
