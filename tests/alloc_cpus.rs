//! Run-time allocated per-CPU data on the x86_64 Linux host, with threads acting as CPUs: concurrent
//! allocation and freeing, every CPU writing its own copy of every live handle, remote cross-checks,
//! destructors run on every CPU's copy, exact counters, chunk growth and release, and the errors.

mod common;
#[path = "common/alloc.rs"]
mod common_alloc;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{on_each_cpu, CPUS};
use common_alloc::{setup, CountingSource};
use percpu::checked::{IrqGuard, PreemptGuard};
use percpu_alloc::{alloc_percpu, AllocError, PerCpu, PerCpuCell, PerCpuCounter};

static SOURCE: CountingSource = CountingSource::new();

#[test]
fn concurrent_alloc_write_cross_check_and_free() {
    const PER_CPU: usize = 300;
    let _setup = setup(&SOURCE);
    let handles: Mutex<Vec<(usize, Arc<PerCpuCell<u64>>)>> = Mutex::new(Vec::new());
    on_each_cpu(|cpu, barrier| {
        // Every CPU allocates at the same time; each handle starts as `owner * 1_000_000 + copy's cpu`.
        let mine: Vec<_> = (0..PER_CPU)
            .map(|_| {
                Arc::new(PerCpuCell::new_with(|copy| (cpu * 1_000_000 + copy) as u64).unwrap())
            })
            .collect();
        handles
            .lock()
            .unwrap()
            .extend(mine.iter().map(|h| (cpu, h.clone())));
        barrier.wait();
        let all = handles.lock().unwrap().clone();
        assert_eq!(all.len(), CPUS * PER_CPU);
        for (index, (owner, handle)) in all.iter().enumerate() {
            assert_eq!(handle.read_current(), (owner * 1_000_000 + cpu) as u64);
            handle.write_current((index * 16 + cpu) as u64);
            handle.add_current(3);
            handle.sub_current(1);
        }
        barrier.wait();
        for (index, (_, handle)) in all.iter().enumerate() {
            for other in 0..CPUS {
                // SAFETY: `other` is initialized and nobody writes between the barriers.
                let value = unsafe { *handle.remote_ptr(other) };
                assert_eq!(
                    value,
                    (index * 16 + other) as u64 + 2,
                    "handle {index}, cpu {other}"
                );
            }
        }
        barrier.wait();
        // Free our handles while the others allocate new ones.
        drop(all);
        handles.lock().unwrap().retain(|(owner, _)| *owner != cpu);
        drop(mine);
        let again: Vec<_> = (0..PER_CPU)
            .map(|_| alloc_percpu::<[u32; 10]>().unwrap())
            .collect();
        let guard = PreemptGuard::new();
        for handle in &again {
            assert_eq!(*handle.get(&guard), [0; 10]);
        }
    });
    assert!(handles.lock().unwrap().is_empty());
}

/// Counts, per CPU, the destructors of `Tracked` values.
static DROPS: [AtomicUsize; CPUS] = [const { AtomicUsize::new(0) }; CPUS];

struct Tracked {
    cpu: usize,
    _payload: [u8; 24],
}

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPS[self.cpu].fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn drop_runs_on_every_cpus_copy() {
    let _setup = setup(&SOURCE);
    let before: Vec<_> = DROPS.iter().map(|d| d.load(Ordering::Relaxed)).collect();
    let handle = PerCpu::new_with(|cpu| Tracked {
        cpu,
        _payload: [cpu as u8; 24],
    })
    .unwrap();
    on_each_cpu(|cpu, _| assert_eq!(handle.get(&IrqGuard::new()).cpu, cpu));
    drop(handle);
    for cpu in 0..CPUS {
        assert_eq!(
            DROPS[cpu].load(Ordering::Relaxed),
            before[cpu] + 1,
            "cpu {cpu}"
        );
    }
}

#[test]
fn counters_sum_exactly() {
    const ROUNDS: i64 = 100_000;
    let _setup = setup(&SOURCE);
    let counter = PerCpuCounter::new().unwrap();
    on_each_cpu(|cpu, _| {
        for _ in 0..ROUNDS {
            counter.inc();
            counter.add(2);
            counter.dec();
        }
        counter.add(cpu as i64);
    });
    for cpu in 0..CPUS {
        assert_eq!(counter.per_cpu(cpu), 2 * ROUNDS + cpu as i64);
    }
    assert_eq!(
        counter.sum(),
        CPUS as i64 * 2 * ROUNDS + (0..CPUS as i64).sum::<i64>()
    );
}

#[test]
fn references_through_guards_remote_references_and_exclusive_access() {
    let _setup = setup(&SOURCE);
    // Each CPU changes its own copy through a guard: a `RefCell` (not `Sync`) under an `IrqGuard`, an
    // atomic (`Sync`) under a `PreemptGuard`, which other CPUs may then read through `remote`.
    let mut names = PerCpu::new_with(|cpu| RefCell::new(format!("cpu{cpu}"))).unwrap();
    let hits = PerCpu::new_with(AtomicUsize::new).unwrap();
    on_each_cpu(|cpu, barrier| {
        let irq = IrqGuard::new();
        names.get(&irq).borrow_mut().push_str(&format!("-{cpu}"));
        drop(irq);
        hits.get(&PreemptGuard::new())
            .fetch_add(10, Ordering::Relaxed);
        barrier.wait();
        let others = (0..CPUS).map(|other| hits.remote(other).load(Ordering::Relaxed));
        assert_eq!(others.sum::<usize>(), (0..CPUS).map(|c| c + 10).sum());
    });
    assert_eq!(
        hits.iter()
            .map(|h| h.load(Ordering::Relaxed))
            .collect::<Vec<_>>(),
        [10, 11, 12, 13]
    );
    // Exclusive access through `&mut` reaches every copy, `Sync` or not.
    assert_eq!(names.get_mut(2).get_mut(), "cpu2-2");
    let all: Vec<_> = names
        .iter_mut()
        .map(|name| name.get_mut().clone())
        .collect();
    assert_eq!(
        all,
        (0..CPUS)
            .map(|cpu| format!("cpu{cpu}-{cpu}"))
            .collect::<Vec<_>>()
    );
}

#[test]
#[should_panic(expected = "CPU id 9 is out of range: 4 per-CPU areas are initialized")]
fn remote_past_the_cpus_panics() {
    let _setup = setup(&SOURCE);
    let handle = alloc_percpu::<u8>().unwrap();
    handle.remote(9);
}

#[test]
#[should_panic(expected = "CPU id 9 is out of range: 4 CPUs")]
fn get_mut_past_the_cpus_panics() {
    let _setup = setup(&SOURCE);
    let mut handle = alloc_percpu::<u8>().unwrap();
    handle.get_mut(9);
}

#[test]
fn chunks_grow_and_are_released() {
    let _setup = setup(&SOURCE);
    let unit = percpu_alloc::max_size();
    let obtained = SOURCE.obtained.load(Ordering::Relaxed);
    // More than a unit's worth of 1000-byte objects: needs further chunks.
    let handles: Vec<_> = (0..3 * unit / 1000)
        .map(|_| PerCpu::new_with(|_| [0u8; 1000]).unwrap())
        .collect();
    assert!(
        SOURCE.obtained.load(Ordering::Relaxed) >= obtained + 2,
        "further chunks were obtained"
    );
    on_each_cpu(|cpu, _| {
        for handle in &handles {
            // SAFETY: this thread is CPU `cpu`; nothing else references its copy meanwhile.
            unsafe { handle.with_current(|bytes| bytes.fill(cpu as u8)) };
        }
    });
    for handle in &handles {
        for cpu in 0..CPUS {
            // SAFETY: initialized CPU, no writer.
            assert!(unsafe { &*handle.remote_ptr(cpu) }
                .iter()
                .all(|&b| b == cpu as u8));
        }
    }
    drop(handles);
    // Emptied chunks stay until task context asks (a drop may run in interrupt context), then go back
    // to the source, but one spare.
    assert!(SOURCE.live.load(Ordering::Relaxed) >= 2);
    assert!(percpu_alloc::reclaim() >= 1);
    assert!(
        SOURCE.live.load(Ordering::Relaxed) <= 1,
        "live chunks: {}",
        SOURCE.live.load(Ordering::Relaxed)
    );
}

#[test]
fn bad_sizes_and_alignments_are_errors_and_zero_sized_types_are_free() {
    let _setup = setup(&SOURCE);
    #[repr(align(8192))]
    struct OverAligned(#[allow(dead_code)] u8);
    struct Huge(#[allow(dead_code)] [u8; 256 << 10]);
    assert_eq!(
        PerCpu::new_with(|_| OverAligned(0)).unwrap_err(),
        AllocError::UnsupportedAlignment
    );
    assert_eq!(
        PerCpu::<Huge>::new_with(|_| unreachable!()).unwrap_err(),
        AllocError::TooLarge
    );
    let before = percpu_alloc::stats().unwrap();
    let unit = alloc_percpu::<()>().unwrap();
    let other_unit = alloc_percpu::<()>().unwrap();
    // Zero-sized copies share their address, but nesting them aliases no byte: no debug-check panic.
    // SAFETY: no other reference to either copy meanwhile (and they have no bytes).
    on_each_cpu(|_, _| unsafe { unit.with_current(|()| other_unit.with_current(|()| ())) });
    assert_eq!(percpu_alloc::stats().unwrap(), before);
    assert_eq!(
        AllocError::TooLarge.to_string(),
        "the object is larger than a per-CPU unit"
    );
}
