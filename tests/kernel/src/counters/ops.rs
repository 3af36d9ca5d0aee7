//! The guard-less operations other than add/sub: the main loop's half
//! ([`Main`]), the timer's half ([`on_tick`]), and the checks ([`check`]).

use crate::check::{expect, expect_eq};
use crate::{println, MAX_CPUS};

// The per-CPU free list of the hosted suite's test, shared with it.
#[path = "../../../ops_common/free_list.rs"]
#[macro_use]
mod free_list;

per_cpu_free_list!(MAX_CPUS, 8);

/// Rounds of [`hammer_rounds`](super::hammer_rounds) per round of the
/// operations here.
pub const ROUNDS_PER_HAMMER_ROUND: u64 = 8;

/// What a tick adds where the main loop adds 1.
const WEIGHT: u64 = 1 << 20;

/// `fetch_add_current` targets: statics of two widths, and one reached
/// through `percpu::raw` (the by-address path of run-time allocated data).
#[percpu::def_percpu]
static FETCHED: u64 = 0;
#[percpu::def_percpu]
static FETCHED16: u16 = 0;
#[percpu::def_percpu]
static RAW_FETCHED: u64 = 0;

/// Counters incremented with a read and a compare-and-swap loop.
#[percpu::def_percpu]
static CAS64: u64 = 0;
#[percpu::def_percpu]
static CAS8: u8 = 0;
#[percpu::def_percpu]
static RAW_CAS32: u32 = 0;

/// Swapped tokens, and the token the timer holds between two ticks.
#[percpu::def_percpu]
static SLOT: u64 = 0;
#[percpu::def_percpu]
static TICK_TOKEN: u64 = 0;
#[percpu::def_percpu]
static SLOT8: u8 = 0;
#[percpu::def_percpu]
static TICK_TOKEN8: u8 = 0;
#[percpu::def_percpu]
static RAW_SLOT32: u32 = 0;
#[percpu::def_percpu]
static TICK_TOKEN32: u32 = 0;

/// Bits the main loop (low half) and the timer (high half) toggle with
/// `or`/`xor`/`and`, and the timer's record of its own.
#[percpu::def_percpu]
static BITS: u64 = 0;
#[percpu::def_percpu]
static TICK_BITS: u64 = 0;
#[percpu::def_percpu]
static BITS16: u16 = 0;
#[percpu::def_percpu]
static TICK_BITS16: u16 = 0;

/// Ticks that ran the operations since [`setup`].
#[percpu::def_percpu]
static OPS_TICKS: u64 = 0;

/// Adds `amount` to [`CAS64`], [`CAS8`] and [`RAW_CAS32`] with a read and a
/// compare-and-swap each, retried while the copy changed in between; returns
/// the failed attempts.
fn cas_add(amount: u64) -> u64 {
    let mut failures = 0;
    loop {
        let value = CAS64.read_current();
        match CAS64.cmpxchg_current(value, value.wrapping_add(amount)) {
            Ok(_) => break,
            Err(_) => failures += 1,
        }
    }
    loop {
        let value = CAS8.read_current();
        match CAS8.cmpxchg_current(value, value.wrapping_add(amount as u8)) {
            Ok(_) => break,
            Err(_) => failures += 1,
        }
    }
    let vma = RAW_CAS32.symbol_vma();
    loop {
        // SAFETY: the VMA of a `u32` static; no reference to this CPU's copy
        // exists.
        let result = unsafe {
            let value = percpu::raw::read_current::<u32>(vma);
            percpu::raw::cmpxchg_current(vma, value, value.wrapping_add(amount as u32))
        };
        match result {
            Ok(_) => break,
            Err(_) => failures += 1,
        }
    }
    failures
}

/// The initial token `k` of CPU `cpu` (0: the main loop's, 1: the slot's,
/// 2: the timer's).
fn token(cpu: usize, k: usize) -> u8 {
    (3 * cpu + k) as u8
}

/// Sets this CPU's variables up, before its timer starts.
pub fn setup(cpu: usize) {
    SLOT.write_current(token(cpu, 1).into());
    TICK_TOKEN.write_current(token(cpu, 2).into());
    SLOT8.write_current(token(cpu, 1));
    TICK_TOKEN8.write_current(token(cpu, 2));
    // SAFETY: the VMA of a `u32` static; no reference to its copy exists.
    unsafe { percpu::raw::write_current::<u32>(RAW_SLOT32.symbol_vma(), token(cpu, 1).into()) };
    TICK_TOKEN32.write_current(token(cpu, 2).into());
    fill(cpu);
}

/// The timer's half, on the interrupted CPU's variables.
pub fn on_tick() {
    FETCHED.fetch_add_current(WEIGHT);
    FETCHED16.fetch_add_current(256);
    // SAFETY: the VMA of a `u64` static; no reference to its copy exists.
    unsafe { percpu::raw::fetch_add_current(RAW_FETCHED.symbol_vma(), WEIGHT) };
    if cas_add(WEIGHT) != 0 {
        crate::fail(format_args!(
            "a compare-and-swap in the timer handler failed"
        ));
    }

    TICK_TOKEN.write_current(SLOT.xchg_current(TICK_TOKEN.read_current()));
    TICK_TOKEN8.write_current(SLOT8.xchg_current(TICK_TOKEN8.read_current()));
    // SAFETY: the VMA of a `u32` static; no reference to its copy exists.
    let token =
        unsafe { percpu::raw::xchg_current(RAW_SLOT32.symbol_vma(), TICK_TOKEN32.read_current()) };
    TICK_TOKEN32.write_current(token);

    // Set one bit of the high half, flip the next, clear the previous.
    let step = OPS_TICKS.fetch_add_current(1) % 32;
    let (set, flip, clear) = (
        1 << (32 + step),
        1 << (32 + (step + 1) % 32),
        1 << (32 + (step + 31) % 32),
    );
    BITS.or_current(set);
    BITS.xor_current(flip);
    BITS.and_current(!clear);
    TICK_BITS.write_current(((TICK_BITS.read_current() | set) ^ flip) & !clear);
    let bit16 = 1u16 << (8 + step % 8);
    BITS16.xor_current(bit16);
    TICK_BITS16.write_current(TICK_BITS16.read_current() ^ bit16);

    match pop() {
        Some(node) => push(node),
        None => crate::fail(format_args!("the timer found this CPU's free list empty")),
    }
}

/// The main loop's half, and what it holds.
pub struct Main {
    cpu: usize,
    rounds: u64,
    cas_failures: u64,
    last: Option<u64>,
    token: u64,
    token8: u8,
    token32: u32,
    bits: u64,
    bits16: u16,
}

impl Main {
    /// CPU `cpu`'s main loop, holding its initial tokens.
    pub fn new(cpu: usize) -> Self {
        Self {
            cpu,
            rounds: 0,
            cas_failures: 0,
            last: None,
            token: token(cpu, 0).into(),
            token8: token(cpu, 0),
            token32: token(cpu, 0).into(),
            bits: 0,
            bits16: 0,
        }
    }

    /// Does `rounds` rounds of every operation.
    pub fn rounds(&mut self, rounds: u64) {
        let cpu = self.cpu;
        for round in self.rounds..self.rounds + rounds {
            // Only additions happen: every previous value is past the last
            // one this loop saw.
            let previous = FETCHED.fetch_add_current(1);
            expect(
                cpu,
                self.last < Some(previous),
                format_args!(
                    "fetch_add_current returned {previous} after {:?}",
                    self.last
                ),
            );
            self.last = Some(previous);
            FETCHED16.fetch_add_current(1);
            // SAFETY: the VMA of a `u64` static; no reference to its copy
            // exists.
            unsafe { percpu::raw::fetch_add_current(RAW_FETCHED.symbol_vma(), 1u64) };
            self.cas_failures += cas_add(1);

            self.token = SLOT.xchg_current(self.token);
            self.token8 = SLOT8.xchg_current(self.token8);
            // SAFETY: as above, for a `u32`.
            self.token32 =
                unsafe { percpu::raw::xchg_current(RAW_SLOT32.symbol_vma(), self.token32) };

            let bit = round % 32;
            let (set, flip, clear) = (1 << bit, 1 << ((bit + 1) % 32), 1 << ((bit + 31) % 32));
            BITS.or_current(set);
            BITS.xor_current(flip);
            BITS.and_current(!clear);
            self.bits = ((self.bits | set) ^ flip) & !clear;
            let bit16 = 1u16 << (round % 8);
            BITS16.xor_current(bit16);
            self.bits16 ^= bit16;

            match (pop(), pop()) {
                (Some(a), Some(b)) => {
                    push(a);
                    push(b);
                }
                _ => crate::fail(format_args!("cpu {cpu}: the free list ran out")),
            }
        }
        self.rounds += rounds;
    }
}

/// Checks this CPU's variables once its timer stopped.
pub fn check(cpu: usize, main: &Main) {
    let ticks = OPS_TICKS.read_current();
    let expected = main.rounds + ticks * WEIGHT;
    expect_eq(
        cpu,
        format_args!("fetch_add_current u64"),
        FETCHED.read_current(),
        expected,
    );
    expect_eq(
        cpu,
        format_args!("fetch_add_current u16"),
        FETCHED16.read_current(),
        (main.rounds + ticks * 256) as u16,
    );
    expect_eq(
        cpu,
        format_args!("raw::fetch_add_current u64"),
        RAW_FETCHED.read_current(),
        expected,
    );
    expect_eq(
        cpu,
        format_args!("cmpxchg_current u64"),
        CAS64.read_current(),
        expected,
    );
    expect_eq(
        cpu,
        format_args!("cmpxchg_current u8"),
        CAS8.read_current(),
        expected as u8,
    );
    expect_eq(
        cpu,
        format_args!("raw::cmpxchg_current u32"),
        RAW_CAS32.read_current(),
        expected as u32,
    );

    let sorted = |mut tokens: [u64; 3]| {
        tokens.sort_unstable();
        tokens
    };
    // Sorted too: the tokens wrap around at 256 CPUs.
    let all = sorted([0, 1, 2].map(|k| u64::from(token(cpu, k))));
    expect_eq(
        cpu,
        format_args!("xchg_current u64: every token once"),
        sorted([SLOT.read_current(), TICK_TOKEN.read_current(), main.token]),
        all,
    );
    expect_eq(
        cpu,
        format_args!("xchg_current u8: every token once"),
        sorted(
            [
                SLOT8.read_current(),
                TICK_TOKEN8.read_current(),
                main.token8,
            ]
            .map(u64::from),
        ),
        all,
    );
    expect_eq(
        cpu,
        format_args!("raw::xchg_current u32: every token once"),
        sorted(
            [
                RAW_SLOT32.read_current(),
                TICK_TOKEN32.read_current(),
                main.token32,
            ]
            .map(u64::from),
        ),
        all,
    );

    expect_eq(
        cpu,
        format_args!("or/xor/and_current u64"),
        BITS.read_current(),
        main.bits | TICK_BITS.read_current(),
    );
    expect_eq(
        cpu,
        format_args!("xor_current u16"),
        BITS16.read_current(),
        main.bits16 ^ TICK_BITS16.read_current(),
    );

    expect(
        cpu,
        holds_its_nodes(cpu, HEAD.read_current()),
        format_args!("free list: each of this CPU's nodes once"),
    );
    println!(
        "cpu {cpu}: {} rounds of fetch_add/xchg/cmpxchg/and/or/xor (statics and raw, 8 to 64 bits) \
         with {ticks} timer ticks doing the same, {} compare-and-swaps retried: nothing lost",
        main.rounds, main.cas_failures
    );
}
