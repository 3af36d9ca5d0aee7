//! QEMU's firmware configuration device (fw_cfg), where the kernel reads how
//! many CPUs QEMU was started with (`-smp`): the number of CPUs that must
//! come online, so that a run which loses one fails instead of passing with
//! fewer.
//!
//! x86_64 reaches it through I/O ports, the other machines memory-mapped
//! (data byte at +0, big-endian 16-bit selector at +8); both select an item,
//! then read its bytes one at a time.

/// Item keys: the "QEMU" signature and the boot CPU count (16-bit, little-endian).
const FW_CFG_SIGNATURE: u16 = 0x0000;
const FW_CFG_NB_CPUS: u16 = 0x0005;

/// Access to the selector and data registers of a fw_cfg device.
pub trait Registers {
    /// Selects item `key`; the next reads return its bytes from the first.
    fn select(&self, key: u16);
    /// Reads the next byte of the selected item.
    fn read(&self) -> u8;
}

/// The number of CPUs QEMU was started with, or `None` if there is no fw_cfg
/// device behind `registers` (no "QEMU" signature).
pub fn cpu_count(registers: &impl Registers) -> Option<usize> {
    registers.select(FW_CFG_SIGNATURE);
    let signature = [(); 4].map(|()| registers.read());
    if &signature != b"QEMU" {
        return None;
    }
    registers.select(FW_CFG_NB_CPUS);
    let low = usize::from(registers.read());
    let high = usize::from(registers.read());
    Some(low | (high << 8))
}

/// A memory-mapped fw_cfg device (the `virt` machines of aarch64, riscv64 and
/// loongarch64), reached at its physical address.
#[cfg(not(target_arch = "x86_64"))]
pub struct Mmio(usize);

#[cfg(not(target_arch = "x86_64"))]
impl Mmio {
    /// The device whose registers start at `base`.
    ///
    /// # Safety
    ///
    /// `base` must be the physical address of a fw_cfg device's registers,
    /// reachable as such (no paging, or identity-mapped as device memory).
    pub const unsafe fn new(base: usize) -> Self {
        Self(base)
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Registers for Mmio {
    fn select(&self, key: u16) {
        // SAFETY: `self.0 + 8` is the selector register of a fw_cfg device
        // (the contract of `new`); selecting an item has no other effect.
        unsafe { ((self.0 + 8) as *mut u16).write_volatile(key.to_be()) }
    }

    fn read(&self) -> u8 {
        // SAFETY: `self.0` is the data register of the same device; a read
        // returns the next byte of the selected item and has no other effect.
        unsafe { (self.0 as *const u8).read_volatile() }
    }
}
