//! `sp-naive`: one CPU, per-CPU variables are plain globals, there is no register: a VMA is the
//! address of the only copy.
//!
//! Loads and stores are relaxed atomic accesses (plain instructions on every target), and the
//! read-modify-write operations are atomic read-modify-write operations of `core::sync::atomic`
//! where the target has them at the type's width: on one CPU that is safe against interrupts, and on
//! a host against signal handlers and against the threads that take turns being the CPU. Where the
//! target has no atomic operation of that width, local interrupts are disabled around a load and a
//! store.
//!
//! Local interrupts: in a kernel (`target_os = "none"`), the architecture's own instructions (from its
//! file of this module, or `kernel_guard`'s for an architecture without one); on a host, masking does
//! nothing (no signal is blocked: the operations above need no masking there).

/// With one CPU there is no migration: accesses need no guard.
pub(crate) const ONE_INSTRUCTION_ACCESS: bool = true;

#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_access {
    (addr_of, sym $s:path) => {
        &raw const $s as usize
    };
    (ptr, $T:ty, sym $s:path) => {
        &raw mut $s as *mut $T
    };
    (ptr, $T:ty, vma $vma:expr) => {
        ($vma) as *mut $T
    };
    (read, $T:ty, $kind:ident $a:tt) => {
        $crate::__priv::read_relaxed::<$T>($crate::__percpu_access!(ptr, $T, $kind $a))
    };
    (write, $T:ty, $kind:ident $a:tt, $val:expr) => {
        $crate::__priv::write_relaxed::<$T>($crate::__percpu_access!(ptr, $T, $kind $a), $val)
    };
    ($op:ident, $T:ty, $kind:ident $a:tt $(, $val:expr)+) => {
        $crate::__percpu_rmw_result!($op, $crate::__priv::rmw_atomic::<$T>(
            $crate::__percpu_access!(ptr, $T, $kind $a),
            $crate::__percpu_rmw_op!($op, $T $(, $val)+),
        ))
    };
}

// Local interrupts: the architecture file's in a kernel, `kernel_guard`'s for an architecture without
// one, nothing on a host.
cfg_if::cfg_if! {
    if #[cfg(not(target_os = "none"))] {
        pub(crate) use host_irq::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "x86_64")] {
        pub(crate) use super::x86_64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "aarch64")] {
        pub(crate) use super::aarch64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "riscv64")] {
        pub(crate) use super::riscv64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "loongarch64")] {
        pub(crate) use super::loongarch64::{local_irq_restore, local_irq_save};
    } else if #[cfg(target_arch = "arm")] {
        pub(crate) use super::arm::{local_irq_restore, local_irq_save};
    } else {
        pub(crate) use kernel_guard_irq::{local_irq_restore, local_irq_save};
    }
}

/// Local interrupts through `kernel_guard`, for a kernel architecture without a file here.
#[cfg(all(
    target_os = "none",
    not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "arm"
    ))
))]
mod kernel_guard_irq {
    use kernel_guard::{BaseGuard, IrqSave};

    /// Disables local interrupts; returns the previous state.
    #[inline]
    pub(crate) fn local_irq_save() -> usize {
        IrqSave::acquire()
    }

    /// Restores the state that [`local_irq_save`] returned.
    ///
    /// # Safety
    ///
    /// `flags` must come from the matching [`local_irq_save`], the last one not yet restored.
    #[inline]
    pub(crate) unsafe fn local_irq_restore(flags: usize) {
        IrqSave::release(flags)
    }
}

/// Local interrupts on a host: there are none to disable, and no signal is blocked (the operations of
/// this mode are atomic and need no masking).
#[cfg(not(target_os = "none"))]
mod host_irq {
    /// Nothing to disable: returns 0.
    #[inline]
    pub(crate) fn local_irq_save() -> usize {
        0
    }

    /// Nothing to restore.
    ///
    /// # Safety
    ///
    /// None; `unsafe` for the signature shared with the other architectures.
    #[inline]
    pub(crate) unsafe fn local_irq_restore(_flags: usize) {}
}

/// There is no register: 0.
pub(crate) fn read_reg() -> usize {
    0
}

/// There is no register: nothing to do.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn write_reg(_value: usize) {}

/// Nothing to prepare in a new area on this architecture.
///
/// # Safety
///
/// None; `unsafe` for the signature shared with the other architectures.
pub(crate) unsafe fn prepare_area(_area: usize) {}
