// `#[def_percpu]` gives a static the integer operations when its type is spelled as an integer: a type
// alias spelled like one must really be one (here an `add_current` would store 2 into a `bool`).

#[allow(non_camel_case_types)]
type i8 = bool;

#[percpu::def_percpu]
static FLAG: i8 = false;

fn main() {}
