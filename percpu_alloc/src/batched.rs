//! `BatchedCounter`: Linux's `percpu_counter` in this crate's terms. Each CPU keeps a small delta that
//! it folds into a shared total when it reaches the batch, so that the total is an O(1) approximate
//! value; an exact sum is kept beside it.

use core::cmp::Ordering as CmpOrdering;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use crate::offline::Node;
use crate::part::{self, Part};
use crate::AllocError;

/// The batch of [`BatchedCounter::new`]: a CPU folds its delta into the shared total once it
/// reaches 64 in absolute value.
///
/// Why 64, independent of the CPU count: a fold is one atomic read-modify-write of the shared total,
/// the operation a per-CPU counter exists to avoid (tens of ns when CPUs contend for it), so the
/// batch sets the share of adds that pay for one: 1/64, a fraction of the per-CPU add itself even
/// when contended. The error of [`read`](BatchedCounter::read) then grows linearly with the CPUs,
/// `63 × cpu_count` (16 128 on 256 CPUs). Linux's default, `max(32, 2 × CPUs)`, keeps the fold rate
/// per CPU constant by letting the batch grow with the CPU count, so its error grows with the square:
/// 512 × 256 = 131 072 on 256 CPUs, the 512 MiB of 4 KiB pages by which a 2025 report found page
/// counters off on such machines. A counter that must stay closer than the default allows takes
/// the error it tolerates: [`BatchedCounter::with_max_error`].
pub const DEFAULT_BATCH: u32 = 64;

/// A counter whose approximate value is one load, Linux's `percpu_counter`: every CPU adds to a delta
/// of its own and folds it into a shared total when it reaches the batch in absolute value.
///
/// | method | cost | value |
/// |---|---|---|
/// | [`add`](Self::add) | this CPU's parts, guard-less; 1 in [`batch`](Self::batch) adds also an atomic add to the total | — |
/// | [`read`](Self::read) | one atomic load | approximate: within [`error_bound`](Self::error_bound) |
/// | [`sum`](Self::sum) | one atomic load per CPU | exact |
/// | [`compare`](Self::compare) | [`read`](Self::read), and [`sum`](Self::sum) only when the value is within the bound | exact |
/// | [`limited_add`](Self::limited_add) | as [`compare`](Self::compare), then [`add`](Self::add) | adds unless the limit would be crossed |
///
/// # The parts, and what each method guarantees
///
/// Each CPU has two `i64` parts: its **delta**, not yet folded into the shared **total** (between
/// operations `|delta| < batch`), and its **count**, everything ever added on it. An add increments
/// this CPU's count (one guard-less `add_current`) and its delta; when the delta would reach the
/// batch, the CPU takes the whole delta out (sets it to 0) and adds it to the total. So, when no add
/// is running, `sum() = Σ counts = total + Σ deltas`, and:
///
/// - **`read()`** returns the total: `|read() − sum()| ≤ (batch − 1) × cpu_count` (the difference
///   taken wrapping, see below) =
///   [`error_bound()`](Self::error_bound), at most `batch × cpu_count`. While adds run, each add in
///   progress can take up to `batch − 1 + |its delta|` more out of `read()` for the few instructions
///   between taking a delta out and adding it to the total, and the adds that have not reached any
///   part yet are in neither.
/// - **`sum()`** reads every CPU's count: *exact* as [`PerCpuCounter::sum`](crate::PerCpuCounter::sum)
///   is: every add that completed before the call is counted exactly once, no add that starts after
///   it returns is counted, and an add running concurrently is counted entirely or not at all. Folds
///   do not disturb it (they move value between deltas and the total, never between counts), so it
///   needs no lock and never retries. The cost of this: the count part, one more `i64` per CPU and
///   one more instruction per add than Linux's design, whose exact sum takes the counter's lock
///   against folds.
/// - Whoever sees a fold in `read()` and then issues an acquire fence sees the adds it stands for in
///   `sum()` (the fold's add to the total is a release): for a counter that only grows,
///   `read() ≤ sum()` read after it.
///
/// Values wrap (as `i64`) on overflow, like [`PerCpuCounter`](crate::PerCpuCounter)'s; `read()` and
/// `sum()` then agree modulo 2⁶⁴ (`sum() = read() + e`, wrapping, with `|e| ≤ error_bound()`), so
/// the two may lie at the two ends of `i64` when the value has just wrapped; [`compare`](Self::compare)
/// and [`limited_add`](Self::limited_add) decide from `sum()` whenever the range around `read()`
/// reaches past `i64`.
///
/// # Interrupts and migration
///
/// [`add`](Self::add) is safe against interrupts and preemption without a guard, on every
/// architecture; its argument is at the loop in its source. A CPU going offline: see
/// [`cpu_offline`](crate::cpu_offline).
pub struct BatchedCounter {
    /// Every CPU's delta, not yet folded into the total.
    deltas: Part,
    /// Every CPU's count: everything ever added on it.
    counts: Part,
    /// The batch minus one (the batch is at least 1): a delta above it in absolute value is folded.
    below: u64,
    /// Twice [`below`](Self::below): `|delta| <= below` is `delta + below <= span` as unsigned numbers.
    span: u64,
    /// The shared total, and the counter's place in the registry of `cpu_offline`; owned (freed by
    /// `Drop`).
    node: NonNull<Node>,
}

// SAFETY: the parts are `PerCpu<i64>` handles (`Send + Sync`); the node is `Send + Sync` and owned.
unsafe impl Send for BatchedCounter {}
// SAFETY: as above; every method takes `&self` and touches the node through atomics only.
unsafe impl Sync for BatchedCounter {}

impl BatchedCounter {
    /// A counter at zero with the [`DEFAULT_BATCH`].
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn new() -> Result<Self, AllocError> {
        Self::with_batch(DEFAULT_BATCH)
    }

    /// A counter at zero that folds a CPU's delta when it reaches `batch` in absolute value (0 is
    /// taken as 1: every add folds, and `read()` is exact when no add runs).
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn with_batch(batch: u32) -> Result<Self, AllocError> {
        let deltas = part::zeroed()?;
        let counts = part::zeroed()?;
        let node = Node::register(deltas.vma());
        let below = u64::from(batch.max(1) - 1);
        Ok(Self {
            deltas,
            counts,
            below,
            span: 2 * below,
            node,
        })
    }

    /// A counter at zero whose [`read`](Self::read) is at most `max_error` away from its exact value
    /// when no add runs: the largest batch with `(batch − 1) × cpu_count ≤ max_error` (a batch of
    /// `max_error / cpu_count + 1`).
    ///
    /// # Errors
    ///
    /// See [`AllocError`].
    pub fn with_max_error(max_error: u64) -> Result<Self, AllocError> {
        let cpus = percpu::cpu_count().max(1) as u64;
        let batch = (max_error / cpus).saturating_add(1);
        Self::with_batch(u32::try_from(batch).unwrap_or(u32::MAX))
    }

    /// The batch.
    pub fn batch(&self) -> u32 {
        // At most `u32::MAX - 1` plus one.
        self.below as u32 + 1
    }

    /// How far [`read`](Self::read) may be from [`sum`](Self::sum) when no add runs:
    /// `(batch − 1) × cpu_count`.
    pub fn error_bound(&self) -> u64 {
        self.below.saturating_mul(percpu::cpu_count() as u64)
    }

    /// Adds `delta` (wrapping): to this CPU's count and delta, folding the delta into the shared total
    /// when it reaches the batch. Safe against interrupts and preemption without a guard.
    #[inline]
    pub fn add(&self, delta: i64) {
        // The exact part: one guard-less add, on the count of some CPU the task runs on during it.
        part::add(&self.counts, delta);
        // The delta. The counter's approximate state is `total + Σ deltas`; each attempt below either
        // changes nothing (a failed compare-and-swap) or, in one compare-and-swap on one CPU's delta,
        // replaces the value `current` that this delta held at that instant by `current + delta`, or
        // by 0 with `current + delta` then added to the total. Either way the state grows by exactly
        // `delta`, whatever happened to that part before: the update depends on the value found, not
        // on its history (a handler that changed it and changed it back is harmless). The loop ends
        // at the first successful compare-and-swap, so the add lands exactly once: never lost, never
        // doubled.
        // - An interrupt handler that adds on this CPU between the read and the compare-and-swap
        //   changes the delta, so the compare-and-swap fails and the loop retries with the value it
        //   found (handlers complete before the interrupted code resumes).
        // - A migration between the read and the compare-and-swap makes the compare-and-swap act on
        //   the new CPU's delta (or, in the window `percpu` documents for its architecture, the
        //   previous CPU's, atomically): it succeeds only if that delta holds `current`, which is all
        //   the argument above needs; otherwise it fails and the loop goes on with the value found.
        // - Every successful compare-and-swap leaves `|delta| < batch` in the part it acts on, so the
        //   bound of `read()` holds whichever CPU's part that is.
        // What stays in the delta: `new` if `|new| < batch` (that is, `new + batch - 1` in
        // `0..=2 × (batch - 1)` as an unsigned number), else 0 and `new` is folded (`new != 0` then).
        let mut current = part::read(&self.deltas);
        loop {
            let new = current.wrapping_add(delta);
            let keep = (new as u64).wrapping_add(self.below) <= self.span;
            let stays = new & -i64::from(keep);
            match part::cmpxchg(&self.deltas, current, stays) {
                Ok(_) => {
                    if stays != new {
                        self.fold(new);
                    }
                    return;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Adds `amount`, taken out of a CPU's delta, to the shared total.
    #[cold]
    fn fold(&self, amount: i64) {
        // Release: a reader that acquires the new total sees the count increments of the adds it
        // contains (each add increments its count before it folds).
        self.node().total.fetch_add(amount, Ordering::Release);
    }

    crate::counter::inc_dec!();

    /// The approximate value: the shared total, one relaxed atomic load, within
    /// [`error_bound`](Self::error_bound) of [`sum`](Self::sum) when no add runs (see the type
    /// documentation for adds in progress).
    #[inline]
    pub fn read(&self) -> i64 {
        self.node().total.load(Ordering::Relaxed)
    }

    /// The exact value: every CPU's count, summed (see the type documentation for what exact means
    /// while adds run).
    pub fn sum(&self) -> i64 {
        part::sum(&self.counts)
    }

    /// The value compared with `value`: from [`read`](Self::read) when it is farther from `value`
    /// than [`error_bound`](Self::error_bound) (then the exact value is on the same side), from
    /// [`sum`](Self::sum) otherwise. Exact when no add runs concurrently; with adds running, correct
    /// for the value at some instant of the call unless adds in progress (see the type
    /// documentation) take more out of `read()` than the distance beyond the bound.
    pub fn compare(&self, value: i64) -> CmpOrdering {
        match self.range() {
            Some((low, _)) if i128::from(value) < low => CmpOrdering::Greater,
            Some((_, high)) if i128::from(value) > high => CmpOrdering::Less,
            _ => self.sum().cmp(&value),
        }
    }

    /// `read() ± error_bound()`, where the value lies when no add runs, or `None` if that range
    /// reaches past `i64`: the value may have wrapped, and only [`sum`](Self::sum) tells (the parts
    /// agree with it modulo 2⁶⁴; an outside review found `compare` wrong there).
    fn range(&self) -> Option<(i128, i128)> {
        let (approximate, bound) = (i128::from(self.read()), i128::from(self.error_bound()));
        let (low, high) = (approximate - bound, approximate + bound);
        (low >= i128::from(i64::MIN) && high <= i128::from(i64::MAX)).then_some((low, high))
    }

    /// Adds `delta` if the value stays on its side of `limit`: for `delta > 0`, if the value plus
    /// `delta` is at most `limit`; for `delta < 0`, if it is at least `limit`; returns whether it
    /// added (`delta == 0` always does). Decides from [`read`](Self::read) when even its error bound
    /// cannot make a difference, from [`sum`](Self::sum) otherwise (as [`compare`](Self::compare)).
    ///
    /// Exact when no other add runs concurrently. Calls that run concurrently do not see each
    /// other's deltas, so together they may cross the limit by up to the sum of their deltas (and of
    /// the amounts adds in progress take out of `read()`); adds made with [`add`](Self::add) are not
    /// checked at all. (Linux's `percpu_counter_limited_add` has the same window.)
    pub fn limited_add(&self, delta: i64, limit: i64) -> bool {
        if delta == 0 {
            return true;
        }
        let (delta_wide, limit) = (i128::from(delta), i128::from(limit));
        let fits = |value: i128| {
            if delta > 0 {
                value + delta_wide <= limit
            } else {
                value + delta_wide >= limit
            }
        };
        // The value lies in `range()`: decide from it if the whole range agrees.
        let add = match self.range() {
            Some((low, high)) if delta > 0 && fits(high) || delta < 0 && fits(low) => true,
            Some((low, high)) if delta > 0 && !fits(low) || delta < 0 && !fits(high) => false,
            _ => fits(i128::from(self.sum())),
        };
        if add {
            self.add(delta);
        }
        add
    }

    /// The shared node.
    fn node(&self) -> &Node {
        // SAFETY: owned by the counter, freed only by `Drop`.
        unsafe { self.node.as_ref() }
    }
}

impl Drop for BatchedCounter {
    fn drop(&mut self) {
        // SAFETY: registered by `with_batch`, unregistered once, here; the parts are freed after this
        // (the fields are dropped after `drop` returns), so `cpu_offline` never sees freed parts.
        unsafe { Node::unregister(self.node) };
    }
}

impl core::fmt::Debug for BatchedCounter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchedCounter")
            .field("read", &self.read())
            .field("sum", &self.sum())
            .field("batch", &self.batch())
            .finish()
    }
}
