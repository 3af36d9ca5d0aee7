//! Per-CPU caches of free offsets: the common allocation and free of small objects without any shared
//! lock.
//!
//! Every CPU keeps, in a per-CPU static, a stack of free offsets for each size class (objects up to
//! [`MAX_CACHED_SIZE`] bytes, their size rounded up to 8, aligned up to a cache line). An allocation
//! takes this CPU's most recently freed offset of its class, a free puts it there: plain loads and
//! stores on this CPU's own memory, with preemption disabled (`percpu`'s `preempt` feature) and a
//! per-CPU flag set (`crate::cpu`). A cache that is empty is refilled from the core, under its lock,
//! with half its bound of objects (`OffsetAllocator::alloc_batch`: side by side from a cache line
//! where the core's space is contiguous, so that the copies two CPUs write for their refills, in every
//! CPU's unit, share no cache line; one by one in its holes otherwise); a cache that is full gives the
//! older half of its class back to the core first. So a cache holds at most
//! [`CACHE_BYTES_PER_CLASS`] bytes per class of every unit, and all caches together at most
//! `cpu_count × CLASSES × CACHE_BYTES_PER_CLASS` bytes of every unit. [`drain_cache`] gives this
//! CPU's back on demand.
//!
//! An interrupt handler that interrupted a change of its CPU's cache finds the flag set and goes to
//! the core for its object (or to free it), with the class's alignment, so that the offset may end up
//! in any cache of its class later.

mod magazine;

pub(crate) use magazine::Class;
use magazine::{Magazines, CLASSES};
pub use magazine::{CACHE_BYTES_PER_CLASS, MAX_CACHED_SIZE};

use crate::cpu::{pinned, Claim, Flag};
use crate::space::{self, Batch, Context};
use crate::AllocError;

/// This CPU's free offsets; only changed by this CPU with its `Cache` flag claimed.
#[percpu::def_percpu]
static MAGAZINES: Magazines = Magazines::new();

/// Runs `f` on this CPU's magazines if no code that this call interrupted is changing them. The caller
/// is pinned.
#[inline]
fn with_magazines<R>(f: impl FnOnce(&mut Magazines) -> R) -> Option<R> {
    let _claim = Claim::try_new(Flag::Cache)?;
    // SAFETY: this CPU's initialized copy (every CPU sets its register before touching per-CPU data);
    // the claim makes this the only reference to it until dropped: other code of this CPU finds the
    // flag set and leaves the magazines alone, the task stays on this CPU (pinned), and no other CPU
    // ever reaches this CPU's magazines.
    Some(f(unsafe { MAGAZINES.current_ref_mut_raw() }))
}

/// An offset for an object of `class`: from this CPU's cache, refilled from the core if empty (in
/// task context, from a further chunk if the core has no room).
#[inline(always)]
pub(crate) fn alloc(class: Class, context: Context) -> Result<usize, AllocError> {
    match pinned(|| with_magazines(|magazines| magazines.pop(class))) {
        Some(Some(Some(offset))) => Ok(offset),
        _ => alloc_slow(class, context),
    }
}

/// [`alloc`] when this CPU's cache is empty or being changed.
#[cold]
#[inline(never)]
fn alloc_slow(class: Class, context: Context) -> Result<usize, AllocError> {
    let Some(taken) = pinned(|| take(class, context)) else {
        // A CPU (hosted: thread) that did not register: one object from the core.
        let mut batch = Batch::new();
        space::alloc(class.one(), context, &mut batch)?;
        return Ok(batch.first());
    };
    match taken? {
        Taken::Cached(offset) => Ok(offset),
        Taken::Refilled(offset) => {
            // Not pinned any more: the source may be called.
            space::reclaim_surplus(context);
            Ok(offset)
        }
        Taken::NoRoom => {
            // Task context without room: grow without being pinned, then keep the rest.
            let mut batch = Batch::new();
            space::alloc(class.refill(), Context::Task, &mut batch)?;
            if pinned(|| keep(class, batch.rest())).is_none() {
                // SAFETY: fresh reservations of the core, never handed out.
                unsafe { space::free_all(batch.rest().iter().copied()) };
            }
            Ok(batch.first())
        }
    }
}

/// What [`take`] found.
enum Taken {
    /// An offset of this CPU's cache.
    Cached(usize),
    /// An offset from the core (with the cache refilled, or not if it was being changed).
    Refilled(usize),
    /// The core has no room without a further chunk (task context only).
    NoRoom,
}

/// An offset of `class` from this CPU's cache, or from the core without growing. Pinned.
#[inline]
fn take(class: Class, context: Context) -> Result<Taken, AllocError> {
    let taken = with_magazines(|magazines| {
        if let Some(offset) = magazines.pop(class) {
            return Ok(Taken::Cached(offset));
        }
        let mut batch = Batch::new();
        if !space::alloc_present(class.refill(), context, &mut batch)? {
            return Ok(Taken::NoRoom);
        }
        let refused = magazines.keep(class, batch.rest());
        debug_assert!(refused.is_empty(), "the cache was empty");
        Ok(Taken::Refilled(batch.first()))
    });
    match taken {
        Some(taken) => taken,
        // This interrupted a change of this CPU's cache: one object from the core.
        None => {
            let mut batch = Batch::new();
            Ok(
                match space::alloc_present(class.one(), context, &mut batch)? {
                    true => {
                        debug_assert!(batch.rest().is_empty(), "one object asked for");
                        Taken::Refilled(batch.first())
                    }
                    false => Taken::NoRoom,
                },
            )
        }
    }
}

/// Keeps `offsets` of `class` in this CPU's cache, as far as it has room, and frees the rest. Pinned.
fn keep(class: Class, offsets: &[usize]) {
    let kept = with_magazines(|magazines| {
        let refused = magazines.keep(class, offsets);
        // SAFETY: fresh reservations of the core, never handed out.
        unsafe { space::free_all(refused.iter().copied()) };
    });
    if kept.is_none() {
        // SAFETY: as above.
        unsafe { space::free_all(offsets.iter().copied()) };
    }
}

/// Frees the object of `class` at `offset` into this CPU's cache; if the cache is full, its older half
/// goes back to the core first. Never calls the heap or the source.
///
/// # Safety
///
/// `offset` is a live reservation of `class` whose copies are all dead, and nothing else will use or
/// free it.
#[inline(always)]
pub(crate) unsafe fn free(class: Class, offset: usize) {
    if pinned(|| with_magazines(|magazines| magazines.push(class, offset))) != Some(Some(true)) {
        // SAFETY: forwarded.
        unsafe { free_slow(class, offset) }
    }
}

/// [`free`] when this CPU's cache is full or being changed.
///
/// # Safety
///
/// As [`free`].
#[cold]
#[inline(never)]
unsafe fn free_slow(class: Class, offset: usize) {
    let pinned = pinned(|| {
        let kept = with_magazines(|magazines| {
            if magazines.push(class, offset) {
                return;
            }
            let oldest = magazines.oldest_half(class);
            let count = oldest.len();
            // SAFETY: free offsets of `class` that this cache owned.
            unsafe { space::free_all(oldest.iter().copied()) };
            magazines.forget_oldest(class, count);
            let pushed = magazines.push(class, offset);
            debug_assert!(pushed);
        });
        kept.is_some()
    });
    if pinned != Some(true) {
        // This interrupted a change of this CPU's cache, or this CPU did not register.
        // SAFETY: forwarded from the caller.
        unsafe { space::free(offset) };
    }
}

/// Gives every free offset of this CPU's cache back to the allocator core, where other CPUs can use
/// it and chunks can become free, and returns how many bytes of every CPU's unit that was. Allowed in
/// interrupt context (it never calls the heap or the source); does nothing if it interrupted a change
/// of this CPU's cache, before the per-CPU areas exist, or on a CPU that did not register.
///
/// Call it when this CPU stops allocating for a while (or before it goes offline), or before reading
/// [`stats`](crate::stats) for figures without the caches. A cache holds at most
/// [`CACHE_BYTES_PER_CLASS`] bytes per size class anyway.
pub fn drain_cache() -> usize {
    if percpu::cpu_count() == 0 {
        return 0;
    }
    pinned(|| {
        with_magazines(|magazines| {
            let (count, bytes) = magazines.held_bytes();
            if count > 0 {
                // SAFETY: free offsets that this cache owned.
                unsafe { space::free_all(magazines.all()) };
                magazines.clear();
            }
            bytes
        })
    })
    .flatten()
    .unwrap_or(0)
}

/// The bytes of every CPU's unit that this CPU's cache holds.
pub fn cached_bytes() -> usize {
    if percpu::cpu_count() == 0 {
        return 0;
    }
    pinned(|| with_magazines(|magazines| magazines.held_bytes().1))
        .flatten()
        .unwrap_or(0)
}

/// The number of size classes (for the documented bound).
pub const CACHE_CLASSES: usize = CLASSES;
