//! A page-aligned per-CPU static under a 0.4-style linker script: the script rounds the areas up to the
//! section's alignment, and every CPU's copy is page-aligned.

use per_cpu::def_percpu;

#[repr(C, align(4096))]
struct Page {
    bytes: [u8; 4096],
}

// A renamed dependency names itself, as with serde's `crate = ...`.
#[def_percpu(crate = per_cpu)]
static PAGE: Page = Page { bytes: [7; 4096] };

#[test]
fn every_copy_is_page_aligned() {
    assert_eq!(per_cpu::percpu_area_align(), 4096);
    assert_eq!(per_cpu::percpu_area_num(), 4);
    assert_eq!(per_cpu::init_in_place(), Ok(4));
    assert_eq!(per_cpu::percpu_area_stride() % 4096, 0);
    std::thread::scope(|scope| {
        for cpu in 0..4 {
            scope.spawn(move || {
                per_cpu::init_percpu_reg(cpu);
                // SAFETY: this thread is CPU `cpu`.
                let mine = unsafe { PAGE.current_ptr() };
                assert_eq!(mine as usize % 4096, 0);
                PAGE.with_current(|page| {
                    assert!(page.bytes.iter().all(|&b| b == 7));
                    page.bytes[0] = cpu as u8;
                });
            });
        }
    });
    for cpu in 0..4 {
        // SAFETY: the CPU threads are gone.
        let page = unsafe { &*PAGE.remote_ptr(cpu) };
        assert_eq!(page as *const Page as usize % 4096, 0);
        assert_eq!(page.bytes[0], cpu as u8);
    }
}
