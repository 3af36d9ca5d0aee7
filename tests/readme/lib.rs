//! The README examples as doc tests (`cargo test --doc`), so that they cannot drift from the API: the
//! Rust blocks of `README.md` and `percpu/README.md` not marked `ignore` run on the host. They use the
//! hosted mode of `percpu` (threads as CPUs), which only x86_64 Linux has.
#![cfg(all(
    doctest,
    target_arch = "x86_64",
    target_os = "linux",
    not(feature = "sp-naive")
))]

#[doc = include_str!("../../README.md")]
pub struct Readme;

#[doc = include_str!("../../percpu/README.md")]
pub struct PercpuReadme;
