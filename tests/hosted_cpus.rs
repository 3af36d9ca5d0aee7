//! Static per-CPU variables on the x86_64 Linux host, with threads acting as CPUs (each thread's GS base
//! points at its own area). No linker script, a position-independent executable.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Weak;

use common::{cpus, on_each_cpu, CPUS};
use percpu::def_percpu;

macro_rules! primitive_statics {
    ($($name:ident: $ty:ty = $init:expr, $pattern:expr;)*) => {
        $(
            #[def_percpu]
            static $name: $ty = $init;
        )*

        /// Every CPU: initial value, write of a CPU-specific pattern, read back; then, after all CPUs
        /// wrote, every other CPU's copy through `remote_ptr` and `remote_ref_raw`.
        #[test]
        fn every_primitive_type_is_per_cpu() {
            let _cpus = cpus();
            on_each_cpu(|cpu, barrier| {
                $(
                    $name.reset_to_init();
                    assert_eq!($name.read_current(), $init, "{} initial value", stringify!($name));
                    let pattern: fn(usize) -> $ty = $pattern;
                    $name.write_current(pattern(cpu));
                    assert_eq!($name.read_current(), pattern(cpu), "{} read back", stringify!($name));
                    // SAFETY: this thread is CPU `cpu` and holds no other reference.
                    assert_eq!(unsafe { $name.read_current_raw() }, pattern(cpu));
                )*
                barrier.wait();
                for other in 0..CPUS {
                    $(
                        let pattern: fn(usize) -> $ty = $pattern;
                        // SAFETY: `other` is initialized and nobody writes after the barrier.
                        unsafe {
                            assert_eq!(*$name.remote_ptr(other), pattern(other), "{} of cpu {other}", stringify!($name));
                            assert_eq!(*$name.remote_ref_raw(other), pattern(other));
                        }
                    )*
                }
                barrier.wait();
            });
        }
    };
}

primitive_statics! {
    P_U8: u8 = 0xA5, |cpu| 0x10 + cpu as u8;
    P_U16: u16 = 0xBEEF, |cpu| 0x1000 + cpu as u16;
    P_U32: u32 = 0xDEAD_BEEF, |cpu| 0x1000_0000 + cpu as u32;
    P_U64: u64 = u64::MAX, |cpu| 0x1122_3344_5566_0000 + cpu as u64;
    P_USIZE: usize = 12345, |cpu| usize::MAX - cpu;
    P_I8: i8 = -1, |cpu| -(cpu as i8) - 2;
    P_I16: i16 = i16::MIN, |cpu| -300 - cpu as i16;
    P_I32: i32 = -7, |cpu| i32::MIN + cpu as i32;
    P_I64: i64 = -1_000_000_000_000, |cpu| -(cpu as i64) * 1_000_000_007;
    P_ISIZE: isize = isize::MAX, |cpu| -(cpu as isize);
    P_BOOL: bool = true, |cpu| cpu % 2 == 1;
}

#[derive(Debug, Clone, PartialEq)]
struct Stats {
    id: u32,
    bytes: u64,
    name: [u8; 5],
}

/// A struct.
#[def_percpu]
static STATS: Stats = Stats {
    id: 7,
    bytes: 0,
    name: *b"stats",
};

/// Non-`Copy` types kernels keep per CPU: a queue, a lazily initialized cell, a weak pointer (not
/// `Send`: it never leaves its CPU here, which `allow_non_send` says).
#[def_percpu]
static QUEUE: VecDeque<u32> = VecDeque::new();
#[def_percpu]
static LAZY: RefCell<Option<String>> = RefCell::new(None);
#[def_percpu(allow_non_send)]
static PARENT: Option<Weak<u32>> = None;

#[test]
fn structs_and_non_copy_types_are_per_cpu() {
    let _cpus = cpus();
    on_each_cpu(|cpu, barrier| {
        STATS.reset_to_init();
        QUEUE.with_current(|queue| queue.clear());
        STATS.with_current(|stats| {
            assert_eq!(
                stats,
                &Stats {
                    id: 7,
                    bytes: 0,
                    name: *b"stats"
                }
            );
            stats.id = cpu as u32;
            stats.bytes = 1 << cpu;
        });
        QUEUE.with_current(|queue| queue.extend(0..=cpu as u32));
        LAZY.with_current(|cell| *cell.borrow_mut() = Some(format!("cpu{cpu}")));
        PARENT.with_current(|parent| *parent = Some(Weak::new()));
        barrier.wait();
        for other in 0..CPUS {
            // SAFETY: `other` is initialized and nobody writes between the barriers.
            unsafe {
                assert_eq!(STATS.remote_ref_raw(other).id, other as u32);
                assert_eq!(STATS.remote_ref_raw(other).bytes, 1 << other);
                assert_eq!(QUEUE.remote_ref_raw(other).len(), other + 1);
                if other == cpu {
                    // Non-`Sync` data is only read on its own CPU.
                    assert_eq!(
                        LAZY.current_ref_raw().borrow().as_deref(),
                        Some(&*format!("cpu{cpu}"))
                    );
                    assert!(PARENT
                        .current_ref_raw()
                        .as_ref()
                        .unwrap()
                        .upgrade()
                        .is_none());
                }
            }
        }
        barrier.wait();
        STATS.reset_to_init();
        STATS.with_current(|stats| assert_eq!(stats.id, 7));
        QUEUE.with_current(|queue| queue.clear());
        LAZY.with_current(|cell| cell.borrow_mut().take());
        PARENT.with_current(|parent| parent.take());
    });
}

#[def_percpu]
static HITS_U64: u64 = 0;
#[def_percpu]
static HITS_I32: i32 = 0;
#[def_percpu]
static HITS_U8: u8 = 0;
#[def_percpu]
static HITS_I16: i16 = 0;

/// All CPUs hammer the guard-less read-modify-write operations at once; the remote sums are exact.
#[test]
fn add_and_sub_lose_nothing_under_concurrency() {
    const ROUNDS: u64 = 200_000;
    let _cpus = cpus();
    on_each_cpu(|cpu, barrier| {
        HITS_U64.write_current(0);
        HITS_I32.write_current(0);
        HITS_U8.write_current(0);
        HITS_I16.write_current(0);
        barrier.wait();
        for round in 0..ROUNDS {
            HITS_U64.add_current(3);
            HITS_U64.sub_current(1);
            HITS_I32.sub_current(2);
            HITS_I32.add_current(1);
            HITS_U8.add_current(1);
            HITS_I16.add_current(if round % 2 == 0 { 5 } else { -4 });
        }
        HITS_U64.add_current(cpu as u64);
        barrier.wait();
    });
    let mut total = 0;
    for cpu in 0..CPUS {
        // SAFETY: initialized CPU, no writer any more.
        unsafe {
            assert_eq!(*HITS_U64.remote_ptr(cpu), 2 * ROUNDS + cpu as u64);
            assert_eq!(*HITS_I32.remote_ptr(cpu), -(ROUNDS as i32));
            assert_eq!(*HITS_U8.remote_ptr(cpu), ROUNDS as u8); // wraps: 200000 mod 256
            assert_eq!(*HITS_I16.remote_ptr(cpu), (ROUNDS / 2) as i16);
            total += *HITS_U64.remote_ptr(cpu);
        }
    }
    assert_eq!(
        total,
        CPUS as u64 * 2 * ROUNDS + (0..CPUS as u64).sum::<u64>()
    );
}

#[test]
fn register_addresses_and_offsets_agree() {
    let _cpus = cpus();
    on_each_cpu(|cpu, _| {
        let base = percpu::percpu_area_base(cpu);
        assert_eq!(percpu::read_percpu_reg(), base);
        assert_eq!(base % percpu::PERCPU_AREA_ALIGN, 0);
        assert_eq!(
            percpu::percpu_area_base(cpu) - percpu::percpu_area_base(0),
            cpu * percpu::percpu_area_stride()
        );
        // SAFETY: this thread is CPU `cpu`.
        unsafe {
            assert_eq!(STATS.current_ptr() as usize, base + STATS.offset());
            assert_eq!(STATS.remote_ptr(cpu), STATS.current_ptr());
            assert_eq!(HITS_U64.current_ptr() as usize, base + HITS_U64.offset());
            assert_eq!(
                percpu::raw::current_ptr::<u64>(HITS_U64.symbol_vma()),
                HITS_U64.current_ptr() as *mut u64
            );
        }
        assert_eq!(percpu::offset_of_vma(STATS.symbol_vma()), STATS.offset());
        assert_eq!(percpu::vma_of_offset(STATS.offset()), STATS.symbol_vma());
        assert!(STATS.offset() + size_of::<Stats>() <= percpu::percpu_area_size());
    });
}

#[test]
fn raw_accessors_reach_the_same_copies_as_the_statics() {
    let _cpus = cpus();
    on_each_cpu(|cpu, _| {
        let vma = P_U32.symbol_vma();
        // SAFETY: `vma` designates a `u32` in every area; this thread is CPU `cpu`.
        unsafe {
            percpu::raw::write_current::<u32>(vma, 40 + cpu as u32);
            assert_eq!(P_U32.read_current(), 40 + cpu as u32);
            percpu::raw::add_current::<u32>(vma, 5);
            percpu::raw::sub_current::<u32>(vma, 3);
            assert_eq!(percpu::raw::read_current::<u32>(vma), 42 + cpu as u32);
            assert_eq!(*percpu::raw::remote_ptr::<u32>(cpu, vma), 42 + cpu as u32);
        }
    });
}

#[test]
#[should_panic(expected = "CPU id 4 is out of range: 4 per-CPU areas are initialized")]
fn area_base_past_the_initialized_cpus_panics() {
    let _cpus = cpus();
    percpu::percpu_area_base(CPUS);
}

#[test]
#[should_panic(expected = "CPU id 17 is out of range")]
fn init_percpu_reg_past_the_initialized_cpus_panics() {
    let _cpus = cpus();
    percpu::init_percpu_reg(17);
}

#[test]
#[cfg_attr(
    not(debug_assertions),
    ignore = "the aliasing check is a debug-build check"
)]
fn nested_with_current_on_the_same_variable_panics() {
    let _cpus = cpus();
    on_each_cpu(|cpu, _| {
        if cpu != 0 {
            return;
        }
        // Nesting distinct variables is fine.
        STATS.with_current(|_| HITS_U64.with_current(|hits| *hits += 1));
        let nested = std::panic::catch_unwind(|| {
            STATS.with_current(|_outer| STATS.with_current(|_inner| ()));
        });
        let payload = nested.unwrap_err();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(message.contains("lends out as `&mut`"), "{message}");
        // The check recovered: the variable can be borrowed again.
        STATS.with_current(|stats| stats.bytes += 1);
        // A one-value access to the data a `with_current` lends out is caught as well.
        let accesses: [fn(); 3] = [
            || HITS_U64.with_current(|_| assert_ne!(HITS_U64.read_current(), u64::MAX)),
            || HITS_U64.with_current(|_| HITS_U64.write_current(1)),
            || HITS_U64.with_current(|_| HITS_U64.add_current(1)),
        ];
        for access in accesses {
            let caught = std::panic::catch_unwind(access);
            assert!(
                caught.is_err(),
                "an access inside with_current was not caught"
            );
        }
        // Outside `with_current`, the same accesses are fine.
        HITS_U64.add_current(1);
    });
}
