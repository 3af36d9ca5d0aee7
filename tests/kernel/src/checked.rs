//! The checked tier of percpu (`percpu::checked`) on every CPU, under the timer interrupt.
//!
//! Each CPU does rounds of read-modify-write on its own copies through guards while its timer
//! interrupt handler (where the architecture has one) does the same on the same copies:
//!
//! - a `Cell<u64>` and a `RefCell` through an [`IrqGuard`]: with local interrupts off, the handler
//!   cannot run in the middle of a round, so neither update is lost and the handler never finds the
//!   `RefCell` borrowed;
//! - an `AtomicU64` through a [`PreemptGuard`] (interrupts on: the handler does run in the middle,
//!   and the atomic makes that harmless).
//!
//! Then every CPU checks every other CPU's totals through `remote` (atomics only: `T: Sync`).

use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use percpu::checked::{Guard, IrqGuard, PreemptGuard};

use crate::check::{expect, expect_eq};
use crate::counters::{with_timer, TICK_WEIGHT};
use crate::println;

/// Whether the handler joins in (set during the hammering of this CPU).
#[percpu::def_percpu]
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Rounds add 1, ticks add [`TICK_WEIGHT`]: through an `IrqGuard`.
#[percpu::def_percpu]
static CELL: Cell<u64> = Cell::new(0);

/// The rounds and ticks seen, as a pair that must stay consistent: through an `IrqGuard`.
#[percpu::def_percpu]
static LOG: RefCell<(u64, u64)> = RefCell::new((0, 0));

/// Rounds add 1, ticks add [`TICK_WEIGHT`]: through a `PreemptGuard`.
#[percpu::def_percpu]
static ATOMIC: AtomicU64 = AtomicU64::new(0);

/// This CPU's rounds and ticks, published for the remote checks.
#[percpu::def_percpu]
static DONE: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

/// The timer interrupt's part: the same updates, from the handler.
pub fn on_timer_tick() {
    // Interrupts are already off in the handler; the guard nests and validates the register.
    let irq = IrqGuard::new();
    if !ACTIVE.get(&irq).load(Ordering::Relaxed) {
        return;
    }
    let cell = CELL.get(&irq);
    cell.set(cell.get() + TICK_WEIGHT);
    match LOG.get(&irq).try_borrow_mut() {
        Ok(mut log) => log.1 += 1,
        // Never: the interrupted code borrows it only with interrupts off.
        Err(_) => crate::fail(format_args!(
            "cpu {}: the timer interrupt found a per-CPU RefCell borrowed",
            irq.cpu_id()
        )),
    }
    ATOMIC.get(&irq).fetch_add(TICK_WEIGHT, Ordering::Relaxed);
}

/// One round: the same updates, from the interrupted code.
fn round(cpu: usize) {
    {
        let irq = IrqGuard::new();
        expect_eq(cpu, format_args!("IrqGuard::cpu_id"), irq.cpu_id(), cpu);
        let cell = CELL.get(&irq);
        cell.set(cell.get() + 1);
        LOG.get(&irq).borrow_mut().0 += 1;
    }
    let preempt = PreemptGuard::new();
    ATOMIC.get(&preempt).fetch_add(1, Ordering::Relaxed);
}

/// The checked tier on this CPU under its timer, then the remote checks once all CPUs are done
/// (`barrier` separates the two); reports it if `verbose`.
pub fn run(cpu: usize, cpus: usize, verbose: bool, barrier: impl Fn(&'static str)) {
    let preempt = PreemptGuard::new();
    ACTIVE.get(&preempt).store(true, Ordering::Relaxed);
    drop(preempt);
    let timed = with_timer(cpu, |rounds| (0..rounds).for_each(|_| round(cpu)));
    let irq = IrqGuard::new();
    ACTIVE.get(&irq).store(false, Ordering::Relaxed);
    let (rounds, ticks) = *LOG.get(&irq).borrow();
    let total = rounds + ticks * TICK_WEIGHT;
    expect_eq(
        cpu,
        format_args!("rounds through IrqGuard"),
        rounds,
        timed.rounds,
    );
    expect_eq(
        cpu,
        format_args!("Cell<u64> through IrqGuard"),
        CELL.get(&irq).get(),
        total,
    );
    expect_eq(
        cpu,
        format_args!("AtomicU64 through PreemptGuard"),
        ATOMIC.get(&irq).load(Ordering::Relaxed),
        total,
    );
    if timed.timer {
        expect(
            cpu,
            ticks > 0,
            format_args!("no tick reached the checked-tier handler"),
        );
    }
    let done = DONE.get(&irq);
    done.0.store(rounds, Ordering::Relaxed);
    done.1.store(ticks, Ordering::Relaxed);
    drop(irq);
    if verbose {
        println!(
            "cpu {cpu}: checked tier: {rounds} rounds and {ticks} ticks through guards, nothing lost"
        );
    }
    barrier("the checked-tier rounds");

    for other in 0..cpus {
        let (rounds, ticks) = DONE.remote(other);
        let total = rounds.load(Ordering::Relaxed) + ticks.load(Ordering::Relaxed) * TICK_WEIGHT;
        expect_eq(
            cpu,
            format_args!("cpu {other}'s AtomicU64 read remotely"),
            ATOMIC.remote(other).load(Ordering::Relaxed),
            total,
        );
    }
    barrier("the checked-tier remote checks");
}
