//! Unit tests of the offset allocator, small enough for Miri.

use super::*;

const UNIT: usize = 0x1_0000;

/// An allocator with 64 KiB units and no first chunk.
fn empty() -> OffsetAllocator {
    OffsetAllocator::new(UNIT, 0x40, 0).unwrap()
}

/// Allocates, adding chunks at `bases` (in order) whenever one is needed.
fn alloc_growing(
    a: &mut OffsetAllocator,
    bases: &mut impl Iterator<Item = usize>,
    size: usize,
    align: usize,
) -> usize {
    loop {
        match a.alloc(size, align) {
            Ok(offset) => return offset,
            Err(AllocError::NeedChunk) => a.add_chunk(bases.next().unwrap()).unwrap(),
            Err(e) => panic!("alloc({size}, {align}): {e}"),
        }
    }
}

#[test]
fn alignment_is_absolute_in_first_chunk() {
    // The first chunk starts at 0x40: only absolute alignment counts.
    let mut a = OffsetAllocator::new(UNIT, 0x40, 0x3000).unwrap();
    assert_eq!(a.alloc(1, 1), Ok(0x40));
    assert_eq!(a.alloc(8, 128), Ok(0x80));
    assert_eq!(a.alloc(3, 4096), Ok(0x1000));
    assert_eq!(a.alloc(8, 8), Ok(0x48));
    assert_eq!(a.alloc(16, 16), Ok(0x50));
    assert_eq!(a.alloc(24, 64), Ok(0xC0));
    // 0x2000 and 0x3000 are the page-aligned places left, the last one
    // with only 0x40 bytes before the end of the chunk.
    assert_eq!(a.alloc(0x1000, 4096), Ok(0x2000));
    assert_eq!(a.alloc(0x41, 4096), Err(AllocError::NeedChunk));
    assert_eq!(a.alloc(0x40, 4096), Ok(0x3000));
    for offset in [0x40, 0x80, 0x1000, 0x48, 0x50, 0xC0, 0x2000, 0x3000] {
        a.free(offset).unwrap();
    }
    assert_eq!(a.stats().live_allocations, 0);
}

#[test]
fn alignment_in_further_chunks() {
    let mut a = empty();
    a.add_chunk(0x7_0000).unwrap();
    for align in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] {
        let offset = a.alloc(8, align).unwrap();
        assert_eq!(offset % align, 0, "align {align}");
        assert!((0x7_0000..0x8_0000).contains(&offset));
    }
}

#[test]
fn exact_fit_and_reuse() {
    let mut a = OffsetAllocator::new(UNIT, 0x100, 64).unwrap();
    let whole = a.alloc(64, 8).unwrap();
    assert_eq!(whole, 0x100);
    assert_eq!(a.alloc(1, 1), Err(AllocError::NeedChunk));
    assert_eq!(a.free(whole), Ok(()));
    // Eight 1..=8 byte objects fill the same 64 bytes exactly.
    let small: Vec<usize> = (1..=8).map(|size| a.alloc(size, 1).unwrap()).collect();
    assert_eq!(small, (0..8).map(|i| 0x100 + 8 * i).collect::<Vec<_>>());
    assert_eq!(a.alloc(1, 1), Err(AllocError::NeedChunk));
    // A hole is refilled by an object of exactly its size.
    a.free(0x118).unwrap();
    a.free(0x120).unwrap();
    assert_eq!(a.alloc(16, 8), Ok(0x118));
}

#[test]
fn sizes_are_remembered() {
    let mut a = OffsetAllocator::new(UNIT, 0, 0x1000).unwrap();
    let x = a.alloc(5, 1).unwrap();
    let y = a.alloc(1000, 8).unwrap();
    assert_eq!(a.allocation_size(x), Some(5));
    assert_eq!(a.allocation_size(y), Some(1000));
    assert_eq!(y, x + 8);
    let s = a.stats();
    assert_eq!(
        (s.live_allocations, s.requested_bytes, s.reserved_bytes),
        (2, 1005, 1008)
    );
    a.free(x).unwrap();
    // x's granule is reused by a different size: no stale slack.
    assert_eq!(a.alloc(8, 8), Ok(x));
    assert_eq!(a.allocation_size(x), Some(8));
    let s = a.stats();
    assert_eq!((s.requested_bytes, s.reserved_bytes), (1008, 1008));
}

#[test]
fn unknown_offsets_are_rejected() {
    let mut a = OffsetAllocator::new(UNIT, 0x1000, 0x1000).unwrap();
    let x = a.alloc(32, 8).unwrap();
    let y = a.alloc(8, 8).unwrap();
    let before = a.stats();
    for bogus in [
        x + 8,
        x + 24,
        x + 1,
        y + 8,
        0,
        0xFFF,
        0x2000,
        usize::MAX,
        x - 8,
    ] {
        assert_eq!(a.free(bogus), Err(FreeError::NotAllocated), "{bogus:#x}");
        assert_eq!(a.allocation_size(bogus), None);
    }
    assert_eq!(a.stats(), before);
    assert_eq!(a.free(x), Ok(()));
    assert_eq!(a.free(x), Err(FreeError::NotAllocated));
    // `y` starts right after the freed `x`: still intact.
    assert_eq!(a.allocation_size(y), Some(8));
    assert_eq!(a.free(y), Ok(()));
    assert_eq!(a.free(y), Err(FreeError::NotAllocated));
    assert_eq!(a.stats().live_allocations, 0);
}

#[test]
fn chunk_growth() {
    let mut a = OffsetAllocator::new(UNIT, 0x40, 0x80).unwrap();
    assert_eq!(a.alloc(0x80, 8), Ok(0x40));
    assert_eq!(a.alloc(8, 8), Err(AllocError::NeedChunk));
    a.add_chunk(0x10_0000).unwrap();
    assert_eq!(a.alloc(8, 8), Ok(0x10_0000));
    assert_eq!(a.alloc(UNIT - 8, 8), Ok(0x10_0008));
    assert_eq!(a.alloc(UNIT, 8), Err(AllocError::NeedChunk));
    a.add_chunk(0x20_0000).unwrap();
    assert_eq!(a.alloc(UNIT, 4096), Ok(0x20_0000));
    let s = a.stats();
    assert_eq!(
        (s.chunks, s.chunk_bytes, s.free_chunks),
        (3, 0x80 + 2 * UNIT, 0)
    );
}

#[test]
fn free_chunks_stay_until_taken() {
    let mut a = OffsetAllocator::new(UNIT, 0, 0x100).unwrap();
    let first = a.alloc(0x100, 8).unwrap();
    let mut bases = [0x10_0000, 0x30_0000, 0x20_0000].into_iter();
    let big: Vec<usize> = (0..3)
        .map(|_| alloc_growing(&mut a, &mut bases, UNIT, 8))
        .collect();
    assert_eq!(big, [0x10_0000, 0x30_0000, 0x20_0000]);
    assert_eq!(a.stats().free_chunks, 0);
    assert!(a.take_free_chunk(0).is_none());
    // The first chunk becoming free is not a spare.
    assert_eq!(a.free(first), Ok(()));
    assert_eq!(a.stats().free_chunks, 0);
    // Further chunks that become free stay until taken, newest first.
    for base in [0x30_0000, 0x10_0000, 0x20_0000] {
        assert_eq!(a.free(base), Ok(()));
    }
    assert_eq!(a.stats().free_chunks, 3);
    assert!(a.take_free_chunk(3).is_none());
    assert_eq!(a.take_free_chunk(1).map(|(base, _)| base), Some(0x20_0000));
    assert_eq!(a.take_free_chunk(1).map(|(base, _)| base), Some(0x30_0000));
    assert!(a.take_free_chunk(1).is_none());
    let s = a.stats();
    assert_eq!(
        (s.chunks, s.chunk_bytes, s.free_chunks),
        (2, 0x100 + UNIT, 1)
    );
    // Taken chunks are forgotten; the spare serves the next allocation.
    assert_eq!(a.free(0x30_0000), Err(FreeError::NotAllocated));
    assert_eq!(a.alloc(UNIT, 8), Ok(0x10_0000));
    assert_eq!(a.stats().free_chunks, 0);
    // A taken base can be added again.
    a.add_chunk(0x30_0000).unwrap();
    assert_eq!(a.alloc(8, 8), Ok(0));
    assert_eq!(a.alloc(0x100, 8), Ok(0x30_0000));
}

#[test]
fn batches_go_side_by_side_where_space_is_contiguous() {
    let mut a = OffsetAllocator::new(UNIT, 0x48, 0x400).unwrap();
    assert_eq!(a.alloc(8, 8), Ok(0x48));
    // Eight 24-byte objects from a cache line: 0x80..0x140, one allocation each.
    let mut out = [0; 8];
    assert_eq!(a.alloc_batch(24, 8, 64, &mut out), Ok(8));
    assert_eq!(out, core::array::from_fn(|i| 0x80 + 24 * i));
    let s = a.stats();
    assert_eq!((s.live_allocations, s.requested_bytes), (9, 8 + 8 * 24));
    // The gap before the run is still free, and objects go one by one.
    assert_eq!(a.alloc(16, 8), Ok(0x50));
    a.free(0x80 + 24).unwrap();
    assert_eq!(a.allocation_size(0x80), Some(24));
    assert_eq!(a.allocation_size(0x80 + 48), Some(24));
    // Sizes that are not whole granules keep their slack.
    let mut out = [0; 3];
    assert_eq!(a.alloc_batch(12, 4, 64, &mut out), Ok(3));
    assert_eq!(out, [0x140, 0x150, 0x160]);
    assert_eq!(a.allocation_size(0x150), Some(12));
    assert_eq!(a.stats().reserved_bytes - a.stats().requested_bytes, 3 * 4);
    // While the chunk of the first object has contiguous room, the batch goes there, past holes.
    let mut out = [0; 4];
    assert_eq!(a.alloc_batch(8, 8, 64, &mut out), Ok(4));
    assert_eq!(out, [0x180, 0x188, 0x190, 0x198]);
    // Then one by one into the holes, fewer than asked when the chunks run out.
    let mut b = OffsetAllocator::new(UNIT, 0x40, 0x100).unwrap();
    assert_eq!(b.alloc_batch(8, 8, 64, &mut out), Ok(4));
    assert_eq!(out, [0x40, 0x48, 0x50, 0x58]);
    assert_eq!(b.alloc(0xE0, 8), Ok(0x60));
    b.free(0x48).unwrap();
    b.free(0x58).unwrap();
    assert_eq!(b.alloc_batch(8, 8, 64, &mut out), Ok(2));
    assert_eq!(out[..2], [0x48, 0x58]);
    assert_eq!(
        b.alloc_batch(8, 8, 64, &mut out),
        Err(AllocError::NeedChunk)
    );
    assert_eq!(b.stats().live_allocations, 5);
    // Errors.
    let mut out = [0; 16];
    assert_eq!(a.alloc_batch(8, 8, 64, &mut []), Err(AllocError::ZeroSize));
    assert_eq!(a.alloc_batch(0, 8, 64, &mut out), Err(AllocError::ZeroSize));
    assert_eq!(
        a.alloc_batch(UNIT + 8, 8, 64, &mut out),
        Err(AllocError::TooLarge)
    );
    assert_eq!(a.alloc_batch(8, 8, 3, &mut out), Err(AllocError::BadAlign));
    assert_eq!(a.alloc_batch(8, 3, 8, &mut out), Err(AllocError::BadAlign));
    b.add_chunk(0x10_0000).unwrap();
    let mut out = [0; 4];
    assert_eq!(b.alloc_batch(0x100, 8, 64, &mut out), Ok(4));
    assert_eq!(out, [0x10_0000, 0x10_0100, 0x10_0200, 0x10_0300]);
    assert_eq!(b.stats().free_chunks, 0);
}

#[test]
fn metadata_is_allocated_apart_and_may_be_stale() {
    let mut a = empty();
    let request = a.metadata_request();
    let early = request.allocate().unwrap();
    // Enough chunks added meanwhile to make the tables grow.
    for k in 0..INITIAL_ROOM {
        a.add_chunk(0x100_0000 + k * UNIT).unwrap();
    }
    let (error, _) = a.add_chunk_with(0x10_0000, early).unwrap_err();
    assert_eq!(error, AddChunkError::StaleMetadata);
    let request = a.metadata_request();
    let retired = a.add_chunk_with(0x10_0000, request.allocate().unwrap());
    // The old tables come back, to be dropped outside any lock.
    assert!(retired.unwrap().tables.is_some());
    // The placement is checked before anything else, and the metadata given back.
    let fresh = a.metadata_request().allocate().unwrap();
    let (error, fresh) = a.add_chunk_with(0x10_0000, fresh).unwrap_err();
    assert_eq!(error, AddChunkError::Overlaps);
    let retired = a.add_chunk_with(0x20_0000, fresh).unwrap();
    assert!(retired.chunk.is_none() && retired.tables.is_none());
    // Metadata of an allocator of another unit does not fit.
    let other = OffsetAllocator::new(UNIT / 2, 0, 0).unwrap();
    let foreign = other.metadata_request().allocate().unwrap();
    assert_eq!(
        a.add_chunk_with(0x30_0000, foreign).unwrap_err().0,
        AddChunkError::StaleMetadata
    );
    assert_eq!(a.stats().chunks, INITIAL_ROOM + 2);
    for k in 0..INITIAL_ROOM + 2 {
        let offset = a.alloc(UNIT, 4096).unwrap();
        assert_eq!(a.allocation_size(offset), Some(UNIT), "{k}");
    }
}

#[test]
fn error_kinds() {
    let mut a = OffsetAllocator::new(UNIT, 0, 0x1000).unwrap();
    assert_eq!(a.alloc(0, 8), Err(AllocError::ZeroSize));
    assert_eq!(a.alloc(UNIT + 1, 8), Err(AllocError::TooLarge));
    assert_eq!(a.alloc(usize::MAX, 8), Err(AllocError::TooLarge));
    for align in [0, 3, 24, 8192, usize::MAX] {
        assert_eq!(
            a.alloc(8, align),
            Err(AllocError::BadAlign),
            "align {align}"
        );
    }
    // Valid requests that only a further chunk can hold.
    assert_eq!(a.alloc(UNIT, 4096), Err(AllocError::NeedChunk));
    assert_eq!(a.alloc(8, 4096), Ok(0));
    assert_eq!(a.alloc(8, 4096), Err(AllocError::NeedChunk));

    assert_eq!(a.add_chunk(0x10_0008), Err(AddChunkError::Misaligned));
    assert_eq!(a.add_chunk(0), Err(AddChunkError::Overlaps));
    assert_eq!(a.add_chunk(usize::MAX - 0xFFF), Err(AddChunkError::Wraps));
    a.add_chunk(0x10_0000).unwrap();
    for overlapping in [0x10_0000, 0xF_1000, 0x10_F000] {
        assert_eq!(a.add_chunk(overlapping), Err(AddChunkError::Overlaps));
    }
    // Adjacent chunks do not overlap.
    a.add_chunk(0xF_0000).unwrap();
    a.add_chunk(0x11_0000).unwrap();
    a.add_chunk(0x1000).unwrap();
    assert_eq!(a.stats().chunks, 5);
    // A first chunk ending just past a page boundary overlaps that page.
    let mut b = OffsetAllocator::new(UNIT, 0, 0x1008).unwrap();
    assert_eq!(b.add_chunk(0x1000), Err(AddChunkError::Overlaps));
    b.add_chunk(0x2000).unwrap();
}

#[test]
fn bad_configurations() {
    assert_eq!(
        OffsetAllocator::new(0, 0, 0).err(),
        Some(ConfigError::BadUnit)
    );
    assert_eq!(
        OffsetAllocator::new(100, 0, 0).err(),
        Some(ConfigError::BadUnit)
    );
    assert_eq!(
        OffsetAllocator::new(UNIT, 4, 8).err(),
        Some(ConfigError::BadFirstChunk)
    );
    assert_eq!(
        OffsetAllocator::new(UNIT, 0, UNIT + 8).err(),
        Some(ConfigError::BadFirstChunk)
    );
    assert_eq!(
        OffsetAllocator::new(UNIT, usize::MAX - 0xF, 0x20).err(),
        Some(ConfigError::BadFirstChunk)
    );
    // The first chunk may end exactly at the top of the offset space.
    assert!(OffsetAllocator::new(UNIT, usize::MAX - 0xF, 0x10).is_ok());
    assert_eq!(OffsetAllocator::new(8, 0, 8).unwrap().unit(), 8);
}

#[test]
fn wrapping_chunk_bases() {
    // A "negative" chunk base, as computed with wrapping arithmetic.
    let negative = (usize::MAX - 0xFFFF - 4095) & !4095;
    assert_eq!(negative, 0usize.wrapping_sub(0x11000));
    let mut a = OffsetAllocator::new(UNIT, 0x40, 0x40).unwrap();
    a.add_chunk(negative).unwrap();
    assert_eq!(
        a.add_chunk(0usize.wrapping_sub(UNIT)),
        Err(AddChunkError::Overlaps)
    );
    assert_eq!(
        a.add_chunk(negative - UNIT + 0x1000),
        Err(AddChunkError::Overlaps)
    );
    assert_eq!(a.alloc(0x40, 8), Ok(0x40));
    let x = a.alloc(UNIT - 8, 4096).unwrap();
    assert_eq!(x, negative);
    let y = a.alloc(8, 8).unwrap();
    assert_eq!(y, negative + UNIT - 8);
    assert_eq!(a.alloc(8, 8), Err(AllocError::NeedChunk));
    assert_eq!(a.allocation_size(y), Some(8));
    assert_eq!(a.free(y + 8), Err(FreeError::NotAllocated));
    a.add_chunk(negative - UNIT).unwrap();
    assert_eq!(a.alloc(16, 16), Ok(negative - UNIT));
    assert_eq!(a.free(x), Ok(()));
    assert_eq!(a.free(y), Ok(()));
    assert_eq!(a.free(negative - UNIT), Ok(()));
    assert_eq!(
        a.take_free_chunk(1).map(|(base, _)| base),
        Some(negative - UNIT)
    );
    assert_eq!(a.stats().chunks, 2);

    // A chunk may end exactly at the top of the offset space.
    let top = 0usize.wrapping_sub(UNIT);
    let mut b = empty();
    b.add_chunk(top).unwrap();
    assert_eq!(b.alloc(UNIT - 8, 8), Ok(top));
    let last = b.alloc(8, 8).unwrap();
    assert_eq!(last, usize::MAX - 7);
    assert_eq!(b.allocation_size(last), Some(8));
    assert_eq!(b.free(usize::MAX), Err(FreeError::NotAllocated));
    assert_eq!(b.free(last), Ok(()));
    assert_eq!(b.free(top), Ok(()));
    assert_eq!(b.stats().free_chunks, 1);
}

#[test]
fn empty_first_chunk() {
    let mut a = empty();
    let s = a.stats();
    assert_eq!((s.chunks, s.chunk_bytes, s.free_chunks), (0, 0, 0));
    assert_eq!(a.alloc(8, 8), Err(AllocError::NeedChunk));
    assert_eq!(a.free(0x40), Err(FreeError::NotAllocated));
    // A first chunk shorter than a granule is no chunk either.
    let mut tiny = OffsetAllocator::new(UNIT, 0x40, 7).unwrap();
    assert_eq!(tiny.stats().chunks, 0);
    assert_eq!(tiny.alloc(1, 1), Err(AllocError::NeedChunk));
    // Without a first chunk, the chunk at index 0 is a further chunk.
    a.add_chunk(0x10_0000).unwrap();
    assert_eq!(a.stats().free_chunks, 1);
    let x = a.alloc(8, 8).unwrap();
    assert_eq!(a.stats().free_chunks, 0);
    assert_eq!(a.free(x), Ok(()));
    assert_eq!(a.stats().free_chunks, 1);
}

#[test]
fn misaligned_runs_do_not_hide_aligned_ones() {
    // One 4 KiB first chunk full of 8-byte objects.
    let mut a = OffsetAllocator::new(UNIT, 0, 0x1000).unwrap();
    let all: Vec<usize> = (0..0x200).map(|_| a.alloc(8, 8).unwrap()).collect();
    // Free pairs of slots that are 16 bytes long but only 8-aligned.
    for pair in (1..0x1FF).step_by(4) {
        a.free(all[pair]).unwrap();
        a.free(all[pair + 1]).unwrap();
    }
    assert_eq!(a.alloc(16, 16), Err(AllocError::NeedChunk));
    a.add_chunk(0x10_0000).unwrap();
    assert_eq!(a.alloc(16, 16), Ok(0x10_0000));
    // Unaligned requests still fit into the first chunk's holes.
    assert_eq!(a.alloc(16, 8), Ok(0x8));
    // An aligned hole appears in the first chunk and is found.
    a.free(all[0x100]).unwrap();
    assert_eq!(a.alloc(16, 16), Ok(0x800));
}

#[test]
fn large_allocations_cross_words() {
    let mut a = OffsetAllocator::new(UNIT, 0, UNIT).unwrap();
    let x = a.alloc(1000, 8).unwrap();
    let y = a.alloc(3000, 8).unwrap();
    let z = a.alloc(5000, 8).unwrap();
    assert_eq!((x, y, z), (0, 1000, 4000));
    a.free(y).unwrap();
    // The hole of 3000 bytes is the leftmost fit for 2000 bytes...
    assert_eq!(a.alloc(2000, 8), Ok(1000));
    // ...but not for 3001.
    assert_eq!(a.alloc(3001, 8), Ok(9000));
    a.free(x).unwrap();
    assert_eq!(a.alloc(1000, 8), Ok(0));
    assert_eq!(a.alloc(1000, 8), Ok(3000));
    assert_eq!(a.alloc(8, 8), Ok(12008));
    assert_eq!(a.stats().live_allocations, 6);
}
