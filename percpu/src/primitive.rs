//! The value types that per-CPU accessors move in one load or store, and the read-modify-write
//! operations on them.

/// The seal of [`PerCpuPrimitive`] and [`PerCpuInteger`]: only this crate implements them.
mod sealed {
    /// Implemented by this crate exactly for the integer primitives of at most 64 bits and `bool`.
    pub trait Sealed {}
}

/// A value that a per-CPU accessor can load or store with one instruction: the integer primitives of
/// at most 64 bits and `bool`.
///
/// The trait is sealed: this crate implements it for exactly those types, and its accessors rely on
/// what they are: each is 1, 2, 4 or 8 bytes, has no padding, and `from_bits(x.to_bits())` is `x`.
pub trait PerCpuPrimitive: sealed::Sealed + Copy + Eq + Send + Sync + 'static {
    /// The value's bytes, zero-extended (the accessors use the low `size_of::<Self>()` bytes).
    fn to_bits(self) -> u64;

    /// The value whose bytes are the low `size_of::<Self>()` bytes of `bits`.
    ///
    /// # Safety
    ///
    /// Those bytes must be a valid `Self` (they are, when read from a location holding a `Self`).
    unsafe fn from_bits(bits: u64) -> Self;
}

/// An integer [`PerCpuPrimitive`] (`u8`..`u64`, `usize`, `i8`..`i64`, `isize`): supports the guard-less
/// read-modify-write operations (`add_current`, `fetch_add_current`, `and_current`, ...).
///
/// Sealed, as [`PerCpuPrimitive`]; the accessors also rely on every bit pattern of the type's size
/// being a valid value, so that the hardware's integer operations on its bytes give a valid result.
pub trait PerCpuInteger: PerCpuPrimitive {
    /// `-self`, wrapping: subtraction is addition of the negation.
    fn wrapping_neg(self) -> Self;
    /// `self + rhs`, wrapping.
    fn wrapping_add(self, rhs: Self) -> Self;
}

macro_rules! impl_integer {
    ($($ty:ty => $unsigned:ty),* $(,)?) => {$(
        impl sealed::Sealed for $ty {}
        impl PerCpuPrimitive for $ty {
            #[inline(always)]
            fn to_bits(self) -> u64 {
                self as $unsigned as u64
            }
            #[inline(always)]
            unsafe fn from_bits(bits: u64) -> Self {
                bits as $ty
            }
        }
        impl PerCpuInteger for $ty {
            #[inline(always)]
            fn wrapping_neg(self) -> Self {
                <$ty>::wrapping_neg(self)
            }
            #[inline(always)]
            fn wrapping_add(self, rhs: Self) -> Self {
                <$ty>::wrapping_add(self, rhs)
            }
        }
    )*};
}

impl_integer!(
    u8 => u8, u16 => u16, u32 => u32, u64 => u64, usize => usize,
    i8 => u8, i16 => u16, i32 => u32, i64 => u64, isize => usize,
);

impl sealed::Sealed for bool {}
impl PerCpuPrimitive for bool {
    #[inline(always)]
    fn to_bits(self) -> u64 {
        self as u64
    }
    #[inline(always)]
    unsafe fn from_bits(bits: u64) -> Self {
        // SAFETY: the caller guarantees the low byte is 0 or 1, a valid `bool`. A transmute rather than
        // the comparison that the `unnecessary_transmutes` lint of some nightlies suggests (nightly
        // 2025-05-20; later ones no longer flag it): the comparison costs a normalizing `test` and
        // `setne` after every load on x86_64 (`read_current` of a `bool`: 3 instructions instead of 1,
        // `cargo xtask codegen`), where the transmute tells the compiler the byte is 0 or 1.
        #[allow(clippy::transmute_int_to_bool, unnecessary_transmutes)]
        unsafe {
            core::mem::transmute::<u8, bool>(bits as u8)
        }
    }
}

/// The value loaded by a zero-extending load of `size_of::<T>()` bytes into `bits`; telling the
/// compiler that the upper bits are zero spares a re-extension of the result.
///
/// # Safety
///
/// `bits` must come from a zero-extending load of a location holding a `T`.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn from_loaded<T: PerCpuPrimitive>(bits: u64) -> T {
    let size = core::mem::size_of::<T>();
    // SAFETY: the caller guarantees a zero-extended valid `T`.
    unsafe {
        if size < 8 {
            core::hint::assert_unchecked(bits >> (8 * size) == 0);
        }
        T::from_bits(bits)
    }
}

/// As [`from_loaded`], for a sign-extending load of 4 bytes (riscv64's `lw`, loongarch64's `ldx.w`,
/// which give 32-bit values in the form their ABIs pass them).
///
/// # Safety
///
/// `bits` must come from a sign-extending 4-byte load of a location holding a `T` of 4 bytes.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn from_loaded_sext32<T: PerCpuPrimitive>(bits: u64) -> T {
    // SAFETY: the caller guarantees a sign-extended valid `T`.
    unsafe {
        core::hint::assert_unchecked(bits == bits as i32 as i64 as u64);
        T::from_bits(bits)
    }
}

/// `value`'s bytes as the unsigned integer `R` of the same size, for passing it to an instruction at its
/// own width (widening it to 64 bits first would cost a zero-extension).
///
/// # Safety
///
/// `R` is an integer of exactly `size_of::<T>()` bytes.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn bits_as<T: PerCpuPrimitive, R: Copy>(value: T) -> R {
    debug_assert_eq!(core::mem::size_of::<T>(), core::mem::size_of::<R>());
    // SAFETY: same size (the caller's contract), and every bit pattern is a valid integer.
    unsafe { core::mem::transmute_copy(&value) }
}
