//! Initialization on the x86_64 Linux host without a linker script: argument checks, the in-place
//! template area, layouts with a reserve for run-time allocations, and re-initialization.

use std::alloc::{alloc_zeroed, Layout};
use std::sync::Mutex;

use percpu::{def_percpu, InitError};

#[def_percpu]
static VALUE: u64 = 0x5EED;

/// Initialization is global: the tests of this file take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn areas(layout: Layout) -> *mut u8 {
    // SAFETY: non-zero size; leaked on purpose (the areas must outlive every register pointing there).
    let base = unsafe { alloc_zeroed(layout) };
    assert!(!base.is_null());
    base
}

#[test]
fn bad_arguments_are_rejected() {
    let _serial = SERIAL.lock().unwrap();
    let base = areas(percpu::percpu_area_layout_expected(2));
    assert_eq!(
        percpu::init(std::ptr::null_mut(), 2),
        Err(InitError::InvalidBase)
    );
    assert_eq!(
        percpu::init(base.wrapping_add(8), 2),
        Err(InitError::UnalignedBase)
    );
    assert_eq!(percpu::init(base, 0), Err(InitError::InvalidCpuCount));
    assert_eq!(
        percpu::init((usize::MAX & !63) as *mut u8, usize::MAX / 64),
        Err(InitError::InvalidCpuCount)
    );
    // A reserve for run-time allocations needs page-aligned areas.
    let page_aligned = areas(percpu::percpu_area_layout_with_reserve(2, 4096));
    assert_eq!(
        percpu::init_with_reserve(page_aligned.wrapping_add(64), 2, 4096),
        Err(InitError::UnalignedBase)
    );
    assert_eq!(
        InitError::InvalidCpuCount.to_string(),
        "invalid CPU count: zero, or the areas overflow the address space"
    );
    let _: &dyn std::error::Error = &InitError::InvalidBase;
}

#[test]
fn in_place_initialization_uses_the_template_as_area_zero() {
    let _serial = SERIAL.lock().unwrap();
    // Without a linker script, the image holds one area: the template itself.
    assert_eq!(percpu::percpu_area_num(), 1);
    assert_eq!(percpu::init_in_place(), Ok(1));
    assert_eq!(percpu::cpu_count(), 1);
    std::thread::spawn(|| {
        percpu::init_percpu_reg(0);
        assert_eq!(VALUE.read_current(), 0x5EED);
        // SAFETY: this thread is CPU 0.
        assert_eq!(unsafe { VALUE.current_ptr() } as usize, VALUE.symbol_vma());
        VALUE.write_current(1);
        VALUE.write_current(0x5EED);
    })
    .join()
    .unwrap();
}

#[test]
fn reserve_extends_every_area_and_reinitialization_resets_copies() {
    let _serial = SERIAL.lock().unwrap();
    let reserve = 10_000;
    let layout = percpu::percpu_area_layout_with_reserve(3, reserve);
    assert_eq!(layout.align(), 4096);
    let base = areas(layout);
    assert_eq!(percpu::init_with_reserve(base, 3, reserve), Ok(3));
    let stride = percpu::percpu_area_stride();
    assert_eq!(stride % 4096, 0);
    assert!(stride >= percpu::percpu_area_size().next_multiple_of(64) + reserve);
    assert_eq!(layout.size(), 3 * stride);
    std::thread::spawn(|| {
        percpu::init_percpu_reg(2);
        VALUE.write_current(99);
    })
    .join()
    .unwrap();
    // SAFETY: CPU 2 is initialized; its thread is gone.
    assert_eq!(unsafe { *VALUE.remote_ptr(2) }, 99);
    assert_eq!(percpu::init_with_reserve(base, 3, reserve), Ok(3));
    // SAFETY: as above.
    assert_eq!(unsafe { *VALUE.remote_ptr(2) }, 0x5EED);
    // After re-initialization every area still leads to itself (x86_64 records the register value
    // in each area: it is written per area, not copied from the template).
    std::thread::scope(|scope| {
        for cpu in 0..3 {
            scope.spawn(move || {
                percpu::init_percpu_reg(cpu);
                VALUE.with_current(|value| *value = cpu as u64);
                // SAFETY: this thread is CPU `cpu`.
                assert_eq!(unsafe { VALUE.current_ptr() }, unsafe {
                    VALUE.remote_ptr(cpu)
                });
                // `thread::scope` returns before thread-local destructors (which end the claim) run:
                // the next test initializes again.
                percpu::release_percpu_reg();
            });
        }
    });
    for cpu in 0..3 {
        // SAFETY: the CPU threads are done.
        assert_eq!(unsafe { *VALUE.remote_ptr(cpu) }, cpu as u64);
    }
}

#[test]
#[should_panic(expected = "the per-CPU areas overflow the address space")]
fn an_overflowing_layout_panics() {
    percpu::percpu_area_layout_with_reserve(3, usize::MAX - 100);
}
