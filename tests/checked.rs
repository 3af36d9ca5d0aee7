//! The checked tier on the x86_64 Linux host, threads acting as CPUs: guards, references bound to them,
//! interior mutability, remote access for `Sync` types, atomic remote reads; and the registration it
//! relies on: a thread that did not register (its `GS` base is 0, or a copy of its parent's) is caught,
//! one thread per CPU id, no re-registration under a guard.

mod common;
#[path = "common/signals.rs"]
mod signals;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use common::{cpus, on_each_cpu, CPUS};
use percpu::checked::{Guard, IrqGuard, PreemptGuard};
use percpu::def_percpu;

#[def_percpu]
static TICKS: Cell<u64> = Cell::new(0);

#[def_percpu]
static QUEUE: RefCell<Vec<usize>> = RefCell::new(Vec::new());

#[def_percpu]
static HITS: AtomicU64 = AtomicU64::new(0);

#[def_percpu]
static COUNT: u64 = 0;

/// The panic message of a joined thread's panic.
fn message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast::<String>()
        .map(|s| *s)
        .or_else(|payload| payload.downcast::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `f` on a new thread that never registers; returns its panic message, if it panicked.
fn on_unregistered_thread(f: impl FnOnce() + Send + 'static) -> Option<String> {
    std::thread::spawn(f).join().err().map(message)
}

#[test]
fn guards_lend_this_cpus_copy_on_every_cpu() {
    let _cpus = cpus();
    on_each_cpu(|cpu, barrier| {
        {
            let irq = IrqGuard::new();
            assert_eq!(irq.cpu_id(), cpu);
            let ticks = TICKS.get(&irq);
            ticks.set(cpu as u64 * 10);
            // Guards nest; both lend the same copy.
            let inner = IrqGuard::new();
            assert_eq!(TICKS.get(&inner).get(), cpu as u64 * 10);
            assert!(std::ptr::eq(ticks, TICKS.get(&inner)));
            drop(inner);
            QUEUE.get(&irq).borrow_mut().clear();
            QUEUE.get(&irq).borrow_mut().extend([cpu; 3]);
        }
        {
            let preempt = PreemptGuard::new();
            assert_eq!(preempt.cpu_id(), cpu);
            HITS.get(&preempt).store(cpu as u64 + 1, Ordering::Relaxed);
        }
        COUNT.write_current(100 + cpu as u64);
        barrier.wait();
        for other in 0..CPUS {
            assert_eq!(HITS.remote(other).load(Ordering::Relaxed), other as u64 + 1);
            assert_eq!(COUNT.remote_read(other), 100 + other as u64);
        }
        let irq = IrqGuard::new();
        assert_eq!(TICKS.get(&irq).get(), cpu as u64 * 10);
        assert_eq!(*QUEUE.get(&irq).borrow(), [cpu; 3]);
        drop(irq);
        barrier.wait();
    });
}

#[test]
fn exclusive_borrows_are_checked_in_every_build() {
    let _cpus = cpus();
    on_each_cpu(|_, _| {
        let irq = IrqGuard::new();
        let queue = QUEUE.get(&irq);
        let borrowed = queue.borrow_mut();
        assert!(queue.try_borrow_mut().is_err());
        assert!(QUEUE.get(&irq).try_borrow().is_err());
        drop(borrowed);
        assert!(queue.try_borrow_mut().is_ok());
    });
}

#[test]
#[should_panic(expected = "CPU id 4 is out of range")]
fn remote_access_past_the_cpus_panics() {
    let _cpus = cpus();
    let _ = HITS.remote(CPUS);
}

#[test]
fn a_thread_that_never_registered_is_caught() {
    let _cpus = cpus();
    let why = on_unregistered_thread(|| drop(IrqGuard::new())).expect("IrqGuard::new panics");
    assert!(why.contains("did not call `init_percpu_reg`"), "{why}");
    let why =
        on_unregistered_thread(|| drop(PreemptGuard::new())).expect("PreemptGuard::new panics");
    assert!(why.contains("did not call `init_percpu_reg`"), "{why}");
    // Every build in hosted mode (a kernel's release builds trust the register, see the README).
    let why = on_unregistered_thread(|| COUNT.add_current(1)).expect("add_current panics");
    assert!(why.contains("did not call `init_percpu_reg`"), "{why}");
    let why = on_unregistered_thread(|| TICKS.with_current(|ticks| ticks.set(1)))
        .expect("with_current panics");
    assert!(why.contains("did not call `init_percpu_reg`"), "{why}");
}

#[test]
fn a_spawned_thread_does_not_inherit_its_parents_cpu() {
    let _cpus = cpus();
    on_each_cpu(|cpu, _| {
        COUNT.write_current(5);
        // Linux copies the `GS` base into the child: it points at the parent's area.
        let child = std::thread::spawn(|| {
            let preempt = std::panic::catch_unwind(|| drop(PreemptGuard::new()));
            let add = std::panic::catch_unwind(|| COUNT.add_current(1));
            (preempt.err().map(message), add.err().map(message))
        })
        .join()
        .unwrap();
        assert!(child.0.unwrap().contains("inherits its parent's `GS` base"));
        assert!(child.1.unwrap().contains("did not call `init_percpu_reg`"));
        assert_eq!(
            COUNT.read_current(),
            5,
            "cpu {cpu}: the child wrote the parent's copy"
        );
    });
}

#[test]
fn one_thread_per_cpu_id() {
    let _cpus = cpus();
    let barrier = Arc::new(Barrier::new(2));
    let owner = {
        let barrier = Arc::clone(&barrier);
        std::thread::spawn(move || {
            percpu::init_percpu_reg(1);
            percpu::init_percpu_reg(1); // again: nothing more
            barrier.wait();
            barrier.wait();
            percpu::release_percpu_reg();
            barrier.wait();
        })
    };
    barrier.wait();
    let why = on_unregistered_thread(|| percpu::init_percpu_reg(1)).expect("a second claim panics");
    assert!(why.contains("CPU id 1 is already registered"), "{why}");
    barrier.wait();
    barrier.wait();
    owner.join().unwrap();
    std::thread::spawn(|| {
        percpu::init_percpu_reg(1);
        assert_eq!(IrqGuard::new().cpu_id(), 1);
        // Moving to another id releases the first one.
        percpu::init_percpu_reg(2);
        assert_eq!(IrqGuard::new().cpu_id(), 2);
        percpu::release_percpu_reg();
    })
    .join()
    .unwrap();
    std::thread::spawn(|| {
        percpu::init_percpu_reg(1);
        percpu::release_percpu_reg();
    })
    .join()
    .unwrap();
}

#[test]
fn no_reregistration_or_release_under_a_guard() {
    let _cpus = cpus();
    on_each_cpu(|cpu, _| {
        let guard = PreemptGuard::new();
        let next = (cpu + 1) % CPUS;
        let moved = std::panic::catch_unwind(|| percpu::init_percpu_reg(next));
        assert!(message(moved.unwrap_err()).contains("guard of the checked tier is alive"));
        let released = std::panic::catch_unwind(percpu::release_percpu_reg);
        assert!(message(released.unwrap_err()).contains("guard of the checked tier is alive"));
        // Still this CPU's, and usable.
        assert_eq!(guard.cpu_id(), cpu);
        HITS.get(&guard).fetch_add(0, Ordering::Relaxed);
        drop(guard);
    });
}

#[test]
fn run_time_objects_are_not_reached_from_an_unregistered_thread() {
    // Allocation runs on a registered CPU (the per-CPU caches).
    let _cpu_zero = common::as_cpu_zero();
    static SETUP: std::sync::Once = std::sync::Once::new();
    SETUP.call_once(|| percpu_alloc::init(&percpu_alloc::GlobalAllocSource).unwrap());
    let object = Arc::new(percpu_alloc::PerCpuCell::new_with(|cpu| cpu as u64).unwrap());
    // Before the fix this wrote through `GS` = 0 plus the object's VMA: outside every area (release
    // builds until an outside review showed it corrupting the allocator).
    let shared = Arc::clone(&object);
    let why = on_unregistered_thread(move || shared.write_current(1)).expect("write panics");
    assert!(why.contains("did not call `init_percpu_reg`"), "{why}");
    on_each_cpu(|cpu, _| assert_eq!(object.read_current(), cpu as u64));
}

/// Whether this thread blocks `SIGUSR1` (what an `IrqGuard` does in hosted mode).
fn sigusr1_blocked() -> bool {
    // SAFETY: queries this thread's mask into a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set),
            0
        );
        libc::sigismember(&set, libc::SIGUSR1) == 1
    }
}

#[test]
fn interrupts_stay_off_until_the_last_irq_guard_whatever_the_drop_order() {
    let _cpus = cpus();
    on_each_cpu(|_, _| {
        assert!(!sigusr1_blocked());
        let outer = IrqGuard::new();
        let inner = IrqGuard::new();
        let queue = QUEUE.get(&inner);
        // Dropping the outer guard first must not let a handler in while `queue` is lent.
        drop(outer);
        assert!(sigusr1_blocked(), "interrupts came back with a guard alive");
        queue.borrow_mut().push(1);
        drop(inner);
        assert!(!sigusr1_blocked(), "the last guard restores the interrupts");
        // Guards that fail restore everything too.
        assert!(IrqGuard::try_new().is_some());
        assert!(!sigusr1_blocked());
    });
    let refused = std::thread::spawn(|| {
        let none = IrqGuard::try_new().is_none() && PreemptGuard::try_new().is_none();
        (none, sigusr1_blocked())
    })
    .join()
    .unwrap();
    assert_eq!(
        refused,
        (true, false),
        "an unregistered thread gets no guard"
    );
}

/// The registration of a thread while a `PreemptGuard` is being created on it, checked and then
/// counted: a signal handler (an interrupt handler in hosted mode) that releases the thread's CPU in
/// between must be refused as under a live guard. Before, it could release the CPU under the new guard
/// (an outside review); the handler here tries about every 20 µs while the thread creates guards.
#[test]
fn a_guard_being_created_keeps_its_cpu_from_a_signal_handler() {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};
    static RELEASED: AtomicU64 = AtomicU64::new(0);
    extern "C" fn release_on_signal(_: libc::c_int) {
        // Refused (a panic, caught here) while a guard lives or is being created.
        if std::panic::catch_unwind(percpu::release_percpu_reg).is_ok() {
            RELEASED.fetch_add(1, Ordering::Relaxed);
        }
    }
    let _cpus = cpus();
    let previous = std::panic::take_hook();
    // The refusals are expected: their messages would flood the output.
    std::panic::set_hook(Box::new(|_| {}));
    // SAFETY: the handler only calls `release_percpu_reg` (which allocates only to panic, and the
    // thread it interrupts does not allocate meanwhile) and an atomic add.
    unsafe { signals::install(libc::SIGUSR2, release_on_signal) };
    let targets = signals::Targets::new();
    let (started, done) = (AtomicBool::new(false), AtomicBool::new(false));
    let mut lost = 0;
    let mut guards = 0;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            targets.register();
            started.store(true, Ordering::Release);
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end {
                if percpu::registered_cpu().is_none() {
                    percpu::init_percpu_reg(0);
                }
                if let Some(guard) = PreemptGuard::try_new() {
                    guards += 1;
                    lost += usize::from(percpu::registered_cpu().is_none());
                    drop(guard);
                }
            }
            percpu::release_percpu_reg();
            done.store(true, Ordering::Release);
        });
        scope.spawn(|| {
            while !started.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            while !done.load(Ordering::Acquire) {
                // SAFETY: the target thread signals `done` before it ends.
                unsafe { targets.send(0, libc::SIGUSR2) };
                std::thread::sleep(Duration::from_micros(20));
            }
        });
    });
    std::panic::set_hook(previous);
    assert!(
        RELEASED.load(Ordering::Relaxed) > 0 && guards > 0,
        "the test exercised nothing"
    );
    assert_eq!(
        lost, 0,
        "guards alive on a CPU released under them, of {guards}"
    );
}
