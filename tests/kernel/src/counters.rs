//! The guard-less read-modify-write operations under fire: every CPU hammers
//! its own counters (`add_current`/`sub_current`) and runs every other
//! operation (`fetch_add_current`, `xchg_current`, `cmpxchg_current`,
//! `and/or/xor_current`, on statics of several widths and through
//! `percpu::raw`) while a periodic timer interrupt (where the architecture
//! has one) does the same on the same variables from the interrupt handler.
//! The read-modify-write of the interrupted code must not lose the handler's
//! update, nor the handler the interrupted one's: the final values must be
//! exactly what was done (swapped tokens all present once, a per-CPU free
//! list popped and pushed with `cmpxchg_current` by both losing no node).
//! Then every CPU sums up all CPUs' counters remotely.
//!
//! [`with_timer`], the hammering under the timer, also serves the run-time
//! per-CPU counter of [`crate::dynamic`]. Its rounds shrink with the number
//! of CPUs (see [`Work`]), so that hundreds of vCPUs on a few host cores
//! finish within seconds; every CPU still hammers under the timer, and the
//! sums are still exact.

use core::fmt;

use crate::check::{expect, expect_eq};
use crate::{arch, println};

mod ops;

/// The rounds of add/sub that all CPUs together do at least: 100 000 per CPU
/// on up to 8 CPUs, shared out among more.
const TOTAL_ROUNDS: usize = 800_000;

/// With a timer, the CPU goes on in chunks of a tenth of its rounds until it
/// took [`MIN_TICKS`] ticks ([`MIN_TICKS_MANY`] with more than
/// [`crate::suite::VERBOSE_CPUS`] CPUs), so that plenty of interrupts land in
/// the middle of the read-modify-writes; or, once it took one, until
/// [`TICK_WAIT_PERIODS`] timer periods passed; or, if it took none, until
/// [`FIRST_TICK_LIMIT_NS`] passed. (QEMU raises the timer interrupts from one
/// host thread, which a loaded host may not run for a while.)
const MIN_TICKS: usize = 20;
const MIN_TICKS_MANY: usize = 2;
const TICK_WAIT_PERIODS: u64 = 200;
const FIRST_TICK_LIMIT_NS: u64 = 20_000_000_000;

/// How much work [`with_timer`] does on each CPU, given the CPU count.
struct Work {
    /// Rounds done in any case.
    rounds: u64,
    /// Rounds added at a time while waiting for ticks.
    chunk: u64,
    /// Ticks wanted.
    ticks: usize,
}

impl Work {
    /// The work per CPU with `cpus` CPUs running.
    fn for_cpus(cpus: usize) -> Self {
        let rounds = crate::suite::per_cpu_share(TOTAL_ROUNDS, cpus, TOTAL_ROUNDS / 8) as u64;
        let many = cpus > crate::suite::VERBOSE_CPUS;
        Self {
            rounds,
            chunk: rounds / 10,
            ticks: if many { MIN_TICKS_MANY } else { MIN_TICKS },
        }
    }
}

/// What one timer tick adds to [`HITS`] (and to the counter of
/// [`crate::dynamic`] while that one is hammered).
pub const TICK_WEIGHT: u64 = 1_000_000;

/// Rounds this CPU did.
#[percpu::def_percpu]
static ROUNDS: u64 = 0;

/// Incremented by every round (by `cpu + 3`, then decremented by 2) and by
/// every timer tick (by [`TICK_WEIGHT`]).
#[percpu::def_percpu]
static HITS: u64 = 0;

/// Decremented by every round (by 3, then incremented by 1): goes negative.
#[percpu::def_percpu]
static BALANCE: i32 = 0;

/// Timer ticks taken by this CPU.
#[percpu::def_percpu]
static TICKS: usize = 0;

/// The timer interrupt's work: count the tick, add to the hammered counter,
/// and run its half of the other operations.
pub fn on_timer_tick() {
    TICKS.add_current(1);
    HITS.add_current(TICK_WEIGHT);
    ops::on_tick();
}

/// The value of CPU `cpu`'s [`HITS`] after the hammering.
fn expected_hits(cpu: usize, rounds: u64, ticks: usize) -> u64 {
    (cpu as u64 + 1) * rounds + ticks as u64 * TICK_WEIGHT
}

/// The value of a CPU's [`BALANCE`] after the hammering.
fn expected_balance(rounds: u64) -> i32 {
    -2 * rounds as i32
}

/// Does `rounds` rounds of add/sub on this CPU's counters.
fn hammer_rounds(cpu: usize, rounds: u64) {
    for _ in 0..rounds {
        HITS.add_current(cpu as u64 + 3);
        BALANCE.sub_current(3);
        HITS.sub_current(2);
        BALANCE.add_current(1);
    }
    ROUNDS.add_current(rounds);
}

/// What [`with_timer`] did on this CPU.
pub struct Timed {
    /// Whether the architecture has a timer.
    pub timer: bool,
    /// Rounds of work done.
    pub rounds: u64,
    /// Timer ticks taken meanwhile.
    pub ticks: usize,
}

impl fmt::Display for Timed {
    /// "N timer ticks (...)", saying whether the ticks hit the hammered counter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let interrupts = if self.timer {
            "timer interrupts adding to the same counter"
        } else {
            "no timer interrupts on this architecture"
        };
        write!(f, "{} timer ticks ({interrupts})", self.ticks)
    }
}

/// Runs `work(n)`, which does `n` rounds of work, on CPU `cpu` with its timer
/// interrupt on, while all CPUs of the suite do the same: the rounds of
/// [`Work::for_cpus`], then a chunk at a time until enough ticks landed (or
/// the time limits above passed). Checks that the timer, if there is one,
/// interrupted the work.
pub fn with_timer(cpu: usize, mut work: impl FnMut(u64)) -> Timed {
    let plan = Work::for_cpus(crate::suite::running_cpus());
    let ticks_before = TICKS.read_current();
    let ticks = || TICKS.read_current() - ticks_before;
    let start = arch::clock_ns();
    let more_ticks_wanted = |ticks: usize| {
        let waited = arch::clock_ns().wrapping_sub(start);
        match ticks {
            0 => waited < FIRST_TICK_LIMIT_NS,
            _ => ticks < plan.ticks && waited / arch::tick_period_ns() < TICK_WAIT_PERIODS,
        }
    };
    let timer = arch::timer_start();
    work(plan.rounds);
    let mut rounds = plan.rounds;
    while timer && more_ticks_wanted(ticks()) {
        work(plan.chunk);
        rounds += plan.chunk;
    }
    arch::timer_stop();
    let ticks = ticks();
    if timer {
        expect(
            cpu,
            ticks > 0,
            format_args!("the timer never interrupted the hammering"),
        );
    }
    Timed {
        timer,
        rounds,
        ticks,
    }
}

/// Hammers this CPU's counters, and runs the other operations, with the
/// timer running, then checks them; reports it if `verbose`.
pub fn hammer(cpu: usize, verbose: bool) {
    check_register_write(cpu);
    #[cfg(feature = "large-template")]
    check_large_template(cpu);
    ops::setup(cpu);
    let mut main = ops::Main::new(cpu);
    let timed = with_timer(cpu, |rounds| {
        hammer_rounds(cpu, rounds);
        main.rounds(rounds / ops::ROUNDS_PER_HAMMER_ROUND);
    });
    ops::check(cpu, &main);
    let (rounds, ticks) = (ROUNDS.read_current(), TICKS.read_current());
    expect_eq(
        cpu,
        format_args!("HITS after {rounds} rounds and {ticks} ticks"),
        HITS.read_current(),
        expected_hits(cpu, rounds, ticks),
    );
    expect_eq(
        cpu,
        format_args!("BALANCE after {rounds} rounds"),
        BALANCE.read_current(),
        expected_balance(rounds),
    );
    if verbose {
        println!(
            "cpu {cpu}: {} add/sub ops, {timed}: nothing lost",
            4 * rounds
        );
    }
}

/// A pointer computed from the per-CPU register before a write of the
/// register must not be reused after it: points the register at another
/// area and back, with the timer off, and checks that `current_ptr` follows.
/// (The `ptr` form is `pure, readonly`; a register write without a memory
/// clobber, as riscv64's and loongarch64's once were, let the compiler reuse
/// the first pointer.)
fn check_register_write(cpu: usize) {
    let own = percpu::read_percpu_reg();
    let other = percpu::percpu_area_base((cpu + 1) % percpu::cpu_count());
    // SAFETY: the pointers are computed, never used; the register designates
    // an initialized area throughout, and nothing on this CPU accesses
    // per-CPU data while it designates the other one (no timer yet: this runs
    // before `with_timer`).
    let (before, during, after) = unsafe {
        let before = HITS.current_ptr() as usize;
        percpu::write_percpu_reg(other);
        let during = HITS.current_ptr() as usize;
        percpu::write_percpu_reg(own);
        (before, during, HITS.current_ptr() as usize)
    };
    expect_eq(
        cpu,
        format_args!("current_ptr after pointing the register at another area"),
        during.wrapping_sub(before),
        other.wrapping_sub(own),
    );
    expect_eq(
        cpu,
        format_args!("current_ptr after pointing the register back"),
        after,
        before,
    );
}

/// Words of [`LARGE`]: 96 KiB.
#[cfg(feature = "large-template")]
const LARGE_WORDS: usize = 12 * 1024;

/// With `large-template`: a static that makes the template larger than the
/// 64 KiB one aarch64 `movz` reaches (a link error without the feature).
#[cfg(feature = "large-template")]
#[percpu::def_percpu]
static LARGE: [u64; LARGE_WORDS] = [0; LARGE_WORDS];

/// Checks that the template is over 64 KiB and that [`LARGE`]'s first and
/// last words, and [`HITS`] (before or after it), are where the areas say.
#[cfg(feature = "large-template")]
fn check_large_template(cpu: usize) {
    expect(
        cpu,
        percpu::percpu_area_size() > 64 * 1024,
        format_args!(
            "a template of {} bytes, expected over 64 KiB",
            percpu::percpu_area_size()
        ),
    );
    let area = percpu::percpu_area_base(cpu);
    LARGE.with_current(|words| {
        words[0] = cpu as u64;
        words[LARGE_WORDS - 1] = !(cpu as u64);
    });
    // SAFETY: this CPU's own copy, no reference to it is live.
    let (large, hits, last) = unsafe {
        let large = LARGE.current_ptr();
        (
            large as usize,
            HITS.current_ptr() as usize,
            (*large)[LARGE_WORDS - 1],
        )
    };
    expect_eq(
        cpu,
        format_args!("LARGE's copy"),
        large,
        area + LARGE.offset(),
    );
    expect_eq(cpu, format_args!("HITS's copy"), hits, area + HITS.offset());
    expect_eq(cpu, format_args!("LARGE's last word"), last, !(cpu as u64));
}

/// From CPU `cpu`, once every CPU finished [`hammer`]: checks all CPUs'
/// counters remotely and returns the total ticks; reports it if `verbose`.
pub fn check_remote_sums(cpu: usize, cpus: usize, verbose: bool) -> usize {
    let (mut hits, mut expected, mut ticks) = (0, 0, 0);
    for other in 0..cpus {
        // SAFETY: `other` is a running CPU that no longer touches its
        // counters (its timer is stopped) after the barrier passed by all.
        let (h, b, r, t) = unsafe {
            (
                *HITS.remote_ref_raw(other),
                *BALANCE.remote_ref_raw(other),
                *ROUNDS.remote_ref_raw(other),
                *TICKS.remote_ref_raw(other),
            )
        };
        expect_eq(
            cpu,
            format_args!("BALANCE of cpu {other}"),
            b,
            expected_balance(r),
        );
        hits += h;
        expected += expected_hits(other, r, t);
        ticks += t;
    }
    expect_eq(
        cpu,
        format_args!("sum of HITS over {cpus} cpus"),
        hits,
        expected,
    );
    if verbose {
        println!("cpu {cpu}: counters of all {cpus} cpus summed remotely: {hits} as expected");
    }
    ticks
}
