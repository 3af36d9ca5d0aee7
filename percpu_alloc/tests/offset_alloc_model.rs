//! Model-based property tests of `OffsetAllocator`.
//!
//! Random sequences of operations run against the allocator and against a
//! plain model (the live ranges and the chunks in ordered maps). After every
//! step the live ranges must be disjoint, aligned and inside one chunk, the
//! statistics must match the model, "need a chunk" must only be reported
//! when no chunk has room, and exactly the entirely free further chunks beyond
//! the number kept must be handed back when asked for. Runs of objects
//! (`alloc_run`) are checked object by object, and chunks are added in the
//! two steps of a caller that allocates their metadata outside its lock.

use std::cell::Cell;
use std::collections::BTreeMap;

use percpu_alloc::offset_alloc::{
    AddChunkError, AllocError, FreeError, OffsetAllocator, Stats, GRANULE, MAX_ALIGN,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases of the operation-sequence test.
const SEQUENCE_CASES: u32 = 250;
/// Length range of the operation sequences.
const OPS: std::ops::Range<usize> = 200..800;
/// Cases of the free-everything-and-replay test.
const REPLAY_CASES: u32 = 60;
/// Operations the sequence test must perform at least, over all its cases.
const MIN_SEQUENCE_OPS: usize = 100_000;
/// Operations the replay test must perform at least, over all its cases.
const MIN_REPLAY_OPS: usize = 30_000;

/// A requested size, resolved against the unit of the case.
#[derive(Clone, Copy, Debug)]
enum SizeSpec {
    /// 1..=64 bytes (capped at the unit).
    Small(usize),
    /// 1..=1024 bytes (capped at the unit).
    Medium(usize),
    /// 1..=unit bytes.
    Any(u64),
}

impl SizeSpec {
    fn resolve(self, unit: usize) -> usize {
        match self {
            Self::Small(size) | Self::Medium(size) => size.min(unit),
            Self::Any(raw) => 1 + (raw % unit as u64) as usize,
        }
    }
}

/// A requested alignment.
#[derive(Clone, Copy, Debug)]
enum AlignSpec {
    /// `min(size.next_power_of_two(), 8)`.
    Natural,
    /// `1 << k` with `k <= 12`.
    Pow(u32),
}

impl AlignSpec {
    fn resolve(self, size: usize) -> usize {
        match self {
            Self::Natural => size.next_power_of_two().min(8),
            Self::Pow(k) => 1 << k,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Allocate, adding a chunk if needed.
    Alloc(SizeSpec, AlignSpec),
    /// Free a random live allocation.
    Free(Index),
    /// Free an offset that is not a live allocation (of kind 0..4, near a
    /// random live allocation or anywhere).
    FreeBogus(Index, u8, usize),
    /// Make an invalid request (of kind 0..3).
    Invalid(u8, usize),
    /// Free everything, in an order drawn from the seed.
    FreeAll(u64),
    /// Allocate a batch of up to `count` objects, side by side from the
    /// given alignment where space is contiguous.
    AllocBatch(SizeSpec, usize, AlignSpec),
    /// Take back the free further chunks beyond this many.
    Reclaim(usize),
}

/// The allocator configuration and where fresh further chunks come from.
#[derive(Clone, Debug)]
struct Setup {
    unit: usize,
    first_start: usize,
    first_len: usize,
    /// Fresh chunk number `k` is at `bases_from + k * stride` (wrapping).
    bases_from: usize,
    stride: usize,
}

fn size_spec() -> impl Strategy<Value = SizeSpec> {
    prop_oneof![
        6 => (1..=64usize).prop_map(SizeSpec::Small),
        3 => (1..=1024usize).prop_map(SizeSpec::Medium),
        1 => any::<u64>().prop_map(SizeSpec::Any),
    ]
}

fn align_spec() -> impl Strategy<Value = AlignSpec> {
    prop_oneof![
        3 => Just(AlignSpec::Natural),
        2 => (0..=MAX_ALIGN.trailing_zeros()).prop_map(AlignSpec::Pow),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        50 => (size_spec(), align_spec()).prop_map(|(size, align)| Op::Alloc(size, align)),
        35 => any::<Index>().prop_map(Op::Free),
        5 => (any::<Index>(), 0..4u8, any::<usize>())
            .prop_map(|(index, kind, raw)| Op::FreeBogus(index, kind, raw)),
        3 => (0..3u8, any::<usize>()).prop_map(|(kind, raw)| Op::Invalid(kind, raw)),
        1 => any::<u64>().prop_map(Op::FreeAll),
        8 => (size_spec(), 1..=16usize, align_spec())
            .prop_map(|(size, count, align)| Op::AllocBatch(size, count, align)),
        4 => (0..3usize).prop_map(Op::Reclaim),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    let unit = prop_oneof![
        Just(64usize),
        Just(512),
        Just(4096),
        Just(0x1_0000),
        (1..=2048usize).prop_map(|granules| granules * GRANULE),
    ];
    let bases_from = prop_oneof![
        // Just below the top of the offset space: "negative" chunk bases,
        // which then wrap around to small ones.
        (1..64usize).prop_map(|pages| 0usize.wrapping_sub(pages * 4096)),
        any::<usize>().prop_map(|raw| raw & !(MAX_ALIGN - 1)),
        (1..64usize).prop_map(|mib| mib << 20),
    ];
    (unit, 0..1024usize, any::<u32>(), bases_from, 1..4usize).prop_map(
        |(unit, first_start_lines, first_len_raw, bases_from, stride_factor)| Setup {
            unit,
            first_start: first_start_lines * 64,
            first_len: match first_len_raw % 4 {
                0 => 0,
                1 => unit,
                _ => first_len_raw as usize % (unit + 1),
            },
            bases_from,
            stride: unit.next_multiple_of(MAX_ALIGN) * stride_factor,
        },
    )
}

#[path = "common/xorshift.rs"]
mod xorshift;

use xorshift::XorShift;

/// Puts `items` in a pseudo-random order.
fn shuffle<T>(rng: &mut XorShift, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(TestCaseError::fail(format!($($fmt)*)));
        }
    };
}

/// The allocator under test next to its model.
struct Harness {
    setup: Setup,
    alloc: OffsetAllocator,
    /// Every chunk: base -> (length, number of live allocations).
    chunks: BTreeMap<usize, (usize, usize)>,
    /// Base of the first chunk, if it is not empty.
    first_base: Option<usize>,
    /// Every live allocation: offset -> requested size.
    live: BTreeMap<usize, usize>,
    requested: usize,
    reserved: usize,
    /// Number of the next fresh chunk base to try.
    next_base: usize,
    /// Chunks added / released so far.
    added: usize,
    released: usize,
    ops: usize,
}

fn reserved_size(size: usize) -> usize {
    size.next_multiple_of(GRANULE)
}

impl Harness {
    fn new(setup: &Setup) -> Self {
        let alloc = OffsetAllocator::new(setup.unit, setup.first_start, setup.first_len)
            .expect("valid configuration");
        let first_len = setup.first_len / GRANULE * GRANULE;
        let mut chunks = BTreeMap::new();
        let first_base = (first_len > 0).then_some(setup.first_start);
        if first_len > 0 {
            chunks.insert(setup.first_start, (first_len, 0));
        }
        Self {
            setup: setup.clone(),
            alloc,
            chunks,
            first_base,
            live: BTreeMap::new(),
            requested: 0,
            reserved: 0,
            next_base: 0,
            added: 0,
            released: 0,
            ops: 0,
        }
    }

    /// The chunk holding `offset`, as (base, length).
    fn chunk_of(&self, offset: usize) -> Option<(usize, usize)> {
        let (&base, &(len, _)) = self.chunks.range(..=offset).next_back()?;
        (offset - base < len).then_some((base, len))
    }

    fn overlaps_a_chunk(&self, base: usize) -> bool {
        let end = base as u128 + self.setup.unit as u128;
        self.chunks.iter().any(|(&other, &(len, _))| {
            (other as u128) < end && (base as u128) < other as u128 + len as u128
        })
    }

    /// The next fresh page-aligned base that overlaps no chunk and does not
    /// run past `usize::MAX`.
    fn fresh_base(&mut self) -> usize {
        loop {
            let base = self
                .setup
                .bases_from
                .wrapping_add(self.next_base.wrapping_mul(self.setup.stride));
            self.next_base += 1;
            if base.checked_add(self.setup.unit - 1).is_some() && !self.overlaps_a_chunk(base) {
                return base;
            }
        }
    }

    fn expected_stats(&self) -> Stats {
        let free_chunks = self
            .chunks
            .iter()
            .filter(|&(&base, &(_, live))| live == 0 && Some(base) != self.first_base)
            .count();
        Stats {
            live_allocations: self.live.len(),
            requested_bytes: self.requested,
            reserved_bytes: self.reserved,
            chunks: self.chunks.len(),
            chunk_bytes: self.chunks.values().map(|&(len, _)| len).sum(),
            free_chunks,
        }
    }

    fn check_stats(&self) -> Result<(), TestCaseError> {
        let (actual, expected) = (self.alloc.stats(), self.expected_stats());
        check!(actual == expected, "stats {actual:?}, model {expected:?}");
        Ok(())
    }

    /// Whether some chunk has room for `size` bytes aligned to `align`, by
    /// brute force over the gaps between live allocations.
    fn fits_somewhere(&self, size: usize, align: usize) -> bool {
        let (need, align) = (reserved_size(size) as u128, align.max(GRANULE) as u128);
        self.chunks.iter().any(|(&base, &(len, _))| {
            let end = base as u128 + len as u128;
            let mut gap_start = base as u128;
            let mut gaps = Vec::new();
            for (&offset, &size) in self
                .live
                .range(base..)
                .take_while(|(&o, _)| (o as u128) < end)
            {
                gaps.push((gap_start, offset as u128));
                gap_start = offset as u128 + reserved_size(size) as u128;
            }
            gaps.push((gap_start, end));
            gaps.iter()
                .any(|&(start, end)| start.next_multiple_of(align) + need <= end)
        })
    }

    fn alloc(&mut self, size: usize, align: usize) -> Result<(), TestCaseError> {
        self.alloc_batch(size, align, None)
    }

    /// Allocates one object of `size` (with `alloc`), or a batch of up to
    /// `batch = (count, run_align)` (with `alloc_batch`), adding a chunk if
    /// needed.
    fn alloc_batch(
        &mut self,
        size: usize,
        align: usize,
        batch: Option<(usize, usize)>,
    ) -> Result<(), TestCaseError> {
        self.ops += 1;
        let mut out = [0; 16];
        let request = |alloc: &mut OffsetAllocator, out: &mut [usize; 16]| match batch {
            Some((count, run_align)) => {
                alloc.alloc_batch(size, align, run_align, &mut out[..count])
            }
            None => alloc.alloc(size, align).map(|offset| {
                out[0] = offset;
                1
            }),
        };
        let allocated = match request(&mut self.alloc, &mut out) {
            Ok(allocated) => allocated,
            Err(AllocError::NeedChunk) => {
                check!(
                    !self.fits_somewhere(size, align),
                    "NeedChunk for {size} bytes aligned to {align}, but there is room"
                );
                // An existing chunk cannot be added twice.
                let further = self
                    .chunks
                    .keys()
                    .find(|&&base| Some(base) != self.first_base);
                if let Some(&base) = further {
                    let result = self.alloc.add_chunk(base);
                    check!(
                        result == Err(AddChunkError::Overlaps),
                        "re-adding {base:#x}: {result:?}"
                    );
                }
                // So is a page-aligned base inside the highest chunk.
                if let Some((&base, &(len, _))) = self.chunks.iter().next_back() {
                    let inside = (base + (len - 1)) & !(MAX_ALIGN - 1);
                    let expected = if inside.checked_add(self.setup.unit - 1).is_none() {
                        Some(AddChunkError::Wraps)
                    } else {
                        self.overlaps_a_chunk(inside)
                            .then_some(AddChunkError::Overlaps)
                    };
                    if let Some(expected) = expected {
                        let result = self.alloc.add_chunk(inside);
                        check!(result == Err(expected), "adding {inside:#x}: {result:?}");
                    }
                }
                // Metadata allocated apart, as a caller does outside its lock.
                let base = self.fresh_base();
                let metadata = self.alloc.metadata_request().allocate().expect("heap");
                let result = self.alloc.add_chunk_with(base, metadata);
                check!(
                    result.is_ok(),
                    "add_chunk_with({base:#x}): {:?}",
                    result.err()
                );
                self.chunks.insert(base, (self.setup.unit, 0));
                self.added += 1;
                self.check_stats()?;
                match request(&mut self.alloc, &mut out) {
                    Ok(allocated) => allocated,
                    Err(e) => {
                        return Err(TestCaseError::fail(format!("retry after add_chunk: {e}")))
                    }
                }
            }
            Err(e) => return Err(TestCaseError::fail(format!("alloc({size}, {align}): {e}"))),
        };
        let count = batch.map_or(1, |(count, _)| count);
        check!(
            (1..=count).contains(&allocated),
            "{allocated} of {count} allocated"
        );
        for &offset in &out[..allocated] {
            check!(
                offset.is_multiple_of(align),
                "{offset:#x} not aligned to {align}"
            );
            self.record(offset, size)?;
        }
        check!(
            allocated == count || !self.fits_somewhere(size, align),
            "{allocated} of {count} allocated, but there is room for more"
        );
        self.check_stats()
    }

    /// Checks and records the new allocation of `size` bytes at `offset`.
    fn record(&mut self, offset: usize, size: usize) -> Result<(), TestCaseError> {
        let reserved = reserved_size(size);
        check!(
            offset.is_multiple_of(GRANULE),
            "{offset:#x} not granule-aligned"
        );
        let Some((base, len)) = self.chunk_of(offset) else {
            return Err(TestCaseError::fail(format!("{offset:#x} is in no chunk")));
        };
        check!(
            (offset - base) as u128 + reserved as u128 <= len as u128,
            "{offset:#x} + {reserved} runs past chunk {base:#x}"
        );
        if let Some((&before, &before_size)) = self.live.range(..=offset).next_back() {
            check!(
                before as u128 + reserved_size(before_size) as u128 <= offset as u128,
                "{offset:#x} overlaps live {before:#x}"
            );
        }
        if let Some((&after, _)) = self.live.range(offset..).next() {
            check!(
                offset as u128 + reserved as u128 <= after as u128,
                "{offset:#x} + {reserved} overlaps live {after:#x}"
            );
        }
        self.live.insert(offset, size);
        self.chunks.get_mut(&base).unwrap().1 += 1;
        self.requested += size;
        self.reserved += reserved;
        check!(
            self.alloc.allocation_size(offset) == Some(size),
            "size of {offset:#x}"
        );
        Ok(())
    }

    fn free(&mut self, offset: usize) -> Result<(), TestCaseError> {
        self.ops += 1;
        let size = self
            .live
            .remove(&offset)
            .expect("freeing a live allocation");
        let (base, _) = self.chunk_of(offset).unwrap();
        self.chunks.get_mut(&base).unwrap().1 -= 1;
        self.requested -= size;
        self.reserved -= reserved_size(size);
        let result = self.alloc.free(offset);
        check!(result == Ok(()), "free({offset:#x}) = {result:?}");
        check!(
            self.alloc.allocation_size(offset).is_none(),
            "{offset:#x} still allocated"
        );
        self.check_stats()
    }

    /// Takes back the entirely free further chunks beyond `keep`, newest
    /// first.
    fn reclaim(&mut self, keep: usize) -> Result<(), TestCaseError> {
        self.ops += 1;
        let free = |harness: &Self| {
            harness
                .chunks
                .iter()
                .filter(|&(&base, &(_, live))| live == 0 && Some(base) != harness.first_base)
                .map(|(&base, _)| base)
                .collect::<Vec<_>>()
        };
        let before = free(self);
        while let Some((base, retired)) = self.alloc.take_free_chunk(keep) {
            drop(retired);
            check!(
                free(self).contains(&base),
                "took {base:#x}, which is not an entirely free further chunk"
            );
            self.chunks.remove(&base);
            self.released += 1;
            self.check_stats()?;
        }
        check!(
            free(self).len() == before.len().min(keep),
            "{} free chunks left, {} before, {keep} kept",
            free(self).len(),
            before.len()
        );
        self.check_stats()
    }

    fn free_all(&mut self, seed: u64) -> Result<(), TestCaseError> {
        let mut offsets: Vec<usize> = self.live.keys().copied().collect();
        shuffle(&mut XorShift::new(seed | 1), &mut offsets);
        for offset in offsets {
            self.free(offset)?;
        }
        self.reclaim(1)?;
        let further = self.chunks.len() - usize::from(self.first_base.is_some());
        check!(
            further <= 1,
            "{further} further chunks left after freeing everything"
        );
        Ok(())
    }

    fn free_bogus(&mut self, index: Index, kind: u8, raw: usize) -> Result<(), TestCaseError> {
        let near = (!self.live.is_empty()).then(|| {
            let (&offset, &size) = self.live.iter().nth(index.index(self.live.len())).unwrap();
            (offset, size)
        });
        let offset = match (kind, near) {
            (0, Some((offset, size))) if size > GRANULE => offset + GRANULE,
            (1, Some((offset, _))) => offset + 1,
            (2, Some((offset, size))) => offset.wrapping_add(reserved_size(size)),
            (3, _) => raw,
            _ => self
                .setup
                .bases_from
                .wrapping_add(self.next_base.wrapping_mul(self.setup.stride)),
        };
        if self.live.contains_key(&offset) {
            return Ok(());
        }
        self.ops += 1;
        let before = self.alloc.stats();
        let result = self.alloc.free(offset);
        check!(
            result == Err(FreeError::NotAllocated),
            "free({offset:#x}) = {result:?}"
        );
        check!(
            self.alloc.allocation_size(offset).is_none(),
            "size of {offset:#x}"
        );
        check!(self.alloc.stats() == before, "bogus free changed the stats");
        Ok(())
    }

    fn invalid(&mut self, kind: u8, raw: usize) -> Result<(), TestCaseError> {
        self.ops += 1;
        let unit = self.setup.unit;
        let (size, align, expected) = match kind {
            0 => (0, 8, AllocError::ZeroSize),
            1 => (unit + 1 + raw % (1 << 20), 8, AllocError::TooLarge),
            _ => {
                let aligns = [0, 3, 6, 24, MAX_ALIGN * 2, 1 << 20, usize::MAX];
                (1, aligns[raw % aligns.len()], AllocError::BadAlign)
            }
        };
        let result = self.alloc.alloc(size, align);
        check!(
            result == Err(expected),
            "alloc({size}, {align}) = {result:?}"
        );
        self.check_stats()
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Alloc(size, align) => {
                let size = size.resolve(self.setup.unit);
                self.alloc(size, align.resolve(size))
            }
            Op::Free(index) if !self.live.is_empty() => {
                let offset = *self.live.keys().nth(index.index(self.live.len())).unwrap();
                self.free(offset)
            }
            Op::Free(_) => Ok(()),
            Op::FreeBogus(index, kind, raw) => self.free_bogus(index, kind, raw),
            Op::Invalid(kind, raw) => self.invalid(kind, raw),
            Op::FreeAll(seed) => self.free_all(seed),
            Op::AllocBatch(size, count, align) => {
                let size = size.resolve(self.setup.unit);
                // The alignment of objects, and another one for the first.
                let run_align = align.resolve(size);
                let align = AlignSpec::Natural.resolve(size).min(run_align);
                self.alloc_batch(size, align, Some((count, run_align)))
            }
            Op::Reclaim(keep) => self.reclaim(keep),
        }
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn random_operation_sequences_match_the_model() {
    let total = Cell::new(0);
    let (added, released) = (Cell::new(0), Cell::new(0));
    let strategy = (setup(), prop::collection::vec(op(), OPS));
    let result = runner(SEQUENCE_CASES).run(&strategy, |(setup, ops)| {
        let mut harness = Harness::new(&setup);
        harness.check_stats()?;
        for op in &ops {
            harness.run(op)?;
        }
        harness.free_all(0x5EED)?;
        total.set(total.get() + harness.ops);
        added.set(added.get() + harness.added);
        released.set(released.get() + harness.released);
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    println!(
        "operation sequences: {} operations, {} chunks added, {} released",
        total.get(),
        added.get(),
        released.get()
    );
    assert!(
        total.get() >= MIN_SEQUENCE_OPS,
        "only {} operations",
        total.get()
    );
    assert!(released.get() > 0, "no chunk was ever released");
}

#[test]
fn freed_space_is_reused_without_new_chunks() {
    let total = Cell::new(0);
    let requests = prop::collection::vec((size_spec(), align_spec()), 1..600);
    let result = runner(REPLAY_CASES).run(
        &(setup(), requests, any::<u64>()),
        |(setup, requests, seed)| {
            let mut harness = Harness::new(&setup);
            let requests: Vec<(usize, usize)> = requests
                .iter()
                .map(|&(size, align)| {
                    let size = size.resolve(setup.unit);
                    (size, align.resolve(size))
                })
                .collect();
            for &(size, align) in &requests {
                harness.alloc(size, align)?;
            }
            let used = harness.added;
            harness.free_all(seed)?;
            check!(
                harness.released == used.saturating_sub(1),
                "{used} chunks used, {} released",
                harness.released
            );
            for &(size, align) in &requests {
                harness.alloc(size, align)?;
            }
            let further = harness.chunks.len() - usize::from(harness.first_base.is_some());
            check!(
                further <= used,
                "{further} chunks the second time, {used} the first"
            );
            harness.free_all(seed.rotate_left(17))?;
            total.set(total.get() + harness.ops);
            Ok(())
        },
    );
    if let Err(failure) = result {
        panic!("{failure}");
    }
    println!("replays: {} operations", total.get());
    assert!(
        total.get() >= MIN_REPLAY_OPS,
        "only {} operations",
        total.get()
    );
}
