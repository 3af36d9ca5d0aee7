//! A thread that exits with a guard of the checked tier leaked keeps its CPU id taken for good, and a
//! later thread (which may get the same TLS block, hence the same claim token) neither takes it nor
//! inherits the leaked guard's counts. A binary of its own: the id stays taken for the whole process.
//! (An outside review found a later thread taking the id as its own, whose `IrqGuard` then counted as
//! an inner guard and let signals in.)

mod common;

use percpu::checked::{Guard, IrqGuard};

#[test]
fn a_dead_threads_leaked_guard_keeps_its_id_from_later_threads() {
    let _cpus = common::cpus();
    for _ in 0..4 {
        let taken = std::thread::spawn(|| {
            std::panic::catch_unwind(|| percpu::init_percpu_reg(1))
                .is_ok()
                .then(|| {
                    std::mem::forget(IrqGuard::new());
                })
        })
        .join()
        .unwrap();
        // The first thread takes id 1 and leaks its guard; every later one (likely on the same TLS
        // block) is refused.
        let message = std::thread::spawn(|| percpu::init_percpu_reg(1))
            .join()
            .expect_err("id 1 stays taken by the thread that exited with a leaked guard");
        let message = message.downcast::<String>().map(|s| *s).unwrap_or_default();
        assert!(message.contains("already registered"), "{message}");
        let _ = taken;
    }
    // The other ids work as before.
    std::thread::spawn(|| {
        percpu::init_percpu_reg(2);
        assert_eq!(IrqGuard::new().cpu_id(), 2);
        percpu::release_percpu_reg();
    })
    .join()
    .unwrap();
}
