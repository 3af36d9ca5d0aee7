//! `cargo xtask package`: the library crates as crates.io gets them, each packaged and built on its
//! own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

use crate::process::run;

/// The crates published, in dependency order.
const CRATES: [&str; 3] = ["percpu_macros", "percpu", "percpu_alloc"];

/// Packages [`CRATES`] and verifies that each packaged crate builds against the others, packaged.
pub fn run_package(root: &Path) -> Result<(), String> {
    forget_earlier_packages()?;
    // Builds of the earlier packages too, in a target directory of their own: cargo takes a registry
    // crate of the same version as unchanged and would link the old build.
    let builds = root.join("target/package-verify");
    if builds.exists() {
        fs::remove_dir_all(&builds)
            .map_err(|e| format!("cannot remove {}: {e}", builds.display()))?;
    }
    let mut command = Command::new("cargo");
    command
        .current_dir(root)
        .args(["package", "--allow-dirty", "--target-dir"])
        .arg(&builds)
        .args(CRATES.iter().flat_map(|name| ["-p", name]))
        .env("CARGO_PROFILE_DEV_DEBUG", "0");
    run(&mut command)
}

/// Removes what earlier runs extracted of these crates from the local registries that `cargo package`
/// verifies against (cargo's registry sources named `-<hash>`): cargo never extracts a version
/// again, so a crate changed since, under the same version, would be verified against its old text.
fn forget_earlier_packages() -> Result<(), String> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .ok_or("neither CARGO_HOME nor HOME is set")?;
    let Ok(registries) = fs::read_dir(home.join("registry/src")) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for source in fs::read_dir(registry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = source.file_name().to_string_lossy().into_owned();
            if CRATES.iter().any(|krate| {
                name.strip_prefix(krate)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|version| version.starts_with(|c: char| c.is_ascii_digit()))
            }) {
                fs::remove_dir_all(source.path())
                    .map_err(|e| format!("cannot remove {}: {e}", source.path().display()))?;
            }
        }
    }
    Ok(())
}
