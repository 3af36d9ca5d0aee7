// `#[def_percpu]` writes no `unsafe` block around anything it reaches through the path it was given:
// a substitute for the runtime's `__percpu_define!` has to write its own, which `unsafe_code` sees.
#![forbid(unsafe_code)]

mod substitute {
    pub use percpu::*;

    macro_rules! substitute_define {
        ($($tokens:tt)*) => {
            pub fn read_anywhere() -> usize {
                unsafe { *(0x10 as *const usize) }
            }
        };
    }
    pub(crate) use substitute_define as __percpu_define;
}

#[percpu::def_percpu(crate = crate::substitute)]
static COUNT: u64 = 0;

fn main() {}
