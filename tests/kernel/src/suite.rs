//! The test suite: boot, per-CPU area initialization, CPU start-up in two
//! waves (see [`waves`](crate::waves)), and the phases every CPU runs
//! concurrently, separated by barriers: the static per-CPU variables, remote
//! writes, the counters under the timer, and the run-time per-CPU objects of
//! [`dynamic`](crate::dynamic).
//!
//! The CPU count is checked against the one QEMU was started with (fw_cfg):
//! a CPU that does not come online fails the run. With many CPUs, each CPU
//! prints less (see [`VERBOSE_CPUS`]) and does fewer rounds of work, but the
//! checks stay: every CPU's copies are checked remotely, counters are summed
//! exactly, run-time objects are used on every CPU.

use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::check::{expect, expect_eq};
use crate::sync::{spin_until, wait_until, Barrier};
use crate::{arch, checked, counters, dynamic, heap, link, println, vars, waves, MAX_CPUS};

/// Up to this many CPUs, every CPU reports each phase on the console; with
/// more, only CPU 0 reports for all (the console is one slow UART).
pub const VERBOSE_CPUS: usize = 8;

/// The pass marker `cargo xtask` looks for.
const PASS_MARKER: &str = "PERCPU-KERNEL-TESTS: PASS";

/// This CPU's logical id, as a kernel would keep it.
#[percpu::def_percpu]
static CPU_ID: usize = usize::MAX;

/// A word each CPU writes into the next CPU's copy (remote write).
#[percpu::def_percpu]
static MAILBOX: usize = 0;

/// CPUs that initialized their per-CPU register.
static CHECKED_IN: AtomicUsize = AtomicUsize::new(0);

/// The number of CPUs of the first wave, published by the boot CPU once
/// they checked in (0 before): their signal to start [`waves::first_wave`].
static WAVE1: AtomicUsize = AtomicUsize::new(0);

/// The number of running CPUs, published by the boot CPU once both waves
/// checked in (0 before): the signal to start [`waves::second_wave`] and the
/// suite.
static CPUS: AtomicUsize = AtomicUsize::new(0);

/// Work shared out among `cpus` CPUs: `total` units in all, at least 1 and
/// at most `most` per CPU.
pub fn per_cpu_share(total: usize, cpus: usize, most: usize) -> usize {
    (total / cpus.max(1)).clamp(1, most)
}

/// The number of CPUs running the suite (0 before both waves are online).
pub fn running_cpus() -> usize {
    CPUS.load(Ordering::Acquire)
}

/// The barrier between the phases of the suite.
static BARRIER: Barrier = Barrier::new();

/// Kernel features this build was made with, for the banner.
const FEATURES: [(&str, bool); 6] = [
    ("init-dynamic", cfg!(feature = "init-dynamic")),
    ("preempt", cfg!(feature = "preempt")),
    ("arm-el2", cfg!(feature = "arm-el2")),
    ("non-zero-vma", cfg!(feature = "non-zero-vma")),
    ("selftest-fail", cfg!(feature = "selftest-fail")),
    ("selftest-lose-cpu", cfg!(feature = "selftest-lose-cpu")),
];

/// The boot CPU: initializes the per-CPU areas for every possible CPU,
/// starts the other CPUs in two waves with run-time objects allocated in
/// between, checks that every CPU QEMU has came online, and runs the suite
/// with them.
pub fn boot_cpu() -> ! {
    print_banner();
    heap::init();
    let areas = init_areas();
    percpu::init_percpu_reg(0);
    check_register(0, "after init_percpu_reg(0)");
    dynamic::init();

    let present = arch::present_cpus().unwrap_or_else(|| {
        crate::fail(format_args!(
            "cpu 0: no fw_cfg device: cannot tell how many cpus QEMU has"
        ))
    });
    expect(
        0,
        (1..=areas.min(MAX_CPUS)).contains(&present),
        format_args!(
            "QEMU has {present} cpus; this kernel runs 1 to {} ({areas} per-CPU areas, \
             MAX_CPUS = {MAX_CPUS})",
            areas.min(MAX_CPUS)
        ),
    );
    // The first wave: about half of the CPUs, at least the boot CPU.
    let wave1 = present.div_ceil(2);
    CHECKED_IN.fetch_add(1, Ordering::AcqRel);
    bring_online(wave1, "the first wave");
    println!("boot: first wave: {wave1} of the {present} cpus online");
    WAVE1.store(wave1, Ordering::Release);
    arch::wake_all();
    let first = |what| BARRIER.wait(0, wave1, what);
    waves::first_wave(0, wave1, first);

    bring_online(present, LAST_WAVE);
    println!(
        "boot: second wave: {} more cpus online, {present} in all (QEMU's count); \
         each with its per-CPU register set",
        present - wave1
    );
    CPUS.store(present, Ordering::Release);
    arch::wake_all();
    let all = |what| BARRIER.wait(0, present, what);
    waves::second_wave(0, wave1, present, all);
    run(0, present)
}

/// The name of the second wave, which brings the last CPUs online.
const LAST_WAVE: &str = "the second wave";

/// On the boot CPU: starts CPUs until `cpus` run and waits until they all
/// checked in; fails the run if one cannot be started or never checks in.
/// With `selftest-lose-cpu`, the last CPU of a run with more than one is
/// not started, and the run must fail here.
fn bring_online(cpus: usize, wave: &str) {
    let lose = cfg!(feature = "selftest-lose-cpu") && cpus > 1 && wave == LAST_WAVE;
    let started = arch::start_secondary_cpus(cpus - usize::from(lose));
    expect_eq(
        0,
        format_args!("cpus online after starting {wave}"),
        started,
        cpus,
    );
    spin_until(
        || CHECKED_IN.load(Ordering::Acquire) == cpus,
        || {
            crate::fail(format_args!(
                "cpu 0: only {} of the {cpus} cpus started checked in",
                CHECKED_IN.load(Ordering::Relaxed)
            ))
        },
    );
}

/// A secondary CPU: sets its per-CPU register, checks in, runs the waves
/// once the boot CPU gives the go for its wave, and then the suite.
pub fn secondary_cpu(cpu: usize) -> ! {
    percpu::init_percpu_reg(cpu);
    check_register(cpu, "after init_percpu_reg");
    CHECKED_IN.fetch_add(1, Ordering::AcqRel);
    // Set before the second wave starts: only the first wave waits here.
    wait_until(cpu, || WAVE1.load(Ordering::Acquire) != 0, || ());
    let wave1 = WAVE1.load(Ordering::Acquire);
    if cpu < wave1 {
        let first = |what| BARRIER.wait(cpu, wave1, what);
        waves::first_wave(cpu, wave1, first);
    }
    wait_until(cpu, || CPUS.load(Ordering::Acquire) != 0, || ());
    let cpus = CPUS.load(Ordering::Acquire);
    let all = |what| BARRIER.wait(cpu, cpus, what);
    waves::second_wave(cpu, wave1, cpus, all);
    run(cpu, cpus)
}

/// Prints what is being tested, for whoever reads the console.
fn print_banner() {
    println!("");
    println!("=== percpu test kernel on {} ===", arch::NAME);
    println!(
        "Every CPU gets its own copy of each per-CPU variable, in its own per-CPU area; \
         its per-CPU register ({}) points at that area.",
        register_name()
    );
    println!(
        "The secondary CPUs come online in two waves, with run-time per-CPU objects \
         allocated in between; the CPUs online must be all that QEMU has."
    );
    println!(
        "Each CPU writes its own values, then checks the other CPUs' copies, then \
         hammers per-CPU counters with add_current/sub_current."
    );
    println!(
        "Then the same with per-CPU objects allocated at run time (percpu_alloc), \
         reached through the same register."
    );
    println!(
        "The run ends with the line `{PASS_MARKER}` and QEMU exit status {} \
         (or a FAIL line and status {}).",
        arch::QEMU_PASS_STATUS,
        arch::QEMU_FAIL_STATUS
    );
    let mut any = false;
    for (name, _) in FEATURES.iter().filter(|(_, on)| *on) {
        println!("build feature: {name}");
        any = true;
    }
    if !any {
        println!("build features: none (default configuration)");
    }
}

/// The name of the per-CPU register on this architecture.
fn register_name() -> &'static str {
    match arch::NAME {
        "x86_64" => "GS_BASE",
        "aarch64" if cfg!(feature = "arm-el2") => "TPIDR_EL2",
        "aarch64" => "TPIDR_EL1",
        "riscv64" => "gp",
        "loongarch64" => "$r21",
        _ => "?",
    }
}

/// Initializes the per-CPU areas; returns how many there are.
fn init_areas() -> usize {
    let areas = if cfg!(feature = "init-dynamic") {
        init_dynamic()
    } else {
        let areas = percpu::init_in_place()
            .unwrap_or_else(|e| crate::fail(format_args!("init_in_place() failed: {e:?}")));
        expect_eq(
            0,
            format_args!("init_in_place() areas (CPU_NUM of the linker script)"),
            areas,
            link::CPU_NUM,
        );
        expect_eq(
            0,
            format_args!("percpu_area_num()"),
            percpu::percpu_area_num(),
            areas,
        );
        println!(
            "boot: init_in_place(): {areas} per-CPU areas reserved by the linker script \
             (CPU_NUM = {})",
            link::CPU_NUM
        );
        areas
    };
    let size = percpu::percpu_area_size();
    for cpu in 1..areas {
        let stride = percpu::percpu_area_base(cpu) - percpu::percpu_area_base(cpu - 1);
        expect(
            0,
            stride >= size,
            format_args!(
                "areas {} and {cpu} overlap: stride {stride:#x} < size {size:#x}",
                cpu - 1
            ),
        );
    }
    println!(
        "boot: {areas} areas of {size} bytes at {:#x}..{:#x}, .percpu linked at {:#x}",
        percpu::percpu_area_base(0),
        percpu::percpu_area_base(areas - 1) + size,
        link::PERCPU_VMA,
    );
    areas
}

/// The dynamic reserve of every area with `init-dynamic`: the first chunk
/// of `percpu_alloc`.
const RESERVE: usize = 16 * 1024;

/// Memory the kernel provides for `percpu::init_with_reserve` with
/// `init-dynamic`.
#[repr(C, align(4096))]
struct AreaMemory(UnsafeCell<[u8; AreaMemory::SIZE]>);

impl AreaMemory {
    /// Bytes available: [`MAX_CPUS`] areas of this kernel's variables and
    /// [`RESERVE`], with room to spare.
    const SIZE: usize = MAX_CPUS * (RESERVE + 16 * 1024);
}

// SAFETY: only `percpu` touches the memory, through the per-CPU accessors.
unsafe impl Sync for AreaMemory {}

/// The per-CPU areas of `init-dynamic` (in `.bss`).
static AREA_MEMORY: AreaMemory = AreaMemory(UnsafeCell::new([0; AreaMemory::SIZE]));

/// Initializes [`MAX_CPUS`] per-CPU areas with a [`RESERVE`] each in
/// [`AREA_MEMORY`] with `percpu::init_with_reserve`.
fn init_dynamic() -> usize {
    let layout = percpu::percpu_area_layout_with_reserve(MAX_CPUS, RESERVE);
    expect(
        0,
        layout.size() <= AreaMemory::SIZE && layout.align() <= 4096,
        format_args!(
            "{layout:?} does not fit the {} bytes provided",
            AreaMemory::SIZE
        ),
    );
    let base = AREA_MEMORY.0.get().cast::<u8>();
    let areas = percpu::init_with_reserve(base, MAX_CPUS, RESERVE).unwrap_or_else(|e| {
        crate::fail(format_args!(
            "init_with_reserve({base:p}, {MAX_CPUS}, {RESERVE}) failed: {e:?}"
        ))
    });
    expect_eq(
        0,
        format_args!("init_with_reserve() areas"),
        areas,
        MAX_CPUS,
    );
    expect_eq(
        0,
        format_args!("percpu_area_base(0)"),
        percpu::percpu_area_base(0),
        base as usize,
    );
    println!(
        "boot: init_with_reserve(): {areas} per-CPU areas with a {RESERVE}-byte reserve each, \
         in a {}-byte static buffer ({} bytes needed)",
        AreaMemory::SIZE,
        layout.size()
    );
    areas
}

/// Checks that this CPU's per-CPU register points at its area.
fn check_register(cpu: usize, when: &str) {
    expect_eq(
        cpu,
        format_args!("per-CPU register {when}"),
        percpu::read_percpu_reg(),
        percpu::percpu_area_base(cpu),
    );
}

/// The suite, run by all `cpus` CPUs at once.
fn run(cpu: usize, cpus: usize) -> ! {
    let barrier = |what| BARRIER.wait(cpu, cpus, what);

    let verbose = cpus <= VERBOSE_CPUS;
    // With many CPUs, CPU 0 reports a phase once all CPUs passed it.
    let report = |what: fmt::Arguments| {
        if !verbose && cpu == 0 {
            println!("all {cpus} cpus: {what}");
        }
    };

    CPU_ID.write_current(cpu);
    vars::check_local_all(cpu);
    #[cfg(feature = "preempt")]
    crate::preempt::check_with_current(cpu);
    if verbose {
        println!(
            "cpu {cpu}: wrote {:#x} to {} per-CPU variables, read back OK",
            vars::pattern_bits(cpu),
            vars::COUNT
        );
    }
    barrier("the patterns to be written");
    report(format_args!(
        "wrote their patterns to {} per-CPU variables, read back OK",
        vars::COUNT
    ));

    for other in (0..cpus).filter(|&other| other != cpu) {
        vars::check_remote_all(cpu, other);
    }
    if verbose {
        println!(
            "cpu {cpu}: checked the {} variables of {} remotely: OK",
            vars::COUNT,
            Others { cpu, cpus }
        );
    }
    barrier("the remote checks");
    report(format_args!(
        "each checked the {} variables of the {} others remotely: OK",
        vars::COUNT,
        cpus - 1
    ));

    let next = (cpu + 1) % cpus;
    // SAFETY: `next` is a running CPU; between these two barriers only this
    // CPU touches `next`'s mailbox.
    unsafe { *MAILBOX.remote_ref_mut_raw(next) = mail_from(cpu) };
    barrier("the mailboxes to be written");
    let previous = (cpu + cpus - 1) % cpus;
    expect_eq(
        cpu,
        format_args!("mailbox written by cpu {previous}"),
        MAILBOX.read_current(),
        mail_from(previous),
    );
    if verbose {
        println!(
            "cpu {cpu}: wrote cpu {next}'s mailbox remotely, read mine from cpu {previous}: OK"
        );
    }

    counters::hammer(cpu, verbose);
    barrier("the counters to be hammered");
    report(format_args!(
        "wrote the next cpu's mailbox remotely; hammered their counters: nothing lost"
    ));
    let ticks = counters::check_remote_sums(cpu, cpus, verbose);
    barrier("the counters to be summed");
    report(format_args!(
        "each summed the counters of all cpus remotely: exact"
    ));

    checked::run(cpu, cpus, verbose, barrier);
    report(format_args!(
        "checked tier: guards, cells and atomics under the timer, read remotely: nothing lost"
    ));

    dynamic::run(cpu, cpus, barrier);
    crate::stats::run(cpu, cpus, barrier);

    check_register(cpu, "after the suite");
    expect_eq(cpu, format_args!("CPU_ID"), CPU_ID.read_current(), cpu);
    #[cfg(feature = "preempt")]
    crate::preempt::check_balanced(cpu, verbose);
    if verbose {
        println!(
            "cpu {cpu}: per-CPU register still {:#x} after the suite: OK",
            percpu::read_percpu_reg()
        );
    }
    barrier("all cpus to finish");
    report(format_args!(
        "per-CPU register unchanged after the suite: OK"
    ));

    if cpu != 0 {
        crate::park();
    }
    println!(
        "summary: {} on {cpus} cpus: {} per-CPU variables per cpu, {} checks passed, \
         {ticks} timer ticks",
        arch::NAME,
        vars::COUNT,
        crate::check::passed()
    );
    println!("{PASS_MARKER}");
    arch::exit(true)
}

/// What CPU `cpu` writes into the next CPU's mailbox.
fn mail_from(cpu: usize) -> usize {
    0x4d41_0000 + cpu
}

/// The CPUs other than `cpu` among `cpus`, displayed as "cpus 0,1,3".
pub struct Others {
    /// This CPU.
    pub cpu: usize,
    /// The running CPUs.
    pub cpus: usize,
}

impl fmt::Display for Others {
    /// Lists the other CPUs up to [`VERBOSE_CPUS`] CPUs, counts them beyond.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cpus == 1 {
            return f.write_str("no other cpus");
        }
        if self.cpus > VERBOSE_CPUS {
            return write!(f, "the {} other cpus", self.cpus - 1);
        }
        f.write_str("cpus ")?;
        let others = (0..self.cpus).filter(|&other| other != self.cpu);
        for (i, other) in others.enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{other}")?;
        }
        Ok(())
    }
}
