//! A zero-sized `PerCpu` object freezes the areas (an outside review: it needs no `percpu_alloc::init`,
//! so nothing froze them; an initialization for more CPUs then made `iter_mut` and `Drop` reach copies
//! never built: two `&mut` to a singleton, and more drops than constructions).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use percpu::InitError;
use percpu_alloc::PerCpu;

static BUILT: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A zero-sized type whose constructions and drops are counted.
struct Token;

impl Token {
    fn new() -> Self {
        BUILT.fetch_add(1, Ordering::Relaxed);
        Token
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_zero_sized_object_keeps_the_areas_as_they_were_built() {
    let _cpus = common::cpus();
    let mut tokens = PerCpu::new_with(|_| Token::new()).unwrap();
    assert_eq!(BUILT.load(Ordering::Relaxed), common::CPUS);
    assert_eq!(common::init_again(), Err(InitError::InUse));
    assert_eq!(tokens.iter_mut().count(), common::CPUS);
    drop(tokens);
    assert_eq!(DROPPED.load(Ordering::Relaxed), common::CPUS);
}
