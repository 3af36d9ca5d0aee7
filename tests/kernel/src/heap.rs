//! The kernel heap: a buddy allocator over a static region of `.bss`, the
//! `#[global_allocator]`. It holds `percpu_alloc`'s metadata and, through
//! `percpu_alloc::GlobalAllocSource`, the further chunks of run-time per-CPU
//! memory.
//!
//! Its lock does not disable interrupts, so the timer interrupt handler never
//! calls it: the handler allocates and drops per-CPU objects only with
//! `percpu_alloc`'s atomic allocation and its frees, which never call the heap
//! (nor the chunk source; see [`crate::dynamic`]).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use buddy_system_allocator::LockedHeap;

/// Bytes of the heap, within every architecture's RAM (QEMU's `-m 1G`;
/// loongarch64's `virt` machine maps only its first 256 MiB low, where the
/// kernel runs) and x86_64's identity map next to the kernel image. A further
/// per-CPU chunk has a unit for every possible CPU (`MAX_CPUS`: 512, 256 on
/// loongarch64): 14 MiB with the 28 KiB units of `init-dynamic`, a 16 MiB
/// block of the buddy allocator; the run-time objects' phase holds several at
/// once, and spare ones for its interrupt handlers.
const SIZE: usize = if cfg!(target_arch = "loongarch64") {
    128 << 20
} else {
    256 << 20
};

/// The heap's memory (in `.bss`), page-aligned like the chunks it serves.
#[repr(C, align(4096))]
struct HeapMemory(UnsafeCell<[u8; SIZE]>);

// SAFETY: only the allocator touches the memory, under its lock, and hands
// out disjoint blocks of it.
unsafe impl Sync for HeapMemory {}

static MEMORY: HeapMemory = HeapMemory(UnsafeCell::new([0; SIZE]));

/// The allocator; empty until [`init`].
#[global_allocator]
static HEAP: LockedHeap<32> = LockedHeap::empty();

/// Set by the first [`init`].
static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// Gives [`MEMORY`] to the allocator. Called once, on the boot CPU, before
/// anything allocates.
pub fn init() {
    if INITIALIZED.swap(true, Ordering::AcqRel) {
        crate::fail(format_args!("the kernel heap was initialized twice"));
    }
    // SAFETY: the region is this kernel's own static, used by nothing else,
    // and given to the heap once (checked just above).
    unsafe { HEAP.lock().init(MEMORY.0.get() as usize, SIZE) };
}
