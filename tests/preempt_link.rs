//! With percpu 0.4, enabling `percpu/preempt` without implementing `kernel_guard::KernelGuardIf`
//! compiles (its guard does nothing unless the kernel enables `kernel_guard/preempt`). Ours really
//! disables preemption, so such a kernel fails to link with the error the README's "Differences from
//! percpu 0.4" quotes. This builds `tests/preempt-link` and checks that error.

use std::process::Command;

#[test]
fn preempt_without_kernel_guard_if_fails_to_link_with_the_documented_error() {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--manifest-path"])
        .arg(format!("{root}/tests/preempt-link/Cargo.toml"))
        .arg("--target-dir")
        .arg(format!("{root}/target/preempt-link"))
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it linked:\n{stderr}");
    for symbol in [
        "__KernelGuardIf_disable_preempt",
        "__KernelGuardIf_enable_preempt",
    ] {
        assert!(
            stderr.contains(&format!("undefined symbol: {symbol}")),
            "no `undefined symbol: {symbol}` in:\n{stderr}"
        );
    }
}
