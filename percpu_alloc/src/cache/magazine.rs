//! The size classes and one CPU's stacks of free offsets ("magazines"), one per class: plain data,
//! tested under Miri. `super` puts one set in every CPU's area and decides when to use it.

use core::alloc::Layout;

use crate::offset_alloc::GRANULE;
use crate::space::Request;

/// The largest object cached: sizes up to this (rounded up to 8 bytes) have a class each.
pub const MAX_CACHED_SIZE: usize = 128;

/// The bound of every cache: bytes of free offsets one CPU's cache may hold per size class (`n` offsets
/// of `s` bytes hold `n × s`). A free that finds its class full first gives back half of it.
pub const CACHE_BYTES_PER_CLASS: usize = 256;

/// The alignment of the first object of a refill: a cache line, so that no two CPUs' refills share one.
pub(crate) const RUN_ALIGN: usize = 64;

/// The number of classes: one per granule count up to [`MAX_CACHED_SIZE`].
pub(crate) const CLASSES: usize = MAX_CACHED_SIZE / GRANULE;

/// Offsets a class's magazine holds at most.
const fn capacity(index: usize) -> usize {
    let size = (index + 1) * GRANULE;
    let fit = CACHE_BYTES_PER_CLASS / size;
    if fit < 2 {
        2
    } else {
        fit
    }
}

/// Where each class's slots start in [`Magazines::slots`]; the last entry is the total.
const STARTS: [usize; CLASSES + 1] = {
    let mut starts = [0; CLASSES + 1];
    let mut index = 0;
    while index < CLASSES {
        starts[index + 1] = starts[index] + capacity(index);
        index += 1;
    }
    starts
};

/// A size class: objects of `size()` bytes (their size rounded up to 8), aligned to `align()`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Class(usize);

impl Class {
    /// The class serving `layout`, if it is small enough and at most [`RUN_ALIGN`]-aligned (not
    /// zero-sized). Every offset of the class is aligned to [`Class::align`], which every such layout
    /// of that size needs at most: a type's size is a multiple of its alignment, so an alignment of 8
    /// or more divides the class size, and any offset is 8-aligned.
    #[inline]
    pub(crate) const fn of(layout: Layout) -> Option<Self> {
        let size = layout.size();
        if size == 0 || size > MAX_CACHED_SIZE || layout.align() > RUN_ALIGN {
            None
        } else {
            Some(Self(size.div_ceil(GRANULE) - 1))
        }
    }

    /// The size of the class's objects (a multiple of 8).
    pub(crate) const fn size(self) -> usize {
        (self.0 + 1) * GRANULE
    }

    /// The alignment of every offset of the class: the largest power of two dividing the size, at
    /// most [`RUN_ALIGN`] (objects of a refill follow the first, which is [`RUN_ALIGN`]-aligned, at
    /// multiples of the size).
    pub(crate) const fn align(self) -> usize {
        let align = 1 << self.size().trailing_zeros();
        if align > RUN_ALIGN {
            RUN_ALIGN
        } else {
            align
        }
    }

    /// The offsets the magazine holds at most: the bound, in objects.
    pub(crate) const fn capacity(self) -> usize {
        capacity(self.0)
    }

    /// What a refill asks the core for: half a magazine of objects, side by side from a cache line
    /// where space is contiguous (see `OffsetAllocator::alloc_batch`).
    pub(crate) fn refill(self) -> Request {
        Request {
            size: self.size(),
            align: self.align(),
            count: (self.capacity() / 2).max(1),
            run_align: RUN_ALIGN,
        }
    }

    /// One object of the class, aligned as the class's offsets are.
    pub(crate) fn one(self) -> Request {
        Request {
            count: 1,
            ..self.refill()
        }
    }
}

/// One CPU's free offsets, a stack per class.
pub(crate) struct Magazines {
    /// The number of offsets of each class.
    lens: [u8; CLASSES],
    /// The offsets of class `c` are `slots[STARTS[c]..STARTS[c] + lens[c]]`, the most recently freed
    /// last.
    slots: [usize; STARTS[CLASSES]],
}

impl Magazines {
    /// Empty magazines.
    pub(crate) const fn new() -> Self {
        Self {
            lens: [0; CLASSES],
            slots: [0; STARTS[CLASSES]],
        }
    }

    /// The offsets of `class`.
    fn held(&self, class: Class) -> &[usize] {
        let start = STARTS[class.0];
        &self.slots[start..start + usize::from(self.lens[class.0])]
    }

    /// Takes the most recently freed offset of `class`.
    #[inline]
    pub(crate) fn pop(&mut self, class: Class) -> Option<usize> {
        let len = self.lens[class.0].checked_sub(1)?;
        self.lens[class.0] = len;
        Some(self.slots[STARTS[class.0] + usize::from(len)])
    }

    /// Keeps `offset` in `class`, or returns `false` if the class is full.
    #[inline]
    pub(crate) fn push(&mut self, class: Class, offset: usize) -> bool {
        let len = usize::from(self.lens[class.0]);
        if len == class.capacity() {
            return false;
        }
        self.slots[STARTS[class.0] + len] = offset;
        // The capacity of a class is below 256 (at most the bound over 8 bytes).
        self.lens[class.0] = (len + 1) as u8;
        true
    }

    /// Keeps the first of `offsets` in `class`, as many as fit, to be taken in order; returns the
    /// others.
    pub(crate) fn keep<'a>(&mut self, class: Class, offsets: &'a [usize]) -> &'a [usize] {
        let room = class.capacity() - usize::from(self.lens[class.0]);
        let (kept, refused) = offsets.split_at(offsets.len().min(room));
        for &offset in kept.iter().rev() {
            let pushed = self.push(class, offset);
            debug_assert!(pushed);
        }
        refused
    }

    /// The oldest half of the offsets of `class`, which [`Magazines::forget_oldest`] then drops.
    pub(crate) fn oldest_half(&self, class: Class) -> &[usize] {
        let held = self.held(class);
        &held[..held.len() / 2]
    }

    /// Drops the `count` oldest offsets of `class`.
    pub(crate) fn forget_oldest(&mut self, class: Class, count: usize) {
        let start = STARTS[class.0];
        let len = usize::from(self.lens[class.0]);
        self.slots.copy_within(start + count..start + len, start);
        self.lens[class.0] = (len - count) as u8;
    }

    /// Every offset held, in any order, which [`Magazines::clear`] then drops.
    pub(crate) fn all(&self) -> impl Iterator<Item = usize> + '_ {
        (0..CLASSES).flat_map(|index| self.held(Class(index)).iter().copied())
    }

    /// Drops every offset.
    pub(crate) fn clear(&mut self) {
        self.lens = [0; CLASSES];
    }

    /// The number of offsets held, and the bytes they hold (per CPU).
    pub(crate) fn held_bytes(&self) -> (usize, usize) {
        (0..CLASSES).fold((0, 0), |(count, bytes), index| {
            let len = usize::from(self.lens[index]);
            (count + len, bytes + len * Class(index).size())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn classes_cover_small_layouts_with_their_alignment() {
        assert_eq!(Class::of(layout(0, 1)), None);
        assert_eq!(Class::of(layout(129, 1)), None);
        assert_eq!(Class::of(layout(128, 128)), None);
        let byte = Class::of(layout(1, 1)).unwrap();
        assert_eq!((byte.size(), byte.align(), byte.capacity()), (8, 8, 32));
        assert_eq!(Class::of(layout(8, 8)), Some(byte));
        let twelve = Class::of(layout(12, 4)).unwrap();
        assert_eq!((twelve.size(), twelve.align()), (16, 16));
        assert_eq!(Class::of(layout(24, 8)).unwrap().align(), 8);
        assert_eq!(Class::of(layout(128, 64)).unwrap().align(), 64);
        // Every Rust-shaped layout (size a multiple of the alignment) gets at least its alignment,
        // and every class stays within the bound.
        for size in 1..=MAX_CACHED_SIZE {
            for align in [1, 2, 4, 8, 16, 32, 64] {
                if size % align != 0 {
                    continue;
                }
                let class = Class::of(layout(size, align)).unwrap();
                assert!(class.size() >= size && class.size() < size + GRANULE);
                assert_eq!(class.align() % align, 0, "{size}/{align}");
                assert_eq!(class.size() % class.align(), 0);
                assert!(class.capacity() * class.size() <= CACHE_BYTES_PER_CLASS);
                assert!(class.refill().count <= class.capacity());
                assert_eq!(class.one().count, 1);
                assert_eq!(class.one().align, class.align());
                assert!(class.capacity() < 256);
            }
        }
        assert_eq!(STARTS[CLASSES], 103);
    }

    #[test]
    fn stacks_are_bounded_and_independent() {
        let mut magazines = Magazines::new();
        let byte = Class::of(layout(8, 8)).unwrap();
        let big = Class::of(layout(128, 8)).unwrap();
        assert_eq!(magazines.pop(byte), None);
        for offset in 0..32 {
            assert!(magazines.push(byte, 0x1000 + 8 * offset));
        }
        assert!(!magazines.push(byte, 0x2000));
        assert!(magazines.push(big, 0x3000));
        assert!(magazines.push(big, 0x3080));
        assert!(!magazines.push(big, 0x3100));
        assert_eq!(magazines.held_bytes(), (34, 32 * 8 + 2 * 128));
        assert_eq!(magazines.pop(byte), Some(0x1000 + 8 * 31));
        assert_eq!(magazines.pop(big), Some(0x3080));
        // The oldest half goes back first.
        let oldest: Vec<usize> = magazines.oldest_half(byte).to_vec();
        assert_eq!(oldest, (0..15).map(|i| 0x1000 + 8 * i).collect::<Vec<_>>());
        magazines.forget_oldest(byte, oldest.len());
        assert_eq!(magazines.held_bytes(), (17, 16 * 8 + 128));
        assert_eq!(magazines.pop(byte), Some(0x1000 + 8 * 30));
        let mut all: Vec<usize> = magazines.all().collect();
        all.sort_unstable();
        let mut expected: Vec<usize> = (15..30).map(|i| 0x1000 + 8 * i).collect();
        expected.push(0x3000);
        assert_eq!(all, expected);
        magazines.clear();
        assert_eq!(magazines.held_bytes(), (0, 0));
        assert_eq!(magazines.pop(big), None);
    }

    #[test]
    fn refills_are_kept_up_to_the_bound() {
        let mut magazines = Magazines::new();
        let class = Class::of(layout(24, 8)).unwrap();
        assert_eq!(class.capacity(), 10);
        let run = |first: usize, count: usize| -> Vec<usize> {
            (0..count).map(|i| first + 24 * i).collect()
        };
        assert!(magazines.keep(class, &run(0x100, 5)).is_empty());
        // The first offsets are taken first.
        assert_eq!(magazines.pop(class), Some(0x100));
        assert_eq!(magazines.pop(class), Some(0x118));
        let offered = run(0x400, 9);
        assert_eq!(
            magazines.keep(class, &offered),
            [0x400 + 24 * 7, 0x400 + 24 * 8]
        );
        assert_eq!(magazines.held_bytes().0, 10);
        assert_eq!(magazines.pop(class), Some(0x400));
    }
}
