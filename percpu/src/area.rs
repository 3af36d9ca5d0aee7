//! The per-CPU areas: their layout, their initialization, and each CPU's per-CPU register.
//!
//! The areas sit at `base + cpu * stride`. The stride is the template size rounded up to the
//! template's alignment ([`percpu_area_align`]: the largest alignment of a per-CPU static, at least
//! [`PERCPU_AREA_ALIGN`], at most a page), plus an optional reserve for run-time allocated per-CPU
//! data ([`init_with_reserve`]; the stride is then a multiple of a page). The base of area 0, hence of
//! every area, is aligned as the stride.

use core::alloc::Layout;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::template::{template, template_vma};
use crate::{arch, InitError};

/// The least alignment of every per-CPU area (a cache line), and the least unit its size is rounded
/// to; a template holding a more aligned static raises both (see [`percpu_area_align`]).
pub const PERCPU_AREA_ALIGN: usize = 64;

/// The alignment of areas that carry a reserve for run-time allocations, and of their stride.
const PAGE_SIZE: usize = 4096;

/// The largest alignment a per-CPU static's type may have (checked at compile time): a page.
pub const PERCPU_MAX_ALIGN: usize = PAGE_SIZE;

/// The alignment of every per-CPU area and of their stride: the largest alignment of a per-CPU
/// static, at least [`PERCPU_AREA_ALIGN`] and at most [`PERCPU_MAX_ALIGN`]. The layout functions
/// ([`percpu_area_layout_expected`], ...) report it (or a page, with a reserve).
///
/// A kernel linked with a linker script written for percpu 0.4 (which does not define
/// `_percpu_align`) gets [`PERCPU_AREA_ALIGN`]: such a script reserves areas 64-byte aligned only.
pub fn percpu_area_align() -> usize {
    if cfg!(feature = "sp-naive") {
        return PERCPU_AREA_ALIGN;
    }
    template().align
}

/// Set while an initialization copies the template: readers of the layout wait.
static INITIALIZING: AtomicBool = AtomicBool::new(false);
/// Set for good by [`freeze_areas`]: the areas may not be initialized again.
static FROZEN: AtomicBool = AtomicBool::new(false);
/// The initialized areas: base of area 0, stride, and count (0 before initialization).
static AREA_BASE: AtomicUsize = AtomicUsize::new(0);
static AREA_STRIDE: AtomicUsize = AtomicUsize::new(0);
static CPU_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The size of the per-CPU data of one CPU: the size of the `.percpu` section's content.
pub fn percpu_area_size() -> usize {
    if cfg!(feature = "sp-naive") {
        return 0;
    }
    template().size
}

/// The stride of areas holding the template and `reserve` more bytes (`None` if it overflows).
fn stride_with_reserve(reserve: usize) -> Option<usize> {
    let align = percpu_area_align();
    let data = percpu_area_size().next_multiple_of(align).max(align);
    if reserve == 0 {
        Some(data)
    } else {
        data.checked_add(reserve)?
            .checked_next_multiple_of(PAGE_SIZE)
    }
}

/// The alignment that the base of areas with `reserve` extra bytes needs.
fn base_align(reserve: usize) -> usize {
    if reserve == 0 {
        percpu_area_align()
    } else {
        PAGE_SIZE
    }
}

/// The number of per-CPU areas that the linker script reserves in the image (`CPU_NUM` of `percpu.x`),
/// which [`init_in_place`] initializes. A hosted program linked without a script has one: the template.
pub fn percpu_area_num() -> usize {
    if cfg!(feature = "sp-naive") {
        return 1;
    }
    template().reserved.1 / stride_with_reserve(0).expect("a template fits the address space")
}

/// The memory layout that [`init`] needs for `cpu_count` areas.
///
/// # Panics
///
/// If the size overflows `isize`.
pub fn percpu_area_layout_expected(cpu_count: usize) -> Layout {
    percpu_area_layout_with_reserve(cpu_count, 0)
}

/// The memory layout that [`init_with_reserve`] needs for `cpu_count` areas with `reserve` extra bytes each.
///
/// # Panics
///
/// If the size overflows `isize`.
pub fn percpu_area_layout_with_reserve(cpu_count: usize, reserve: usize) -> Layout {
    let size = if cfg!(feature = "sp-naive") {
        0
    } else {
        stride_with_reserve(reserve)
            .and_then(|stride| stride.checked_mul(cpu_count))
            .expect("percpu: the per-CPU areas overflow the address space")
    };
    Layout::from_size_align(size, base_align(reserve))
        .expect("percpu: the per-CPU areas overflow the address space")
}

/// The distance between two consecutive initialized areas (0 before initialization).
pub fn percpu_area_stride() -> usize {
    wait_for_initialization();
    AREA_STRIDE.load(Ordering::Acquire)
}

/// The number of CPUs whose areas are initialized: valid CPU ids are below it (0 before initialization).
pub fn cpu_count() -> usize {
    if cfg!(feature = "sp-naive") {
        return 1;
    }
    wait_for_initialization();
    CPU_COUNT.load(Ordering::Acquire)
}

fn wait_for_initialization() {
    while INITIALIZING.load(Ordering::Acquire) {
        core::hint::spin_loop();
    }
}

/// The base address of CPU `cpu_id`'s area.
///
/// # Panics
///
/// If `cpu_id` is not below [`cpu_count()`] (in particular before initialization).
pub fn percpu_area_base(cpu_id: usize) -> usize {
    let count = cpu_count();
    assert!(
        cpu_id < count,
        "percpu: CPU id {cpu_id} is out of range: {count} per-CPU areas are initialized"
    );
    // SAFETY: checked just above.
    unsafe { area_base_unchecked(cpu_id) }
}

/// The base address of CPU `cpu_id`'s area, without the bounds check.
///
/// # Safety
///
/// `cpu_id` must be below [`cpu_count()`] (checked by `debug_assert!`).
#[inline]
pub(crate) unsafe fn area_base_unchecked(cpu_id: usize) -> usize {
    if cfg!(feature = "sp-naive") {
        return 0;
    }
    debug_assert!(
        cpu_id < CPU_COUNT.load(Ordering::Relaxed),
        "percpu: CPU id {cpu_id} is out of range"
    );
    AREA_BASE.load(Ordering::Relaxed) + cpu_id * AREA_STRIDE.load(Ordering::Relaxed)
}

/// Initializes the areas that the linker script reserves in the image: area 0 is the template itself,
/// the others receive a copy of it.
///
/// Returns the number of areas ([`percpu_area_num()`]), or `Ok(0)` if another CPU is initializing at
/// the same time. Calling it again re-initializes the areas of CPUs other than 0, as long as they are
/// not in use (else [`InitError::InUse`]).
pub fn init_in_place() -> Result<usize, InitError> {
    if cfg!(feature = "sp-naive") {
        return Ok(1);
    }
    let (base, _) = template().reserved;
    initialize(base as *mut u8, percpu_area_num(), 0, 1)
}

/// Initializes `cpu_count` areas at `base` with copies of the template. The memory must have the
/// layout [`percpu_area_layout_expected(cpu_count)`](percpu_area_layout_expected) and stay valid.
///
/// Returns `cpu_count`, or `Ok(0)` if another CPU is initializing at the same time. Calling it again
/// re-initializes all areas, as percpu 0.4 does, but only while they are not in use: once a CPU
/// registered ([`init_percpu_reg`](crate::init_percpu_reg)) and has not released its area, or once
/// [`freeze_areas`] was called (by `percpu_alloc`), it returns [`InitError::InUse`].
///
/// The memory is given as a raw pointer, as in `percpu` 0.4: it must be valid, used for nothing else,
/// and outlive every use of the areas (the crate's contract).
///
/// # Errors
///
/// A null `base`, one less aligned than [`percpu_area_align()`] (the alignment of
/// [`percpu_area_layout_expected`]), or a zero `cpu_count`.
pub fn init(base: *mut u8, cpu_count: usize) -> Result<usize, InitError> {
    init_with_reserve(base, cpu_count, 0)
}

/// As [`init`], with `reserve` more bytes after the template in every area, for run-time allocated
/// per-CPU data. The memory must have the layout
/// [`percpu_area_layout_with_reserve(cpu_count, reserve)`](percpu_area_layout_with_reserve), aligned to
/// a page when `reserve` is not 0. The reserve starts at offset
/// `percpu_area_size()` rounded up to [`PERCPU_AREA_ALIGN`] and ends at [`percpu_area_stride()`].
///
/// # Errors
///
/// A null or misaligned `base`, or a zero `cpu_count`.
pub fn init_with_reserve(
    base: *mut u8,
    cpu_count: usize,
    reserve: usize,
) -> Result<usize, InitError> {
    if cfg!(feature = "sp-naive") {
        return Ok(1);
    }
    initialize(base, cpu_count, reserve, 0)
}

/// Checks the arguments, then copies the template into areas `first_copy..cpu_count`.
fn initialize(
    base: *mut u8,
    cpu_count: usize,
    reserve: usize,
    first_copy: usize,
) -> Result<usize, InitError> {
    if base.is_null() {
        return Err(InitError::InvalidBase);
    }
    if !(base as usize).is_multiple_of(base_align(reserve)) {
        return Err(InitError::UnalignedBase);
    }
    let stride = stride_with_reserve(reserve).ok_or(InitError::InvalidCpuCount)?;
    let fits = cpu_count
        .checked_mul(stride)
        .and_then(|len| (base as usize).checked_add(len))
        .is_some();
    if cpu_count == 0 || !fits {
        return Err(InitError::InvalidCpuCount);
    }
    // `SeqCst` with `freeze_areas`: either this initialization sees the areas frozen, or the freezer
    // sees it under way and waits for it (a store-then-load on each side, as Dekker's algorithm).
    if INITIALIZING
        .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return Ok(0);
    }
    // Checked with the initialization flag held: a claim needs the layout, which waits for it.
    if FROZEN.load(Ordering::SeqCst) || crate::registration::any_claimed() {
        INITIALIZING.store(false, Ordering::Release);
        return Err(InitError::InUse);
    }

    let template = template();
    for cpu in 0..cpu_count {
        let area = base as usize + cpu * stride;
        // SAFETY: the documented contract of the public initialization functions (percpu 0.4's, which
        // take the memory as a raw pointer): `cpu_count` areas of `stride >= template.size` bytes at
        // `base`, valid and used by no CPU during initialization. The template is readable for `size`
        // bytes; `copy` tolerates an area that is the template itself.
        unsafe {
            if cpu >= first_copy {
                core::ptr::copy(
                    (template.image + template.skip) as *const u8,
                    (area + template.skip) as *mut u8,
                    template.size - template.skip,
                );
            }
            arch::prepare_area(area);
            crate::registration::prepare_area(area, cpu);
        }
    }
    AREA_BASE.store(base as usize, Ordering::Relaxed);
    AREA_STRIDE.store(stride, Ordering::Relaxed);
    // Published last: whoever reads the count with `Acquire` (`cpu_count()`) sees the layout and the
    // copied areas.
    CPU_COUNT.store(cpu_count, Ordering::Release);
    INITIALIZING.store(false, Ordering::Release);
    Ok(cpu_count)
}

/// The base of this CPU's area, as set by [`write_percpu_reg`] (0 in `sp-naive` mode).
pub fn read_percpu_reg() -> usize {
    arch::read_reg().wrapping_add(template_vma())
}

/// Points this CPU's per-CPU register at the area at `tp`.
///
/// # Safety
///
/// `tp` must be the base of an initialized area that no other CPU uses, and stay valid while the
/// register designates it: every per-CPU access of this CPU goes there.
pub unsafe fn write_percpu_reg(tp: usize) {
    // SAFETY: forwarded to the caller.
    unsafe { arch::write_reg(tp.wrapping_sub(template_vma())) }
}

/// [`freeze_areas`], then [`cpu_count`]: a count that stays true, for a CPU id checked against it
/// and then used.
pub(crate) fn frozen_cpu_count() -> usize {
    freeze_areas();
    cpu_count()
}

/// Declares the areas in use for good: from now on the initialization functions return
/// [`InitError::InUse`]. Users of the layout that outlive any one CPU's registration call it (the
/// `percpu_alloc` crate does when it is set up; the checked tier does on a remote access, whose
/// reference lives as long as the program).
///
/// On return, the layout (`cpu_count()`, the area bases) is final: an initialization under way when
/// it was called has finished. Readers of the layout whose results outlive the read (a reference to
/// a remote copy, a CPU id checked against the count and then used) call it first.
pub fn freeze_areas() {
    if !FROZEN.load(Ordering::SeqCst) {
        FROZEN.store(true, Ordering::SeqCst);
    }
    // An initialization that took its flag before the store above may still copy; one that takes it
    // after sees the areas frozen.
    while INITIALIZING.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
}
