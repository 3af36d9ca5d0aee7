//! Facts about the linked image, passed on by `build.rs` from the linker script.

/// `CPU_NUM` of the linker script: the per-CPU areas reserved in the image,
/// which `percpu::init_in_place()` must report.
pub const CPU_NUM: usize = parse(env!("PERCPU_KERNEL_CPU_NUM"));

/// The address at which the `.percpu` section is linked: 0, or the address
/// chosen by `build.rs` with the `non-zero-vma` feature.
pub const PERCPU_VMA: usize = parse(env!("PERCPU_KERNEL_PERCPU_VMA"));

/// Parses a decimal number at compile time.
const fn parse(digits: &str) -> usize {
    let digits = digits.as_bytes();
    assert!(!digits.is_empty(), "empty number");
    let mut value = 0;
    let mut i = 0;
    while i < digits.len() {
        assert!(digits[i].is_ascii_digit(), "not a decimal number");
        value = value * 10 + (digits[i] - b'0') as usize;
        i += 1;
    }
    value
}
