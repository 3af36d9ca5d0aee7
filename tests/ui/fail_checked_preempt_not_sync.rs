// With only preemption disabled, an interrupt handler may reach the same copy: `T` must be `Sync`.
use core::cell::RefCell;
use percpu::checked::PreemptGuard;

#[percpu::def_percpu]
static QUEUE: RefCell<[u8; 4]> = RefCell::new([0; 4]);

fn main() {
    let guard = PreemptGuard::new();
    QUEUE.get(&guard).borrow_mut()[0] = 1;
}
