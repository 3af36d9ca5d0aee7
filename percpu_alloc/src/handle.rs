//! Run-time allocated per-CPU data, one copy per CPU, reached through the per-CPU register exactly like
//! a `#[def_percpu]` static, in the two kinds of `percpu`'s checked tier:
//!
//! - [`PerCpu<T>`]: reference-like. This CPU's copy is lent as `&T` through a guard of
//!   `percpu::checked` (mutation through interior mutability), another CPU's as `&T` for `T: Sync`,
//!   every copy as `&mut T` through `&mut PerCpu<T>` (the handle is then exclusive).
//! - [`PerCpuCell<T>`]: cell-like, for integers and `bool`. Its operations (`read_current`,
//!   `add_current`, `cmpxchg_current`, ...) never lend a reference, need no guard, and other CPUs read
//!   its copies with atomic loads.
//!
//! The two never meet on one handle: an operation that changes a copy in place must not run while a
//! shared reference to it lives, so a handle either lends references or operates, never both.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;

use percpu::checked::GuardFor;
use percpu::{check_not_lent, raw, AccessGuard, PerCpuInteger, PerCpuPrimitive};

use crate::space::Context;
use crate::{object, AllocError};

/// One `T` per CPU, allocated at run time: reference-like (see the crate documentation and
/// `percpu::checked`). The handle stores only the VMA of the copies (see the `percpu` crate's address
/// model): `register + VMA` is this CPU's copy.
///
/// `PerCpu<T>` is `Send` and `Sync` when `T` is `Send`: each CPU's copy is used by the tasks that run on
/// that CPU, one after the other, like a value moved between threads; shared references to another
/// CPU's copy need `T: Sync` ([`remote`](Self::remote)); dropping the handle drops every copy on the
/// dropping CPU.
pub struct PerCpu<T> {
    vma: usize,
    /// Owns `cpu_count` values of `T`.
    _copies: PhantomData<T>,
}

// SAFETY: see the type documentation: a CPU's copy is reached as `&T` by the tasks of that CPU (under a
// guard, `T: Send`; without interrupts masked `T: Sync` too), as `&T` by other CPUs only for
// `T: Sync`, and as `&mut T` only through `&mut self`; so sharing the handle needs `T: Send`.
unsafe impl<T: Send> Send for PerCpu<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for PerCpu<T> {}

/// Allocates one `T::default()` per CPU (task context: see [`PerCpu::new_with`]).
///
/// # Errors
///
/// See [`AllocError`].
pub fn alloc_percpu<T: Default>() -> Result<PerCpu<T>, AllocError> {
    PerCpu::new_with(|_| T::default())
}

/// Allocates one `T::default()` per CPU without waiting (atomic context: see
/// [`PerCpu::new_with_atomic`]).
///
/// # Errors
///
/// See [`AllocError`].
pub fn alloc_percpu_atomic<T: Default>() -> Result<PerCpu<T>, AllocError> {
    PerCpu::new_with_atomic(|_| T::default())
}

impl<T> PerCpu<T> {
    /// Allocates one `T` per CPU, CPU `cpu`'s copy initialized to `init(cpu)`, for every CPU whose area
    /// exists (`percpu::cpu_count()`: every *possible* CPU, online or not yet).
    ///
    /// Task context: a small object usually comes from this CPU's cache without any lock; otherwise
    /// this may obtain a further chunk from the [`ChunkSource`](crate::ChunkSource) and its metadata
    /// from the heap (never with the allocator's lock held). In interrupt context, use
    /// [`new_with_atomic`](Self::new_with_atomic).
    ///
    /// If `init` panics, the copies it built are dropped, the memory is freed, and the panic goes on.
    ///
    /// # Errors
    ///
    /// See [`AllocError`]. Zero-sized types take no memory (they need the per-CPU areas, but not
    /// [`init`](crate::init)), and follow the same alignment rule as the others
    /// ([`max_align`](crate::max_align)).
    pub fn new_with(init: impl FnMut(usize) -> T) -> Result<Self, AllocError> {
        Self::build(init, Context::Task)
    }

    /// As [`new_with`](Self::new_with), without waiting for anything: allowed in interrupt context
    /// (Linux's `GFP_ATOMIC`). It serves from the chunks already obtained (a small object usually from
    /// this CPU's cache, without any lock) and never calls the heap or the chunk source. When it needs
    /// the allocator's lock (which is only ever held with interrupts disabled, for bounded operations),
    /// it makes a bounded number of attempts at it. It reports [`AllocError::WouldBlock`] when the
    /// chunks have no room (keep spare chunks with [`refill`](crate::refill) from task context) or the
    /// lock stayed busy. `init` is the caller's: it must not block either. (With `percpu`'s
    /// `sp-naive` in a program with threads, it waits for its turn on the one CPU, as every
    /// allocation does there: until the thread holding the CPU leaves its section.)
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new_with_atomic(init: impl FnMut(usize) -> T) -> Result<Self, AllocError> {
        Self::build(init, Context::Atomic)
    }

    /// Allocates the copies and builds them with `init`.
    fn build(mut init: impl FnMut(usize) -> T, context: Context) -> Result<Self, AllocError> {
        let count = cpu_count();
        if count == 0 {
            return Err(AllocError::NotInitialized);
        }
        let offset = object::alloc(Layout::new::<T>(), context)?;
        // Owns the reservation and the copies built so far, until they are all built.
        let mut building = Copies::<T>::new(percpu::vma_of_offset(offset), 0..0);
        let (first, stride) = building.placement();
        for cpu in 0..count {
            let value = init(cpu);
            // SAFETY: `cpu` is initialized and the reservation holds a `T`-sized, aligned slot in its
            // area (at `first + cpu × stride`, `Copies::placement`), not built yet; nothing else
            // references it.
            unsafe { first.wrapping_byte_add(cpu * stride).write(value) };
            building.built.end = cpu + 1;
        }
        let vma = building.vma;
        core::mem::forget(building);
        Ok(Self {
            vma,
            _copies: PhantomData,
        })
    }

    /// The offset of the copies inside each per-CPU area.
    pub fn offset(&self) -> usize {
        percpu::offset_of_vma(self.vma)
    }

    /// The VMA of the copies: what the per-CPU register is added to (see `percpu::raw`).
    pub fn vma(&self) -> usize {
        self.vma
    }

    /// A pointer to this CPU's copy.
    ///
    /// # Safety
    ///
    /// This CPU's per-CPU register must be initialized; using the pointer requires staying on this CPU.
    #[inline]
    pub unsafe fn current_ptr(&self) -> *mut T {
        // SAFETY: the handle's VMA designates a `T` in every area; the rest is the caller's.
        unsafe { raw::current_ptr(self.vma) }
    }

    /// A pointer to CPU `cpu_id`'s copy.
    ///
    /// # Safety
    ///
    /// `cpu_id` must be below `percpu::cpu_count()` (checked by `debug_assert!`); using the pointer
    /// requires ruling out data races with that CPU and aliasing with the references the handle lends.
    #[inline]
    pub unsafe fn remote_ptr(&self, cpu_id: usize) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { raw::remote_ptr(cpu_id, self.vma) }
    }

    /// This CPU's copy, shared, for as long as `guard` pins the task to this CPU (checked tier: any
    /// `T: Send` through a `percpu::checked::IrqGuard`, `T: Send + Sync` through a `PreemptGuard`;
    /// mutation through interior mutability).
    #[inline]
    pub fn get<'a, G: GuardFor<T>>(&'a self, guard: &'a G) -> &'a T {
        // SAFETY: the handle's VMA designates a `T` in every area, alive while `self` is borrowed;
        // `&mut` copies exist only through `&mut self`, excluded by the borrow.
        unsafe { percpu::__priv::get(self.vma, guard) }
    }

    /// CPU `cpu_id`'s copy, shared (`T: Sync`: other CPUs may hold shared references to it at the
    /// same time).
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below `percpu::cpu_count()`.
    #[inline]
    pub fn remote(&self, cpu_id: usize) -> &T
    where
        T: Sync,
    {
        // SAFETY: as in `get`.
        unsafe { percpu::__priv::remote(self.vma, cpu_id) }
    }

    /// Every CPU's copy, shared, in CPU order (`T: Sync`, as [`remote`](Self::remote)).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &T> + '_
    where
        T: Sync,
    {
        (0..cpu_count()).map(move |cpu| self.remote(cpu))
    }

    /// CPU `cpu_id`'s copy, exclusive: `&mut self` excludes every other reference to any copy.
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below `percpu::cpu_count()`.
    pub fn get_mut(&mut self, cpu_id: usize) -> &mut T {
        let count = cpu_count();
        assert!(
            cpu_id < count,
            "percpu_alloc: CPU id {cpu_id} is out of range: {count} CPUs"
        );
        // SAFETY: in range; `&mut self` excludes every other reference to the copies for the
        // reference's lifetime.
        unsafe { &mut *self.remote_ptr(cpu_id) }
    }

    /// Every CPU's copy, exclusive, in CPU order (as [`get_mut`](Self::get_mut)).
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = &mut T> + '_ {
        let vma = self.vma;
        // SAFETY: every CPU below `cpu_count()` is initialized; the copies are distinct, and
        // `&mut self` excludes every other reference to them for the iterator's lifetime.
        (0..cpu_count()).map(move |cpu| unsafe { &mut *raw::remote_ptr::<T>(cpu, vma) })
    }

    /// Runs `f` on this CPU's copy as `&mut T`, with preemption disabled (`percpu`'s `preempt`
    /// feature): the raw tier, for code that proves the exclusion itself.
    ///
    /// # Safety
    ///
    /// No other reference to this CPU's copy may exist while `f` runs: no `with_current` on this
    /// handle nested in `f` or running in an interrupt handler that interrupted it (debug builds panic
    /// for these two), no reference from [`get`](Self::get) on this CPU, no [`remote`](Self::remote)
    /// or [`iter`](Self::iter) reference on another CPU. This CPU must have registered its per-CPU
    /// area.
    #[inline]
    pub unsafe fn with_current<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the handle's VMA designates a `T` in every area; the rest is the caller's.
        unsafe { raw::with_current(self.vma, f) }
    }
}

impl<T> Drop for PerCpu<T> {
    /// Drops every CPU's copy, on this CPU, then frees the memory. Allowed in interrupt context as far
    /// as the allocator goes (it never calls the heap or the chunk source; `T`'s destructor is the
    /// caller's). If a copy's destructor panics, the other copies are still dropped and the memory
    /// freed.
    fn drop(&mut self) {
        let copies = if core::mem::needs_drop::<T>() {
            0..cpu_count()
        } else {
            0..0
        };
        drop(Copies::<T>::new(self.vma, copies));
    }
}

impl<T> fmt::Debug for PerCpu<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerCpu")
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

/// One `T` per CPU for integers and `bool`, allocated at run time: cell-like (see the
/// crate documentation). Its operations (`read_current`, `write_current`, `add_current`,
/// `fetch_add_current`, `xchg_current`, `cmpxchg_current`, ...) act on this CPU's copy without any
/// guard and never lend a reference; [`remote_read`](Self::remote_read) reads another CPU's copy with
/// an atomic load. The per-architecture guarantees of the operations are `percpu`'s (one instruction
/// on x86_64).
pub struct PerCpuCell<T: PerCpuPrimitive> {
    copies: PerCpu<T>,
}

impl<T: PerCpuPrimitive> PerCpuCell<T> {
    /// `value` on every CPU (task context, as [`PerCpu::new_with`]).
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new(value: T) -> Result<Self, AllocError> {
        Self::new_with(|_| value)
    }

    /// CPU `cpu`'s copy initialized to `init(cpu)` (task context, as [`PerCpu::new_with`]).
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new_with(init: impl FnMut(usize) -> T) -> Result<Self, AllocError> {
        Ok(Self {
            copies: PerCpu::new_with(init)?,
        })
    }

    /// As [`new_with`](Self::new_with), in atomic context (as [`PerCpu::new_with_atomic`]).
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new_with_atomic(init: impl FnMut(usize) -> T) -> Result<Self, AllocError> {
        Ok(Self {
            copies: PerCpu::new_with_atomic(init)?,
        })
    }

    /// The offset of the copies inside each per-CPU area.
    pub fn offset(&self) -> usize {
        self.copies.offset()
    }

    /// The VMA of the copies: what the per-CPU register is added to (see `percpu::raw`).
    pub fn vma(&self) -> usize {
        self.copies.vma()
    }

    /// A pointer to this CPU's copy.
    ///
    /// # Safety
    ///
    /// As [`PerCpu::current_ptr`]; the operations of other code change the copy in place: access it
    /// atomically.
    #[inline]
    pub unsafe fn current_ptr(&self) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { self.copies.current_ptr() }
    }

    /// A pointer to CPU `cpu_id`'s copy.
    ///
    /// # Safety
    ///
    /// As [`PerCpu::remote_ptr`]; access the copy atomically (its CPU changes it in place).
    #[inline]
    pub unsafe fn remote_ptr(&self, cpu_id: usize) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { self.copies.remote_ptr(cpu_id) }
    }

    /// Reads CPU `cpu_id`'s copy with an atomic load of its width, which races with nothing: its CPU
    /// changes it with single-copy-atomic operations (on arm, 64-bit values with `ldrexd`/`strexd`).
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below `percpu::cpu_count()`.
    #[inline]
    pub fn remote_read(&self, cpu_id: usize) -> T {
        // SAFETY: the VMA designates a `T` in every area, which no reference is ever lent to.
        unsafe { percpu::__priv::remote_read(self.vma(), cpu_id) }
    }

    /// Reads this CPU's copy (one instruction on x86_64, the VMA in a register).
    #[inline]
    pub fn read_current(&self) -> T {
        check_not_lent(self.vma());
        let _guard = AccessGuard::new();
        // SAFETY: the VMA designates a `T`; the guard keeps this task on this CPU.
        unsafe { raw::read_current(self.vma()) }
    }

    /// Writes this CPU's copy (one instruction on x86_64).
    #[inline]
    pub fn write_current(&self, value: T) {
        check_not_lent(self.vma());
        let _guard = AccessGuard::new();
        // SAFETY: as in `read_current`; no reference to the copy is ever lent (a cell).
        unsafe { raw::write_current(self.vma(), value) }
    }

    /// Replaces this CPU's copy by `value` and returns the value it replaced, without any guard; see
    /// `percpu`'s per-architecture guarantee.
    #[inline]
    pub fn xchg_current(&self, value: T) -> T {
        check_not_lent(self.vma());
        // SAFETY: the VMA designates a `T`; the operation is interrupt- and migration-safe; no
        // reference to the copy is ever lent (a cell).
        unsafe { raw::xchg_current(self.vma(), value) }
    }

    /// Replaces this CPU's copy by `new` if it holds `current`, as
    /// [`xchg_current`](Self::xchg_current): `Ok(previous)` if it did, `Err(actual)` if not.
    #[inline]
    pub fn cmpxchg_current(&self, current: T, new: T) -> Result<T, T> {
        check_not_lent(self.vma());
        // SAFETY: as in `xchg_current`.
        unsafe { raw::cmpxchg_current(self.vma(), current, new) }
    }
}

impl<T: PerCpuInteger> PerCpuCell<T> {
    /// Adds `value` (wrapping) to this CPU's copy without any guard; see `percpu`'s per-architecture
    /// guarantee (one instruction on x86_64).
    #[inline]
    pub fn add_current(&self, value: T) {
        check_not_lent(self.vma());
        // SAFETY: the VMA designates a `T`; the operation is interrupt- and migration-safe; no
        // reference to the copy is ever lent (a cell).
        unsafe { raw::add_current(self.vma(), value) }
    }

    /// Subtracts `value` (wrapping) from this CPU's copy, as [`add_current`](Self::add_current).
    #[inline]
    pub fn sub_current(&self, value: T) {
        check_not_lent(self.vma());
        // SAFETY: as in `add_current`.
        unsafe { raw::sub_current(self.vma(), value) }
    }

    /// Adds `value` (wrapping) to this CPU's copy and returns the value it replaced, as
    /// [`add_current`](Self::add_current).
    #[inline]
    pub fn fetch_add_current(&self, value: T) -> T {
        check_not_lent(self.vma());
        // SAFETY: as in `add_current`.
        unsafe { raw::fetch_add_current(self.vma(), value) }
    }

    /// Replaces this CPU's copy by its bitwise and with `value`, as [`add_current`](Self::add_current).
    #[inline]
    pub fn and_current(&self, value: T) {
        check_not_lent(self.vma());
        // SAFETY: as in `add_current`.
        unsafe { raw::and_current(self.vma(), value) }
    }

    /// Replaces this CPU's copy by its bitwise or with `value`, as [`add_current`](Self::add_current).
    #[inline]
    pub fn or_current(&self, value: T) {
        check_not_lent(self.vma());
        // SAFETY: as in `add_current`.
        unsafe { raw::or_current(self.vma(), value) }
    }

    /// Replaces this CPU's copy by its bitwise exclusive or with `value`, as
    /// [`add_current`](Self::add_current).
    #[inline]
    pub fn xor_current(&self, value: T) {
        check_not_lent(self.vma());
        // SAFETY: as in `add_current`.
        unsafe { raw::xor_current(self.vma(), value) }
    }
}

impl<T: PerCpuPrimitive> fmt::Debug for PerCpuCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerCpuCell")
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

/// The CPUs that have a copy: those whose areas are initialized.
fn cpu_count() -> usize {
    percpu::cpu_count()
}

/// A reservation and the copies of it that hold a `T` (those of the CPUs in `built`): dropping it
/// drops those copies, then frees the reservation once.
struct Copies<T> {
    vma: usize,
    built: core::ops::Range<usize>,
    _copies: PhantomData<T>,
}

impl<T> Copies<T> {
    /// The reservation at `vma`, whose copies of the CPUs in `built` hold a `T`.
    fn new(vma: usize, built: core::ops::Range<usize>) -> Self {
        Self {
            vma,
            built,
            _copies: PhantomData,
        }
    }

    /// Where the copies are: CPU `cpu`'s at `first + cpu × stride` (bytes), for every `cpu` below
    /// `percpu::cpu_count()`, since the areas are one stride apart.
    fn placement(&self) -> (*mut T, usize) {
        // SAFETY: CPU 0 is initialized (the reservation exists, so the areas do).
        let first = unsafe { raw::remote_ptr::<T>(0, self.vma) };
        (first, percpu::percpu_area_stride())
    }
}

impl<T> Drop for Copies<T> {
    fn drop(&mut self) {
        if !self.built.is_empty() {
            // If a destructor panics, this guard drops the remaining copies and frees, as unwinding
            // drops it (a second panic aborts, as for a slice).
            let rest = core::mem::ManuallyDrop::new(Copies::<T>::new(self.vma, self.built.clone()));
            let mut unwinding = Unwinding(rest);
            let (first, stride) = unwinding.0.placement();
            for cpu in unwinding.0.built.by_ref() {
                // SAFETY: the copies in `built` hold a `T` each (at `first + cpu × stride`) and are
                // dropped once: `built` moved past this one before its destructor runs.
                unsafe { first.wrapping_byte_add(cpu * stride).drop_in_place() };
            }
            core::mem::forget(unwinding);
        }
        let offset = percpu::offset_of_vma(self.vma);
        // SAFETY: the reservation of `T` that this guard owns, freed once, after every copy was
        // dropped.
        unsafe { object::free(offset, Layout::new::<T>()) };
    }
}

/// Finishes dropping the copies left in a [`Copies`] when a destructor panics.
struct Unwinding<T>(core::mem::ManuallyDrop<Copies<T>>);

impl<T> Drop for Unwinding<T> {
    fn drop(&mut self) {
        // SAFETY: taken once, here, during unwinding; the normal path forgets this guard.
        unsafe { core::mem::ManuallyDrop::drop(&mut self.0) };
    }
}
