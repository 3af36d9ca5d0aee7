//! Bit tricks on 64-bit bitmap words.
//!
//! Bit `i` of a word stands for granule `i` of the 64 granules the word
//! covers; "free" words have a bit set for every free granule.

/// Granules covered by one bitmap word.
pub(super) const WORD_BITS: usize = u64::BITS as usize;

/// Mask with bits `lo..hi` set (`lo <= hi <= 64`).
pub(super) fn bit_range(lo: usize, hi: usize) -> u64 {
    debug_assert!(lo <= hi && hi <= WORD_BITS);
    match hi - lo {
        0 => 0,
        WORD_BITS => u64::MAX,
        len => ((1u64 << len) - 1) << lo,
    }
}

/// Bits `p` of `free` such that bits `p..p + n` are all set (`1 <= n <= 64`).
///
/// A run does not continue past bit 63: runs that cross into the next word
/// are the business of the caller.
pub(super) fn run_starts(free: u64, n: usize) -> u64 {
    debug_assert!((1..=WORD_BITS).contains(&n));
    // Invariant: bit p of `starts` is set iff bits p..p + have are all set.
    let mut starts = free;
    let mut have = 1;
    while have < n {
        // Combining two overlapping runs of `have` bits, `step <= have` apart,
        // gives one run of `have + step` bits.
        let step = have.min(n - have);
        starts &= starts >> step;
        have += step;
    }
    starts
}

/// Length of the longest run of set bits in `free`.
pub(super) fn longest_run(free: u64) -> u32 {
    if free == u64::MAX {
        return u64::BITS;
    }
    // runs[k]: bit p set iff bits p..p + 2^k are all set.
    let mut runs = [free; 6];
    for k in 1..runs.len() {
        runs[k] = runs[k - 1] & (runs[k - 1] >> (1 << (k - 1)));
    }
    // Binary lifting: `starts` holds the bits where a run of `len` bits
    // starts; extend `len` by decreasing powers of two while some run allows.
    // `len` stays below 64 because `free` has a clear bit.
    let mut len = 0;
    let mut starts = u64::MAX;
    for k in (0..runs.len()).rev() {
        let longer = starts & (runs[k] >> len);
        if longer != 0 {
            starts = longer;
            len += 1 << k;
        }
    }
    len
}

/// Bits `p` of word number `word` whose granule index `word * 64 + p` is
/// congruent to `phase` modulo `align` (a power of two; `phase < align`).
pub(super) fn aligned_positions(word: usize, align: usize, phase: usize) -> u64 {
    debug_assert!(align.is_power_of_two() && phase < align);
    let first = phase.wrapping_sub(word * WORD_BITS) & (align - 1);
    if first >= WORD_BITS {
        0
    } else if align >= WORD_BITS {
        1 << first
    } else {
        // u64::MAX / (2^align - 1) has exactly the bits 0, align, 2 * align...
        (u64::MAX / ((1u64 << align) - 1)) << first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic generator of test words, rich in long runs.
    fn sample_words() -> impl Iterator<Item = u64> {
        let mut rng = crate::offset_alloc::test_rng::XorShift::new(0x9E37_79B9_7F4A_7C15);
        let fixed = [0, u64::MAX, 1, 1 << 63, u64::MAX >> 1, u64::MAX << 1];
        let random = (0..if cfg!(miri) { 40 } else { 2000 }).map(move |_| {
            let state = rng.next_u64();
            // Or/and-ing shifted copies makes long runs of ones and zeros.
            match state % 3 {
                0 => state,
                1 => state | state.rotate_left(1) | state.rotate_left(2),
                _ => state & state.rotate_left(1) & state.rotate_left(2),
            }
        });
        fixed.into_iter().chain(random)
    }

    fn naive_run_at(free: u64, p: usize) -> usize {
        (p..WORD_BITS).take_while(|&i| (free >> i) & 1 == 1).count()
    }

    #[test]
    fn bit_range_edges() {
        assert_eq!(bit_range(0, 0), 0);
        assert_eq!(bit_range(64, 64), 0);
        assert_eq!(bit_range(0, 64), u64::MAX);
        assert_eq!(bit_range(3, 5), 0b11000);
        assert_eq!(bit_range(60, 64), 0xF << 60);
    }

    #[test]
    fn run_starts_matches_naive() {
        // Under Miri, fewer lengths: the naive reference takes most of its time.
        let lengths: &[usize] = if cfg!(miri) {
            &[1, 5, 32, 64]
        } else {
            &[1, 2, 3, 5, 8, 17, 32, 63, 64]
        };
        for free in sample_words() {
            for &n in lengths {
                let expected = (0..WORD_BITS)
                    .filter(|&p| naive_run_at(free, p) >= n)
                    .fold(0u64, |acc, p| acc | 1 << p);
                assert_eq!(run_starts(free, n), expected, "{free:#x} n={n}");
            }
        }
    }

    #[test]
    fn longest_run_matches_naive() {
        for free in sample_words() {
            let expected = (0..WORD_BITS).map(|p| naive_run_at(free, p)).max().unwrap();
            assert_eq!(longest_run(free) as usize, expected, "{free:#x}");
        }
    }

    #[test]
    fn aligned_positions_match_naive() {
        for align in [1, 2, 4, 8, 32, 64, 128, 512] {
            for phase in [0, 1, align / 2, align - 1] {
                for word in 0..10 {
                    let expected = (0..WORD_BITS)
                        .filter(|&p| (word * WORD_BITS + p) % align == phase % align)
                        .fold(0u64, |acc, p| acc | 1 << p);
                    assert_eq!(
                        aligned_positions(word, align, phase % align),
                        expected,
                        "align={align} phase={phase} word={word}"
                    );
                }
            }
        }
    }
}
