//! Which CPU each area belongs to: [`init_percpu_reg`] *claims* an area for the calling CPU (in hosted
//! mode: the calling thread) and points its per-CPU register there, and [`validate_this_cpu`] checks
//! that the register designates an area this CPU claimed.
//!
//! Every area holds two words of the runtime:
//!
//! - `CPU_ID`: the area's index, written when the areas are initialized;
//! - `OWNER`: the claim token of the CPU that registered it (0: nobody). In a kernel, the token is the
//!   register value designating the area: a CPU whose register holds it has registered there, and
//!   only one CPU may (a second claim of the same id by a CPU whose register is elsewhere panics). In
//!   hosted mode, the token is the thread's TLS base (`fs:0`), which identifies the live thread:
//!   a thread that never registered (its `GS` base is 0, or a copy of its parent's, which Linux
//!   copies into a child thread) fails the check. A thread's claim ends when it exits (a
//!   thread-local destructor) or calls [`release_percpu_reg`].
//!
//! The checked tier ([`checked`](crate::checked)) validates on every guard creation; debug builds
//! validate on every access of the 0.4 tier too (see [`check_not_lent`](crate::check_not_lent)).
//! While a CPU holds a guard of the checked tier, it may neither re-register nor release its area
//! (nor while one is being created: see [`checked`](crate::checked)).

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::area::{cpu_count, percpu_area_base};
use crate::{arch, raw};

/// The area's index, written by the initialization.
#[crate::def_percpu]
static CPU_ID: usize = usize::MAX;

/// The claim token of the CPU (hosted: thread) that registered the area; 0 while unclaimed. Only ever
/// reached as an atomic.
#[crate::def_percpu]
static OWNER: usize = 0;

/// The checked-tier guards alive on the CPU that owns the area.
#[crate::def_percpu]
static GUARDS: usize = 0;

/// The number of claimed areas: initialization is refused while it is not 0.
static CLAIMS: AtomicUsize = AtomicUsize::new(0);

/// Writes the runtime's words of a freshly copied area.
///
/// # Safety
///
/// `area` is the base of area `cpu`, being initialized, which no CPU uses.
pub(crate) unsafe fn prepare_area(area: usize, cpu: usize) {
    let word = |vma: usize| area.wrapping_add(crate::offset_of_vma(vma)) as *mut usize;
    // SAFETY: three `usize` slots of the runtime's statics inside the caller's area.
    unsafe {
        word(CPU_ID.symbol_vma()).write(cpu);
        word(OWNER.symbol_vma()).write(0);
        word(GUARDS.symbol_vma()).write(0);
    }
}

/// Whether any area is claimed.
pub(crate) fn any_claimed() -> bool {
    CLAIMS.load(Ordering::Acquire) != 0
}

/// The claim token of an area whose thread exited with a guard of the checked tier leaked: taken for
/// good (tokens are TLS block addresses, never 1).
#[cfg(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive")
))]
const EXITED: usize = 1;

/// CPU `cpu`'s `OWNER` word.
///
/// # Safety
///
/// `cpu` is below [`cpu_count()`].
unsafe fn owner_of(cpu: usize) -> &'static AtomicUsize {
    // SAFETY: an aligned `usize` of an initialized area (the caller checked `cpu`), only ever accessed
    // as an atomic; the areas live as long as the program (the contract of the initialization).
    unsafe { AtomicUsize::from_ptr(raw::remote_ptr(cpu, OWNER.symbol_vma())) }
}

/// The claim token of the caller.
#[cfg(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive")
))]
fn my_token() -> usize {
    let tls: usize;
    // SAFETY: on x86_64 Linux, `fs:0` holds the thread's TLS block address (its self pointer, for
    // glibc and musl alike): a load of the calling thread's own memory.
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tls,
            options(nostack, preserves_flags, readonly, pure));
    }
    tls
}

/// Hosted mode: whether this thread claimed the area its `GS` base designates. The base is some area,
/// or 0 (the template) for a thread that never registered; both are readable, and hold `OWNER`.
#[cfg(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive")
))]
#[inline(always)]
fn claimed_by_this_thread() -> bool {
    // SAFETY: `GS` designates an initialized area or the template, both holding `OWNER`.
    let owner = unsafe { raw::read_current::<usize>(OWNER.symbol_vma()) };
    owner == my_token()
}

/// Hosted mode (x86_64 Linux), in every build: panics unless this thread registered the area its
/// `GS` base designates. A thread that did not would reach the template (`GS` base 0) or share its
/// parent's copies with it (Linux copies the base into a new thread): a data race, or writes outside
/// every area. Two instructions and a branch: the claim in the area against the thread's token.
/// Kernels check in debug builds only ([`check_not_lent`](crate::check_not_lent)): registering every
/// CPU before use is the kernel's part there. (Debug builds validate fully instead.)
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn check_hosted_thread() {
    #[cfg(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    ))]
    if !claimed_by_this_thread() {
        unregistered_thread();
    }
}

/// The panic of [`check_hosted_thread`], out of line.
#[cfg(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive"),
    not(debug_assertions)
))]
#[cold]
#[inline(never)]
fn unregistered_thread() -> ! {
    validate_this_cpu();
    unreachable!("percpu: this thread's registration was invalid a moment ago")
}

/// The claim token of CPU `cpu`: the register value that designates its area.
#[cfg(not(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive")
)))]
fn token_of(cpu: usize) -> usize {
    percpu_area_base(cpu).wrapping_sub(crate::template::template_vma())
}

/// The area this CPU's register designates and has claimed, or why not.
pub(crate) fn this_cpu() -> Result<usize, &'static str> {
    if cfg!(feature = "sp-naive") {
        return Ok(0);
    }
    let count = cpu_count();
    if count == 0 {
        return Err("the per-CPU areas are not initialized");
    }
    #[cfg(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    ))]
    {
        if !claimed_by_this_thread() {
            return Err(
                "this thread did not call `init_percpu_reg` (a spawned thread inherits its \
                        parent's `GS` base, not its CPU)",
            );
        }
        // SAFETY: as above.
        Ok(unsafe { raw::read_current::<usize>(CPU_ID.symbol_vma()) })
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    )))]
    {
        let value = arch::read_reg();
        let stride = crate::percpu_area_stride();
        let offset = value
            .wrapping_add(crate::template::template_vma())
            .wrapping_sub(percpu_area_base(0));
        if offset > (count - 1) * stride || !offset.is_multiple_of(8) {
            return Err("the per-CPU register designates no per-CPU area: \
                        `init_percpu_reg` was not called on this CPU");
        }
        // SAFETY: the register designates an 8-aligned address from which a whole area's span lies
        // inside the areas, so the word at the offset of `CPU_ID` (inside the template, which is at
        // most a stride) is readable; it is `CPU_ID` itself when `offset` is an area start, which is
        // checked before the value is trusted. The address comes from the value read once (the caller
        // may migrate meanwhile: then it validates the CPU it ran on, as it asked).
        let cpu = unsafe { *(value.wrapping_add(CPU_ID.symbol_vma()) as *const usize) };
        // SAFETY: `cpu` is checked against the count first.
        if cpu >= count
            || cpu * stride != offset
            || unsafe { owner_of(cpu) }.load(Ordering::Acquire) != value
        {
            return Err(
                "the per-CPU register designates no area that this CPU registered with \
                        `init_percpu_reg`",
            );
        }
        Ok(cpu)
    }
}

/// The id of the CPU this code runs on, as registered with [`init_percpu_reg`], or `None` if this CPU
/// (hosted: thread) holds no registration (see [`validate_this_cpu`]).
pub fn registered_cpu() -> Option<usize> {
    this_cpu().ok()
}

/// The id of the CPU this code runs on, as registered with [`init_percpu_reg`].
///
/// # Panics
///
/// If this CPU (hosted: thread) did not register, or its register does not designate the area it
/// registered.
pub fn validate_this_cpu() -> usize {
    this_cpu().unwrap_or_else(|why| panic!("percpu: {why}"))
}

/// Marks a checked-tier guard alive (`+1`) or gone (`-1`) on this CPU.
pub(crate) fn count_guard(delta: isize) {
    if cfg!(feature = "sp-naive") {
        // A hosted program's threads share the one CPU: a guard holds it.
        #[cfg(all(feature = "sp-naive", not(target_os = "none"), any(unix, windows)))]
        match delta {
            1 => crate::arch::THE_CPU.hold(),
            _ => crate::arch::THE_CPU.release(),
        }
        return;
    }
    // SAFETY: the caller validated this CPU, so `GUARDS` designates this CPU's own word; the guard
    // keeps the task on this CPU and the add is one interrupt-safe operation.
    unsafe { raw::add_current::<usize>(GUARDS.symbol_vma(), delta as usize) }
}

/// A checked-tier guard being created on this thread, from the check of its registration until the
/// guard is counted: a signal handler of this thread (which may run in between) refuses to release or
/// move the registration meanwhile, as under a live guard (hosted mode only: in a kernel the guard is
/// created with local interrupts off; an outside review found the window).
pub(crate) struct Creating(());

impl Creating {
    /// Marks a guard being created on this thread until dropped.
    #[inline(always)]
    pub(crate) fn new() -> Self {
        creating(1);
        Self(())
    }
}

impl Drop for Creating {
    #[inline(always)]
    fn drop(&mut self) {
        creating(usize::MAX);
    }
}

/// Adds `delta` (wrapping) to the guards being created on this thread and returns their number: in
/// hosted mode, a thread-local count; elsewhere always 0.
#[inline(always)]
fn creating(delta: usize) -> usize {
    #[cfg(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    ))]
    return hosted::creating(delta);
    #[cfg(not(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    )))]
    {
        let _ = delta;
        0
    }
}

/// Panics if a guard of the checked tier is alive on this CPU (claimed area `cpu`), or being created
/// on this thread ([`Creating`]).
fn assert_no_guard(cpu: usize, what: &str) {
    // SAFETY: `cpu` is a valid, claimed area; its owner only changes `GUARDS` on itself, and it is the
    // caller.
    let guards = unsafe { *raw::remote_ptr::<usize>(cpu, GUARDS.symbol_vma()) };
    let guards = guards + creating(0);
    assert!(
        guards == 0,
        "percpu: {what} while a guard of the checked tier is alive on this CPU: references it lent \
         would outlive the claim"
    );
}

/// Points this CPU's per-CPU register at area `cpu_id` and claims the area for this CPU (in hosted
/// mode, on x86_64 Linux: this thread, whose `GS` base is set; the claim ends when the thread exits).
///
/// Calling it again with the same id on the same CPU does nothing more; with another id, it moves the
/// CPU there (releasing the previous area).
///
/// # Panics
///
/// If `cpu_id` is not below [`cpu_count()`] (in particular before initialization); if another CPU
/// (hosted: another live thread) registered `cpu_id`; if a guard of the checked tier is alive on this
/// CPU and `cpu_id` is another area.
pub fn init_percpu_reg(cpu_id: usize) {
    let base = percpu_area_base(cpu_id);
    if cfg!(feature = "sp-naive") {
        return;
    }
    // An interrupt (hosted: signal) handler that registers or releases this CPU in the middle would
    // leave it two claims or none it knows of (an outside review).
    let _irqs = arch::IrqsOff::new();
    if let Ok(current) = this_cpu() {
        if current == cpu_id {
            return;
        }
        assert_no_guard(current, "`init_percpu_reg` with another CPU id");
        release(current);
    }
    #[cfg(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    ))]
    let token = my_token();
    #[cfg(not(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    )))]
    let token = token_of(cpu_id);
    // SAFETY: `cpu_id` is in range (checked by `percpu_area_base`).
    let owner = unsafe { owner_of(cpu_id) };
    match owner.compare_exchange(0, token, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            CLAIMS.fetch_add(1, Ordering::AcqRel);
        }
        // A kernel CPU registering again, after its register was reset: its own claim.
        Err(held) if held == token && !cfg!(target_os = "none") => {}
        Err(held) if held == token && arch::read_reg() == token => {}
        Err(_) => panic!(
            "percpu: CPU id {cpu_id} is already registered by another CPU (hosted: another live \
             thread, or one that exited with a guard of the checked tier leaked); one CPU per id"
        ),
    }
    #[cfg(all(
        target_arch = "x86_64",
        not(target_os = "none"),
        not(feature = "sp-naive")
    ))]
    hosted::release_at_thread_exit();
    // SAFETY: an initialized area, claimed by this CPU just above, so no other CPU uses it.
    unsafe { crate::write_percpu_reg(base) }
}

/// Ends this CPU's claim on its area, e.g. before the CPU goes offline (in hosted mode, a thread's
/// claim also ends when it exits). The register keeps its value; the checked tier refuses to run on
/// this CPU until it registers again, and another CPU may register the id.
///
/// Does nothing on a CPU that holds no claim.
///
/// # Panics
///
/// If a guard of the checked tier is alive on this CPU.
pub fn release_percpu_reg() {
    if cfg!(feature = "sp-naive") {
        // Nothing registers (see `init_percpu_reg`), so nothing is released.
        return;
    }
    // As in `init_percpu_reg`.
    let _irqs = arch::IrqsOff::new();
    if let Ok(cpu) = this_cpu() {
        assert_no_guard(cpu, "`release_percpu_reg`");
        release(cpu);
    }
}

/// Ends the claim on area `cpu`, which this CPU holds.
fn release(cpu: usize) {
    // SAFETY: `cpu` is a valid area.
    unsafe { owner_of(cpu) }.store(0, Ordering::Release);
    CLAIMS.fetch_sub(1, Ordering::AcqRel);
}

/// The end of a hosted thread's claim when the thread exits.
#[cfg(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive")
))]
mod hosted {
    extern crate std;

    /// Releases the thread's claim when dropped (at thread exit).
    struct ReleaseAtExit;

    impl Drop for ReleaseAtExit {
        fn drop(&mut self) {
            if let Ok(cpu) = super::this_cpu() {
                // A guard that outlives the thread (leaked) keeps the claim: the area stays taken.
                // SAFETY: `cpu` is this thread's claimed area.
                let guards =
                    unsafe { *crate::raw::remote_ptr::<usize>(cpu, super::GUARDS.symbol_vma()) };
                if guards == 0 {
                    super::release(cpu);
                } else {
                    // Kept under a token no thread has: a later thread may get this thread's TLS
                    // block, hence its token, and would take the claim and the leaked guard's counts
                    // for its own (an outside review: its `IrqGuard` then let signals in).
                    // SAFETY: `cpu` is a valid area.
                    unsafe { super::owner_of(cpu) }
                        .store(super::EXITED, core::sync::atomic::Ordering::Release);
                }
            }
        }
    }

    std::thread_local! {
        static RELEASE: ReleaseAtExit = const { ReleaseAtExit };
        /// The checked-tier guards being created on this thread (see `Creating`).
        static CREATING: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
    }

    /// Adds `delta` (wrapping) to the guards being created on this thread; returns the new number. A
    /// signal handler that interrupts the update creates and drops its own guards before returning,
    /// so it leaves the number as it found it. The compiler fences keep the check of the registration
    /// between the marks.
    #[inline(always)]
    pub(super) fn creating(delta: usize) -> usize {
        use core::sync::atomic::{compiler_fence, Ordering};
        compiler_fence(Ordering::SeqCst);
        let number = CREATING.with(|creating| {
            let number = creating.get().wrapping_add(delta);
            creating.set(number);
            number
        });
        compiler_fence(Ordering::SeqCst);
        number
    }

    /// Arranges for this thread's claim to end when it exits.
    pub(super) fn release_at_thread_exit() {
        RELEASE.with(|_| {});
    }
}
