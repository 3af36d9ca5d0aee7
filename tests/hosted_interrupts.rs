//! Interrupts simulated with signals: while every CPU thread hammers `add_current`, another thread
//! keeps sending signals whose handler runs `add_current` on the same variable of the interrupted
//! CPU. A read-modify-write split by the handler would lose updates; the totals must be exact.

mod common;
#[path = "common/signals.rs"]
mod signals;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use common::{cpus, on_each_cpu, CPUS};
use percpu::def_percpu;

#[def_percpu]
static EVENTS: u64 = 0;
#[def_percpu]
static SMALL: u16 = 0;

/// Signals handled, over all CPUs.
static HANDLED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_signal: libc::c_int) {
    // The handler runs on the interrupted thread, so with that CPU's register.
    EVENTS.add_current(1);
    SMALL.add_current(1);
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn add_current_is_not_split_by_an_interrupt() {
    /// Signals to receive before stopping (or until the time limit).
    const SIGNALS: u64 = 2_000;
    let _cpus = cpus();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rounds = AtomicU64::new(0);
    // SAFETY: the handler only does async-signal-safe work (per-CPU adds, an atomic add).
    unsafe { signals::install(libc::SIGUSR1, on_signal) };
    let threads = signals::Targets::new();
    let running = AtomicUsize::new(CPUS);
    let started = AtomicBool::new(false);
    let sender_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !started.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mut target = 0;
            while running.load(Ordering::Acquire) == CPUS {
                // SAFETY: the CPU threads stay alive until `sender_done`.
                unsafe { threads.send(target, libc::SIGUSR1) };
                target += 1;
                std::thread::sleep(std::time::Duration::from_micros(20));
            }
            sender_done.store(true, Ordering::Release);
        });
        on_each_cpu(|_, barrier| {
            EVENTS.write_current(0);
            SMALL.write_current(0);
            threads.register();
            barrier.wait();
            started.store(true, Ordering::Release);
            let mut my_rounds = 0;
            while HANDLED.load(Ordering::Relaxed) < SIGNALS && std::time::Instant::now() < deadline
            {
                for _ in 0..1000 {
                    EVENTS.add_current(1);
                    SMALL.add_current(1);
                }
                my_rounds += 1000;
            }
            rounds.fetch_add(my_rounds, Ordering::Relaxed);
            running.fetch_sub(1, Ordering::AcqRel);
            // Stay alive (signals may still come) until the sender has stopped.
            while !sender_done.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        });
    });
    let handled = HANDLED.load(Ordering::Relaxed);
    let rounds = rounds.load(Ordering::Relaxed);
    assert!(
        handled >= SIGNALS,
        "too few signals to mean anything: {handled}"
    );
    let (mut events, mut small) = (0u64, 0u16);
    for cpu in 0..CPUS {
        // SAFETY: the CPU threads are done.
        unsafe {
            events += *EVENTS.remote_ptr(cpu);
            small = small.wrapping_add(*SMALL.remote_ptr(cpu));
        }
    }
    println!("{handled} signals handled during {rounds} adds");
    assert_eq!(events, rounds + handled);
    assert_eq!(small, (rounds + handled) as u16);
}
