//! Two percpu 0.4 spellings a real hypervisor uses: `#[def_percpu] static mut` (accepted, `mut` has no
//! effect) and per-CPU types aligned to a page (every copy aligned on every CPU, by construction). On the
//! x86_64 Linux host, threads acting as CPUs, areas on the heap.
#![allow(deprecated)] // `static mut` warns that `mut` has no effect: the point of this test

mod common;

use common::{cpus, on_each_cpu, CPUS};
use percpu::def_percpu;

#[def_percpu]
static mut MUT_U32: u32 = 7;

#[derive(Debug, Clone, PartialEq)]
struct VcpuSlot {
    vcpu: Option<usize>,
    entries: u64,
}

#[def_percpu]
static mut MUT_SLOT: VcpuSlot = VcpuSlot {
    vcpu: None,
    entries: 0,
};

/// A hypervisor's per-CPU state holding page-aligned structures.
#[repr(C, align(4096))]
struct PageAligned {
    marker: u64,
    page: [u8; 4096],
}

#[def_percpu]
static PAGE_STATE: PageAligned = PageAligned {
    marker: 0xfeed_cafe,
    page: [0; 4096],
};

#[test]
fn static_mut_primitive_and_struct_through_every_method() {
    let _cpus = cpus();
    on_each_cpu(|cpu, barrier| {
        MUT_U32.reset_to_init();
        assert_eq!(MUT_U32.read_current(), 7);
        MUT_U32.write_current(100 + cpu as u32);
        MUT_U32.add_current(10);
        MUT_U32.sub_current(1);
        assert_eq!(MUT_U32.read_current(), 109 + cpu as u32);
        // SAFETY: this thread is CPU `cpu`; no other reference to its copy is live.
        unsafe {
            assert_eq!(MUT_U32.read_current_raw(), 109 + cpu as u32);
            MUT_U32.write_current_raw(200 + cpu as u32);
            assert_eq!(*MUT_U32.current_ref_raw(), 200 + cpu as u32);
            *MUT_U32.current_ref_mut_raw() += 1;
            assert_eq!(*MUT_U32.current_ptr(), 201 + cpu as u32);
        }
        MUT_U32.with_current(|value| *value += 1);

        MUT_SLOT.reset_to_init();
        MUT_SLOT.with_current(|slot| {
            assert_eq!(
                *slot,
                VcpuSlot {
                    vcpu: None,
                    entries: 0
                }
            );
            slot.vcpu = Some(cpu);
            slot.entries = cpu as u64 * 3;
        });
        // SAFETY: as above.
        unsafe { MUT_SLOT.current_ref_mut_raw().entries += 1 };
        barrier.wait();
        for other in 0..CPUS {
            // SAFETY: `other` is initialized; nobody writes between the barriers.
            unsafe {
                assert_eq!(*MUT_U32.remote_ptr(other), 202 + other as u32);
                assert_eq!(*MUT_U32.remote_ref_raw(other), 202 + other as u32);
                let slot = MUT_SLOT.remote_ref_raw(other);
                assert_eq!(slot.vcpu, Some(other));
                assert_eq!(slot.entries, other as u64 * 3 + 1);
            }
        }
        barrier.wait();
        if cpu == 0 {
            // SAFETY: the other CPUs wait at the barrier and hold no reference.
            unsafe { MUT_SLOT.remote_ref_mut_raw(1).entries = 99 };
        }
        barrier.wait();
        if cpu == 1 {
            MUT_SLOT.with_current(|slot| assert_eq!(slot.entries, 99));
        }
    });
}

#[test]
fn page_aligned_copies_on_every_cpu() {
    let _cpus = cpus();
    assert_eq!(percpu::percpu_area_align(), 4096);
    assert_eq!(percpu::percpu_area_stride() % 4096, 0);
    assert_eq!(percpu::percpu_area_base(0) % 4096, 0);
    on_each_cpu(|cpu, barrier| {
        // SAFETY: this thread is CPU `cpu`.
        let mine = unsafe { PAGE_STATE.current_ptr() };
        assert_eq!(
            mine as usize % 4096,
            0,
            "cpu {cpu}'s copy is not page-aligned"
        );
        assert_eq!(
            mine as usize,
            percpu::percpu_area_base(cpu) + PAGE_STATE.offset()
        );
        PAGE_STATE.with_current(|state| {
            assert_eq!(state.marker, 0xfeed_cafe);
            assert!(state.page.iter().all(|&b| b == 0));
            state.marker = cpu as u64;
            state.page[cpu] = 1;
        });
        barrier.wait();
        for other in 0..CPUS {
            // SAFETY: `other` is initialized; nobody writes after the barrier.
            let theirs = unsafe { PAGE_STATE.remote_ref_raw(other) };
            assert_eq!(theirs as *const _ as usize % 4096, 0);
            assert_eq!(theirs.marker, other as u64);
            assert_eq!(theirs.page.iter().position(|&b| b == 1), Some(other));
        }
        barrier.wait();
        PAGE_STATE.with_current(|state| {
            state.marker = 0xfeed_cafe;
            state.page[cpu] = 0;
        });
    });
}

#[test]
fn layouts_report_the_page_alignment_and_init_refuses_less() {
    let _cpus = cpus();
    let layout = percpu::percpu_area_layout_expected(2);
    assert_eq!(layout.align(), 4096);
    assert_eq!(layout.size() % 4096, 0);
    // A base aligned to 64 bytes, as enough for percpu 0.4, but not to the page.
    let memory = std::alloc::Layout::from_size_align(layout.size() + 4096, 4096).unwrap();
    // SAFETY: a non-zero size; leaked on purpose (never used as areas).
    let base = unsafe { std::alloc::alloc_zeroed(memory) };
    assert!(!base.is_null());
    assert_eq!(
        percpu::init(base.wrapping_add(64), 2),
        Err(percpu::InitError::UnalignedBase)
    );
    assert_eq!(
        percpu::init_with_reserve(base.wrapping_add(2048), 2, 4096),
        Err(percpu::InitError::UnalignedBase)
    );
}
