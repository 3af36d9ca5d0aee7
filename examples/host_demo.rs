//! Per-CPU data on an ordinary Linux machine: four threads act as four CPUs.
//!
//! Run with `cargo run --example host_demo`. Each thread points its per-CPU register (the x86_64 `GS`
//! base) at its own area, then counts events in per-CPU variables without any lock or atomic
//! instruction; at the end the totals are read from every CPU's copy.

use std::sync::Barrier;

use percpu::def_percpu;

/// Packets this CPU received.
#[def_percpu]
static PACKETS: u64 = 0;

/// Bytes this CPU received.
#[def_percpu]
static BYTES: u64 = 0;

/// The last packet size this CPU saw.
#[def_percpu]
static LAST_SIZE: u32 = 0;

const CPUS: usize = 4;

fn main() {
    println!("percpu host demo: {CPUS} threads act as {CPUS} CPUs\n");
    let layout = percpu::percpu_area_layout_expected(CPUS);
    // SAFETY: non-zero size; the areas live until the end of `main`'s process.
    let base = unsafe { std::alloc::alloc_zeroed(layout) };
    let cpus = percpu::init(base, CPUS).expect("initialize the per-CPU areas");
    println!(
        "{cpus} per-CPU areas of {} bytes (a stride of {}) at {base:p}; PACKETS lives at offset {:#x} in each",
        percpu::percpu_area_size(),
        percpu::percpu_area_stride(),
        PACKETS.offset()
    );

    let barrier = Barrier::new(CPUS);
    std::thread::scope(|scope| {
        for cpu in 0..CPUS {
            let barrier = &barrier;
            scope.spawn(move || {
                percpu::init_percpu_reg(cpu);
                // Each "CPU" handles a different number of packets of different sizes.
                let packets = 1000 * (cpu as u64 + 1);
                for packet in 0..packets {
                    let size = 64 + (packet % 1400) as u32;
                    PACKETS.add_current(1); // one `add gs:[PACKETS], 1`
                    BYTES.add_current(size as u64);
                    LAST_SIZE.write_current(size);
                }
                barrier.wait();
                println!(
                    "cpu {cpu}: area at {:#x}, counted {} packets, {} bytes, last size {}",
                    percpu::read_percpu_reg(),
                    PACKETS.read_current(),
                    BYTES.read_current(),
                    LAST_SIZE.read_current()
                );
            });
        }
    });

    // Sum every CPU's copy: the threads are done, so no copy changes any more.
    let (mut packets, mut bytes) = (0, 0);
    for cpu in 0..CPUS {
        // SAFETY: `cpu` is initialized and its thread has finished.
        unsafe {
            packets += *PACKETS.remote_ptr(cpu);
            bytes += *BYTES.remote_ptr(cpu);
        }
    }
    println!("\ntotal over all CPUs: {packets} packets, {bytes} bytes");
    assert_eq!(packets, (1..=CPUS as u64).map(|n| 1000 * n).sum::<u64>());
}
