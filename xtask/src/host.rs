//! The host steps of `cargo xtask test`, run before the QEMU matrix: installing what the checks need,
//! lints, the test suites in every host configuration, Miri, the minimum supported Rust version, the
//! crates as a kernel's build and crates.io see them.

/// The host steps, in order, each a command line run from the repository root: words split at spaces,
/// leading `NAME=value` words set the environment. Each step is a row of the summary, and
/// `cargo xtask test --host WORD` runs those whose command line contains `WORD`.
#[rustfmt::skip]
pub const STEPS: &[&str] = &[
    // What the checks need on a fresh machine (each is a no-op when present). The machine's nightly is
    // used as it is: updating it could lose the loongarch64 target, absent from newer nightlies.
    "rustup component add rustfmt clippy",
    "rustup toolchain install 1.89 --profile minimal",
    "rustup +1.89 target add x86_64-unknown-none aarch64-unknown-none riscv64gc-unknown-none-elf",
    "rustup +nightly component add miri rust-src",
    "rustup target add x86_64-unknown-none aarch64-unknown-none riscv64gc-unknown-none-elf aarch64-unknown-linux-gnu",
    "rustup toolchain install nightly-2025-05-20 --profile minimal --target x86_64-unknown-none",
    "cargo xtask install cargo-hack aarch64-linux-user",
    // Lints, and the docs of every target the crates are published for (docs.rs metadata).
    "cargo fmt --all -- --check",
    "cargo clippy --workspace --all-targets -- -D warnings",
    "cargo clippy -p percpu-workspace-tests --features preempt --test preempt -- -D warnings",
    "cargo clippy -p percpu-workspace-tests --features sp-naive --test sp_naive --benches -- -D warnings",
    "RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p percpu_macros -p percpu -p percpu_alloc --features percpu_alloc/alloc --target x86_64-unknown-linux-gnu --target x86_64-unknown-none --target aarch64-unknown-none --target riscv64gc-unknown-none-elf",
    // The test suites: every host configuration (the README's examples are doc tests), the fast paths
    // optimized.
    "cargo test --workspace",
    "cargo test -p percpu-workspace-tests --features preempt --test preempt",
    "cargo test -p percpu-workspace-tests --features sp-naive --test sp_naive",
    "cargo test --release -p percpu-workspace-tests --test hosted_cpus --test hosted_interrupts --test alloc_cpus --test checked --test ops --test alloc_atomic --test batched_counter --test percpu_stats",
    // Miri: the allocator core, and the runtime's plain-Rust paths with the checked tier (`sp-naive`),
    // under stacked and tree borrows.
    "cargo +nightly miri test -p percpu_alloc --lib",
    "cargo +nightly miri test -p percpu-workspace-tests --features sp-naive --test sp_naive",
    "MIRIFLAGS=-Zmiri-tree-borrows cargo +nightly miri test -p percpu-workspace-tests --features sp-naive --test sp_naive",
    // Another host than x86_64 Linux: `sp-naive` (its tests and benchmarks) on aarch64 Linux under
    // user-mode QEMU (the benchmarks once each, as `cargo test` runs them). No debug info for the
    // target: a much shorter build, while the host's proc-macros and build scripts are reused.
    "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS=-Cdebuginfo=0 CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64 QEMU_LD_PREFIX=/usr/aarch64-linux-gnu cargo test --target aarch64-unknown-linux-gnu --features sp-naive --test sp_naive --benches",
    // Benchmarks are compiled, never timed, in CI (in `sp-naive` mode by the step above); instruction
    // counts are checked.
    "cargo bench --no-run",
    "cargo bench --no-run --manifest-path benches/peer/Cargo.toml",
    "cargo xtask codegen",
    // Every feature combination, on the host and a bare-metal target.
    "cargo hack check --feature-powerset --exclude-features default --no-dev-deps -p percpu -p percpu_alloc --target x86_64-unknown-linux-gnu --target riscv64gc-unknown-none-elf",
    // The minimum supported Rust version: host tests, and the crates on bare-metal targets.
    "cargo +1.89 test -p percpu-workspace-tests --test hosted_cpus --test init --test alloc_cpus --test checked --test drop_in_gaps",
    "cargo +1.89 build -p percpu -p percpu_alloc --target x86_64-unknown-none --target aarch64-unknown-none --target riscv64gc-unknown-none-elf",
    // What a kernel pinned to an older nightly sees: no warning.
    "cargo +nightly-2025-05-20 check -p percpu -p percpu_alloc --target x86_64-unknown-none --config build.rustflags=[\"-Dwarnings\"]",
    // The crates as crates.io gets them: each packaged crate builds on its own.
    "cargo xtask package",
];

/// The host steps, each split into words.
pub fn steps() -> Vec<Vec<String>> {
    STEPS
        .iter()
        .map(|line| line.split(' ').map(str::to_string).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_msrv_steps_use_the_workspace_rust_version() {
        let manifest = include_str!("../../Cargo.toml");
        let msrv = manifest
            .lines()
            .find_map(|line| line.strip_prefix("rust-version = "))
            .expect("a rust-version")
            .trim_matches('"');
        let toolchains: Vec<&str> = STEPS
            .iter()
            .flat_map(|step| step.split(' '))
            .filter_map(|word| word.strip_prefix('+'))
            .collect();
        assert!(toolchains.contains(&msrv));
        assert!(toolchains
            .iter()
            .all(|t| t.starts_with("nightly") || *t == msrv));
    }

    #[test]
    fn every_step_has_a_program_after_its_environment() {
        for step in steps() {
            let program = step.iter().find(|word| !word.contains('='));
            assert!(
                program.is_some_and(|p| ["cargo", "rustup"].contains(&p.as_str())),
                "{step:?}"
            );
            assert!(step.iter().all(|word| !word.is_empty()), "{step:?}");
        }
    }
}
