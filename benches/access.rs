//! Host benchmarks: this repository's `percpu` against the usual alternatives to per-CPU data, on an
//! x86_64 Linux host where this thread acts as CPU 0 (its `GS` base points at area 0), or, with the
//! `sp-naive` feature (the only mode on other hosts), as the only CPU.
//!
//! - groups `read_u64`, `write_u64`, `add_u64` (ns per operation, `BATCH` per iteration): a static
//!   per-CPU `u64` (`percpu`), the same through `percpu::raw` with the VMA in a variable as a run-time
//!   allocated handle has it (`percpu-raw`), `thread_local!` with a `Cell` (`thread_local`, the
//!   reference), a `static mut` (`static_mut`), a relaxed `AtomicU64` (`atomic_relaxed`);
//! - groups `fetch_add_u64`, `xchg_u64`, `cmpxchg_u64`, `and_u64`, `or_u64`, `xor_u64`: the other
//!   guard-less read-modify-write operations, on the static (`percpu`) and through `percpu::raw`
//!   (`percpu-raw`), against the same on a `thread_local!` `Cell` (`thread_local`, the reference) and
//!   on one shared `AtomicU64` (`atomic_relaxed`: `fetch_add`, `swap`, `compare_exchange`, ...). The
//!   compare-and-swap expects the value the previous one left, so that it always succeeds;
//! - group `xchg_sequences_u64`: why `xchg_current` is the (always locked) `xchg` instruction on x86_64:
//!   it against an unlocked load and `cmpxchg` loop on the same copy, alone and after 4 stores;
//! - group `init_4_areas`: `percpu::init` of 4 areas against copying the same bytes (`memcpy`).
//!
//! `benches/peer` measures crates.io `percpu` 0.4 in the same groups; `cargo xtask bench` runs both
//! and writes `benches/results.md`.

mod shared;

use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::Criterion;
use shared::{access_group, batched, COUNTER, CPUS};

thread_local! {
    /// The `thread_local!` counterpart of `COUNTER`.
    static LOCAL: Cell<u64> = const { Cell::new(0) };
}

/// The plain global counterpart of `COUNTER`.
static mut GLOBAL: u64 = 0;

/// The atomic counterpart of `COUNTER`.
static ATOMIC: AtomicU64 = AtomicU64::new(0);

/// `read_u64`: one load per operation.
fn read(c: &mut Criterion, vma: usize) {
    let mut group = access_group(c, "read_u64");
    batched(&mut group, "percpu", (), |(), _| {
        black_box(COUNTER.read_current());
    });
    batched(&mut group, "percpu-raw", vma, |vma, _| {
        // SAFETY: `vma` is `COUNTER`'s, and this thread is CPU 0.
        black_box(unsafe { percpu::raw::read_current::<u64>(vma) });
    });
    batched(&mut group, "thread_local", (), |(), _| {
        black_box(LOCAL.get());
    });
    batched(&mut group, "static_mut", (), |(), _| {
        // SAFETY: only this thread accesses `GLOBAL`.
        black_box(unsafe { (&raw const GLOBAL).read() });
    });
    batched(&mut group, "atomic_relaxed", (), |(), _| {
        black_box(ATOMIC.load(Ordering::Relaxed));
    });
    group.finish();
}

/// `write_u64`: one store per operation.
fn write(c: &mut Criterion, vma: usize) {
    let mut group = access_group(c, "write_u64");
    batched(&mut group, "percpu", (), |(), i| COUNTER.write_current(i));
    batched(&mut group, "percpu-raw", vma, |vma, i| {
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, and no reference to its copy exists.
        unsafe { percpu::raw::write_current::<u64>(vma, i) }
    });
    batched(&mut group, "thread_local", (), |(), i| LOCAL.set(i));
    batched(&mut group, "static_mut", (), |(), i| {
        // SAFETY: only this thread accesses `GLOBAL`.
        unsafe { (&raw mut GLOBAL).write(i) }
    });
    batched(&mut group, "atomic_relaxed", (), |(), i| {
        ATOMIC.store(i, Ordering::Relaxed)
    });
    group.finish();
}

/// `add_u64`: one read-modify-write per operation.
fn add(c: &mut Criterion, vma: usize) {
    let mut group = access_group(c, "add_u64");
    batched(&mut group, "percpu", (), |(), i| COUNTER.add_current(i));
    batched(&mut group, "percpu-raw", vma, |vma, i| {
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, and no reference to its copy exists.
        unsafe { percpu::raw::add_current::<u64>(vma, i) }
    });
    batched(&mut group, "thread_local", (), |(), i| {
        LOCAL.set(LOCAL.get().wrapping_add(i))
    });
    batched(&mut group, "static_mut", (), |(), i| {
        let global = &raw mut GLOBAL;
        // SAFETY: only this thread accesses `GLOBAL`.
        unsafe { global.write(global.read().wrapping_add(i)) }
    });
    batched(&mut group, "atomic_relaxed", (), |(), i| {
        ATOMIC.fetch_add(i, Ordering::Relaxed);
    });
    group.finish();
}

/// Measures one guard-less operation in group `$name`, the batch index bound to `$i` (a `u64`) and the
/// VMA of `COUNTER` to `$vma`: `$percpu` on `COUNTER`, `$raw` through `percpu::raw`, `$local` on the
/// `thread_local!` `Cell`, `$atomic` on the shared `AtomicU64`.
macro_rules! rmw_group {
    ($c:expr, $name:literal, $vma_value:expr, |$i:ident, $vma:ident|
        percpu: $percpu:expr, raw: $raw:expr, local: $local:expr, atomic: $atomic:expr $(,)?) => {{
        let mut group = access_group($c, $name);
        batched(&mut group, "percpu", (), |(), $i: u64| {
            black_box($percpu);
        });
        batched(
            &mut group,
            "percpu-raw",
            $vma_value,
            |$vma: usize, $i: u64| {
                black_box($raw);
            },
        );
        batched(&mut group, "thread_local", (), |(), $i: u64| {
            black_box($local);
        });
        batched(&mut group, "atomic_relaxed", (), |(), $i: u64| {
            black_box($atomic);
        });
        group.finish();
    }};
}

/// The guard-less read-modify-write operations besides `add`, each in its own group.
fn other_rmw(c: &mut Criterion, vma: usize) {
    use percpu::raw;
    use Ordering::Relaxed;
    rmw_group!(c, "fetch_add_u64", vma, |i, vma|
        percpu: COUNTER.fetch_add_current(i),
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, no reference to its copy exists.
        raw: unsafe { raw::fetch_add_current::<u64>(vma, i) },
        local: LOCAL.replace(LOCAL.get().wrapping_add(i)),
        atomic: ATOMIC.fetch_add(i, Relaxed),
    );
    rmw_group!(c, "xchg_u64", vma, |i, vma|
        percpu: COUNTER.xchg_current(i),
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, no reference to its copy exists.
        raw: unsafe { raw::xchg_current::<u64>(vma, i) },
        local: LOCAL.replace(i),
        atomic: ATOMIC.swap(i, Relaxed),
    );
    // Each compare-and-swap expects what the previous one stored (`i` the batch index: the value
    // after it is `expected + 1 + i`, which the next iteration expects, read back from its result).
    let expected = Cell::new(COUNTER.read_current());
    rmw_group!(c, "cmpxchg_u64", vma, |i, vma|
        percpu: {
            let old = expected.get();
            let new = old.wrapping_add(1 + i);
            expected.set(match COUNTER.cmpxchg_current(old, new) {
                Ok(_) => new,
                Err(actual) => actual,
            });
        },
        raw: {
            let old = expected.get();
            let new = old.wrapping_add(1 + i);
            // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, no reference to its copy exists.
            expected.set(match unsafe { raw::cmpxchg_current::<u64>(vma, old, new) } {
                Ok(_) => new,
                Err(actual) => actual,
            });
        },
        local: {
            let (old, actual) = (expected.get(), LOCAL.get());
            let new = old.wrapping_add(1 + i);
            expected.set(if actual == old {
                LOCAL.set(new);
                new
            } else {
                actual
            });
        },
        atomic: {
            let old = expected.get();
            let new = old.wrapping_add(1 + i);
            expected.set(match ATOMIC.compare_exchange(old, new, Relaxed, Relaxed) {
                Ok(_) => new,
                Err(actual) => actual,
            });
        },
    );
    rmw_group!(c, "and_u64", vma, |i, vma|
        percpu: COUNTER.and_current(!i),
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, no reference to its copy exists.
        raw: unsafe { raw::and_current::<u64>(vma, !i) },
        local: LOCAL.set(LOCAL.get() & !i),
        atomic: ATOMIC.fetch_and(!i, Relaxed),
    );
    rmw_group!(c, "or_u64", vma, |i, vma|
        percpu: COUNTER.or_current(i),
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, no reference to its copy exists.
        raw: unsafe { raw::or_current::<u64>(vma, i) },
        local: LOCAL.set(LOCAL.get() | i),
        atomic: ATOMIC.fetch_or(i, Relaxed),
    );
    rmw_group!(c, "xor_u64", vma, |i, vma|
        percpu: COUNTER.xor_current(i),
        // SAFETY: `vma` is `COUNTER`'s, this thread is CPU 0, no reference to its copy exists.
        raw: unsafe { raw::xor_current::<u64>(vma, i) },
        local: LOCAL.set(LOCAL.get() ^ i),
        atomic: ATOMIC.fetch_xor(i, Relaxed),
    );
}

/// `xchg_sequences_u64`: the two correct sequences of a guard-less swap on x86_64, the locked `xchg`
/// (what `xchg_current` uses) and a load with an unlocked `cmpxchg` loop, alone and after 4 stores.
#[cfg(all(target_arch = "x86_64", not(feature = "sp-naive")))]
fn xchg_sequences(c: &mut Criterion, vma: usize) {
    /// Where the plain stores that precede a swap go, so that the swap finds stores pending (a locked
    /// instruction waits for them).
    static mut PENDING: [u64; 4] = [0; 4];
    let pending = |stores: usize, value: u64| {
        let words = (&raw mut PENDING).cast::<u64>();
        for k in 0..stores {
            // SAFETY: `k < 4`, inside `PENDING`, which only this thread accesses.
            unsafe { words.add(k).write_volatile(value) };
        }
    };
    let mut group = access_group(c, "xchg_sequences_u64");
    for stores in [0, 4] {
        batched(
            &mut group,
            &format!("xchg_{stores}_stores"),
            vma,
            |vma, i| {
                pending(stores, i);
                let old: u64;
                // SAFETY: `vma` is `COUNTER`'s and this thread is CPU 0: `gs:[vma]` is its copy.
                unsafe {
                    std::arch::asm!("xchg qword ptr gs:[{a}], {v}", a = in(reg) vma,
                    v = inout(reg) i => old, options(nostack, preserves_flags))
                };
                black_box(old);
            },
        );
        batched(
            &mut group,
            &format!("cmpxchg_loop_{stores}_stores"),
            vma,
            |vma, i| {
                pending(stores, i);
                let old: u64;
                // SAFETY: as above.
                unsafe {
                    std::arch::asm!("mov rax, qword ptr gs:[{a}]", "2:", "cmpxchg qword ptr gs:[{a}], {v}",
                    "jne 2b", a = in(reg) vma, v = in(reg) i, out("rax") old, options(nostack))
                };
                black_box(old);
            },
        );
    }
    group.finish();
}

/// `init_4_areas`: `percpu::init` against copying the same bytes into another 4 areas.
fn init(c: &mut Criterion, base: *mut u8, layout: std::alloc::Layout) {
    let mut group = c.benchmark_group("init_4_areas");
    // This thread hands CPU 0 back while it measures: a registered CPU makes `init` refuse
    // (`InitError::InUse`), which would measure the refusal.
    percpu::release_percpu_reg();
    assert!(percpu::init(base, CPUS).is_ok(), "the areas are in use");
    shared::init(&mut group, "percpu", base);
    percpu::init_percpu_reg(0);
    let size = percpu::percpu_area_size();
    let stride = layout.size() / CPUS;
    let source = vec![1u8; size];
    let mut areas = vec![0u8; layout.size()];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            let source = black_box(source.as_ptr());
            let areas = black_box(areas.as_mut_ptr());
            for cpu in 0..CPUS {
                // SAFETY: `size <= stride`, so each copy stays inside `areas`; `source` is another
                // allocation of `size` bytes.
                unsafe { std::ptr::copy_nonoverlapping(source, areas.add(cpu * stride), size) };
            }
        })
    });
    group.finish();
}

fn main() {
    let (base, layout) = shared::become_cpu0();
    // The VMA in a variable the compiler cannot see through, as a run-time allocated handle holds it.
    let vma = black_box(COUNTER.symbol_vma());
    let mut c = shared::criterion();
    read(&mut c, vma);
    write(&mut c, vma);
    add(&mut c, vma);
    other_rmw(&mut c, vma);
    #[cfg(all(target_arch = "x86_64", not(feature = "sp-naive")))]
    xchg_sequences(&mut c, vma);
    init(&mut c, base, layout);
    c.final_summary();
}
