//! Per-CPU data for kernels.
//!
//! Every CPU gets its own copy of each variable declared with [`def_percpu`]. The copies live in
//! **per-CPU areas**, one per CPU, all at one stride from each other; each CPU's **per-CPU
//! register** holds the base of its own area, so reaching this CPU's copy is one or two
//! instructions:
//!
//! | Architecture | Register | `read_current` of a `u64` |
//! |---|---|---|
//! | x86_64 | `GS_BASE` | `mov rax, gs:[VAR]` |
//! | aarch64 | `TPIDR_EL1` (`TPIDR_EL2` with `arm-el2`) | `mrs`, `movz`, `ldr` |
//! | riscv64 | `gp` | `lui`, `add`, `ld` |
//! | loongarch64 | `$r21` | `lu12i.w`, `ori`, `ldx.d` |
//! | arm | `TPIDRPRW` | through [`current_ptr`](EXAMPLE_PERCPU_DATA_WRAPPER::current_ptr) |
//!
//! This crate is a drop-in replacement for `percpu` 0.4 (same API and linker-script contract) and adds
//! guard-less read-modify-write operations, bounds checks, a `preempt` feature that really disables
//! preemption, zero-configuration use in hosted (Linux user-space) programs, and by-address accessors
//! on which run-time allocated per-CPU data (`percpu_alloc`) is built.
//!
//! # Address model
//!
//! The initial values of all per-CPU variables form the **template**: the `.percpu` section.
//! A variable's *VMA* ([`symbol_vma`](EXAMPLE_PERCPU_DATA_WRAPPER::symbol_vma)) is its address in the
//! template; its *offset* is `VMA - template VMA` (in a kernel, the section is linked at address 0 and
//! VMA = offset). The per-CPU register holds `area base - template VMA`, so `register + VMA` is this
//! CPU's copy and `percpu_area_base(cpu) + offset` is CPU `cpu`'s copy. Run-time allocated per-CPU data
//! uses the same model with a VMA computed from its offset ([`vma_of_offset`]), and reaches its copies
//! through the by-address accessors of [`raw`].
//!
//! # Read-modify-write without a guard
//!
//! `add_current` / `sub_current` (on integer variables) cannot lose an update to an interrupt or to
//! preemption, and need no guard:
//!
//! - **x86_64**: one instruction, `add gs:[VAR], reg`: an interrupt comes before or after it.
//! - **riscv64, loongarch64**: an atomic memory operation (`amoadd`, `amadd`) on the address computed
//!   from the register. If the task migrates between computing the address and the atomic operation,
//!   the update lands in the previous CPU's copy: it is credited to another CPU, and not lost as long
//!   as that copy is only changed by `add_current`/`sub_current` (a `with_current` or `write_current`
//!   on it there is a plain store that could overwrite it). 8- and 16-bit integers, which have no
//!   atomic instruction there, disable local interrupts around a plain read-modify-write instead.
//! - **aarch64**: with the `lse` target feature, `stadd` on the computed address (as above); otherwise
//!   an exclusive-load/store loop that re-reads `TPIDR_ELx` on every attempt. An exception return
//!   clears the exclusive monitor, so an interrupted attempt fails its store-exclusive and retries on
//!   whichever CPU it then runs on.
//! - **arm**, **sp-naive**: local interrupts disabled around a plain read-modify-write.
//!
//! # Aliasing
//!
//! [`with_current`](EXAMPLE_PERCPU_DATA_WRAPPER::with_current) hands out a `&mut` to this CPU's copy.
//! Calling it again for the same variable while the first call runs (nested, or from an interrupt
//! handler that interrupted it), or a one-value access (`read_current`, `write_current`,
//! `add_current`, ...) to that variable from inside the closure or from such a handler, would alias that
//! `&mut`: debug builds panic with a clear message; in release builds it is the caller's
//! responsibility (as in `percpu` 0.4).
//!
//! # The caller's contract
//!
//! The functions of the `percpu` 0.4 API are safe to call, yet some carry obligations the compiler
//! cannot check; they are kept for compatibility and are the kernel's to uphold, as with 0.4:
//!
//! - [`init`] and [`init_with_reserve`] take the areas' memory as a raw pointer: it must be valid,
//!   used for nothing else, and live as long as any CPU uses the areas. Initializing again resets
//!   every copy to the template and must not happen while CPUs use the areas (nor after `percpu_alloc`
//!   was set up on them).
//! - A CPU id is used by one CPU (or, in hosted mode, one thread) at a time: [`init_percpu_reg`] with
//!   an id another CPU uses would share its copies.
//! - Every CPU calls [`init_percpu_reg`] before it touches per-CPU data.
//! - A task does not migrate to another CPU inside `with_current` (the `preempt` feature ensures it;
//!   a kernel without preemption does not migrate tasks in the middle of a call), and a value kept in
//!   a per-CPU variable may be used by successive tasks of its CPU: give per-CPU statics types that
//!   are `Send` (or that never leave the CPU, such as plain data).
//!
//! # Hosted mode
//!
//! On x86_64 Linux, a thread that calls [`init_percpu_reg`] behaves as that CPU: its `GS` base is set
//! with `arch_prctl`. No linker script and no `-no-pie` are needed: without a script the template is
//! found at run time and [`init`] on heap memory is the natural path. A program that links with a
//! `percpu` 0.4 style script keeps its behaviour ([`init_in_place`] returns the areas the script
//! reserves). As every CPU of a kernel, every thread calls [`init_percpu_reg`] before it touches
//! per-CPU data (without it, its `GS` base is 0 and its accesses reach the template itself, shared by
//! every such thread). The register value `area base - template address` must be a canonical user
//! address, which holds for areas on the heap of an ordinary (dynamically linked) executable.
//!
//! # Linker script
//!
//! A kernel adds the following to its linker script (this file ships with the crate as `percpu.x`),
//! and defines `CPU_NUM` for the number of areas to reserve for [`init_in_place`]:
//!
//! ```text
#![doc = include_str!("../percpu.x")]
//! ```
//!
//! # Features
//!
//! - `sp-naive`: one CPU; per-CPU variables are plain globals and no register is used.
//! - `preempt`: disables preemption around accesses that are not one instruction, by calling the
//!   kernel's [`kernel_guard::KernelGuardIf`] implementation.
//! - `arm-el2`: aarch64 hypervisors at EL2: `TPIDR_EL2` instead of `TPIDR_EL1`.
//! - `non-zero-vma`: the kernel links the `.percpu` section at a non-zero address.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod area;
pub mod checked;
mod guard;
mod init_error;
mod primitive;
pub mod raw;
mod registration;
mod storage;
mod template;

pub use area::{
    cpu_count, freeze_areas, init, init_in_place, init_with_reserve, percpu_area_align,
    percpu_area_base, percpu_area_layout_expected, percpu_area_layout_with_reserve,
    percpu_area_num, percpu_area_size, percpu_area_stride, read_percpu_reg, write_percpu_reg,
    PERCPU_AREA_ALIGN, PERCPU_MAX_ALIGN,
};
pub use guard::{check_not_lent, AccessGuard};
pub use init_error::InitError;
pub use percpu_macros::def_percpu;
pub use primitive::{PerCpuInteger, PerCpuPrimitive};
pub use registration::{init_percpu_reg, release_percpu_reg, validate_this_cpu};
pub use template::{offset_of_vma, vma_of_offset};

/// Items used by the code that `#[def_percpu]` generates. Not a public API.
#[doc(hidden)]
pub mod __priv {
    pub use crate::checked::{get, remote, remote_read};
    pub use crate::guard::{check_not_lent, with_current, AccessGuard};
    pub use crate::primitive::{bits_as, from_loaded, from_loaded_sext32};
    pub use crate::raw::remote_ptr;
    #[allow(deprecated)]
    pub use crate::storage::{
        check_percpu_type, static_mut_has_no_effect, NotSendFallback, SendCheck,
    };
    pub use crate::template::offset_of_vma as offset_of;
    #[cfg(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    ))]
    pub use crate::template::RegistryEntry;
    pub use kernel_guard::{BaseGuard, IrqSave};
}

#[cfg(doc)]
/// An example per-CPU variable, to show the generated methods in the documentation.
#[def_percpu]
pub static EXAMPLE_PERCPU_DATA: usize = 0;
