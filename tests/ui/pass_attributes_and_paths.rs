//! Attributes pass through, `cfg` removes every generated item, `crate = path` reaches a re-export,
//! and the inner static keeps the name kernel assembly uses (`__PERCPU_<NAME>`).

mod kernel {
    pub use percpu as per_cpu;
}

/// Documented, exported under its own name for assembly, with a lint attribute.
#[percpu::def_percpu]
#[unsafe(no_mangle)]
#[allow(non_upper_case_globals)]
pub static lower_case: usize = 1;

#[percpu::def_percpu(crate = crate::kernel::per_cpu)]
static THROUGH_REEXPORT: u32 = 2;

#[percpu::def_percpu]
#[cfg(any())]
static COMPILED_OUT: u8 = 3;

macro_rules! counters {
    ($($name:ident: $ty:ty),*) => {$(
        #[percpu::def_percpu]
        static $name: $ty = 0;
    )*};
}
counters!(FROM_MACRO: i16);

/// User types named like the generated methods' generic parameters are not shadowed by them.
type T = [u64; 2];
#[allow(dead_code)]
type F = u8;
#[percpu::def_percpu]
static PAIR: T = [1, 2];

fn main() {
    let _ = &raw const __PERCPU_lower_case;
    let _ = lower_case.offset();
    let _ = THROUGH_REEXPORT.symbol_vma();
    // A `$ty` from a macro is still recognized as an integer.
    let _add: fn(&FROM_MACRO_WRAPPER, i16) = FROM_MACRO_WRAPPER::add_current;
    let _sum = |pair: &PerCpuPair| pair.with_current(|pair: &mut T| pair[0] + pair[1]);
}

type PerCpuPair = PAIR_WRAPPER;
