//! Booting a kernel image under QEMU and judging the run.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::arches::Arch;
use crate::process::describe;

/// The line a passing kernel prints.
pub const PASS_MARKER: &str = "PERCPU-KERNEL-TESTS: PASS";

/// The start of the line a failing kernel prints.
pub const FAIL_MARKER: &str = "PERCPU-KERNEL-TESTS: FAIL";

/// `timeout`'s exit status when it had to stop the command (TERM, then KILL).
const TIMED_OUT: [i32; 2] = [124, 137];

/// A finished QEMU run.
pub struct Run {
    /// QEMU's exit status (`None`: killed by a signal).
    pub status: Option<i32>,
    /// The console output, then QEMU's error output.
    pub output: String,
    /// Wall-clock duration.
    pub elapsed: Duration,
    /// The time limit the run had.
    pub limit: Duration,
}

/// Boots `command` (a QEMU command line) under `timeout` with the time limit
/// `limit`, capturing the console; with `stream`, also shows it as it comes.
pub fn boot(command: &[String], limit: Duration, stream: bool) -> Result<Run, String> {
    let mut timeout = Command::new("timeout");
    timeout
        .args(["--kill-after=5", &limit.as_secs().to_string()])
        .args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = timeout
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", describe(&timeout)))?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let errors = thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut output = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout is piped")).split(b'\n') {
        let line = line.map_err(|e| format!("cannot read QEMU's output: {e}"))?;
        let line = String::from_utf8_lossy(&line);
        if stream {
            println!("{line}");
        }
        output.push_str(&line);
        output.push('\n');
    }
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for QEMU: {e}"))?;
    let errors = errors.join().unwrap_or_default();
    if stream {
        eprint!("{errors}");
    }
    output.push_str(&errors);
    Ok(Run {
        status: status.code(),
        output,
        elapsed: start.elapsed(),
        limit,
    })
}

impl Run {
    /// Whether the kernel passed: QEMU exited with the pass status and the
    /// console shows the pass marker line and no failure line. On failure,
    /// the reason.
    pub fn verdict(&self, arch: &Arch) -> Result<(), String> {
        self.ended_in_time()?;
        if let Some(line) = self.fail_line() {
            return Err(line.to_string());
        }
        if self.status != Some(arch.pass_status) {
            return Err(format!(
                "QEMU exit status {}, expected {}",
                show_status(self.status),
                arch.pass_status
            ));
        }
        if !self
            .output
            .lines()
            .any(|line| line.trim_end() == PASS_MARKER)
        {
            return Err(format!("no `{PASS_MARKER}` line"));
        }
        Ok(())
    }

    /// Whether a run that must fail (`selftest-fail`) failed the way the kernel
    /// reports failures: a failure line and QEMU's fail status. Otherwise why not.
    pub fn failed_as_required(&self, arch: &Arch) -> Result<String, String> {
        self.ended_in_time()?;
        if self.verdict(arch).is_ok() {
            return Err("the run passed, but it had to fail".to_string());
        }
        let Some(line) = self.fail_line() else {
            return Err(format!("no `{FAIL_MARKER}` line"));
        };
        if self.status != Some(arch.fail_status) {
            return Err(format!(
                "QEMU exit status {}, expected the fail status {}",
                show_status(self.status),
                arch.fail_status
            ));
        }
        Ok(line.to_string())
    }

    /// Fails if QEMU had to be stopped.
    fn ended_in_time(&self) -> Result<(), String> {
        match self.status {
            Some(status) if TIMED_OUT.contains(&status) => {
                Err(format!("timed out after {} s", self.limit.as_secs()))
            }
            _ => Ok(()),
        }
    }

    /// The kernel's failure line, if any.
    fn fail_line(&self) -> Option<&str> {
        self.output
            .lines()
            .map(str::trim_end)
            .find(|line| line.starts_with(FAIL_MARKER))
    }
}

/// An exit status for messages.
fn show_status(status: Option<i32>) -> String {
    status.map_or_else(
        || "none (killed by a signal)".to_string(),
        |code| code.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arches::ARCHES;

    /// x86_64: pass status 33, fail status 35.
    fn x86_64() -> &'static Arch {
        Arch::find("x86_64").unwrap()
    }

    fn run(status: Option<i32>, output: &str) -> Run {
        Run {
            status,
            output: output.to_string(),
            elapsed: Duration::ZERO,
            limit: Duration::from_secs(60),
        }
    }

    #[test]
    fn passing_needs_the_status_and_the_marker() {
        let arch = x86_64();
        let pass = arch.pass_status;
        assert!(run(Some(pass), "boot\nPERCPU-KERNEL-TESTS: PASS\n")
            .verdict(arch)
            .is_ok());
        assert!(run(Some(pass), "boot\n").verdict(arch).is_err());
        assert!(run(Some(0), "PERCPU-KERNEL-TESTS: PASS\n")
            .verdict(arch)
            .is_err());
        assert!(run(None, "PERCPU-KERNEL-TESTS: PASS\n")
            .verdict(arch)
            .is_err());
        let both = "PERCPU-KERNEL-TESTS: FAIL cpu 1: x\nPERCPU-KERNEL-TESTS: PASS\n";
        assert_eq!(
            run(Some(pass), both).verdict(arch),
            Err("PERCPU-KERNEL-TESTS: FAIL cpu 1: x".to_string())
        );
    }

    #[test]
    fn a_timeout_is_a_failure_either_way() {
        let arch = &ARCHES[0];
        let stuck = run(Some(124), "PERCPU-KERNEL-TESTS: FAIL stuck\n");
        assert_eq!(stuck.verdict(arch), Err("timed out after 60 s".to_string()));
        assert!(stuck.failed_as_required(arch).is_err());
    }

    #[test]
    fn required_failures_are_reported_by_the_kernel() {
        let arch = x86_64();
        let fail = arch.fail_status;
        let reported = run(Some(fail), "PERCPU-KERNEL-TESTS: FAIL cpu 0: u8\n");
        assert!(reported.failed_as_required(arch).is_ok());
        assert!(run(Some(fail), "crashed\n")
            .failed_as_required(arch)
            .is_err());
        let wrong_status = run(Some(arch.pass_status), "PERCPU-KERNEL-TESTS: FAIL x\n");
        assert!(wrong_status.failed_as_required(arch).is_err());
        let passed = run(Some(arch.pass_status), "PERCPU-KERNEL-TESTS: PASS\n");
        assert!(passed.failed_as_required(arch).is_err());
    }
}
