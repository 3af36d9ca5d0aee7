//! Which allocator serves an object: none for a zero-sized type, this CPU's cache for a small one
//! (`crate::cache`), the core for the others (`crate::space`).

use core::alloc::Layout;

use crate::cache::{self, Class};
use crate::space::{self, Batch, Context, Request, PAGE_SIZE};
use crate::AllocError;

/// An offset for an object of `layout` in every CPU's unit.
#[inline(always)]
pub(crate) fn alloc(layout: Layout, context: Context) -> Result<usize, AllocError> {
    if layout.size() == 0 {
        return zero_sized(layout.align());
    }
    match Class::of(layout) {
        Some(class) => cache::alloc(class, context),
        None => {
            let mut batch = Batch::new();
            space::alloc(Request::one(layout), context, &mut batch)?;
            Ok(batch.first())
        }
    }
}

/// Frees the offset of an object of `layout` that [`alloc`] returned.
///
/// # Safety
///
/// `offset` came from `alloc(layout, _)`, every copy of the object is dead, and nothing else will use
/// or free it.
#[inline(always)]
pub(crate) unsafe fn free(offset: usize, layout: Layout) {
    if layout.size() == 0 {
        return;
    }
    match Class::of(layout) {
        // SAFETY: forwarded; the class of the layout is the class the offset came from.
        Some(class) => unsafe { cache::free(class, offset) },
        // SAFETY: forwarded.
        None => unsafe { space::free(offset) },
    }
}

/// The offset of a zero-sized object aligned to `align`: `align` itself, which is aligned and not null
/// in every CPU's area as long as `align` is at most [`max_align`](crate::max_align) (a page, or less
/// when the base or the stride of the areas is less aligned). Needs no memory, and no
/// [`init`](crate::init), but initialized areas, which it freezes (`percpu::freeze_areas`) as `init`
/// does: the object has a copy on every CPU of the count it was built with, which must stay the count
/// that its `Drop` and `iter_mut` see.
fn zero_sized(align: usize) -> Result<usize, AllocError> {
    if percpu::cpu_count() == 0 {
        return Err(AllocError::NotInitialized);
    }
    percpu::freeze_areas();
    let stride = percpu::percpu_area_stride();
    // `sp-naive` has no areas (stride 0, area base 0): any alignment up to a page serves.
    let areas = percpu::percpu_area_base(0) | stride;
    let max_align = if areas == 0 {
        PAGE_SIZE
    } else {
        PAGE_SIZE.min(1 << areas.trailing_zeros())
    };
    if align > max_align {
        return Err(AllocError::UnsupportedAlignment);
    }
    Ok(align)
}
