//! Per-CPU statistics structs (`#[derive(PerCpuStats)]`) on the x86_64 Linux host, threads acting as
//! CPUs and per-thread timer signals as their interrupts: a `#[def_percpu]` static and a run-time
//! allocated `percpu_alloc::PerCpuStats` incremented by every CPU and its interrupt handler, summed
//! meanwhile (every field only grows) and exactly once they are done.

mod common;
mod signal_timer;

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{MutexGuard, OnceLock};
use std::time::Duration;

use common::{cpus, on_each_cpu, CPUS};
use percpu::stats::{StatsCell, StatsStatic};
use percpu::{def_percpu, PerCpuStats};
use percpu_alloc::GlobalAllocSource;
use signal_timer::Timer;

/// A driver's statistics: fields of every width.
#[derive(PerCpuStats, Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    pub errors: u32,
    pub drops: u16,
    pub flags: u8,
    /// Goes negative.
    pub balance: i64,
    #[cfg(any())]
    pub compiled_out: u64,
}

#[def_percpu]
static NET: StatsCell<NetStats> = StatsCell::new();

/// The per-CPU areas and dynamic allocation, once per binary; serializes the tests.
fn setup() -> MutexGuard<'static, ()> {
    let guard = cpus();
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| percpu_alloc::init(&GlobalAllocSource).expect("percpu_alloc::init"));
    guard
}

/// What one "packet" does to the fields (of `fields`, which is `NetStatsFields`).
macro_rules! packet {
    ($fields:expr, $cpu:expr) => {{
        let fields = $fields;
        fields.rx_packets.inc();
        fields.rx_bytes.add(64 + $cpu as u64);
        fields.errors.add(1);
        fields.drops.add(3);
        fields.flags.inc();
        fields.balance.sub(2);
    }};
}

/// The statistics after `packets` packets on CPU `cpu` (wrapping as the fields do).
fn after(packets: u64, cpu: usize) -> NetStats {
    NetStats {
        rx_packets: packets,
        rx_bytes: packets * (64 + cpu as u64),
        errors: packets as u32,
        drops: (3 * packets) as u16,
        flags: packets as u8,
        balance: -2 * packets as i64,
    }
}

/// Field-wise wrapping sum.
fn add(a: NetStats, b: NetStats) -> NetStats {
    NetStats {
        rx_packets: a.rx_packets.wrapping_add(b.rx_packets),
        rx_bytes: a.rx_bytes.wrapping_add(b.rx_bytes),
        errors: a.errors.wrapping_add(b.errors),
        drops: a.drops.wrapping_add(b.drops),
        flags: a.flags.wrapping_add(b.flags),
        balance: a.balance.wrapping_add(b.balance),
    }
}

/// Field-wise wrapping difference.
fn diff(a: NetStats, b: NetStats) -> NetStats {
    NetStats {
        rx_packets: a.rx_packets.wrapping_sub(b.rx_packets),
        rx_bytes: a.rx_bytes.wrapping_sub(b.rx_bytes),
        errors: a.errors.wrapping_sub(b.errors),
        drops: a.drops.wrapping_sub(b.drops),
        flags: a.flags.wrapping_sub(b.flags),
        balance: a.balance.wrapping_sub(b.balance),
    }
}

/// The instance the timer handler increments (null: the static).
static TICK_STATS: AtomicPtr<percpu_alloc::PerCpuStats<NetStats>> =
    AtomicPtr::new(std::ptr::null_mut());
/// Packets counted by the handler, per CPU.
static TICKS: [AtomicU64; CPUS] = [const { AtomicU64::new(0) }; CPUS];

/// The timer interrupt: one packet on the interrupted CPU, into the instance under test.
extern "C" fn packet_on_tick(_signal: libc::c_int) {
    let cpu = percpu::validate_this_cpu();
    let stats = TICK_STATS.load(Ordering::Acquire);
    if stats.is_null() {
        packet!(NET.fields(), cpu);
    } else {
        // SAFETY: published before the timers start, taken back after they all stopped.
        packet!(unsafe { (*stats).fields() }, cpu);
    }
    TICKS[cpu].fetch_add(1, Ordering::Relaxed);
}

/// Every CPU does `packets` packets with `packet` under its timer, while another thread sums with
/// `sum` and checks that the monotonic fields never go back; returns the interrupts' packets per CPU.
fn hammer(
    packets: u64,
    packet: impl Fn(usize) + Sync,
    sum: impl Fn() -> NetStats + Sync,
) -> [u64; CPUS] {
    for ticks in &TICKS {
        ticks.store(0, Ordering::Relaxed);
    }
    signal_timer::install(packet_on_tick);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut last = sum();
            let mut sums = 0u64;
            while !done.load(Ordering::Acquire) {
                let now = sum();
                assert!(
                    now.rx_packets >= last.rx_packets && now.rx_bytes >= last.rx_bytes,
                    "a sum went back: {last:?} then {now:?}"
                );
                last = now;
                sums += 1;
            }
            println!("{sums} sums taken while the CPUs incremented");
        });
        on_each_cpu(|cpu, barrier| {
            barrier.wait();
            let _timer = Timer::start(Duration::from_micros(20));
            for _ in 0..packets {
                packet(cpu);
            }
        });
        done.store(true, Ordering::Release);
    });
    std::array::from_fn(|cpu| TICKS[cpu].load(Ordering::Relaxed))
}

/// Checks the per-CPU copies and the sum against `packets` per CPU plus the interrupts' `ticks`.
fn check(packets: u64, ticks: [u64; CPUS], per_cpu: impl Fn(usize) -> NetStats, sum: NetStats) {
    let mut expected = after(0, 0);
    for (cpu, ticks) in ticks.iter().enumerate() {
        let mine = after(packets + ticks, cpu);
        assert_eq!(per_cpu(cpu), mine, "CPU {cpu}'s copy");
        expected = add(expected, mine);
    }
    assert_eq!(sum, expected);
    let ticks: u64 = ticks.iter().sum();
    assert!(
        ticks > 100,
        "too few timer interrupts to mean anything: {ticks}"
    );
    println!("{packets} packets per CPU and {ticks} from timer interrupts: exact");
}

const PACKETS: u64 = if cfg!(debug_assertions) {
    20_000
} else {
    500_000
};

#[test]
fn a_static_summed_while_every_cpu_and_its_interrupts_increment() {
    let _setup = setup();
    // Earlier tests of this binary may have counted: check the increase.
    on_each_cpu(|cpu, _| {
        let was = NET.per_cpu(cpu);
        packet!(NET.fields(), cpu);
        assert_eq!(diff(NET.per_cpu(cpu), was), after(1, cpu));
    });
    let base: Vec<_> = (0..CPUS).map(|cpu| NET.per_cpu(cpu)).collect();
    TICK_STATS.store(std::ptr::null_mut(), Ordering::Release);
    let ticks = hammer(PACKETS, |cpu| packet!(NET.fields(), cpu), || NET.sum());
    let increase = |cpu: usize| diff(NET.per_cpu(cpu), base[cpu]);
    let sum = diff(NET.sum(), base.iter().copied().fold(after(0, 0), add));
    check(PACKETS, ticks, increase, sum);
}

#[test]
fn an_allocated_instance_summed_while_every_cpu_and_its_interrupts_increment() {
    let _setup = setup();
    let stats = percpu_alloc::PerCpuStats::<NetStats>::new().unwrap();
    assert_eq!(stats.sum(), after(0, 0));
    TICK_STATS.store(&stats as *const _ as *mut _, Ordering::Release);
    let ticks = hammer(PACKETS, |cpu| packet!(stats.fields(), cpu), || stats.sum());
    TICK_STATS.store(std::ptr::null_mut(), Ordering::Release);
    check(PACKETS, ticks, |cpu| stats.per_cpu(cpu), stats.sum());
}

#[test]
fn instances_are_independent_and_start_at_zero() {
    let _setup = setup();
    let (a, b) = (
        percpu_alloc::PerCpuStats::<NetStats>::new().unwrap(),
        percpu_alloc::PerCpuStats::<NetStats>::new().unwrap(),
    );
    on_each_cpu(|cpu, _| {
        for _ in 0..=cpu {
            packet!(a.fields(), cpu);
        }
    });
    assert_eq!(b.sum(), after(0, 0));
    for cpu in 0..CPUS {
        assert_eq!(a.per_cpu(cpu), after(cpu as u64 + 1, cpu));
    }
    drop(a);
    let c = percpu_alloc::PerCpuStats::<NetStats>::new().unwrap();
    assert_eq!(
        c.sum(),
        after(0, 0),
        "a new instance starts at zero, even in reused memory"
    );
}

#[test]
#[should_panic(expected = "out of range")]
fn per_cpu_checks_the_cpu_id() {
    let _setup = setup();
    NET.per_cpu(CPUS);
}

/// The names of a statistics struct's fields are linted on the struct only: an `#[allow]` there is
/// enough (before, the generated `NamesFields` broke this denied lint with the same name).
#[deny(non_snake_case)]
mod lint_levels {
    #[allow(non_snake_case, dead_code)]
    #[derive(percpu::PerCpuStats)]
    pub struct Names {
        pub ZERO: u64,
    }
}
