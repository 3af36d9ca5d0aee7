//! The 16550 UART console of x86_64 (COM1, reached through I/O ports),
//! riscv64 and loongarch64 (memory-mapped, registers one byte apart).
//!
//! Only the way a register is reached differs between them: that is the
//! [`Registers`] an architecture hands to [`Uart16550::new`].

use core::hint::spin_loop;

/// Transmit holding register (write; divisor latch low byte with DLAB).
const THR: u8 = 0;
/// Interrupt enable register (divisor latch high byte with DLAB).
const IER: u8 = 1;
/// FIFO control register.
const FCR: u8 = 2;
/// Line control register.
const LCR: u8 = 3;
/// Modem control register.
const MCR: u8 = 4;
/// Line status register.
const LSR: u8 = 5;

/// LSR bit 5: the transmit holding register is empty.
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Access to the eight byte-wide registers of one 16550 UART.
pub trait Registers {
    /// Reads the register at `offset` (0 to 7).
    ///
    /// # Safety
    ///
    /// The registers must reach a 16550 UART (see [`Uart16550::new`]).
    unsafe fn read(&self, offset: u8) -> u8;

    /// Writes `value` to the register at `offset` (0 to 7).
    ///
    /// # Safety
    ///
    /// As for [`Registers::read`].
    unsafe fn write(&self, offset: u8, value: u8);
}

/// Memory-mapped registers one byte apart, starting at physical address
/// `.0` (the kernel runs without paging, or identity-mapped).
#[cfg(any(target_arch = "riscv64", target_arch = "loongarch64"))]
pub struct Mmio(pub usize);

#[cfg(any(target_arch = "riscv64", target_arch = "loongarch64"))]
impl Registers for Mmio {
    unsafe fn read(&self, offset: u8) -> u8 {
        // SAFETY: the caller guarantees that `self.0 + offset` is a register
        // of the UART, which the CPU reaches at its physical address.
        unsafe { ((self.0 + usize::from(offset)) as *const u8).read_volatile() }
    }

    unsafe fn write(&self, offset: u8, value: u8) {
        // SAFETY: as in `read`.
        unsafe { ((self.0 + usize::from(offset)) as *mut u8).write_volatile(value) }
    }
}

/// A 16550 UART used for polling output only.
pub struct Uart16550<R>(R);

impl<R: Registers> Uart16550<R> {
    /// The UART reached through `registers`.
    ///
    /// # Safety
    ///
    /// `registers` must reach a 16550 UART that nothing else drives, whose
    /// registers may be accessed from any CPU at any time, and whose
    /// register accesses have no effect beyond the UART.
    pub const unsafe fn new(registers: R) -> Self {
        Self(registers)
    }

    /// Programs the UART for 115200 baud (divisor 1), 8N1, FIFOs on and
    /// cleared, DTR and RTS set, no interrupts.
    // riscv64 keeps the programming OpenSBI did.
    #[cfg_attr(target_arch = "riscv64", allow(dead_code))]
    pub fn init(&self) {
        // SAFETY: the registers reach a 16550 UART (see `new`); these writes
        // only configure it.
        unsafe {
            self.0.write(IER, 0x00);
            self.0.write(LCR, 0x80);
            self.0.write(THR, 0x01);
            self.0.write(IER, 0x00);
            self.0.write(LCR, 0x03);
            self.0.write(FCR, 0xc7);
            self.0.write(MCR, 0x03);
        }
    }

    /// Writes one byte, polling until the UART can take it.
    pub fn write_byte(&self, b: u8) {
        // SAFETY: the registers reach a 16550 UART (see `new`); reading its
        // line status register and writing its transmit register have no
        // other effects.
        unsafe {
            while self.0.read(LSR) & LSR_THR_EMPTY == 0 {
                spin_loop();
            }
            self.0.write(THR, b);
        }
    }
}
