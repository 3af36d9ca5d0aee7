//! Frees that cannot take the core's lock because the code they interrupted on their CPU holds it (or
//! waits for it): a signal handler in a hosted program, a non-maskable interrupt in a kernel. They are
//! pushed on a lock-free stack and done by whoever takes the lock next.
//!
//! The stack is intrusive and needs no memory of its own: the link of a deferred offset is kept in CPU
//! 0's copy of the object, which is dead (every copy was dropped) and still reserved (the core has not
//! freed the offset), at least one 8-byte granule and aligned to one.

use core::sync::atomic::{AtomicUsize, Ordering};

/// No offset: offsets are multiples of 8.
const EMPTY: usize = usize::MAX;

/// The most recently deferred offset, or [`EMPTY`].
static HEAD: AtomicUsize = AtomicUsize::new(EMPTY);

/// Where the link of the deferred `offset` is kept: CPU 0's copy.
fn link(offset: usize) -> *mut usize {
    // SAFETY: CPU 0 is initialized (an object exists, so the areas do).
    unsafe { percpu::raw::remote_ptr::<usize>(0, percpu::vma_of_offset(offset)) }
}

/// Defers the free of `offset` to the next holder of the core's lock.
///
/// # Safety
///
/// `offset` is a live reservation of the core (at least 8 bytes, 8-aligned) whose copies are all dead,
/// and nothing else will use or free it.
pub(crate) unsafe fn push(offset: usize) {
    let mut head = HEAD.load(Ordering::Relaxed);
    loop {
        // SAFETY: CPU 0's copy of the reservation, owned by the caller and used by nothing else.
        unsafe { link(offset).write(head) };
        // Release: whoever takes the stack sees the link.
        match HEAD.compare_exchange_weak(head, offset, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// Takes every deferred offset (for the caller to free), most recent first.
pub(crate) fn take_all() -> impl Iterator<Item = usize> {
    // Almost always empty: a load, not a read-modify-write, finds it so. Acquire: the links written
    // before each push are visible.
    let mut next = match HEAD.load(Ordering::Relaxed) {
        EMPTY => EMPTY,
        _ => HEAD.swap(EMPTY, Ordering::Acquire),
    };
    core::iter::from_fn(move || {
        if next == EMPTY {
            return None;
        }
        let offset = next;
        // SAFETY: a deferred offset's link, written before it was pushed; the offset is not freed
        // before this read (the caller frees what the iterator yields, after yielding it).
        next = unsafe { link(offset).read() };
        Some(offset)
    })
}
