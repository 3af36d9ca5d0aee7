//! With a 0.4-style linker script the image reserves the areas and `init_in_place` uses them.

use percpu_compat_tests::{EVENTS, NAME};

#[test]
fn init_in_place_uses_the_areas_the_script_reserves() {
    assert_eq!(per_cpu::percpu_area_num(), 4);
    assert_eq!(per_cpu::init_in_place(), Ok(4));
    assert_eq!(per_cpu::cpu_count(), 4);
    // The section's address is what the script says, and offsets are relative to it.
    assert_eq!(EVENTS.symbol_vma() & !0xfff, 0x4000000);
    assert_eq!(EVENTS.offset(), EVENTS.symbol_vma() - 0x4000000);
    assert_eq!(per_cpu::percpu_area_base(0), 0x4000000);

    std::thread::scope(|scope| {
        for cpu in 0..4 {
            scope.spawn(move || {
                per_cpu::init_percpu_reg(cpu);
                assert_eq!(per_cpu::read_percpu_reg(), per_cpu::percpu_area_base(cpu));
                assert_eq!(EVENTS.read_current(), 10);
                EVENTS.add_current(cpu as u64);
                NAME.with_current(|name| *name = [b'c', b'p', b'u', b'0' + cpu as u8]);
            });
        }
    });
    for cpu in 0..4 {
        // SAFETY: the CPU threads are gone.
        unsafe {
            assert_eq!(*EVENTS.remote_ptr(cpu), 10 + cpu as u64);
            assert_eq!(
                &*NAME.remote_ptr(cpu),
                &[b'c', b'p', b'u', b'0' + cpu as u8]
            );
            assert_eq!(
                EVENTS.remote_ptr(cpu) as usize,
                per_cpu::percpu_area_base(cpu) + EVENTS.offset()
            );
        }
    }
}
