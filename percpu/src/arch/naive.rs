//! `sp-naive`: one CPU, per-CPU variables are plain globals, there is no register: a VMA is the
//! address of the only copy.

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
    ($op:ident, $T:ty, $kind:ident $a:tt $(, $val:expr)?) => {
        $crate::__percpu_access_via_ptr!($op, $T, $kind $a $(, $val)?)
    };
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
