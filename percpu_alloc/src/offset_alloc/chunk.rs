//! One chunk of the offset space: allocation bitmaps plus a tree of free-run
//! summaries over them.
//!
//! Everything here counts in granules relative to the chunk start; the
//! allocator converts to and from byte offsets.

use alloc::collections::TryReserveError;
use alloc::vec::Vec;

use super::bits::{self, WORD_BITS};
use super::GRANULE;

/// Bit planes needed to store a rounding slack in `0..GRANULE`.
const SLACK_BITS: usize = GRANULE.trailing_zeros() as usize;

/// The bitmap planes of 64 consecutive granules.
#[derive(Clone, Copy, Default)]
struct Word {
    /// Granules covered by a live allocation, and the padding granules past
    /// the end of the chunk (so that they are never handed out).
    used: u64,
    /// Allocation boundaries: the first granule of every live allocation and
    /// the granule just past it have their bit set, and no granule inside a
    /// live allocation does. Stale bits may linger in free space.
    bound: u64,
    /// Rounding slack (bytes added to reach a whole number of granules) of
    /// the allocation starting at each granule, one plane per slack bit.
    slack: [u64; SLACK_BITS],
}

/// Free runs of the span of a tree node, in granules. Granules outside the
/// span count as used.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Runs {
    /// Free granules at the start of the span.
    prefix: u32,
    /// Free granules at the end of the span.
    suffix: u32,
    /// Longest run of free granules in the span.
    max: u32,
}

impl Runs {
    /// Summary of one bitmap word.
    fn of_word(word: &Word) -> Self {
        // Words inside a multi-word allocation are entirely used or free.
        match word.used {
            u64::MAX => return Self::default(),
            0 => {
                return Self {
                    prefix: u64::BITS,
                    suffix: u64::BITS,
                    max: u64::BITS,
                }
            }
            _ => {}
        }
        let free = !word.used;
        Self {
            prefix: free.trailing_ones(),
            suffix: free.leading_ones(),
            max: bits::longest_run(free),
        }
    }

    /// Summary of two adjacent spans of `half` granules each.
    fn join(left: Self, right: Self, half: u32) -> Self {
        Self {
            prefix: if left.prefix == half {
                half + right.prefix
            } else {
                left.prefix
            },
            suffix: if right.suffix == half {
                half + left.suffix
            } else {
                right.suffix
            },
            max: left.max.max(right.max).max(left.suffix + right.prefix),
        }
    }
}

/// `len` copies of `value` in a vector allocated fallibly.
fn filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>, TryReserveError> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(len)?;
    vec.resize(len, value);
    Ok(vec)
}

/// What [`Chunk::find`] looks for: `len` free granules starting at an index
/// congruent to `phase` modulo `align` (a power of two, `phase < align`).
#[derive(Clone, Copy)]
struct Fit {
    len: usize,
    align: usize,
    phase: usize,
}

/// One chunk: a contiguous range of offsets, tracked at granule precision.
pub(super) struct Chunk {
    /// Offset of the first byte of the chunk.
    base: usize,
    /// Number of usable granules.
    granules: usize,
    /// Number of live allocations.
    live: usize,
    /// Bitmap planes, one entry per 64 granules (never resized).
    words: Vec<Word>,
    /// Implicit complete binary tree of [`Runs`]: node 1 is the root, the
    /// children of node `i` are `2i` and `2i + 1`, and word `w` is summarised
    /// by leaf `leaves + w`. Leaves past the last word summarise nothing.
    /// Never resized.
    tree: Vec<Runs>,
    /// Number of leaves of `tree`: the word count rounded up to a power of two.
    leaves: usize,
    /// The words `first..=last` whose summaries in `tree` may not be up to
    /// date yet; see [`Chunk::settle`].
    stale: Option<(usize, usize)>,
    /// If `stale` is a single word, the `used` bits of it that `tree`
    /// describes: if the word is back to them, settling has nothing to do.
    stale_used: u64,
    /// Every word below this index has no free granule, so the leftmost free
    /// granule, if any, is at or after its start. A lower bound, not exact.
    full_words: usize,
}

impl Chunk {
    /// An entirely free chunk of `granules` granules (at least one, and at
    /// most `u32::MAX`) starting at offset `base`, or the error of the heap
    /// if its metadata cannot be allocated.
    pub(super) fn try_new(base: usize, granules: usize) -> Result<Self, TryReserveError> {
        debug_assert!(granules > 0 && u32::try_from(granules).is_ok());
        let word_count = granules.div_ceil(WORD_BITS);
        let mut words = filled(word_count, Word::default())?;
        let tail = granules % WORD_BITS;
        if tail != 0 {
            words[word_count - 1].used = bits::bit_range(tail, WORD_BITS);
        }
        let leaves = word_count.next_power_of_two();
        let mut chunk = Self {
            base,
            granules,
            live: 0,
            words,
            tree: filled(2 * leaves, Runs::default())?,
            leaves,
            stale: None,
            stale_used: 0,
            full_words: 0,
        };
        // Nodes with only padding leaves below keep their all-zero summaries.
        chunk.refresh(0, word_count - 1);
        Ok(chunk)
    }

    /// [`Chunk::try_new`], panicking if the heap is exhausted (tests).
    #[cfg(test)]
    pub(super) fn new(base: usize, granules: usize) -> Self {
        Self::try_new(base, granules).expect("chunk metadata")
    }

    /// Moves the chunk to offset `base`: an entirely free chunk whose
    /// metadata was allocated before its place was known.
    pub(super) fn rebase(&mut self, base: usize) {
        debug_assert_eq!(self.live, 0);
        self.base = base;
    }

    /// Offset of the first byte of the chunk.
    pub(super) fn base(&self) -> usize {
        self.base
    }

    /// Number of usable granules.
    pub(super) fn granules(&self) -> usize {
        self.granules
    }

    /// Number of live allocations.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Length of the longest run of free granules. The chunk must be settled.
    pub(super) fn largest_free_run(&self) -> u32 {
        debug_assert!(self.stale.is_none(), "chunk not settled");
        self.tree[1].max
    }

    /// Brings the tree up to date with the bitmaps.
    ///
    /// [`Chunk::insert`] and [`Chunk::remove`] update only the bitmaps and
    /// leave the words they changed stale, for this call (or the next change
    /// outside those words) to propagate. When an allocation is freed before
    /// the next search, as short-lived objects are, its words are back in the
    /// state the tree describes: settling then stops at their leaves, or
    /// does nothing at all for a single word whose bits are unchanged.
    pub(super) fn settle(&mut self) {
        let Some((first, last)) = self.stale.take() else {
            return;
        };
        if first != last {
            self.refresh(first, last);
        } else if self.words[first].used != self.stale_used {
            self.refresh_word(first);
        }
    }

    /// Finds `len` free granules starting at an index congruent to `phase`
    /// modulo `align` (a power of two; `phase < align`). The chunk must be
    /// settled.
    ///
    /// With `align == 1` this is the lowest such index and costs O(log words).
    /// With a larger alignment it may explore every subtree holding a free run
    /// of `len` granules that is not suitably aligned, but it still finds a
    /// fit whenever there is one.
    pub(super) fn find(&mut self, len: usize, align: usize, phase: usize) -> Option<usize> {
        debug_assert!(len > 0 && align.is_power_of_two() && phase < align);
        debug_assert!(self.stale.is_none(), "chunk not settled");
        if align == 1 {
            self.find_unaligned(len)
        } else {
            let fit = Fit { len, align, phase };
            self.search(1, 0, self.leaves * WORD_BITS, fit)
        }
    }

    /// The lowest index where `len` free granules start: a single descent,
    /// since any run of `len` granules fits. A single granule is often found
    /// at once in the word at `full_words`.
    fn find_unaligned(&mut self, len: usize) -> Option<usize> {
        if len == 1 {
            let word = self.full_words;
            let used = self.words.get(word)?.used;
            if used != u64::MAX {
                return Some(word * WORD_BITS + used.trailing_ones() as usize);
            }
        }
        if (self.tree[1].max as usize) < len {
            return None;
        }
        // Invariant: the span of `node`, `span` granules from `start`, holds a
        // free run of `len` granules.
        let (mut node, mut start, mut span) = (1, 0, self.leaves * WORD_BITS);
        while node < self.leaves {
            let (left, right) = (self.tree[2 * node], self.tree[2 * node + 1]);
            span /= 2;
            if left.max as usize >= len {
                node *= 2;
            } else if (left.suffix + right.prefix) as usize >= len {
                return Some(start + span - left.suffix as usize);
            } else {
                node = 2 * node + 1;
                start += span;
            }
        }
        let found = self.find_in_word(node - self.leaves, len, u64::MAX);
        if len == 1 {
            // The leftmost free granule: every word before its word is full.
            if let Some(granule) = found {
                self.full_words = granule / WORD_BITS;
            }
        }
        found
    }

    /// The lowest granule of word `word` where `len <= 64` free granules
    /// start within the word, among the bits of `allowed`.
    fn find_in_word(&self, word: usize, len: usize, allowed: u64) -> Option<usize> {
        let found = bits::run_starts(!self.words[word].used, len) & allowed;
        (found != 0).then(|| word * WORD_BITS + found.trailing_zeros() as usize)
    }

    /// Depth-first, left-to-right search of the subtree at `node`, whose span
    /// starts at granule `start` and is `span` granules long.
    fn search(&self, node: usize, start: usize, span: usize, fit: Fit) -> Option<usize> {
        if (self.tree[node].max as usize) < fit.len {
            return None;
        }
        if node >= self.leaves {
            // A leaf with a long enough run: `fit.len <= 64` fits in the word.
            let word = node - self.leaves;
            let allowed = bits::aligned_positions(word, fit.align, fit.phase);
            return self.find_in_word(word, fit.len, allowed);
        }
        let half = span / 2;
        let (left, right) = (2 * node, 2 * node + 1);
        if let Some(found) = self.search(left, start, half, fit) {
            return Some(found);
        }
        // The free run across the middle of the span.
        let middle = start + half;
        let run_start = middle - self.tree[left].suffix as usize;
        let run_end = middle + self.tree[right].prefix as usize;
        let aligned = run_start + (fit.phase.wrapping_sub(run_start) & (fit.align - 1));
        if aligned + fit.len <= run_end {
            return Some(aligned);
        }
        self.search(right, middle, half, fit)
    }

    /// Records a live allocation of granules `start..start + len`, which must
    /// be free, whose requested size is `slack` bytes short of `len` granules.
    /// May leave the chunk unsettled.
    pub(super) fn insert(&mut self, start: usize, len: usize, slack: usize) {
        let end = start + len;
        debug_assert!(len > 0 && end <= self.granules && slack < GRANULE);
        let before = self.words[start / WORD_BITS].used;
        self.for_each_word(start, end, |word, mask| {
            debug_assert_eq!(word.used & mask, 0, "allocating used granules");
            word.used |= mask;
            word.bound &= !mask;
        });
        let (word, bit) = (start / WORD_BITS, start % WORD_BITS);
        let first = &mut self.words[word];
        first.bound |= 1 << bit;
        for (slack_bit, plane) in first.slack.iter_mut().enumerate() {
            *plane = (*plane & !(1 << bit)) | (((slack >> slack_bit) as u64 & 1) << bit);
        }
        if end < self.granules {
            self.words[end / WORD_BITS].bound |= 1 << (end % WORD_BITS);
        }
        self.live += 1;
        self.touched(start / WORD_BITS, (end - 1) / WORD_BITS, before);
    }

    /// Length in granules and rounding slack in bytes of the live allocation
    /// starting at granule `start`, or `None` if no live allocation starts
    /// there. Reads only the bitmaps, so the chunk need not be settled.
    pub(super) fn extent(&self, start: usize) -> Option<(usize, usize)> {
        if start >= self.granules {
            return None;
        }
        let (word, bit) = (start / WORD_BITS, start % WORD_BITS);
        let first = &self.words[word];
        // A used granule with a boundary bit can only start an allocation.
        if (first.used & first.bound) >> bit & 1 == 0 {
            return None;
        }
        let slack = first
            .slack
            .iter()
            .enumerate()
            .fold(0, |acc, (slack_bit, plane)| {
                acc | ((*plane >> bit) as usize & 1) << slack_bit
            });
        Some((self.next_bound(start + 1) - start, slack))
    }

    /// Removes the live allocation starting at granule `start` and returns
    /// its length in granules and rounding slack in bytes, or returns `None`
    /// (changing nothing) if no live allocation starts there. May leave the
    /// chunk unsettled.
    pub(super) fn remove(&mut self, start: usize) -> Option<(usize, usize)> {
        let (len, slack) = self.extent(start)?;
        let end = start + len;
        let word = start / WORD_BITS;
        let before = self.words[word].used;
        self.for_each_word(start, end, |word, mask| word.used &= !mask);
        self.live -= 1;
        self.full_words = self.full_words.min(word);
        self.touched(word, (end - 1) / WORD_BITS, before);
        Some((len, slack))
    }

    /// The first granule at or after `from` with a boundary bit, or the
    /// number of granules if there is none.
    fn next_bound(&self, from: usize) -> usize {
        let mut word = from / WORD_BITS;
        let mut mask = u64::MAX << (from % WORD_BITS);
        while let Some(planes) = self.words.get(word) {
            let found = planes.bound & mask;
            if found != 0 {
                return word * WORD_BITS + found.trailing_zeros() as usize;
            }
            word += 1;
            mask = u64::MAX;
        }
        self.granules
    }

    /// Calls `apply` on every word overlapping granules `start..end`, with
    /// the mask of the overlapping bits.
    fn for_each_word(&mut self, start: usize, end: usize, mut apply: impl FnMut(&mut Word, u64)) {
        let mut at = start;
        while at < end {
            let word = at / WORD_BITS;
            let word_start = word * WORD_BITS;
            let hi = (end - word_start).min(WORD_BITS);
            apply(&mut self.words[word], bits::bit_range(at - word_start, hi));
            at = word_start + WORD_BITS;
        }
    }

    /// Accounts for changed bitmap words `first..=last`, the `used` bits of
    /// word `first` having been `before` until the change: they are left
    /// stale (see [`Chunk::settle`]), after settling any other stale words.
    fn touched(&mut self, first: usize, last: usize, before: u64) {
        if let Some((stale_first, stale_last)) = self.stale {
            if stale_first <= first && last <= stale_last {
                // Settling will refresh these words anyway.
                return;
            }
        }
        self.settle();
        // The tree is settled, so it describes the words as they were.
        self.stale = Some((first, last));
        self.stale_used = before;
    }

    /// Recomputes the leaves of words `first..=last` and the tree above
    /// them, level by level, stopping at the first level where no node comes
    /// out changed.
    ///
    /// At every level, `lo..=hi` spans the nodes that changed (maybe with
    /// unchanged ones between them). Their parents, `lo / 2..=hi / 2`, are
    /// all the nodes of the next level that may change; every other node
    /// keeps children that did not change. The spans halve at every level,
    /// so this takes O(last - first + log words) joins.
    fn refresh(&mut self, first: usize, last: usize) {
        let (mut lo, mut hi) = (usize::MAX, 0);
        for word in first..=last {
            let node = self.leaves + word;
            let runs = Runs::of_word(&self.words[word]);
            if self.tree[node] != runs {
                self.tree[node] = runs;
                lo = lo.min(node);
                hi = node;
            }
        }
        let mut half = WORD_BITS as u32;
        // The root (node 1) has no parent.
        while lo <= hi && lo > 1 {
            let (parents_lo, parents_hi) = (lo / 2, hi / 2);
            (lo, hi) = (usize::MAX, 0);
            for node in parents_lo..=parents_hi {
                let runs = Runs::join(self.tree[2 * node], self.tree[2 * node + 1], half);
                if self.tree[node] != runs {
                    self.tree[node] = runs;
                    lo = lo.min(node);
                    hi = node;
                }
            }
            half *= 2;
        }
    }

    /// Recomputes the path from the leaf of word `word` to the root, stopping
    /// at the first node that comes out unchanged.
    fn refresh_word(&mut self, word: usize) {
        let mut node = self.leaves + word;
        let mut runs = Runs::of_word(&self.words[word]);
        let mut half = WORD_BITS as u32;
        while self.tree[node] != runs {
            self.tree[node] = runs;
            if node == 1 {
                return;
            }
            let sibling = self.tree[node ^ 1];
            runs = if node.is_multiple_of(2) {
                Runs::join(runs, sibling, half)
            } else {
                Runs::join(sibling, runs, half)
            };
            node /= 2;
            half *= 2;
        }
    }

    /// Settles the chunk, then checks every summary against the bitmaps and
    /// the live count against the boundary bits (test helper).
    #[cfg(test)]
    pub(super) fn assert_consistent(&mut self) {
        self.settle();
        let is_free = |g: usize| {
            g < self.granules && (self.words[g / WORD_BITS].used >> (g % WORD_BITS)) & 1 == 0
        };
        let mut span = WORD_BITS;
        let mut level = self.leaves;
        while level >= 1 {
            for node in level..2 * level {
                let start = (node - level) * span;
                let (mut run, mut max) = (0, 0);
                for g in start..start + span {
                    run = if is_free(g) { run + 1 } else { 0 };
                    max = max.max(run);
                }
                let prefix = (start..start + span).take_while(|&g| is_free(g)).count();
                let expected = Runs {
                    prefix: prefix as u32,
                    suffix: run,
                    max,
                };
                assert_eq!(self.tree[node], expected, "node {node}");
            }
            level /= 2;
            span *= 2;
        }
        let starts = (0..self.granules)
            .filter(|&g| self.extent(g).is_some())
            .count();
        assert_eq!(starts, self.live);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    /// Lowest granule where `len` free granules start at an index congruent
    /// to `phase` modulo `align`, by brute force over a used-granule mask.
    fn naive_find(used: &[bool], len: usize, align: usize, phase: usize) -> Option<usize> {
        (0..used.len())
            .filter(|p| p % align == phase)
            .find(|&p| p + len <= used.len() && used[p..p + len].iter().all(|u| !u))
    }

    #[test]
    fn fresh_chunk_is_one_run() {
        for granules in [1, 63, 64, 65, 128, 200, 512] {
            let mut chunk = Chunk::new(0, granules);
            chunk.assert_consistent();
            assert_eq!(chunk.largest_free_run() as usize, granules);
            assert_eq!(chunk.find(granules, 1, 0), Some(0));
            assert_eq!(chunk.find(granules + 1, 1, 0), None);
        }
    }

    #[test]
    fn insert_remove_round_trip() {
        let mut chunk = Chunk::new(0x1000, 300);
        chunk.insert(10, 100, 3);
        chunk.insert(110, 1, 0);
        chunk.insert(111, 189, 7);
        chunk.assert_consistent();
        chunk.insert(2, 1, 0);
        chunk.settle();
        assert_eq!(chunk.largest_free_run(), 7);
        assert_eq!(chunk.remove(2), Some((1, 0)));
        chunk.settle();
        assert_eq!(chunk.largest_free_run(), 10);
        assert_eq!(chunk.extent(10), Some((100, 3)));
        assert_eq!(chunk.extent(110), Some((1, 0)));
        assert_eq!(chunk.extent(111), Some((189, 7)));
        assert_eq!(chunk.extent(11), None);
        assert_eq!(chunk.extent(0), None);
        assert_eq!(chunk.remove(110), Some((1, 0)));
        assert_eq!(chunk.remove(110), None);
        assert_eq!(chunk.remove(10), Some((100, 3)));
        chunk.assert_consistent();
        // Changes within one word cancel out before settling.
        chunk.insert(0, 1, 0);
        assert_eq!(chunk.remove(0), Some((1, 0)));
        chunk.assert_consistent();
        assert_eq!(chunk.find(111, 1, 0), Some(0));
        assert_eq!(chunk.find(112, 1, 0), None);
        // The slack of an old allocation must not leak into a new one.
        chunk.insert(10, 2, 0);
        assert_eq!(chunk.extent(10), Some((2, 0)));
        assert_eq!(chunk.remove(111), Some((189, 7)));
        assert_eq!(chunk.live(), 1);
        chunk.assert_consistent();
    }

    #[test]
    fn find_matches_naive_on_random_patterns() {
        let granules = 200;
        let mut chunk = Chunk::new(0, granules);
        let mut used = vec![false; granules];
        let mut live: Vec<usize> = Vec::new();
        let mut rng = crate::offset_alloc::test_rng::XorShift::new(0x2545_F491_4F6C_DD1D);
        let mut next = move |bound: usize| rng.below(bound);
        for _ in 0..if cfg!(miri) { 40 } else { 600 } {
            if live.is_empty() || next(3) != 0 {
                let len = if next(4) == 0 {
                    1 + next(90)
                } else {
                    1 + next(4)
                };
                let align = 1 << next(4);
                let phase = next(align);
                chunk.settle();
                let found = chunk.find(len, align, phase);
                let expected = naive_find(&used, len, align, phase);
                assert_eq!(
                    found.is_some(),
                    expected.is_some(),
                    "len={len} align={align}"
                );
                if align == 1 {
                    assert_eq!(found, expected, "leftmost fit");
                }
                if let Some(start) = found {
                    assert_eq!(start % align, phase);
                    assert!(used[start..start + len].iter().all(|u| !u));
                    chunk.insert(start, len, next(GRANULE));
                    used[start..start + len].fill(true);
                    live.push(start);
                }
            } else {
                let start = live.swap_remove(next(live.len()));
                let (len, _) = chunk.remove(start).expect("live allocation");
                used[start..start + len].fill(false);
            }
        }
        chunk.assert_consistent();
    }

    /// The summary tree of `chunk` rebuilt from its bitmaps, bottom-up over
    /// every node, without any early stop.
    fn rebuilt_tree(chunk: &Chunk) -> Vec<Runs> {
        let mut tree = vec![Runs::default(); 2 * chunk.leaves];
        for (word, planes) in chunk.words.iter().enumerate() {
            tree[chunk.leaves + word] = Runs::of_word(planes);
        }
        let mut half = WORD_BITS as u32;
        let mut level = chunk.leaves / 2;
        while level >= 1 {
            for node in level..2 * level {
                tree[node] = Runs::join(tree[2 * node], tree[2 * node + 1], half);
            }
            level /= 2;
            half *= 2;
        }
        tree
    }

    #[test]
    fn multi_word_refresh_matches_rebuild() {
        // 37 words and a partial one: the tree has padding leaves (under Miri, whose naive checks
        // take minutes at that size, 5 and a partial one: padded to 8 leaves).
        let granules = if cfg!(miri) { 5 } else { 37 } * WORD_BITS + 5;
        let mut chunk = Chunk::new(0, granules);
        let mut used = vec![false; granules];
        let mut live: Vec<usize> = Vec::new();
        let mut rng = crate::offset_alloc::test_rng::XorShift::new(0x9E37_79B9_7F4A_7C15);
        let mut next = move |bound: usize| rng.below(bound);
        for step in 0..if cfg!(miri) { 60 } else { 3000 } {
            if live.is_empty() || next(5) >= 2 {
                // Mostly multi-word allocations, some word-aligned, some
                // small ones to break runs up, at the leftmost fit or at a
                // random free place (changes away from the longest run).
                let len = match next(4) {
                    0 => 1 + next(8),
                    1 => WORD_BITS * (1 + next(6)),
                    _ => WORD_BITS + 1 + next(5 * WORD_BITS),
                };
                let fits = |p: usize| p + len <= granules && used[p..p + len].iter().all(|u| !u);
                let start = if next(2) == 0 {
                    chunk.settle();
                    let found = chunk.find(len, 1, 0);
                    assert_eq!(found, (0..granules).find(|&p| fits(p)), "leftmost fit");
                    found
                } else {
                    let from = next(granules);
                    (from..granules).chain(0..from).find(|&p| fits(p))
                };
                if let Some(start) = start {
                    chunk.insert(start, len, 0);
                    used[start..start + len].fill(true);
                    live.push(start);
                }
            } else {
                let start = live.swap_remove(next(live.len()));
                let (len, _) = chunk.remove(start).expect("live allocation");
                used[start..start + len].fill(false);
            }
            if step % 4 == 0 {
                chunk.settle();
                assert!(chunk.tree[..] == rebuilt_tree(&chunk)[..], "step {step}");
                chunk.settle();
                let leftmost_free = used.iter().position(|u| !u);
                assert_eq!(chunk.find(1, 1, 0), leftmost_free, "step {step}");
            }
        }
        chunk.assert_consistent();
        while let Some(start) = live.pop() {
            chunk.remove(start).expect("live allocation");
            chunk.settle();
            assert!(chunk.tree[..] == rebuilt_tree(&chunk)[..]);
        }
        assert_eq!(chunk.largest_free_run() as usize, granules);
    }
}
