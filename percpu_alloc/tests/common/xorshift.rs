//! A small deterministic pseudo-random generator (xorshift64), shared by the unit tests of
//! `offset_alloc` (through `#[path]`) and the integration tests.

/// The generator's state.
pub struct XorShift(u64);

impl XorShift {
    /// A generator starting from `seed` (non-zero).
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A pseudo-random number below `bound` (non-zero).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }
}
