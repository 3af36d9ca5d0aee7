//! The dynamic part of the per-CPU offset space: the allocator core, the further chunks obtained from
//! the [`ChunkSource`], and the lock that guards them (the slow path; see `crate::cache` for the fast
//! one).
//!
//! Every per-CPU area is `[static template | dynamic reserve]`, the areas `unit` bytes apart. The
//! reserve is the first chunk. A further chunk is `cpu_count × unit` bytes from the source: CPU `i`'s
//! copy of an object at `offset` in it is at `chunk + i × unit + offset_in_chunk`, which is
//! `area_base(i) + (chunk − area_base(0) + offset_in_chunk)`: one offset for every CPU, computed with
//! wrapping arithmetic, reached through the per-CPU register like a static.
//!
//! # The lock
//!
//! The core is guarded by a spin lock, taken with local interrupts and preemption disabled. Nothing
//! under it calls the heap or the chunk source, or waits for anything: every critical section is a
//! bounded computation on the core's metadata. Growing takes three steps: under the lock, find that a
//! chunk is needed and what metadata it takes; without the lock, obtain the chunk from the source and
//! its metadata from the heap (fallibly); under the lock again, allocate if another CPU added room
//! meanwhile (the new chunk then becomes a spare or goes back), else add the chunk and allocate.
//! One CPU at a time obtains a chunk (it holds the [`GrowTicket`]): the others that find the space full
//! wait, without the lock, until its chunk is added, then retry. Without that, CPUs that all found the
//! space full would each ask the source for a chunk of a unit per possible CPU at once (hundreds of
//! CPUs, hundreds of chunks) and exhaust it, where one chunk serves them all. The wait is bounded
//! ([`GROWER_PATIENCE`]): a source may itself allocate per-CPU objects, and such a nested allocation
//! would otherwise wait for its own caller; past the bound, a CPU obtains a chunk without the ticket.
//! Releasing a free chunk likewise unlinks it under the lock and hands it back to the source, and its
//! metadata to the heap, after unlocking, in task context only.
//!
//! Task context waits for the lock as long as it takes. An atomic allocation and a free make at most
//! [`BOUNDED_ATTEMPTS`] attempts at it (the lock is not fair, so a bound on attempts is what bounds
//! their wait): then the allocation reports [`AllocError::WouldBlock`] and the free is deferred
//! (`crate::deferred`) to the next holder of the lock.
//!
//! While a CPU holds (or waits for) the lock, its `Space` flag is set (`crate::cpu`): code that
//! interrupted it on that CPU, which could never get the lock, does not try (an allocation reports
//! [`AllocError::WouldBlock`], a free is deferred). In a kernel that is only a non-maskable interrupt,
//! since the lock holder has interrupts disabled; in a hosted program, a signal handler.

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use percpu::raw::LocalIrqsOff;
use spin::mutex::{SpinMutex, SpinMutexGuard};

use crate::cpu::{Claim, Flag};
use crate::offset_alloc::{self, AddChunkError, ChunkMetadata, OffsetAllocator, Retired};
use crate::{deferred, AllocError, ChunkSource, InitError};

/// The page size: the largest alignment served, and the alignment of chunks.
pub(crate) const PAGE_SIZE: usize = offset_alloc::MAX_ALIGN;

/// The unit in `sp-naive` mode, where there are no areas: every chunk is one unit of this size.
const NAIVE_UNIT: usize = 64 * 1024;

/// Attempts at the lock before an operation that must not wait longer gives up
/// (an atomic allocation reports [`AllocError::WouldBlock`], a free is deferred).
const BOUNDED_ATTEMPTS: usize = 1 << 10;

/// The spare chunks kept until [`refill`] says otherwise.
const DEFAULT_SPARE_CHUNKS: usize = 1;

/// The system's dynamic per-CPU space, once [`init`] has run.
static SPACE: SpinMutex<Option<Space>> = SpinMutex::new(None);

/// Polls of the [`GrowTicket`] by a CPU that waits for it before it obtains a chunk without it.
const GROWER_PATIENCE: usize = 1 << 22;

/// Whether a CPU holds the [`GrowTicket`].
static GROWING: AtomicBool = AtomicBool::new(false);

/// The right to obtain a further chunk from the source: taken under the lock when the space is full,
/// held without the lock while the chunk and its metadata are obtained, given back (dropped, also when
/// obtaining fails or unwinds) once the chunk was added or given back to the source.
struct GrowTicket;

impl GrowTicket {
    /// The ticket, unless another CPU holds it. Called with the lock held, so that one CPU takes it.
    fn take(_locked: &Space) -> Option<Self> {
        // Not `then_some(GrowTicket)`: its argument, built eagerly, would be dropped when another CPU
        // holds the ticket, and give that CPU's ticket back.
        (!GROWING.swap(true, Ordering::Acquire)).then(|| GrowTicket)
    }
}

impl Drop for GrowTicket {
    fn drop(&mut self) {
        GROWING.store(false, Ordering::Release);
    }
}

/// Whether [`needs_refill`] says so: kept up to date by every holder of the lock.
static NEEDS_REFILL: AtomicBool = AtomicBool::new(false);

/// Whether more further chunks are entirely free than the spare ones: kept up to date by every holder
/// of the lock, for task-context allocations to [`reclaim`] them.
static SURPLUS: AtomicBool = AtomicBool::new(false);

struct Space {
    offsets: OffsetAllocator,
    source: &'static dyn ChunkSource,
    /// `cpu_count × unit`, page-aligned.
    chunk_layout: Layout,
    /// The base of CPU 0's area (0 in `sp-naive` mode).
    area0: usize,
    /// The largest alignment every CPU's copy gets: a page, or less when the stride is less aligned.
    max_align: usize,
    /// Entirely free further chunks to keep (see [`refill`]).
    spare_chunks: usize,
    /// An atomic allocation found no room since the last [`refill`].
    atomic_failed: bool,
}

/// Where an allocation comes from: what it may wait for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Context {
    /// Task context: may obtain chunks from the source and metadata from the heap.
    Task,
    /// Atomic context (an interrupt handler, code that must not sleep): only chunks already obtained.
    Atomic,
}

/// Sets up dynamic per-CPU allocation on the initialized per-CPU areas, with `source` for further
/// chunks. The dynamic reserve of the areas (see `percpu::init_with_reserve`) is the first chunk.
///
/// Areas initialized without a reserve (`percpu::init`, or `init_in_place` with the linker snippet)
/// work too: their stride (the template size rounded up to 64 bytes) is then the unit, so objects are
/// limited to that size and to the stride's alignment, and all of them live in further chunks.
///
/// # Errors
///
/// The areas are not initialized or area 0 is not page-aligned, the heap has no memory for the
/// allocator's metadata, or `init` was already called.
pub fn init(source: &'static dyn ChunkSource) -> Result<(), InitError> {
    let cpu_count = percpu::cpu_count();
    if cpu_count == 0 {
        return Err(InitError::AreasNotInitialized);
    }
    let stride = percpu::percpu_area_stride();
    let (area0, unit, first_chunk) = if stride == 0 {
        // `sp-naive`: no areas, so no first chunk; every object lives in a further chunk.
        (0, NAIVE_UNIT, 0..0)
    } else {
        let area0 = percpu::percpu_area_base(0);
        if !area0.is_multiple_of(PAGE_SIZE) {
            return Err(InitError::AreasNotPageAligned);
        }
        let static_end = percpu::percpu_area_size().next_multiple_of(percpu::PERCPU_AREA_ALIGN);
        (area0, stride, static_end.min(stride)..stride)
    };
    let offsets =
        OffsetAllocator::new(unit, first_chunk.start, first_chunk.len()).map_err(|error| {
            match error {
                offset_alloc::ConfigError::OutOfMemory => InitError::OutOfMemory,
                _ => InitError::AreasNotPageAligned,
            }
        })?;
    // CPU `i`'s copy is at `area0 + i × unit + offset`: aligned as far as the unit is.
    let max_align = PAGE_SIZE.min(1 << unit.trailing_zeros());
    let chunk_layout = cpu_count
        .checked_mul(unit)
        .and_then(|size| Layout::from_size_align(size, PAGE_SIZE).ok())
        .ok_or(InitError::AreasNotPageAligned)?;

    let mut space =
        Locked::new_uninit(Wait::Unbounded).map_err(|_| InitError::AlreadyInitialized)?;
    if space.guard.is_some() {
        return Err(InitError::AlreadyInitialized);
    }
    let space = space.guard.insert(Space {
        offsets,
        source,
        chunk_layout,
        area0,
        max_align,
        spare_chunks: DEFAULT_SPARE_CHUNKS,
        atomic_failed: false,
    });
    space.publish();
    // Objects live in the areas from now on: they may not be initialized again.
    percpu::freeze_areas();
    Ok(())
}

/// How long taking the lock may wait.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Until the lock is free: task context.
    Unbounded,
    /// [`BOUNDED_ATTEMPTS`] attempts at most: atomic allocations and frees.
    Bounded,
}

/// The core, locked: the lock is held with interrupts and preemption disabled
/// and, on a registered CPU, this CPU's `Space` flag set. Dropping it unlocks;
/// the fields drop in this order.
struct Locked {
    guard: SpinMutexGuard<'static, Option<Space>>,
    _flag: Option<Claim>,
    _irq: LocalIrqsOff,
}

impl Locked {
    /// Locks the core, initialized or not.
    ///
    /// # Errors
    ///
    /// [`AllocError::WouldBlock`] if this CPU holds the lock or waits for it
    /// (this call interrupted that code: it could never get the lock), or if
    /// `wait` is [`Wait::Bounded`] and other CPUs held the lock throughout.
    #[inline]
    fn new_uninit(wait: Wait) -> Result<Self, AllocError> {
        // SAFETY: a local of this function, moved into the `Locked` it returns, which the allocator
        // keeps in one function's scope and drops before any earlier guard; no `IrqGuard` is created
        // while it lives.
        let irq = unsafe { LocalIrqsOff::new() };
        // With interrupts and preemption off, nothing migrates this code until the claim is dropped.
        // A CPU (hosted: thread) that did not register has no flags of its own, and no interrupt
        // handler of its own that takes the lock (a kernel registers its CPUs before it allocates).
        let flag = match percpu::registered_cpu() {
            Some(_) => Some(Claim::try_new(Flag::Space).ok_or(AllocError::WouldBlock)?),
            None => None,
        };
        let guard = match SPACE.try_lock() {
            Some(guard) => guard,
            None => Self::wait(wait)?,
        };
        Ok(Self {
            guard,
            _flag: flag,
            _irq: irq,
        })
    }

    /// Takes the lock that another CPU holds, waiting as `wait` allows.
    #[cold]
    fn wait(wait: Wait) -> Result<SpinMutexGuard<'static, Option<Space>>, AllocError> {
        match wait {
            Wait::Unbounded => Ok(SPACE.lock()),
            Wait::Bounded => (1..BOUNDED_ATTEMPTS)
                .find_map(|_| {
                    core::hint::spin_loop();
                    SPACE.try_lock()
                })
                .ok_or(AllocError::WouldBlock),
        }
    }

    /// Locks the initialized core, after doing the frees deferred so far.
    ///
    /// # Errors
    ///
    /// [`AllocError::NotInitialized`], or as [`Locked::new_uninit`].
    #[inline]
    fn new(wait: Wait) -> Result<Self, AllocError> {
        let mut locked = Self::new_uninit(wait)?;
        let space = locked.guard.as_mut().ok_or(AllocError::NotInitialized)?;
        for offset in deferred::take_all() {
            space.free(offset);
        }
        Ok(locked)
    }

    fn space(&mut self) -> &mut Space {
        // `Locked::new` checked it; `init` never puts `None` back.
        self.guard
            .as_mut()
            .expect("percpu_alloc: the space is initialized")
    }
}

/// Sets `flag` to `value`, writing only if it changes (the flags are read far more often).
fn update(flag: &AtomicBool, value: bool) {
    if flag.load(Ordering::Relaxed) != value {
        flag.store(value, Ordering::Relaxed);
    }
}

/// The largest object the space serves: one unit (0 before [`init`]).
pub fn max_size() -> usize {
    Locked::new(Wait::Unbounded).map_or(0, |mut space| space.space().offsets.unit())
}

/// The largest alignment the space serves: a page, or the alignment of the areas' stride if less
/// (0 before [`init`]).
pub fn max_align() -> usize {
    Locked::new(Wait::Unbounded).map_or(0, |mut space| space.space().max_align)
}

/// The most objects one request gets.
pub(crate) const MAX_BATCH: usize = 16;

/// What one allocation from the core asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Request {
    /// The size of each object (not 0).
    pub(crate) size: usize,
    /// The alignment of each object.
    pub(crate) align: usize,
    /// Objects wanted (1 to [`MAX_BATCH`]): at least one is allocated.
    pub(crate) count: usize,
    /// The alignment of the first object where they go side by side (see
    /// `OffsetAllocator::alloc_batch`).
    pub(crate) run_align: usize,
}

impl Request {
    /// One object of `layout`.
    pub(crate) fn one(layout: Layout) -> Self {
        Self {
            size: layout.size(),
            align: layout.align(),
            count: 1,
            run_align: layout.align(),
        }
    }
}

/// The offsets of the objects a [`Request`] got (filled in place: it is large).
pub(crate) struct Batch {
    offsets: [usize; MAX_BATCH],
    len: usize,
}

impl Batch {
    /// No objects yet.
    pub(crate) fn new() -> Self {
        Self {
            offsets: [0; MAX_BATCH],
            len: 0,
        }
    }

    /// The first object's offset.
    pub(crate) fn first(&self) -> usize {
        self.offsets[0]
    }

    /// The offsets of the objects after the first.
    pub(crate) fn rest(&self) -> &[usize] {
        &self.offsets[1..self.len]
    }
}

/// Allocates up to `request.count` objects (at least one; see `OffsetAllocator::alloc_batch`) into
/// `batch`.
///
/// In [`Context::Atomic`], as [`alloc_present`]. In [`Context::Task`], obtains further chunks as
/// needed, without holding the lock; the caller must not be pinned to its CPU (the source may sleep).
pub(crate) fn alloc(
    request: Request,
    context: Context,
    batch: &mut Batch,
) -> Result<(), AllocError> {
    if context == Context::Atomic {
        return match alloc_present(request, context, batch)? {
            true => Ok(()),
            false => Err(AllocError::WouldBlock),
        };
    }
    // A chunk obtained without the lock, waiting to be added, and the right to obtain it.
    let mut obtained: Option<NewChunk> = None;
    let mut growth = Growth::default();
    loop {
        let mut locked = Locked::new(Wait::Unbounded).map_err(|e| give_back(obtained.take(), e))?;
        let space = locked.space();
        let allocated = match space.alloc(request, batch) {
            Ok(allocated) => allocated,
            Err(e) => {
                drop(locked);
                return Err(give_back(obtained, e));
            }
        };
        let step = match (allocated, obtained.take()) {
            (true, new) => {
                // Another CPU grew the space meanwhile: keep the chunk as a spare if one is missing.
                let unused = new.map(|new| space.keep_as_spare(new));
                drop(locked);
                release(unused);
                reclaim_surplus(context);
                return Ok(());
            }
            (false, Some(new)) => space.add(new),
            (false, None) => space.grow(&mut growth),
        };
        obtained = growth.finish(step, locked)?;
    }
}

/// [`alloc`] from the chunks already obtained, never calling the heap or the source; `false` if they
/// have no room. In [`Context::Atomic`], no room is [`AllocError::WouldBlock`] (and
/// [`needs_refill`] then says so).
pub(crate) fn alloc_present(
    request: Request,
    context: Context,
    batch: &mut Batch,
) -> Result<bool, AllocError> {
    let wait = match context {
        Context::Task => Wait::Unbounded,
        Context::Atomic => Wait::Bounded,
    };
    let mut locked = Locked::new(wait)?;
    let space = locked.space();
    let allocated = space.alloc(request, batch)?;
    if !allocated && context == Context::Atomic {
        space.atomic_failed = true;
        space.publish();
        return Err(AllocError::WouldBlock);
    }
    Ok(allocated)
}

/// In task context, returns the surplus free chunks to the source if there are any (a relaxed load
/// otherwise). The caller must not be pinned to its CPU.
pub(crate) fn reclaim_surplus(context: Context) {
    if context == Context::Task && SURPLUS.load(Ordering::Relaxed) {
        reclaim();
    }
}

/// Frees the reservation at `offset`. Never calls the heap or the source (a further chunk that becomes
/// free stays until a task-context allocation, [`reclaim`] or [`refill`] returns it), so it may run in
/// interrupt context; if it interrupted this CPU's use of the lock, the free is deferred.
///
/// # Safety
///
/// `offset` is a live reservation of the core whose copies are all dead (dropped or never built), and
/// nothing else will use or free it.
pub(crate) unsafe fn free(offset: usize) {
    // SAFETY: forwarded.
    unsafe { free_all([offset]) }
}

/// [`free`] for every offset of `offsets`, under one lock.
///
/// # Safety
///
/// As [`free`], for each.
pub(crate) unsafe fn free_all(offsets: impl IntoIterator<Item = usize>) {
    match Locked::new(Wait::Bounded) {
        Ok(mut locked) => {
            let space = locked.space();
            for offset in offsets {
                space.free(offset);
            }
        }
        Err(AllocError::WouldBlock) => {
            for offset in offsets {
                // SAFETY: forwarded from the caller.
                unsafe { deferred::push(offset) };
            }
        }
        Err(error) => panic!("percpu_alloc: freeing an offset of no space: {error}"),
    }
}

/// Keeps `spare_chunks` entirely free further chunks ready for allocations in atomic context, from now
/// on: obtains chunks from the source until there are that many, and returns to the source, now and
/// later, the free chunks beyond that number (one is kept until the first call). Task context only:
/// it calls the source and the heap (never with the lock held).
///
/// With one spare chunk left, an atomic allocation of any object up to [`max_size`] succeeds. Call it
/// at boot once [`init`] ran, then whenever [`needs_refill`] says so (from a periodic task, or after an
/// atomic allocation failed with [`AllocError::WouldBlock`]); see the crate documentation for how
/// many to keep.
///
/// # Errors
///
/// [`AllocError::NotInitialized`], [`AllocError::SourceExhausted`] (the source or the heap had no
/// memory; the chunks obtained so far stay), or [`AllocError::WouldBlock`] if called from code that
/// interrupted this CPU's use of the allocator's lock.
pub fn refill(spare_chunks: usize) -> Result<(), AllocError> {
    let mut obtained: Option<NewChunk> = None;
    let mut growth = Growth::default();
    loop {
        let mut locked = Locked::new(Wait::Unbounded).map_err(|e| give_back(obtained.take(), e))?;
        let space = locked.space();
        space.spare_chunks = spare_chunks;
        space.atomic_failed = false;
        space.publish();
        let step = match obtained.take() {
            Some(new) => space.add(new),
            None if space.offsets.free_chunks() >= spare_chunks => break,
            None => space.grow(&mut growth),
        };
        obtained = growth.finish(step, locked)?;
    }
    reclaim();
    Ok(())
}

/// Returns to the source the entirely free further chunks beyond the spare ones (one, or the number
/// given to [`refill`]), and returns how many it released. Task context only (it calls the source and
/// the heap, never with the lock held). Task-context allocations that reach the core (not those served
/// by a CPU's cache) call it too when there are such chunks; frees never do, so that they may run in
/// interrupt context.
pub fn reclaim() -> usize {
    let mut released = 0;
    loop {
        let Ok(mut locked) = Locked::new(Wait::Unbounded) else {
            return released;
        };
        let surplus = locked.space().take_surplus_chunk();
        drop(locked);
        if surplus.is_none() {
            return released;
        }
        release(surplus);
        released += 1;
    }
}

/// Whether [`refill`] should run: an atomic allocation found no room since the last refill, or fewer
/// entirely free further chunks are left than the refill asked for. A relaxed load, for a periodic
/// task or an interrupt handler to check.
pub fn needs_refill() -> bool {
    NEEDS_REFILL.load(Ordering::Relaxed)
}

/// Usage figures of the space (per CPU). Offsets held by the per-CPU caches count as live allocations
/// (see `drain_cache`).
///
/// # Errors
///
/// [`AllocError::NotInitialized`], or [`AllocError::WouldBlock`] if called from code that interrupted
/// this CPU's use of the allocator's lock.
pub fn stats() -> Result<offset_alloc::Stats, AllocError> {
    Locked::new(Wait::Unbounded).map(|mut space| space.space().offsets.stats())
}

/// A further chunk obtained from the source, with its metadata, not yet added.
struct NewChunk {
    memory: NonNull<u8>,
    metadata: ChunkMetadata,
    source: &'static dyn ChunkSource,
    layout: Layout,
}

/// Gives a chunk obtained for an operation that fails with `error` back to the source (without the
/// lock), and returns `error`.
fn give_back(new: Option<NewChunk>, error: AllocError) -> AllocError {
    if let Some(new) = new {
        drop(new.metadata);
        // SAFETY: obtained from the source with this layout, never used.
        unsafe { new.source.free_chunk(new.memory, new.layout) };
    }
    error
}

/// What to do, without the lock, before the next attempt.
enum Step {
    /// Obtain a chunk and its metadata.
    Obtain(GrowPlan),
    /// Drop what the core gave back (the chunk was added), then try again.
    Retry(Retired),
    /// Obtain newer metadata for this chunk (chunks were added meanwhile).
    Remeta(NewChunk, GrowPlan),
    /// Give back a chunk the core refused (the source broke its contract).
    Refused(Released),
    /// Another CPU is obtaining a chunk: wait for it (without the lock, see [`wait_for_grower`]),
    /// then try again.
    Wait,
}

/// An allocation's or a refill's part in growing: the [`GrowTicket`] while it obtains a chunk, and
/// whether it already waited [`GROWER_PATIENCE`] for another holder.
#[derive(Default)]
struct Growth {
    ticket: Option<GrowTicket>,
    waited_out: bool,
}

impl Growth {
    /// Ends an attempt: keeps the ticket only for a step that obtains a chunk, unlocks, then waits
    /// for the holder of the ticket or does the step; returns the chunk to add at the next attempt.
    fn finish(&mut self, step: Step, locked: Locked) -> Result<Option<NewChunk>, AllocError> {
        if !step.obtains() {
            self.ticket = None;
        }
        drop(locked);
        if let Step::Wait = step {
            self.waited_out = !wait_for_grower();
            return Ok(None);
        }
        step.run()
    }
}

/// Waits until no CPU holds the [`GrowTicket`]; `false` if one still does after [`GROWER_PATIENCE`]
/// polls. Task context, which may sleep, is never pinned to its CPU, so the holder makes progress.
fn wait_for_grower() -> bool {
    for _ in 0..GROWER_PATIENCE {
        if !GROWING.load(Ordering::Relaxed) {
            return true;
        }
        core::hint::spin_loop();
    }
    false
}

/// What growing needs, copied out of the locked space.
struct GrowPlan {
    source: &'static dyn ChunkSource,
    layout: Layout,
    request: offset_alloc::MetadataRequest,
}

impl Step {
    /// Whether the step obtains a chunk (so that its [`GrowTicket`] stays taken).
    fn obtains(&self) -> bool {
        matches!(self, Self::Obtain(_) | Self::Remeta(..))
    }

    /// Does the step (without the lock); returns the chunk to add at the next attempt, if any.
    fn run(self) -> Result<Option<NewChunk>, AllocError> {
        match self {
            Self::Obtain(plan) => {
                let memory = plan
                    .source
                    .alloc_chunk(plan.layout)
                    .ok_or(AllocError::SourceExhausted)?;
                plan.with_metadata(memory).map(Some)
            }
            Self::Retry(retired) => {
                drop(retired);
                Ok(None)
            }
            Self::Remeta(new, plan) => {
                drop(new.metadata);
                plan.with_metadata(new.memory).map(Some)
            }
            Self::Refused(released) => {
                release(Some(released));
                Err(AllocError::SourceExhausted)
            }
            // Done by `Growth::finish`.
            Self::Wait => Ok(None),
        }
    }
}

impl GrowPlan {
    /// `memory` from the source with metadata from the heap, or `memory` given back to the source.
    fn with_metadata(self, memory: NonNull<u8>) -> Result<NewChunk, AllocError> {
        match self.request.allocate() {
            Ok(metadata) => Ok(NewChunk {
                memory,
                metadata,
                source: self.source,
                layout: self.layout,
            }),
            Err(_) => {
                // SAFETY: obtained from the source with this layout, never used.
                unsafe { self.source.free_chunk(memory, self.layout) };
                Err(AllocError::SourceExhausted)
            }
        }
    }
}

/// Metadata the core no longer uses and maybe a chunk taken out of it (or never added), to be returned
/// to the heap and the source after unlocking.
struct Released {
    memory: Option<NonNull<u8>>,
    retired: Retired,
    source: &'static dyn ChunkSource,
    layout: Layout,
}

/// Returns metadata to the heap and a chunk to the source. Never with the lock held.
fn release(released: Option<Released>) {
    if let Some(released) = released {
        drop(released.retired);
        if let Some(memory) = released.memory {
            // SAFETY: the chunk came from the source with this layout and holds no live object (the
            // core took it out as entirely free, or never used it).
            unsafe { released.source.free_chunk(memory, released.layout) };
        }
    }
}

impl Space {
    /// Allocates `request` into `batch` if some chunk has room for one object at least; `false` if
    /// none has.
    fn alloc(&mut self, request: Request, batch: &mut Batch) -> Result<bool, AllocError> {
        if request.align.max(request.run_align) > self.max_align {
            return Err(AllocError::UnsupportedAlignment);
        }
        let out = &mut batch.offsets[..request.count.clamp(1, MAX_BATCH)];
        let free_chunks = self.offsets.free_chunks();
        match (self.offsets).alloc_batch(request.size, request.align, request.run_align, out) {
            Ok(len) => {
                batch.len = len;
                if self.offsets.free_chunks() != free_chunks {
                    self.publish();
                }
                Ok(true)
            }
            Err(offset_alloc::AllocError::NeedChunk) => Ok(false),
            Err(error) => Err(core_error(error)),
        }
    }

    /// Frees `offset` in the core.
    fn free(&mut self, offset: usize) {
        let free_chunks = self.offsets.free_chunks();
        self.offsets
            .free(offset)
            .expect("percpu_alloc: freeing an unknown offset");
        if self.offsets.free_chunks() != free_chunks {
            self.publish();
        }
    }

    /// Makes [`needs_refill`] and [`SURPLUS`] tell the truth after a change of the number of free
    /// chunks, of the spare chunks wanted, or of the atomic allocations' success.
    fn publish(&self) {
        let free_chunks = self.offsets.free_chunks();
        update(
            &NEEDS_REFILL,
            self.atomic_failed || free_chunks < self.spare_chunks,
        );
        update(&SURPLUS, free_chunks > self.spare_chunks);
    }

    /// The step when the space is full: obtain a chunk with the [`GrowTicket`] (put into `growth`),
    /// or wait for the CPU that holds it, or obtain one without the ticket if `growth` waited out its
    /// holder already.
    fn grow(&self, growth: &mut Growth) -> Step {
        match GrowTicket::take(self) {
            Some(taken) => {
                growth.ticket = Some(taken);
                Step::Obtain(self.grow_plan())
            }
            None if growth.waited_out => Step::Obtain(self.grow_plan()),
            None => Step::Wait,
        }
    }

    /// What obtaining a further chunk takes.
    fn grow_plan(&self) -> GrowPlan {
        GrowPlan {
            source: self.source,
            layout: self.chunk_layout,
            request: self.offsets.metadata_request(),
        }
    }

    /// The offset of `memory`, a chunk from the source, in every area.
    fn offset_of(&self, memory: NonNull<u8>) -> usize {
        (memory.as_ptr() as usize).wrapping_sub(self.area0)
    }

    /// Adds the obtained chunk to the core.
    fn add(&mut self, new: NewChunk) -> Step {
        let offset = self.offset_of(new.memory);
        match self.offsets.add_chunk_with(offset, new.metadata) {
            Ok(retired) => {
                self.publish();
                Step::Retry(retired)
            }
            Err((AddChunkError::StaleMetadata, metadata)) => {
                Step::Remeta(NewChunk { metadata, ..new }, self.grow_plan())
            }
            Err((_, metadata)) => {
                // Only a source that breaks its contract (memory not page-aligned, or overlapping the
                // areas or another chunk) gets here.
                debug_assert!(
                    false,
                    "percpu_alloc: the chunk source returned unusable memory"
                );
                Step::Refused(self.released(Some(new.memory), Retired::from(metadata)))
            }
        }
    }

    /// Adds a chunk obtained for an allocation that found room without it, if fewer spare chunks than
    /// wanted are left; else gives it back. What to hand back after unlocking.
    fn keep_as_spare(&mut self, new: NewChunk) -> Released {
        let unused = if self.offsets.free_chunks() < self.spare_chunks {
            match self
                .offsets
                .add_chunk_with(self.offset_of(new.memory), new.metadata)
            {
                Ok(retired) => {
                    self.publish();
                    return self.released(None, retired);
                }
                Err((_, metadata)) => metadata,
            }
        } else {
            new.metadata
        };
        self.released(Some(new.memory), Retired::from(unused))
    }

    /// `retired` metadata and, if any, a chunk's `memory`, to hand back after unlocking.
    fn released(&self, memory: Option<NonNull<u8>>, retired: Retired) -> Released {
        Released {
            memory,
            retired,
            source: self.source,
            layout: self.chunk_layout,
        }
    }

    /// Takes out one entirely free further chunk beyond the spare ones, to be released after
    /// unlocking.
    fn take_surplus_chunk(&mut self) -> Option<Released> {
        let (offset, retired) = self.offsets.take_free_chunk(self.spare_chunks)?;
        self.publish();
        let memory = NonNull::new(self.area0.wrapping_add(offset) as *mut u8);
        debug_assert!(memory.is_some(), "percpu_alloc: a chunk at address 0");
        Some(self.released(memory, retired))
    }
}

/// The error of this crate for an error of the core (other than `NeedChunk`).
fn core_error(error: offset_alloc::AllocError) -> AllocError {
    match error {
        offset_alloc::AllocError::TooLarge => AllocError::TooLarge,
        offset_alloc::AllocError::BadAlign => AllocError::UnsupportedAlignment,
        offset_alloc::AllocError::ZeroSize | offset_alloc::AllocError::NeedChunk => {
            unreachable!("percpu_alloc: zero-sized objects take no per-CPU memory")
        }
    }
}
