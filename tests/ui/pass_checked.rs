// The checked tier: guards, shared references bound to them, cells mutated through interior
// mutability, remote references for `Sync` types, atomic remote reads of primitives.
use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicU64, Ordering};
use percpu::checked::{Guard, IrqGuard, PreemptGuard};

#[percpu::def_percpu]
static TICKS: Cell<u64> = Cell::new(0);

#[percpu::def_percpu]
static QUEUE: RefCell<[u8; 4]> = RefCell::new([0; 4]);

#[percpu::def_percpu]
static HITS: AtomicU64 = AtomicU64::new(0);

#[percpu::def_percpu]
static COUNT: u64 = 0;

// Elided lifetimes in the type are `'static`, as in any static.
#[percpu::def_percpu]
static NAME: &str = "cpu";

fn main() {
    if false {
        let irq = IrqGuard::new();
        TICKS.get(&irq).set(TICKS.get(&irq).get() + 1);
        QUEUE.get(&irq).borrow_mut()[irq.cpu_id() % 4] = 1;
        let preempt = PreemptGuard::new();
        HITS.get(&preempt).fetch_add(1, Ordering::Relaxed);
        HITS.get(&irq).fetch_add(1, Ordering::Relaxed);
        let _: u64 = HITS.remote(0).load(Ordering::Relaxed);
        let _: u64 = COUNT.remote_read(0);
        let name: &'static str = NAME.remote(0);
        let _: &str = NAME.get(&irq);
        let _ = name;
    }
}
