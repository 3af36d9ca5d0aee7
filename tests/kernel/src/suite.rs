//! The test suite: boot, per-CPU area initialization, CPU start-up, and the
//! phases every CPU runs concurrently, separated by barriers: the static
//! per-CPU variables, remote writes, the counters under the timer, and the
//! run-time per-CPU objects of [`dynamic`](crate::dynamic).

use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::check::{expect, expect_eq};
use crate::sync::{spin_until, Barrier};
use crate::{arch, checked, counters, dynamic, heap, link, println, vars, MAX_CPUS};

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

/// The number of running CPUs, published by the boot CPU once all checked
/// in (0 before): the secondaries' signal to start the suite.
static CPUS: AtomicUsize = AtomicUsize::new(0);

/// The barrier between the phases of the suite.
static BARRIER: Barrier = Barrier::new();

/// Kernel features this build was made with, for the banner.
const FEATURES: [(&str, bool); 5] = [
    ("init-dynamic", cfg!(feature = "init-dynamic")),
    ("preempt", cfg!(feature = "preempt")),
    ("arm-el2", cfg!(feature = "arm-el2")),
    ("non-zero-vma", cfg!(feature = "non-zero-vma")),
    ("selftest-fail", cfg!(feature = "selftest-fail")),
];

/// The boot CPU: initializes the per-CPU areas, starts the other CPUs and
/// runs the suite with them.
pub fn boot_cpu() -> ! {
    print_banner();
    heap::init();
    let areas = init_areas();
    percpu::init_percpu_reg(0);
    check_register(0, "after init_percpu_reg(0)");
    dynamic::init();

    let cpus = arch::start_secondary_cpus(areas.min(MAX_CPUS));
    CHECKED_IN.fetch_add(1, Ordering::AcqRel);
    spin_until(
        || CHECKED_IN.load(Ordering::Acquire) == cpus,
        || {
            crate::fail(format_args!(
                "cpu 0: only {} of the {cpus} cpus started checked in",
                CHECKED_IN.load(Ordering::Relaxed)
            ))
        },
    );
    expect(
        0,
        cpus <= areas,
        format_args!("{cpus} cpus but only {areas} per-CPU areas"),
    );
    println!(
        "boot: {cpus} cpus checked in, each with its per-CPU register set; starting the suite"
    );
    CPUS.store(cpus, Ordering::Release);
    run(0, cpus)
}

/// A secondary CPU: sets its per-CPU register, checks in, and runs the suite
/// once the boot CPU gives the go.
pub fn secondary_cpu(cpu: usize) -> ! {
    percpu::init_percpu_reg(cpu);
    check_register(cpu, "after init_percpu_reg");
    CHECKED_IN.fetch_add(1, Ordering::AcqRel);
    spin_until(
        || CPUS.load(Ordering::Acquire) != 0,
        || {
            crate::fail(format_args!(
                "cpu {cpu}: the boot cpu never started the suite"
            ))
        },
    );
    run(cpu, CPUS.load(Ordering::Acquire))
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
    /// Bytes available: 8 areas of this kernel's variables and [`RESERVE`],
    /// with room to spare.
    const SIZE: usize = 8 * (RESERVE + 16 * 1024);
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

    CPU_ID.write_current(cpu);
    vars::check_local_all(cpu);
    #[cfg(feature = "preempt")]
    crate::preempt::check_with_current(cpu);
    println!(
        "cpu {cpu}: wrote {:#x} to {} per-CPU variables, read back OK",
        vars::pattern_bits(cpu),
        vars::COUNT
    );
    barrier("the patterns to be written");

    for other in (0..cpus).filter(|&other| other != cpu) {
        vars::check_remote_all(cpu, other);
    }
    println!(
        "cpu {cpu}: checked the {} variables of {} remotely: OK",
        vars::COUNT,
        Others { cpu, cpus }
    );
    barrier("the remote checks");

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
    println!("cpu {cpu}: wrote cpu {next}'s mailbox remotely, read mine from cpu {previous}: OK");

    counters::hammer(cpu);
    barrier("the counters to be hammered");
    let ticks = counters::check_remote_sums(cpu, cpus);
    barrier("the counters to be summed");

    checked::run(cpu, cpus, barrier);

    dynamic::run(cpu, cpus, barrier);
    crate::stats::run(cpu, cpus, barrier);

    check_register(cpu, "after the suite");
    expect_eq(cpu, format_args!("CPU_ID"), CPU_ID.read_current(), cpu);
    #[cfg(feature = "preempt")]
    crate::preempt::check_balanced(cpu);
    println!(
        "cpu {cpu}: per-CPU register still {:#x} after the suite: OK",
        percpu::read_percpu_reg()
    );
    barrier("all cpus to finish");

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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cpus == 1 {
            return f.write_str("no other cpus");
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
