//! CPUs going offline, and the registry of live batched counters that [`cpu_offline`] walks.
//!
//! # What going offline means for the counters of this crate
//!
//! Every counter has a part on every *possible* CPU (every per-CPU area, `percpu::cpu_count()`), from
//! its creation: a CPU that comes online later counts into the part it always had, and one that goes
//! offline keeps its parts, which stay in the memory of its area.
//!
//! - [`PerCpuCounter`](crate::PerCpuCounter) and statistics structs
//!   ([`PerCpuStats`](crate::PerCpuStats), `#[def_percpu]` statistics): their sums read every possible
//!   CPU's part, so an offline CPU's counts stay counted. Nothing to fold.
//! - [`BatchedCounter`](crate::BatchedCounter): [`sum`](crate::BatchedCounter::sum) is exact for the
//!   same reason, but [`read`](crate::BatchedCounter::read) only sees the shared total: the part of
//!   an offline CPU that was not folded yet (less than the batch) would stay out of it for good.
//!   [`cpu_offline`] folds it into the total, as Linux's `percpu_counter_cpu_dead` does: afterwards
//!   that CPU adds nothing to `read()`'s error until it runs again. A CPU that comes back online
//!   needs no hook: its folded parts are 0.
//!
//! The registry is an intrusive doubly-linked list of the counters' shared parts (allocated by the
//! counter, so it takes no allocation of its own), guarded by a spin lock taken with local interrupts
//! and preemption disabled (`percpu::raw::LocalIrqsOff`, as the allocator's lock): a counter
//! links itself in when created and out when dropped. The hot paths (`add`, `read`) never touch it.

use alloc::boxed::Box;
use core::cell::UnsafeCell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicI64, Ordering};

use percpu::raw::LocalIrqsOff;
use spin::Mutex;

use crate::part;

/// The shared part of a batched counter: its total, and what the registry needs to fold an offline
/// CPU's part into it. Allocated on the heap so that its address is stable while the counter moves.
pub(crate) struct Node {
    /// The folded value: what `BatchedCounter::read` returns.
    pub(crate) total: AtomicI64,
    /// The VMA of the counter's per-CPU deltas.
    deltas: usize,
    /// The neighbours in the registry; only touched with [`REGISTRY`] locked.
    links: UnsafeCell<Links>,
}

// SAFETY: `total` is atomic, `deltas` immutable, and `links` only touched with the registry locked.
unsafe impl Sync for Node {}
// SAFETY: as above; the links are plain pointers into the registry, which any CPU may follow.
unsafe impl Send for Node {}

/// A node's neighbours in the registry (null at the ends).
struct Links {
    prev: *const Node,
    next: *const Node,
}

/// The first node of the registry (null when empty).
struct Head(*const Node);

// SAFETY: the nodes the head leads to are `Sync` and only linked or unlinked under the lock.
unsafe impl Send for Head {}

/// Every live batched counter's node.
static REGISTRY: Mutex<Head> = Mutex::new(Head(ptr::null()));

/// Runs `f` on the registry with the lock held and local interrupts and preemption disabled.
fn with_registry<R>(f: impl FnOnce(&mut Head) -> R) -> R {
    // SAFETY: a local of this function, dropped before it returns; no `IrqGuard` is created while it
    // lives (`f` only links and unlinks nodes, or folds parts).
    let _irq = unsafe { LocalIrqsOff::new() };
    f(&mut REGISTRY.lock())
}

impl Node {
    /// Allocates the node of a counter whose deltas are at VMA `deltas`, with `total` 0, and links it
    /// into the registry.
    pub(crate) fn register(deltas: usize) -> NonNull<Node> {
        let node = NonNull::from(Box::leak(Box::new(Node {
            total: AtomicI64::new(0),
            deltas,
            links: UnsafeCell::new(Links {
                prev: ptr::null(),
                next: ptr::null(),
            }),
        })));
        with_registry(|head| {
            // SAFETY: with the lock held, the links of every registered node (and of the new one,
            // which nothing else knows yet) are only touched here.
            unsafe {
                (*node.as_ref().links.get()).next = head.0;
                if let Some(first) = head.0.as_ref() {
                    (*first.links.get()).prev = node.as_ptr();
                }
            }
            head.0 = node.as_ptr();
        });
        node
    }

    /// Unlinks `node` from the registry and frees it.
    ///
    /// # Safety
    ///
    /// `node` came from [`register`](Self::register) and is not used after this call (nor
    /// unregistered twice).
    pub(crate) unsafe fn unregister(node: NonNull<Node>) {
        with_registry(|head| {
            // SAFETY: a registered node (the caller's contract); its neighbours are registered
            // nodes; all links are touched under the lock only.
            unsafe {
                let Links { prev, next } = *node.as_ref().links.get();
                match prev.as_ref() {
                    Some(prev) => (*prev.links.get()).next = next,
                    None => head.0 = next,
                }
                if let Some(next) = next.as_ref() {
                    (*next.links.get()).prev = prev;
                }
            }
        });
        // SAFETY: leaked by `register` and no longer reachable from the registry; the caller does not
        // use it any more.
        drop(unsafe { Box::from_raw(node.as_ptr()) });
    }
}

/// Folds CPU `cpu`'s part of every live [`BatchedCounter`](crate::BatchedCounter) into its total (see
/// the [module documentation](self)), so that [`read`](crate::BatchedCounter::read) includes what the
/// CPU counted; [`PerCpuCounter`](crate::PerCpuCounter) and statistics need nothing.
///
/// Where it may run: in task context or an interrupt handler, on a running CPU other than `cpu`
/// (Linux calls its counterpart from the CPU-dead notifier); not from a non-maskable interrupt. It
/// takes the registry's lock with local interrupts and preemption disabled for a time proportional
/// to the number of live batched counters (two atomic operations each), during which counters are
/// neither created nor dropped (in hosted mode, with the thread's signals blocked).
///
/// # Panics
///
/// If `cpu` is not below `percpu::cpu_count()`.
///
/// # Safety
///
/// CPU `cpu` does not run while this is called: it went offline (or never came online), and none of
/// its tasks or interrupt handlers is in the middle of a counter operation. (The fold writes the
/// CPU's parts from another CPU; x86_64's guard-less operations are single instructions without
/// `lock`, atomic against their own CPU's interrupts but not against such a write.) In hosted mode:
/// no live thread is registered as `cpu`.
pub unsafe fn cpu_offline(cpu: usize) {
    let count = percpu::cpu_count();
    assert!(
        cpu < count,
        "percpu_alloc: CPU id {cpu} is out of range: {count} CPUs"
    );
    with_registry(|head| {
        let mut node = head.0;
        // SAFETY: with the lock held, every node reachable from the head is registered, so alive
        // (a counter unregisters its node, under the lock, before freeing it and its deltas).
        while let Some(current) = unsafe { node.as_ref() } {
            // SAFETY: `current.deltas` is the VMA of the live counter's `i64` parts; CPU `cpu` does
            // not run (the caller's contract).
            let taken = unsafe { part::remote_take_at(current.deltas, cpu) };
            if taken != 0 {
                // Release: whoever sees the total see the adds it stands for (see `BatchedCounter`).
                current.total.fetch_add(taken, Ordering::Release);
            }
            // SAFETY: as above.
            node = unsafe { (*current.links.get()).next };
        }
    });
}
