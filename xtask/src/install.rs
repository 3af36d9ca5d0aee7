//! Installs what the kernel builds, the QEMU runs and the host steps need, only when missing: Rust
//! targets (rustup), QEMU and the cross tools (apt, as root), cargo-hack (`cargo install`).

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::arches::Arch;
use crate::process::{output, run};

/// The apt source list of the Debian base system, in deb822 format.
const DEBIAN_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";

/// The apt source this tool adds for the backports suite.
const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/percpu-backports.sources";

/// The Debian packages holding the four `qemu-system-*` programs (from backports: QEMU 7.2 cannot
/// start the loongarch64 CPUs one by one).
const QEMU_PACKAGES: [&str; 3] = ["qemu-system-x86", "qemu-system-arm", "qemu-system-misc"];

/// A tool of `cargo xtask install`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Tool {
    /// `cargo hack` (the feature-powerset check), built by `cargo install`.
    CargoHack,
    /// Running aarch64 Linux programs on this host: user-mode QEMU, a cross linker and C library
    /// (Debian's `qemu-user`, `gcc-aarch64-linux-gnu`, `libc6-dev-arm64-cross`).
    Aarch64LinuxUser,
}

impl Tool {
    /// Installs the tool if missing.
    pub fn ensure(self) -> Result<(), String> {
        match self {
            Tool::CargoHack if on_path("cargo-hack") => Ok(()),
            Tool::CargoHack => {
                run(Command::new("cargo").args(["install", "--locked", "cargo-hack"]))
            }
            Tool::Aarch64LinuxUser => ensure_apt(
                &["qemu-aarch64", "aarch64-linux-gnu-gcc"],
                &[
                    "qemu-user",
                    "gcc-aarch64-linux-gnu",
                    "libc6-dev-arm64-cross",
                ],
                None,
            ),
        }
    }
}

/// The Debian package holding the OpenSBI that riscv64 runs with many harts
/// boot (see `tests/kernel/src/arch/riscv64_qemu.rs`), and the file taken
/// from it.
const MANY_HARTS_OPENSBI_PACKAGE: &str = "opensbi=1.1-2";
const MANY_HARTS_OPENSBI_FILE: &str = "usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin";

/// How the kernel of an architecture must be built.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// With the toolchain's prebuilt `core` for the target.
    Prebuilt,
    /// With `-Zbuild-std=core,alloc` (nightly, `rust-src`): the target has no
    /// prebuilt `core` on this toolchain.
    BuildStd,
}

/// Makes sure the Rust target of `arch` can be built for.
pub fn ensure_target(arch: &Arch) -> Result<Toolchain, String> {
    let toolchain: &[&str] = if arch.nightly { &["+nightly"] } else { &[] };
    let installed = |toolchain: &[&str]| {
        output(
            Command::new("rustup")
                .args(toolchain)
                .args(["target", "list", "--installed"]),
        )
        .map(|list| list.lines().any(|line| line.trim() == arch.target))
    };
    if arch.nightly && installed(toolchain).is_err() {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))?;
    }
    if installed(toolchain)? {
        return Ok(Toolchain::Prebuilt);
    }
    let added = run(Command::new("rustup")
        .args(toolchain)
        .args(["target", "add", arch.target]));
    match added {
        Ok(()) => Ok(Toolchain::Prebuilt),
        Err(err) if arch.nightly => {
            eprintln!(
                "xtask: no prebuilt {} ({err}); building core from source",
                arch.target
            );
            run(Command::new("rustup")
                .args(toolchain)
                .args(["component", "add", "rust-src"]))?;
            Ok(Toolchain::BuildStd)
        }
        Err(err) => Err(err),
    }
}

/// Makes sure the QEMU program of `arch` is installed, from the backports suite.
pub fn ensure_qemu(arch: &Arch) -> Result<(), String> {
    let program = arch.qemu_program();
    if on_path(&program) {
        return Ok(());
    }
    ensure_apt(&[&program], &QEMU_PACKAGES, Some(backports_suite()?))
}

/// Makes sure `programs` are installed: installs `packages` with apt (from `suite` if given) when one
/// is missing and running as root, or explains how to otherwise.
fn ensure_apt(programs: &[&str], packages: &[&str], suite: Option<Suite>) -> Result<(), String> {
    let Some(missing) = programs.iter().find(|program| !on_path(program)) else {
        return Ok(());
    };
    if !is_root() {
        return Err(format!(
            "{missing} is missing; install it as root with:\n{}",
            manual_install(packages, suite.as_ref())
        ));
    }
    eprintln!(
        "xtask: {missing} is missing: installing {}",
        packages.join(" ")
    );
    if let Some(suite) = suite
        .as_ref()
        .filter(|suite| !backports_listed(&suite.name))
    {
        fs::write(BACKPORTS_SOURCES, suite.deb822())
            .map_err(|e| format!("cannot write {BACKPORTS_SOURCES}: {e}"))?;
    }
    run(Command::new("apt-get").arg("update"))?;
    run(Command::new("apt-get")
        .args(install_args(packages, suite.as_ref()))
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    match programs.iter().find(|program| !on_path(program)) {
        None => Ok(()),
        Some(missing) => Err(format!("{missing} is still missing after installing it")),
    }
}

/// Makes sure `path` holds the OpenSBI firmware of riscv64 runs with many
/// harts: when missing, downloads Debian's package with `apt-get download`
/// next to it and extracts the firmware file.
pub fn ensure_many_harts_opensbi(path: &Path) -> Result<(), String> {
    if path.is_file() {
        return Ok(());
    }
    let dir = path.with_extension("download");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    run(Command::new("apt-get")
        .args(["download", MANY_HARTS_OPENSBI_PACKAGE])
        .current_dir(&dir))?;
    let deb = fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .map(|entry| entry.path())
        .find(|file| file.extension().is_some_and(|ext| ext == "deb"))
        .ok_or_else(|| format!("apt-get download left no .deb in {}", dir.display()))?;
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&dir))?;
    let firmware = dir.join(MANY_HARTS_OPENSBI_FILE);
    fs::copy(&firmware, path).map_err(|e| {
        format!(
            "cannot copy {} to {}: {e}",
            firmware.display(),
            path.display()
        )
    })?;
    Ok(())
}

/// The `apt-get` arguments installing `packages` (from `suite`).
fn install_args(packages: &[&str], suite: Option<&Suite>) -> Vec<String> {
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    if let Some(suite) = suite {
        args.extend(["-t", &suite.name]);
    }
    args.extend(packages);
    args.into_iter().map(String::from).collect()
}

/// The commands a root user runs to install `packages` like [`ensure_apt`].
fn manual_install(packages: &[&str], suite: Option<&Suite>) -> String {
    let mut commands = String::new();
    if let Some(suite) = suite.filter(|suite| !backports_listed(&suite.name)) {
        let text = suite.deb822().replace('\n', "\\n");
        commands.push_str(&format!("  printf '{text}' > {BACKPORTS_SOURCES}\n"));
    }
    commands.push_str("  apt-get update\n");
    commands.push_str(&format!(
        "  apt-get {}",
        install_args(packages, suite).join(" ")
    ));
    commands
}

/// An apt suite and where it comes from.
struct Suite {
    name: String,
    uris: String,
    signed_by: Option<String>,
}

impl Suite {
    /// The suite as a deb822 source entry.
    fn deb822(&self) -> String {
        let mut text = format!(
            "Types: deb\nURIs: {}\nSuites: {}\nComponents: main\n",
            self.uris, self.name
        );
        if let Some(keyring) = &self.signed_by {
            text.push_str(&format!("Signed-By: {keyring}\n"));
        }
        text
    }
}

/// The backports suite of the base system, served from the same archive and
/// signed by the same keyring as its main suite in [`DEBIAN_SOURCES`].
fn backports_suite() -> Result<Suite, String> {
    let text = fs::read_to_string(DEBIAN_SOURCES)
        .map_err(|e| format!("cannot read {DEBIAN_SOURCES} to find the Debian archive: {e}"))?;
    parse_backports_suite(&text)
        .ok_or_else(|| format!("no main Debian suite found in {DEBIAN_SOURCES}"))
}

/// The backports suite of the main suite of a deb822 source list: the suite
/// named by the release codename alone (`bookworm`, not `bookworm-updates`).
fn parse_backports_suite(sources: &str) -> Option<Suite> {
    sources.split("\n\n").find_map(|stanza| {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == name).then(|| value.trim().to_string())
            })
        };
        let suites = field("Suites")?;
        let codename = suites
            .split_whitespace()
            .find(|suite| !suite.contains('-'))?;
        Some(Suite {
            name: format!("{codename}-backports"),
            uris: field("URIs")?,
            signed_by: field("Signed-By"),
        })
    })
}

/// Whether some apt source already lists `suite`.
fn backports_listed(suite: &str) -> bool {
    let mut files = vec![Path::new("/etc/apt/sources.list").to_path_buf()];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(dir.flatten().map(|entry| entry.path()).filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "list" || ext == "sources")
        }));
    }
    files
        .iter()
        .filter_map(|file| fs::read_to_string(file).ok())
        .any(|text| {
            text.lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .any(|line| line.split_whitespace().any(|word| word == suite))
        })
}

/// Whether `program` is an executable file in a `PATH` directory.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Whether this process runs as root (`/proc/self` belongs to the process's effective user).
fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCES: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn backports_come_from_the_main_suite() {
        let suite = parse_backports_suite(SOURCES).expect("a main suite");
        assert_eq!(suite.name, "bookworm-backports");
        assert_eq!(
            suite.deb822(),
            "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
    }

    #[test]
    fn no_main_suite_no_backports() {
        let security_only = SOURCES.split("\n\n").nth(1).unwrap();
        assert!(parse_backports_suite(security_only).is_none());
    }

    #[test]
    fn manual_install_names_the_packages_and_the_suite() {
        let suite = parse_backports_suite(SOURCES).unwrap();
        let commands = manual_install(&QEMU_PACKAGES, Some(&suite));
        assert!(commands.contains("apt-get update"));
        assert!(commands.contains(
            "apt-get install -y --no-install-recommends -t bookworm-backports \
             qemu-system-x86 qemu-system-arm qemu-system-misc"
        ));
    }
}
