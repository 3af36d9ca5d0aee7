//! A remote read freezes the areas before it checks the CPU id (an outside review: with a concurrent
//! re-initialization, `remote_read` applied an id checked against the old count to the new layout and
//! read outside every area). The id it checked stays valid: a later initialization is refused.

mod common;

use percpu::{def_percpu, InitError};

#[def_percpu]
static COUNT: u64 = 0;

#[test]
fn initialization_is_refused_after_a_remote_read() {
    let _cpus = common::cpus();
    assert_eq!(COUNT.remote_read(common::CPUS - 1), 0);
    assert_eq!(common::init_again(), Err(InitError::InUse));
}
