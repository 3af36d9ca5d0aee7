//! `PerCpu<T>`: a run-time allocated per-CPU object, one copy per CPU, reached through the per-CPU
//! register exactly like a `#[def_percpu]` static.

use core::alloc::Layout;
use core::fmt;
use core::marker::PhantomData;

use percpu::{check_not_lent, raw, AccessGuard, PerCpuInteger, PerCpuPrimitive};

use crate::{space, AllocError};

/// One `T` per CPU, allocated at run time. The handle stores only the VMA of the copies (see the
/// `percpu` crate's address model): `register + VMA` is this CPU's copy.
///
/// `PerCpu<T>` is `Send` and `Sync` when `T` is `Send`: each CPU's copy is used by the tasks that run on
/// that CPU, one after the other, like a value moved between threads; dropping the handle drops every
/// copy on the dropping CPU.
pub struct PerCpu<T> {
    vma: usize,
    /// Owns `cpu_count` values of `T`.
    _copies: PhantomData<T>,
}

// SAFETY: see the type documentation: copies are only reached as `&mut` by the CPU that owns them
// (`with_current`) or through `&mut self`, so sharing the handle needs `T: Send`, never `T: Sync`.
unsafe impl<T: Send> Send for PerCpu<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for PerCpu<T> {}

/// Allocates one `T::default()` per CPU.
///
/// # Errors
///
/// See [`AllocError`].
pub fn alloc_percpu<T: Default>() -> Result<PerCpu<T>, AllocError> {
    PerCpu::new_with(|_| T::default())
}

impl<T> PerCpu<T> {
    /// Allocates one `T` per CPU, CPU `cpu`'s copy initialized to `init(cpu)`.
    ///
    /// # Errors
    ///
    /// See [`AllocError`]. Zero-sized types take no memory (they need the per-CPU areas, but not
    /// [`init`](crate::init)).
    pub fn new_with(mut init: impl FnMut(usize) -> T) -> Result<Self, AllocError> {
        if cpu_count() == 0 {
            return Err(AllocError::NotInitialized);
        }
        let layout = Layout::new::<T>();
        let offset = if layout.size() == 0 {
            // Any aligned, non-null address serves a zero-sized type: the area bases are aligned to
            // `PERCPU_AREA_ALIGN`, and a zero-sized type more aligned than that is refused.
            if layout.align() > percpu::PERCPU_AREA_ALIGN {
                return Err(AllocError::UnsupportedAlignment);
            }
            layout.align()
        } else {
            space::alloc(layout)?
        };
        let handle = Self {
            vma: percpu::vma_of_offset(offset),
            _copies: PhantomData,
        };
        // If `init` panics, free the reservation without dropping copies that were never written.
        let unwritten = Unwritten {
            vma: handle.vma,
            size: layout.size(),
        };
        for cpu in 0..cpu_count() {
            // SAFETY: `cpu` is initialized and the reservation holds a `T`-sized, aligned slot in its
            // area; nothing else references the new slot.
            unsafe { handle.remote_ptr(cpu).write(init(cpu)) };
        }
        core::mem::forget(unwritten);
        Ok(handle)
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

    /// Runs `f` on this CPU's copy, with preemption disabled (`percpu`'s `preempt` feature).
    ///
    /// # Panics
    ///
    /// In debug builds, when a `with_current` on the same handle is already running on this CPU.
    #[inline]
    pub fn with_current<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: the handle's VMA designates a `T` in every area.
        unsafe { raw::with_current(self.vma, f) }
    }

    /// A pointer to CPU `cpu_id`'s copy.
    ///
    /// # Safety
    ///
    /// `cpu_id` must be below `percpu::cpu_count()` (checked by `debug_assert!`); using the pointer
    /// requires ruling out data races with that CPU.
    #[inline]
    pub unsafe fn remote_ptr(&self, cpu_id: usize) -> *mut T {
        // SAFETY: forwarded to the caller.
        unsafe { raw::remote_ptr(cpu_id, self.vma) }
    }

    /// CPU `cpu_id`'s copy. Takes `&mut self` because any CPU may be inside
    /// [`with_current`](Self::with_current) on its copy while the handle is shared.
    ///
    /// # Panics
    ///
    /// If `cpu_id` is not below `percpu::cpu_count()`.
    pub fn remote_ref(&mut self, cpu_id: usize) -> &T
    where
        T: Sync,
    {
        let count = cpu_count();
        assert!(
            cpu_id < count,
            "percpu_alloc: CPU id {cpu_id} is out of range: {count} CPUs"
        );
        // SAFETY: in range; `&mut self` excludes every `&mut` to a copy for the reference's lifetime.
        unsafe { &*self.remote_ptr(cpu_id) }
    }

    /// Every CPU's copy, in CPU order; `&mut self` for the reason given at
    /// [`remote_ref`](Self::remote_ref).
    pub fn iter(&mut self) -> impl ExactSizeIterator<Item = &T> + '_
    where
        T: Sync,
    {
        let vma = self.vma;
        // SAFETY: every CPU below `cpu_count()` is initialized; `&mut self` excludes `&mut` copies.
        (0..cpu_count()).map(move |cpu| unsafe { &*raw::remote_ptr::<T>(cpu, vma) })
    }
}

impl<T: PerCpuPrimitive> PerCpu<T> {
    /// Reads this CPU's copy (one instruction on x86_64, the VMA in a register).
    #[inline]
    pub fn read_current(&self) -> T {
        check_not_lent(self.vma);
        let _guard = AccessGuard::new();
        // SAFETY: the VMA designates a `T`; the guard keeps this task on this CPU.
        unsafe { raw::read_current(self.vma) }
    }

    /// Writes this CPU's copy (one instruction on x86_64).
    #[inline]
    pub fn write_current(&self, value: T) {
        check_not_lent(self.vma);
        let _guard = AccessGuard::new();
        // SAFETY: as in `read_current`; no reference to the copy is live (a `with_current` lending it
        // out is detected in debug builds and excluded by the documented contract in release builds).
        unsafe { raw::write_current(self.vma, value) }
    }

    /// Replaces this CPU's copy by `value` and returns the value it replaced, without any guard; see
    /// `percpu`'s per-architecture guarantee.
    #[inline]
    pub fn xchg_current(&self, value: T) -> T {
        check_not_lent(self.vma);
        // SAFETY: the VMA designates a `T`; the operation is interrupt- and migration-safe; no
        // reference to the copy is live (as in `write_current`).
        unsafe { raw::xchg_current(self.vma, value) }
    }

    /// Replaces this CPU's copy by `new` if it holds `current`, as
    /// [`xchg_current`](Self::xchg_current): `Ok(previous)` if it did, `Err(actual)` if not.
    #[inline]
    pub fn cmpxchg_current(&self, current: T, new: T) -> Result<T, T> {
        check_not_lent(self.vma);
        // SAFETY: as in `xchg_current`.
        unsafe { raw::cmpxchg_current(self.vma, current, new) }
    }
}

impl<T: PerCpuInteger> PerCpu<T> {
    /// Adds `value` (wrapping) to this CPU's copy without any guard; see `percpu`'s per-architecture
    /// guarantee (one instruction on x86_64).
    #[inline]
    pub fn add_current(&self, value: T) {
        check_not_lent(self.vma);
        // SAFETY: the VMA designates a `T`; the operation is interrupt- and migration-safe; no
        // reference to the copy is live (as in `write_current`).
        unsafe { raw::add_current(self.vma, value) }
    }

    /// Subtracts `value` (wrapping) from this CPU's copy, as [`add_current`](Self::add_current).
    #[inline]
    pub fn sub_current(&self, value: T) {
        check_not_lent(self.vma);
        // SAFETY: as in `add_current`.
        unsafe { raw::sub_current(self.vma, value) }
    }

    /// Adds `value` (wrapping) to this CPU's copy and returns the value it replaced, as
    /// [`add_current`](Self::add_current).
    #[inline]
    pub fn fetch_add_current(&self, value: T) -> T {
        check_not_lent(self.vma);
        // SAFETY: as in `add_current`.
        unsafe { raw::fetch_add_current(self.vma, value) }
    }

    /// Replaces this CPU's copy by its bitwise and with `value`, as [`add_current`](Self::add_current).
    #[inline]
    pub fn and_current(&self, value: T) {
        check_not_lent(self.vma);
        // SAFETY: as in `add_current`.
        unsafe { raw::and_current(self.vma, value) }
    }

    /// Replaces this CPU's copy by its bitwise or with `value`, as [`add_current`](Self::add_current).
    #[inline]
    pub fn or_current(&self, value: T) {
        check_not_lent(self.vma);
        // SAFETY: as in `add_current`.
        unsafe { raw::or_current(self.vma, value) }
    }

    /// Replaces this CPU's copy by its bitwise exclusive or with `value`, as
    /// [`add_current`](Self::add_current).
    #[inline]
    pub fn xor_current(&self, value: T) {
        check_not_lent(self.vma);
        // SAFETY: as in `add_current`.
        unsafe { raw::xor_current(self.vma, value) }
    }
}

impl<T> Drop for PerCpu<T> {
    fn drop(&mut self) {
        if core::mem::needs_drop::<T>() {
            for cpu in 0..cpu_count() {
                // SAFETY: every copy was initialized by `new_with` and is dropped once, here.
                unsafe { self.remote_ptr(cpu).drop_in_place() };
            }
        }
        if size_of::<T>() != 0 {
            space::free(self.offset());
        }
    }
}

impl<T> fmt::Debug for PerCpu<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerCpu")
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

/// The CPUs that have a copy: those whose areas are initialized.
fn cpu_count() -> usize {
    percpu::cpu_count()
}

/// A reservation whose copies are not all written yet: freed, without dropping anything, on unwinding.
struct Unwritten {
    vma: usize,
    size: usize,
}

impl Drop for Unwritten {
    fn drop(&mut self) {
        if self.size != 0 {
            space::free(percpu::offset_of_vma(self.vma));
        }
    }
}
