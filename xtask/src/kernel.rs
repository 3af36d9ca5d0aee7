//! Building the test kernel (`tests/kernel`) for one architecture and set of
//! kernel features.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::arches::{Arch, RISCV64_MANY_HARTS_FIRMWARE};
use crate::install::{self, Toolchain};
use crate::process::run;

/// One build of the kernel.
pub struct Build {
    /// The architecture built for.
    pub arch: &'static Arch,
    /// Kernel features (`tests/kernel/Cargo.toml`).
    pub features: Vec<String>,
    /// The release profile (optimized, debug assertions kept on) rather than dev.
    pub release: bool,
}

impl Build {
    /// A short name: architecture, features and profile.
    pub fn label(&self) -> String {
        let features = match self.features.is_empty() {
            true => "default".to_string(),
            false => self.features.join("+"),
        };
        let profile = if self.release { "release" } else { "debug" };
        format!("{}-{features}-{profile}", self.arch.name)
    }

    /// Builds the kernel and returns the path of its ELF image, a copy named
    /// after [`label`](Self::label) that later builds do not overwrite.
    pub fn build(&self, root: &Path, toolchain: Toolchain, quiet: bool) -> Result<PathBuf, String> {
        let kernel_dir = root.join("tests/kernel");
        let target_dir = kernel_dir.join("target");
        let mut cargo = Command::new("cargo");
        if self.arch.nightly {
            cargo.arg("+nightly");
        }
        cargo
            .arg("build")
            .arg("--manifest-path")
            .arg(kernel_dir.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir)
            .args(["--target", self.arch.target]);
        if quiet {
            cargo.arg("--quiet");
        }
        if self.release {
            cargo.arg("--release");
        }
        if !self.features.is_empty() {
            cargo.args(["--features", &self.features.join(",")]);
        }
        if !self.arch.rustflags.is_empty() {
            let flags: Vec<_> = self
                .arch
                .rustflags
                .iter()
                .map(|flag| format!("{flag:?}"))
                .collect();
            cargo.arg("--config").arg(format!(
                "target.{}.rustflags=[{}]",
                self.arch.target,
                flags.join(",")
            ));
        }
        if toolchain == Toolchain::BuildStd {
            cargo.args([
                "-Zbuild-std=core,alloc",
                "-Zbuild-std-features=compiler-builtins-mem",
            ]);
        }
        run(&mut cargo)?;

        let profile = if self.release { "release" } else { "debug" };
        let built = target_dir
            .join(self.arch.target)
            .join(profile)
            .join("percpu-test-kernel");
        let image = target_dir
            .join("xtask")
            .join(format!("{}.elf", self.label()));
        fs::create_dir_all(image.parent().expect("image has a directory"))
            .and_then(|()| fs::copy(&built, &image))
            .map_err(|e| {
                format!(
                    "cannot copy {} to {}: {e}",
                    built.display(),
                    image.display()
                )
            })?;
        if self.arch.name == "riscv64" {
            install::ensure_many_harts_opensbi(&image.with_file_name(RISCV64_MANY_HARTS_FIRMWARE))?;
        }
        Ok(image)
    }
}
