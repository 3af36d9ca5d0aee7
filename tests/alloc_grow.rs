//! Growth from many CPUs at once (a defect the 256-CPU QEMU run found): CPUs that all find the space
//! full obtain one further chunk between them, one CPU at a time, instead of a chunk each (each a unit
//! for every possible CPU: hundreds of CPUs exhausted the kernel's heap where one chunk served them).

mod common;
#[path = "common/alloc.rs"]
mod common_alloc;

use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::{on_each_cpu, CPUS};
use common_alloc::{setup, CountingSource};
use percpu_alloc::{ChunkSource, PerCpu};

/// A source that takes its time (as a kernel's page allocator may), recording how many CPUs call it
/// at once.
struct SlowSource {
    inner: CountingSource,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

// SAFETY: forwards to `CountingSource`.
unsafe impl ChunkSource for SlowSource {
    fn alloc_chunk(&self, layout: Layout) -> Option<NonNull<u8>> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(50));
        let chunk = self.inner.alloc_chunk(layout);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        chunk
    }

    unsafe fn free_chunk(&self, chunk: NonNull<u8>, layout: Layout) {
        // SAFETY: forwarded.
        unsafe { self.inner.free_chunk(chunk, layout) }
    }
}

static SOURCE: SlowSource = SlowSource {
    inner: CountingSource::new(),
    in_flight: AtomicUsize::new(0),
    most_in_flight: AtomicUsize::new(0),
};

/// A quarter of a unit: the first chunk holds a few, a further chunk serves every CPU's one.
type Quarter = [u8; 16_000];

#[test]
fn cpus_that_find_the_space_full_obtain_one_chunk_between_them() {
    let setup = setup(&SOURCE);
    // No spare chunk, and the first chunk filled: the next allocation of any CPU needs a chunk.
    percpu_alloc::refill(0).unwrap();
    let mut filler = Vec::new();
    while SOURCE.inner.obtained.load(Ordering::SeqCst) == 0 {
        filler.push(PerCpu::<Quarter>::new_with(|_| [1; 16_000]).unwrap());
    }
    filler.pop();
    percpu_alloc::reclaim();
    assert_eq!(SOURCE.inner.live.load(Ordering::SeqCst), 0);
    let obtained = SOURCE.inner.obtained.load(Ordering::SeqCst);
    drop(setup);

    on_each_cpu(|cpu, barrier| {
        barrier.wait();
        let mine = PerCpu::<Quarter>::new_with(|_| [cpu as u8; 16_000]).unwrap();
        barrier.wait();
        assert!(mine.iter().all(|copy| copy.iter().all(|&b| b == cpu as u8)));
        barrier.wait();
    });
    assert_eq!(SOURCE.most_in_flight.load(Ordering::SeqCst), 1);
    assert_eq!(
        SOURCE.inner.obtained.load(Ordering::SeqCst) - obtained,
        1,
        "{CPUS} CPUs that found the space full at once obtained more than one chunk"
    );
    drop(filler);
}
