//! The host-side steps `cargo xtask test` runs before the QEMU matrix: installing the toolchain
//! pieces the checks need, lints, the test suites in every host configuration, Miri, and the
//! minimum supported Rust version.

/// The minimum supported Rust version (the workspace's `rust-version`).
const MSRV: &str = "1.89";

/// Bare-metal targets on which the MSRV build of the crates is checked (loongarch64's target is
/// nightly-only).
const MSRV_TARGETS: &str = "x86_64-unknown-none aarch64-unknown-none riscv64gc-unknown-none-elf";

/// The host steps, each a program and its arguments, run from the repository root in order.
pub fn steps() -> Vec<Vec<String>> {
    let msrv_target_flags: String = MSRV_TARGETS
        .split(' ')
        .map(|t| format!(" --target {t}"))
        .collect();
    [
        // What the checks need on a fresh machine (each is a no-op when present). The machine's
        // nightly is used as it is: updating it could lose the loongarch64 target, absent from newer
        // nightlies.
        "rustup component add rustfmt clippy".to_string(),
        format!("rustup toolchain install {MSRV} --profile minimal"),
        format!("rustup +{MSRV} target add {MSRV_TARGETS}"),
        "rustup +nightly component add miri rust-src".to_string(),
        // Lints.
        "cargo fmt --all -- --check".to_string(),
        "cargo clippy --workspace --all-targets -- -D warnings".to_string(),
        "cargo clippy -p percpu-workspace-tests --features preempt --test preempt -- -D warnings".to_string(),
        "cargo clippy -p percpu-workspace-tests --features sp-naive --test sp_naive -- -D warnings".to_string(),
        "cargo rustdoc -p percpu -- -D warnings".to_string(),
        "cargo rustdoc -p percpu_macros -- -D warnings".to_string(),
        "cargo rustdoc -p percpu_alloc -- -D warnings".to_string(),
        // The test suites: every host configuration, and the fast paths optimized.
        "cargo test --workspace".to_string(),
        "cargo test -p percpu-workspace-tests --features preempt --test preempt".to_string(),
        "cargo test -p percpu-workspace-tests --features sp-naive --test sp_naive".to_string(),
        "cargo test --release -p percpu-workspace-tests --test hosted_cpus --test hosted_interrupts --test alloc_cpus"
            .to_string(),
        "cargo +nightly miri test -p percpu_alloc --lib".to_string(),
        // Benchmarks are compiled, never timed, in CI; instruction counts are checked.
        "cargo bench --no-run".to_string(),
        "cargo bench --no-run --manifest-path benches/peer/Cargo.toml".to_string(),
        "cargo xtask codegen".to_string(),
        // The minimum supported Rust version: host tests, and the crates on bare-metal targets.
        format!("cargo +{MSRV} test -p percpu-workspace-tests --test hosted_cpus --test init --test alloc_cpus"),
        format!("cargo +{MSRV} build -p percpu -p percpu_alloc{msrv_target_flags}"),
    ]
    .iter()
    .map(|line| line.split_whitespace().map(str::to_string).collect())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_msrv_steps_use_the_workspace_rust_version() {
        let manifest = include_str!("../../Cargo.toml");
        assert!(manifest.contains(&format!("rust-version = \"{MSRV}\"")));
        let toolchains: Vec<_> = steps()
            .into_iter()
            .filter(|s| s[1].starts_with('+'))
            .map(|s| s[1].clone())
            .collect();
        assert!(toolchains.contains(&format!("+{MSRV}")));
        assert!(toolchains
            .iter()
            .all(|t| *t == "+nightly" || *t == format!("+{MSRV}")));
    }
}
