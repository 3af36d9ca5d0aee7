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
//! Integer variables (statics, `percpu_alloc::PerCpu<T>` handles and [`raw`]) have read-modify-write
//! operations that need no guard: an interrupt handler (or, in hosted mode, a signal handler) and
//! preemption cannot split them:
//!
//! | operation | what it does to this CPU's copy | returns |
//! |---|---|---|
//! | `add_current(v)`, `sub_current(v)` | `+= v`, `-= v`, wrapping | — |
//! | `fetch_add_current(v)` | `+= v`, wrapping | the previous value |
//! | `and_current(v)`, `or_current(v)`, `xor_current(v)` | `&= v`, `\|= v`, `^= v` | — |
//! | `xchg_current(v)` (also `bool`) | `= v` | the previous value |
//! | `cmpxchg_current(c, n)` (also `bool`) | `= n` if it equals `c` | `Ok(previous)` if it did (`previous == c`), `Err(actual)` if not, as `compare_exchange` of the standard atomics |
//!
//! Each architecture's sequences (`b`/`h`: the 8- and 16-bit forms):
//!
//! | architecture | `add`, `sub`, `and`, `or`, `xor` | `fetch_add` | `xchg` | `cmpxchg` | 8/16-bit integers |
//! |---|---|---|---|---|---|
//! | x86_64 | `add`/`sub`/`and`/`or`/`xor gs:[VAR], reg` | `xadd gs:[VAR], reg` | `xchg gs:[VAR], reg` (always locked) | `cmpxchg gs:[VAR], reg` | the same at their width |
//! | aarch64 with `lse` | `stadd`, `stclr` (and: of the complement), `stset`, `steor` | `ldadd` | `swp` | `cas` | `b`/`h` forms |
//! | aarch64 | `ldxr`/`stxr` loop, `TPIDR_ELx` read on every attempt | same | same | same, leaving without a store when different | `ldxrb`/`ldxrh` |
//! | riscv64 | `amoadd`, `amoand`, `amoor`, `amoxor` `.w`/`.d` | `amoadd` | `amoswap` | interrupts off around `lr`/`sc` | interrupts off |
//! | loongarch64 | `amadd`, `amand`, `amor`, `amxor` `.w`/`.d` | `amadd` | `amswap` | `ll`/`sc` loop, address recomputed on every attempt | interrupts off |
//! | arm | interrupts off (`ldrexd`/`strexd` for 64 bits) | same | same | same | same |
//! | `sp-naive` | `core::sync::atomic` (interrupts off where the target lacks the width) | same | same | same | same |
//!
//! They are atomic against this CPU's interrupts and against each other, and promise no ordering
//! against other memory accesses (like `Relaxed` atomics). None has a `lock` prefix or a barrier,
//! except x86_64's swap: `xchg` with a memory operand is always locked, and measured no slower than
//! the unlocked alternative, a load and a `cmpxchg` loop (`benches/access.rs`, `xchg_sequences_u64`).
//!
//! Why each holds, and **which CPU's copy the operation lands on if the task migrates** in the middle
//! (the returned value is always the previous value of the copy it landed on):
//!
//! - **One instruction** (x86_64): it runs on one CPU, on that CPU's copy; an interrupt comes before
//!   or after it.
//! - **Interrupts off** (riscv64's compare-and-swap and 8/16-bit integers, loongarch64's 8/16-bit
//!   integers, arm): interrupts are disabled before the register is read and restored after the
//!   store, so the task cannot migrate: it lands on the copy of the CPU it ran on when it called.
//!   riscv64's compare-and-swap needs this because a store of this hart (an interrupt handler's) does
//!   not break an `lr` reservation; arm's because ARMv7 does not promise that an exception return
//!   clears the exclusive monitor.
//! - **An atomic instruction on the address computed from the register** (riscv64 and loongarch64
//!   AMOs, aarch64 LSE atomics): if the task migrates after reading the register and before the
//!   atomic instruction, the operation lands on the **previous CPU's copy** (atomically, from the
//!   CPU it now runs on), and returns that copy's previous value.
//! - **An exclusive loop that reads the register on every attempt** (aarch64 without `lse`,
//!   loongarch64's compare-and-swap): an exception return clears the exclusive monitor (ARMv8) or the
//!   LL bit (LoongArch, unless the kernel set `LLBCTL.KLO` for that return), so an attempt interrupted
//!   between its load-exclusive and its store-exclusive fails and starts over, reading the register
//!   again. A migration between reading the register and the load-exclusive is not caught: the
//!   operation then lands on the **previous CPU's copy**, as for an atomic instruction.
//! - **`sp-naive`**: one CPU: atomic operations of `core::sync::atomic` are atomic against interrupts,
//!   against signal handlers and against the threads that take turns being the CPU.
//!
//! So an operation always lands on the copy of a CPU the task ran on during the call, and loses no
//! update of the other guard-less operations (of any CPU) on that copy. On riscv64, loongarch64 and
//! aarch64 a preempted task may act on the copy of a CPU it no longer runs on: that CPU must not hold
//! its copy as `&mut` (`with_current`) meanwhile, and a plain `write_current` there may come before or
//! after the operation. A kernel without preemption, or code that runs with preemption disabled,
//! never migrates in the middle of a call.
//!
//! # Safety tiers
//!
//! | tier | where | what it needs |
//! |---|---|---|
//! | checked | [`checked`]: [`PreemptGuard`](checked::PreemptGuard), [`IrqGuard`](checked::IrqGuard), `get(&guard)` and `remote(cpu)` on reference-like statics; the cell-like operations of primitive statics (`read_current`, `write_current`, `add_current`, `sub_current`, `remote_read`) | nothing from the caller (see [`checked`] for the argument, and for what the kernel establishes once: initialized areas, a registered CPU, the `preempt` feature if it preempts) |
//! | 0.4 | the rest of percpu 0.4's API: `with_current`, `reset_to_init`, `current_ref_raw`, ..., [`init`], [`init_with_reserve`], [`init_percpu_reg`] | percpu 0.4's contract (below), checked where it can be |
//! | raw | [`raw`], `current_ptr`, `remote_ptr`, [`write_percpu_reg`]: `unsafe fn`s | their `# Safety` sections |
//!
//! A `#[def_percpu]` static whose type is spelled as an integer or `bool` is *cell-like*: its
//! operations never lend a reference. Any other is *reference-like*: the checked tier lends shared
//! references through a guard. The 0.4 tier lends `&mut` (`with_current`): a copy it lends is not to
//! be reached otherwise meanwhile, which is its contract.
//!
//! # The 0.4 tier's contract
//!
//! The functions of the `percpu` 0.4 API are safe to call, yet some carry obligations the compiler
//! cannot check; they are kept for compatibility, as with 0.4:
//!
//! - [`with_current`](EXAMPLE_PERCPU_DATA_WRAPPER::with_current) hands out a `&mut` to this CPU's
//!   copy: no other reference to that copy may exist while the closure runs (a nested
//!   `with_current` on the same variable, one from an interrupt handler that interrupted it, a
//!   one-value access or a checked-tier reference to it). Debug builds panic on the first two kinds
//!   and on a one-value access with a clear message. A task does not migrate inside it (the
//!   `preempt` feature ensures it; a kernel without preemption does not migrate tasks in the middle
//!   of a call).
//! - [`init`] and [`init_with_reserve`] take the areas' memory as a raw pointer: it must be valid,
//!   used for nothing else, and live as long as the areas are used. Initializing again is refused
//!   while the areas are in use ([`InitError::InUse`]): once a CPU registered (and until it released
//!   its area), or once `percpu_alloc` was set up on them.
//! - Every CPU calls [`init_percpu_reg`] before it touches per-CPU data. Debug builds check it on
//!   every access, the checked tier on every guard, hosted mode on every safe access; a kernel's
//!   release builds do not check the one-instruction accesses (doing so would double their cost): an
//!   unregistered CPU reaches whatever its register designates. [`init_percpu_reg`] itself refuses
//!   an id that another CPU registered.
//! - A value kept in a per-CPU static is used by the successive tasks of its CPU: give per-CPU statics
//!   `Send` types. A static of another type compiles (as with 0.4) with a warning, which
//!   `#[def_percpu(allow_non_send)]` silences for values that never leave their CPU; the checked tier
//!   refuses such types.
//!
//! # Hosted mode
//!
//! On x86_64 Linux, a thread that calls [`init_percpu_reg`] behaves as that CPU: its `GS` base is set
//! with `arch_prctl`, and it holds the CPU id until it exits or calls [`release_percpu_reg`] (join
//! the thread before another one registers the same id: `std::thread::scope` returns before the
//! threads' thread-local destructors have run). No linker script and no `-no-pie` are needed: without
//! a script the template is found at run time and [`init`] on heap memory is the natural path. A
//! program that links with a `percpu` 0.4 style script keeps its behaviour ([`init_in_place`] returns
//! the areas the script reserves). A thread that did not register has `GS` base 0 (its accesses reach
//! the template) or, if a registered thread spawned it, a copy of its parent's (Linux copies the base
//! into a new thread: it would act as its parent's CPU): every safe access panics there, in every
//! build, with a message saying so (release builds compare the area's claim with the thread's token:
//! two instructions and a branch). The register value `area base - template address` must be a
//! canonical user address, which holds for areas on the heap of an ordinary (dynamically linked)
//! executable.
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
//! - `large-template`: aarch64 kernels whose template (the `.percpu` section) is larger than 64 KiB,
//!   the reach of the one `movz` that loads a static's VMA (the linker refuses a larger template with
//!   `relocation R_AARCH64_MOVW_UABS_G0 out of range`): a `movz` and a `movk` instead (up to 4 GiB),
//!   one instruction more per access to a static. The choice is per kernel, not per static: the
//!   section of a static is fixed where `#[def_percpu]` expands, which does not know the size of its
//!   type, and every static placed after a large one is out of reach as well. No effect on the other
//!   architectures, whose sequences reach 2 GiB or more.
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod arch;
mod area;
pub mod checked;
mod define;
mod guard;
mod init_error;
mod primitive;
pub mod raw;
mod registration;
mod static_var;
pub mod stats;
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
pub use percpu_macros::{def_percpu, PerCpuStats};
pub use primitive::{PerCpuInteger, PerCpuPrimitive};
pub use registration::{init_percpu_reg, registered_cpu, release_percpu_reg, validate_this_cpu};
pub use static_var::PerCpuStatic;
pub use template::{offset_of_vma, vma_of_offset};

/// Items used by the code that `#[def_percpu]` generates. Not a public API.
#[doc(hidden)]
pub mod __priv {
    pub use crate::arch::{
        read_relaxed, rmw_atomic, rmw_irqsave, with_irqs_off, write_relaxed, Rmw,
    };
    pub use crate::checked::{get, remote, remote_read};
    pub use crate::guard::{check_not_lent, with_current, AccessGuard};
    pub use crate::primitive::{bits_as, from_loaded, from_loaded_sext32};
    pub use crate::raw::{cmpxchg_result, remote_ptr};
    #[allow(deprecated)]
    pub use crate::storage::{
        check_integer, check_percpu_type, static_mut_has_no_effect, NotSendFallback, SendCheck,
    };
    pub use crate::template::offset_of_vma as offset_of;
    #[cfg(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    ))]
    pub use crate::template::RegistryEntry;
}

#[cfg(doc)]
/// An example per-CPU variable, to show the generated methods in the documentation.
#[def_percpu]
pub static EXAMPLE_PERCPU_DATA: usize = 0;
