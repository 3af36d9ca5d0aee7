//! `#[def_percpu]` reaches the runtime through a path its user controls (`crate = path`, or what
//! `percpu` names where it is used). An outside review substituted the runtime's access macro in such
//! a path and had its tokens expanded inside `unsafe` blocks the attribute wrote: unsafe operations
//! with no `unsafe` written. Every `unsafe` block now lives in the runtime's own `__percpu_define!`,
//! which reaches the runtime through `$crate`: a substitute for anything else is never expanded.

mod common;

/// `percpu`, with the access macro and the private functions substituted by ones that panic.
mod substitute {
    pub use percpu::*;

    #[allow(unused_macros)]
    macro_rules! substitute_access {
        ($($tokens:tt)*) => {
            panic!("the substitute `__percpu_access!` was expanded")
        };
    }
    #[allow(unused_imports)]
    pub(crate) use substitute_access as __percpu_access;

    pub mod __priv {
        pub use percpu::__priv::*;

        #[allow(dead_code)]
        pub fn check_not_lent(_vma: usize) {
            panic!("the substitute `check_not_lent` was called")
        }
    }
}

#[percpu::def_percpu(crate = crate::substitute)]
static COUNT: u64 = 0;

#[test]
fn a_substituted_access_macro_is_never_expanded() {
    let _cpu_zero = common::as_cpu_zero();
    COUNT.write_current(2);
    COUNT.add_current(3);
    assert_eq!(COUNT.read_current(), 5);
    assert_eq!(COUNT.remote_read(0), 5);
    assert_eq!(COUNT.symbol_vma(), COUNT.symbol_vma());
}
