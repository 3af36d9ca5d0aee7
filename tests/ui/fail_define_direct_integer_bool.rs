// The hidden `__percpu_define!` checks the type itself: used directly (it is callable from safe
// code), it does not give a `bool` the integer operations.

percpu::__percpu_define! {
    kind: integer,
    cfg: [],
    doc: [],
    lint: [],
    storage: [],
    static FLAG: bool = false;
    wrapper: FLAG_WRAPPER,
    storage: __PERCPU_FLAG,
    static_ty: bool,
}

fn main() {}
