// `#[def_percpu] static mut` compiles as with percpu 0.4 (`mut` has no effect; a warning says so), with
// the same generated API for a primitive and for a struct.
#![allow(deprecated)]

#[percpu::def_percpu]
static mut COUNTER: u64 = 0;

struct State {
    ticks: u64,
}

#[percpu::def_percpu]
static mut STATE: State = State { ticks: 0 };

fn main() {
    let _ = (COUNTER.offset(), COUNTER.symbol_vma(), STATE.offset());
    if false {
        COUNTER.write_current(1);
        COUNTER.add_current(1);
        let _: u64 = COUNTER.read_current();
        STATE.with_current(|state| state.ticks += 1);
        STATE.reset_to_init();
    }
}
