//! The checked tier: per-CPU access that is sound by construction, with no caller contract.
//!
//! # The argument
//!
//! A reference to this CPU's copy of a per-CPU value is sound while (1) the task stays on this CPU,
//! (2) nothing else on this CPU creates a conflicting reference to the same copy (an interrupt
//! handler, a nested call), and (3) no other CPU creates a conflicting reference to it. The tier
//! obtains each from a type:
//!
//! 1. **A guard pins the task.** [`PreemptGuard`] disables preemption (through the kernel's
//!    `kernel_guard::KernelGuardIf` with the `preempt` feature; a kernel built without it does not
//!    preempt), [`IrqGuard`] disables local interrupts and preemption. Both are `!Send` **and**
//!    `!Sync`: neither a guard nor a `&guard` can reach another thread or CPU, so a guard proves the
//!    pinning of the code that holds it, and of nothing else. Creating one validates that this CPU's
//!    per-CPU register designates the area this CPU registered with
//!    [`init_percpu_reg`](crate::init_percpu_reg) (in hosted mode: that this thread registered), and
//!    panics otherwise; while a guard lives, the CPU may neither re-register nor release its area
//!    (in a kernel the check and the count of the new guard run with local interrupts off, so that an
//!    interrupt handler cannot release the area between them; in hosted mode a signal handler that
//!    tries it meanwhile panics, as under a live guard). Guards nest.
//! 2. **References are shared, and bound to the guard's lifetime.** `get(&guard)` lends `&T`, never
//!    `&mut T`. Through an [`IrqGuard`], no interrupt handler runs, so any `T: Send` is sound, cells
//!    included: mutation goes through interior mutability (`Cell`, `RefCell` with its always-on
//!    borrow check). Through a [`PreemptGuard`], an interrupt handler may run and also read the copy:
//!    `T` must be `Sync` as well (atomics, spin locks). `T: Send` is required in both cases: the copy
//!    serves every task that runs on this CPU in turn, and a `!Send` value (an `Rc`) could be
//!    cloned by one task and kept after it migrated. [`GuardFor`] encodes these rules; it is sealed.
//! 3. **Remote access is for `T: Sync` only**, and lends `&T` too: other CPUs may hold shared
//!    references at the same time, which `Sync` makes sound; it never lends `&mut T`.
//!
//! Per-CPU integers and `bool`s are *cell-like* instead: their operations (`read_current`,
//! `write_current`, `add_current`, ...) never lend a reference, so no reference can be invalidated by
//! them, and they need no guard where the operation is one instruction or atomic (see the crate
//! documentation per architecture); other CPUs read them with atomic loads (`remote_read(cpu)`).
//! A `#[def_percpu]` static is cell-like when its type is spelled as an integer or `bool` (as in
//! percpu 0.4, which generates its primitive accessors the same way), and reference-like otherwise;
//! the two kinds never meet on one static, so no operation mutates a copy that a shared reference
//! points to.
//!
//! # What stays outside
//!
//! The tier assumes what a kernel establishes once: the areas were initialized (their memory, given
//! to [`init`](crate::init) as a raw pointer, lives for good), and the kernel's integration is right
//! (the `preempt` feature when it preempts; no context switch while a guard is alive; no checked-tier
//! access from non-maskable interrupts or from exceptions raised inside a guard's scope, which run
//! even with interrupts disabled). The methods of the 0.4 tier (`with_current`, `current_ref_raw`,
//! ...) keep 0.4's contract; one of them lending `&mut` to a copy that the checked tier lends `&T` to
//! breaks that contract, not this tier.

use core::marker::PhantomData;

use crate::arch::IrqsOff;
use crate::guard::NoPreempt;
use crate::registration::{count_guard, this_cpu, validate_this_cpu, Creating};
use crate::{raw, PerCpuPrimitive};

/// Keeps the current task on this CPU while alive: preemption is disabled (with the `preempt`
/// feature, through the kernel's `kernel_guard::KernelGuardIf`; a kernel without the feature does not
/// preempt). Interrupt handlers still run. `!Send` and `!Sync`; nestable. With `sp-naive` on a host
/// (Unix, Windows), where every thread runs on the one CPU, it holds that CPU for this thread: another
/// thread's guard waits until this thread's last one is dropped.
pub struct PreemptGuard {
    cpu: usize,
    _preempt: NoPreempt,
    /// Neither the guard nor a reference to it may leave this CPU.
    _pinned: PhantomData<*mut ()>,
}

impl PreemptGuard {
    /// Disables preemption, then validates this CPU's registration.
    ///
    /// # Panics
    ///
    /// If this CPU (hosted: thread) did not register with [`init_percpu_reg`](crate::init_percpu_reg).
    #[inline]
    pub fn new() -> Self {
        Self::try_new().unwrap_or_else(|| not_registered())
    }

    /// As [`new`](Self::new), or `None` (with preemption restored) if this CPU (hosted: thread) did
    /// not register.
    #[inline]
    pub fn try_new() -> Option<Self> {
        let preempt = NoPreempt::new();
        let cpu = {
            // In a kernel, an interrupt handler that releases or re-registers this CPU between the
            // check and the count would leave this guard on an area this CPU no longer holds (an
            // outside review).
            #[cfg(target_os = "none")]
            let _irqs = IrqsOff::new();
            // Hosted: a signal handler of this thread refuses to release it meanwhile.
            let _creating = Creating::new();
            let cpu = this_cpu().ok()?;
            count_guard(1);
            cpu
        };
        Some(Self {
            cpu,
            _preempt: preempt,
            _pinned: PhantomData,
        })
    }
}

impl Default for PreemptGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PreemptGuard {
    #[inline]
    fn drop(&mut self) {
        count_guard(-1);
    }
}

/// Keeps the current task on this CPU and keeps interrupt handlers away while alive: local interrupts
/// and preemption are disabled, and restored as they were when the last `IrqGuard` of this CPU is
/// dropped, in whatever order the guards are dropped (a per-CPU count: dropping an outer guard first
/// leaves interrupts off for the inner one). `!Send` and `!Sync`; nestable. In a hosted x86_64 Linux
/// program, where signal handlers play the part of interrupt handlers, it blocks the thread's
/// signals; with `sp-naive` on a host it masks nothing (a program whose signal handlers touch per-CPU
/// data must block signals itself, as installing a handler that is not async-signal-safe is the
/// installer's obligation), and it holds the one CPU for this thread, as every guard does there:
/// another thread's guard waits until this thread's last one is dropped.
pub struct IrqGuard {
    cpu: usize,
    _preempt: NoPreempt,
    /// Neither the guard nor a reference to it may leave this CPU.
    _pinned: PhantomData<*mut ()>,
}

/// The `IrqGuard`s alive on this CPU.
#[crate::def_percpu]
static IRQ_GUARDS: usize = 0;

/// The interrupt state that the outermost live `IrqGuard` of this CPU found, restored when the last
/// one is dropped.
#[crate::def_percpu]
static IRQ_SAVED: usize = 0;

impl IrqGuard {
    /// Disables preemption and local interrupts, then validates this CPU's registration.
    ///
    /// # Panics
    ///
    /// If this CPU (hosted: thread) did not register with [`init_percpu_reg`](crate::init_percpu_reg)
    /// (interrupts and preemption are restored before the panic unwinds).
    #[inline]
    pub fn new() -> Self {
        Self::try_new().unwrap_or_else(|| not_registered())
    }

    /// As [`new`](Self::new), or `None` (with interrupts and preemption restored) if this CPU (hosted:
    /// thread) did not register.
    #[inline]
    pub fn try_new() -> Option<Self> {
        let preempt = NoPreempt::new();
        // Restores the interrupts if this returns early or unwinds.
        let irqs = IrqsOff::new();
        let cpu = this_cpu().ok()?;
        count_guard(1);
        // SAFETY: this CPU's registered area (just validated, and the task stays here: interrupts and
        // preemption are off); with interrupts off nothing else on this CPU touches the two words, and
        // no other CPU ever does.
        unsafe {
            let guards = IRQ_GUARDS.read_current_raw();
            if guards == 0 {
                IRQ_SAVED.write_current_raw(irqs.saved());
            }
            IRQ_GUARDS.write_current_raw(guards + 1);
        }
        // Interrupts stay off until the last `IrqGuard` of this CPU is dropped. (An inner guard must
        // not restore what it saved, even "off": a count left by a leaked guard would make this the
        // inner one while interrupts were on: an outside review.)
        irqs.keep_off();
        Some(Self {
            cpu,
            _preempt: preempt,
            _pinned: PhantomData,
        })
    }
}

impl Default for IrqGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqGuard {
    #[inline]
    fn drop(&mut self) {
        // Still pinned, interrupts off (this guard is alive): preemption is restored after this.
        count_guard(-1);
        // SAFETY: as in `try_new`; `IRQ_SAVED` holds the state that the first of the live guards
        // found, which `local_irq_save` returned on this CPU: restored once, by the last one.
        unsafe {
            let guards = IRQ_GUARDS.read_current_raw() - 1;
            IRQ_GUARDS.write_current_raw(guards);
            if guards == 0 {
                crate::arch::local_irq_restore(IRQ_SAVED.read_current_raw());
            }
        }
    }
}

/// The panic of a guard's `new` on a CPU that did not register.
#[cold]
fn not_registered() -> ! {
    validate_this_cpu();
    unreachable!("percpu: validation failed, then passed")
}

mod sealed {
    /// Seals [`Guard`](super::Guard).
    pub trait Guard {}
    /// Seals [`GuardFor`](super::GuardFor): outside crates cannot name it, so they cannot add rules.
    pub trait GuardFor<T: ?Sized> {}
}

/// A guard of the checked tier: while it lives, the code holding it runs on CPU [`cpu_id`]
/// (validated when it was created). Sealed.
///
/// [`cpu_id`]: Guard::cpu_id
pub trait Guard: sealed::Guard {
    /// The id of the CPU the guard pins its holder to.
    fn cpu_id(&self) -> usize;
}

impl sealed::Guard for PreemptGuard {}
impl sealed::Guard for IrqGuard {}

impl Guard for PreemptGuard {
    #[inline]
    fn cpu_id(&self) -> usize {
        self.cpu
    }
}

impl Guard for IrqGuard {
    #[inline]
    fn cpu_id(&self) -> usize {
        self.cpu
    }
}

/// `G: GuardFor<T>`: through a `&G`, a shared reference to this CPU's copy of a `T` is sound (see the
/// [module documentation](self)): [`IrqGuard`] for every `T: Send`, [`PreemptGuard`] for every
/// `T: Send + Sync`. Sealed.
pub trait GuardFor<T: ?Sized>: Guard + sealed::GuardFor<T> {}

impl<T: ?Sized + Send> sealed::GuardFor<T> for IrqGuard {}
impl<T: ?Sized + Send> GuardFor<T> for IrqGuard {}
impl<T: ?Sized + Send + Sync> sealed::GuardFor<T> for PreemptGuard {}
impl<T: ?Sized + Send + Sync> GuardFor<T> for PreemptGuard {}

/// This CPU's copy of the `T` at `vma`, for as long as `guard` is borrowed.
///
/// # Safety
///
/// `vma` designates a `T` in every area, which lives at least as long as the borrow of `guard` (true
/// of a static; a run-time allocated object must outlive the borrow). Nothing creates a `&mut` to the copy while
/// the reference lives, except through the 0.4 tier, whose contract forbids it.
#[doc(hidden)]
#[inline]
pub unsafe fn get<T, G: GuardFor<T>>(vma: usize, guard: &G) -> &T {
    let _ = guard;
    // SAFETY: the guard validated that the register designates this CPU's claimed area and pins the
    // task there; `T: Send` (and `Sync` without interrupts disabled) per `GuardFor`; the caller
    // vouches for `vma` and the lifetime.
    unsafe { &*raw::current_ptr::<T>(vma) }
}

/// CPU `cpu_id`'s copy of the `T: Sync` at `vma`; declares the areas in use for good
/// ([`freeze_areas`](crate::freeze_areas)), since the reference may live as long as the program.
///
/// # Panics
///
/// If `cpu_id` is not below [`cpu_count()`](crate::cpu_count).
///
/// # Safety
///
/// `vma` designates a `T` in every area that lives at least as long as `'a`; nothing creates a
/// `&mut` to the copy while the reference lives, except through the 0.4 tier.
#[doc(hidden)]
#[inline]
pub unsafe fn remote<'a, T: Sync>(vma: usize, cpu_id: usize) -> &'a T {
    check_remote_cpu(cpu_id);
    // SAFETY: in range; `T: Sync` lets every CPU hold shared references at once; the caller vouches
    // for `vma` and the lifetime.
    unsafe { &*raw::remote_ptr::<T>(cpu_id, vma) }
}

/// Panics unless `cpu_id` is below the CPU count, which stays true: the areas are frozen first (an
/// initialization in between would lay them out anew, and the id would designate memory elsewhere).
#[inline]
pub(crate) fn check_remote_cpu(cpu_id: usize) {
    let count = crate::area::frozen_cpu_count();
    assert!(
        cpu_id < count,
        "percpu: CPU id {cpu_id} is out of range: {count} per-CPU areas are initialized"
    );
}

/// Reads CPU `cpu_id`'s copy of the primitive at `vma` with an atomic load, which races with nothing:
/// the owner changes its copy with single-copy-atomic operations.
///
/// # Panics
///
/// If `cpu_id` is not below [`cpu_count()`](crate::cpu_count).
///
/// # Safety
///
/// `vma` designates a `T` in every area; the owner CPU does not hold a reference to its copy (the
/// 0.4 tier's contract).
#[doc(hidden)]
#[inline]
pub unsafe fn remote_read<T: PerCpuPrimitive>(vma: usize, cpu_id: usize) -> T {
    use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
    check_remote_cpu(cpu_id);
    // SAFETY: in range: an aligned `T` of an initialized area, read atomically at its own width.
    unsafe {
        let ptr = raw::remote_ptr::<u8>(cpu_id, vma);
        let bits = match size_of::<T>() {
            1 => u64::from(AtomicU8::from_ptr(ptr).load(Relaxed)),
            2 => u64::from(AtomicU16::from_ptr(ptr.cast()).load(Relaxed)),
            4 => u64::from(AtomicU32::from_ptr(ptr.cast()).load(Relaxed)),
            _ => AtomicU64::from_ptr(ptr.cast()).load(Relaxed),
        };
        T::from_bits(bits)
    }
}
