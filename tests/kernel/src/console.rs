//! Line-oriented console output shared by all CPUs.
//!
//! Each [`println!`](crate::println) line is written under a spin lock so that
//! the lines of concurrently running CPUs do not interleave. The lock is
//! bounded: if its holder never lets go (it died with the lock held), the
//! writer prints anyway rather than hanging the failure report.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch;

/// Held while a line is written.
static LOCK: AtomicBool = AtomicBool::new(false);

/// Attempts to take [`LOCK`] before printing regardless (a few seconds of
/// emulated time even on an oversubscribed host).
const LOCK_ATTEMPTS: usize = 200_000_000;

/// The serial console as a [`fmt::Write`] sink.
struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(arch::console_write_byte);
        Ok(())
    }
}

/// Prints `args` and a newline as one uninterrupted line.
pub fn print_line(args: fmt::Arguments) {
    let locked = (0..LOCK_ATTEMPTS).any(|_| {
        let taken = LOCK
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if !taken {
            core::hint::spin_loop();
        }
        taken
    });
    // Writing to the console cannot fail.
    let _ = Console.write_fmt(format_args!("{args}\n"));
    if locked {
        LOCK.store(false, Ordering::Release);
    }
}

/// Prints one line on the serial console (see [`print_line`]).
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {
        $crate::console::print_line(format_args!($($arg)*))
    };
}

/// Writes `s` straight to the serial console, without taking [`LOCK`]: for
/// the exception reports, which must not wait for (or use the formatting
/// machinery of) code they may have interrupted.
#[cfg(any(target_arch = "x86_64", target_arch = "loongarch64"))]
pub fn write_str_unlocked(s: &str) {
    s.bytes().for_each(arch::console_write_byte);
}

/// Writes `value` as `0x` and 16 hexadecimal digits, as [`write_str_unlocked`]
/// does.
#[cfg(any(target_arch = "x86_64", target_arch = "loongarch64"))]
pub fn write_hex_unlocked(value: u64) {
    write_str_unlocked("0x");
    for shift in (0..16).rev() {
        let digit = ((value >> (shift * 4)) & 0xf) as u8;
        arch::console_write_byte(if digit < 10 {
            b'0' + digit
        } else {
            b'a' + digit - 10
        });
    }
}
