//! The per-CPU variables under test, one of every primitive type plus a
//! struct, and the checks every CPU runs on each of them.
//!
//! Each CPU writes its own *pattern* to every variable: [`pattern_bits`] for
//! the integers (so that every width, truncated, differs from the initial
//! values, and every width of 16 bits or more between CPUs), `cpu % 2 == 0`
//! for the `bool`, and a CPU-stamped [`Record`] for the struct. Once all CPUs wrote theirs,
//! each reads every other CPU's copies remotely and expects that CPU's
//! pattern: this proves that the areas do not overlap and that every CPU's
//! per-CPU register points at its own area.

use core::fmt::Debug;
use core::mem::{align_of, size_of};

use crate::check::{expect, expect_eq};
use crate::link::PERCPU_VMA;

/// A value type of the variables under test.
pub trait Value: Copy + PartialEq + Debug {
    /// The value CPU `cpu` writes to its copy.
    fn pattern(cpu: usize) -> Self;
}

/// An integer value type: its pattern, small constants and wrapping arithmetic.
pub trait IntValue: Value {
    /// `n` as this type.
    fn small(n: u8) -> Self;
    /// `self + rhs`, wrapping.
    fn plus(self, rhs: Self) -> Self;
    /// `self - rhs`, wrapping.
    fn minus(self, rhs: Self) -> Self;
}

/// The bits of CPU `cpu`'s integer pattern: every 16-bit lane is
/// `(0xc0 ^ cpu / 56) << 8 | (0xc0 + cpu % 56)`.
///
/// The lanes of different CPUs differ (up to 56 × 256 CPUs), so every type of
/// 16 bits or more tells the CPUs apart; the low byte, all an 8-bit type
/// keeps, is 0xc0 to 0xf7, which no initial value is, and repeats every 56
/// CPUs. None of the patterns is an initial value.
pub const fn pattern_bits(cpu: usize) -> u64 {
    let lane = ((0xc0 ^ (cpu / 56) as u64) & 0xff) << 8 | (0xc0 + (cpu % 56) as u64);
    0x0001_0001_0001_0001 * lane
}

macro_rules! int_values {
    ($($ty:ty),*) => {$(
        impl Value for $ty {
            fn pattern(cpu: usize) -> Self {
                pattern_bits(cpu) as $ty
            }
        }
        impl IntValue for $ty {
            fn small(n: u8) -> Self {
                n as $ty
            }
            fn plus(self, rhs: Self) -> Self {
                self.wrapping_add(rhs)
            }
            fn minus(self, rhs: Self) -> Self {
                self.wrapping_sub(rhs)
            }
        }
    )*};
}
int_values!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl Value for bool {
    fn pattern(cpu: usize) -> Self {
        cpu.is_multiple_of(2)
    }
}

/// A non-primitive per-CPU value, over-aligned to check the areas' alignment.
#[derive(Clone, Copy, PartialEq, Debug)]
#[repr(C, align(16))]
pub struct Record {
    cpu: usize,
    tag: [u8; 4],
    samples: [u16; 3],
    armed: bool,
}

impl Record {
    /// The initial value.
    const INIT: Self = Self {
        cpu: usize::MAX,
        tag: *b"init",
        samples: [1, 2, 3],
        armed: false,
    };
}

impl Value for Record {
    fn pattern(cpu: usize) -> Self {
        Self {
            cpu,
            tag: [b'c', b'p', b'u', b'0'.wrapping_add(cpu as u8)],
            samples: [cpu as u16, 100 + cpu as u16, 1000 + cpu as u16],
            armed: true,
        }
    }
}

/// Uniform access to one `#[def_percpu]` static: forwards to the methods the
/// macro generates, so that the checks below are written once for all types.
pub trait PerCpu {
    /// The variable's type.
    type T: Value;
    /// The variable's name, for messages.
    const NAME: &'static str;
    /// Evaluates the variable's initializer.
    fn init(&self) -> Self::T;
    /// `offset()`.
    fn offset(&self) -> usize;
    /// `symbol_vma()`.
    fn symbol_vma(&self) -> usize;
    /// `current_ptr()`.
    ///
    /// # Safety
    ///
    /// As the generated method: the per-CPU register is set, no migration.
    unsafe fn current_ptr(&self) -> *const Self::T;
    /// `current_ref_raw()`.
    ///
    /// # Safety
    ///
    /// As the generated method: no `&mut` to this CPU's copy is live.
    unsafe fn current_ref_raw(&self) -> &Self::T;
    /// `current_ref_mut_raw()`.
    ///
    /// # Safety
    ///
    /// As the generated method: no other reference to this CPU's copy is live.
    #[allow(clippy::mut_from_ref)]
    unsafe fn current_ref_mut_raw(&self) -> &mut Self::T;
    /// `with_current(f)`.
    fn with_current<R>(&self, f: impl FnOnce(&mut Self::T) -> R) -> R;
    /// `reset_to_init()`.
    fn reset_to_init(&self);
    /// `remote_ptr(cpu)`.
    ///
    /// # Safety
    ///
    /// As the generated method: `cpu` is valid and nothing races with the access.
    unsafe fn remote_ptr(&self, cpu: usize) -> *const Self::T;
    /// `remote_ref_raw(cpu)`.
    ///
    /// # Safety
    ///
    /// As the generated method: `cpu` is valid and no `&mut` to its copy is live.
    unsafe fn remote_ref_raw(&self, cpu: usize) -> &Self::T;
}

/// The accessors of primitive (integer and `bool`) variables.
pub trait Primitive: PerCpu {
    /// `read_current()`.
    fn read_current(&self) -> Self::T;
    /// `write_current(value)`.
    fn write_current(&self, value: Self::T);
    /// `read_current_raw()`.
    ///
    /// # Safety
    ///
    /// As the generated method: the per-CPU register is set, no migration.
    unsafe fn read_current_raw(&self) -> Self::T;
    /// `write_current_raw(value)`.
    ///
    /// # Safety
    ///
    /// As the generated method: no reference to this CPU's copy is live.
    unsafe fn write_current_raw(&self, value: Self::T);
}

/// The guard-less read-modify-write of integer variables.
pub trait Integer: Primitive<T: IntValue> {
    /// `add_current(value)`.
    fn add_current(&self, value: Self::T);
    /// `sub_current(value)`.
    fn sub_current(&self, value: Self::T);
}

/// Defines the variables under test, each in its own module as `VAR` with an
/// `Access` implementing the traits its kind supports (`int`, `bool` or
/// `other`), and the functions running the checks on all of them.
///
/// `#[mut]` before the type declares a `static mut` (accepted as percpu 0.4 does).
///
/// The types go through `ty` fragments, which wrap them in invisible groups:
/// `#[def_percpu]` must still recognize the primitive types behind them (as
/// `percpu` 0.4 did) and generate their extra accessors.
macro_rules! test_vars {
    ($($kind:ident $module:ident: $(#[$mut:tt])? $ty:ty = $init:expr;)*) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;

                #[percpu::def_percpu]
                #[allow(deprecated)] // `static mut` warns that `mut` has no effect, as intended
                pub static $($mut)? VAR: $ty = $init;

                /// Access to [`VAR`] through the traits of the parent module.
                pub struct Access;

                impl PerCpu for Access {
                    type T = $ty;
                    const NAME: &'static str = stringify!($module);
                    fn init(&self) -> $ty {
                        $init
                    }
                    fn offset(&self) -> usize {
                        VAR.offset()
                    }
                    fn symbol_vma(&self) -> usize {
                        VAR.symbol_vma()
                    }
                    unsafe fn current_ptr(&self) -> *const $ty {
                        // SAFETY: forwarded to the caller.
                        unsafe { VAR.current_ptr() }
                    }
                    unsafe fn current_ref_raw(&self) -> &$ty {
                        // SAFETY: forwarded to the caller.
                        unsafe { VAR.current_ref_raw() }
                    }
                    unsafe fn current_ref_mut_raw(&self) -> &mut $ty {
                        // SAFETY: forwarded to the caller.
                        unsafe { VAR.current_ref_mut_raw() }
                    }
                    fn with_current<R>(&self, f: impl FnOnce(&mut $ty) -> R) -> R {
                        VAR.with_current(f)
                    }
                    fn reset_to_init(&self) {
                        VAR.reset_to_init()
                    }
                    unsafe fn remote_ptr(&self, cpu: usize) -> *const $ty {
                        // SAFETY: forwarded to the caller.
                        unsafe { VAR.remote_ptr(cpu) }
                    }
                    unsafe fn remote_ref_raw(&self, cpu: usize) -> &$ty {
                        // SAFETY: forwarded to the caller.
                        unsafe { VAR.remote_ref_raw(cpu) }
                    }
                }

                test_vars!(@impl $kind $ty);
            }
        )*

        /// The number of variables under test.
        pub const COUNT: usize = [$(stringify!($module)),*].len() + 1;

        /// Runs the local checks of every variable on CPU `cpu`, leaving
        /// the CPU's pattern in each.
        pub fn check_local_all(cpu: usize) {
            $(
                check_local(&$module::Access, cpu);
                test_vars!(@local $kind $module, cpu);
            )*
            check_page_local(cpu);
        }

        /// Checks CPU `other`'s copies of every variable from CPU `cpu`.
        pub fn check_remote_all(cpu: usize, other: usize) {
            $(check_remote(&$module::Access, cpu, other);)*
            check_page_remote(cpu, other);
        }
    };

    (@impl other $ty:ty) => {};
    (@impl bool $ty:ty) => {
        test_vars!(@primitive $ty);
    };
    (@impl int $ty:ty) => {
        test_vars!(@primitive $ty);
        impl Integer for Access {
            fn add_current(&self, value: $ty) {
                VAR.add_current(value)
            }
            fn sub_current(&self, value: $ty) {
                VAR.sub_current(value)
            }
        }
    };
    (@primitive $ty:ty) => {
        impl Primitive for Access {
            fn read_current(&self) -> $ty {
                VAR.read_current()
            }
            fn write_current(&self, value: $ty) {
                VAR.write_current(value)
            }
            unsafe fn read_current_raw(&self) -> $ty {
                // SAFETY: forwarded to the caller.
                unsafe { VAR.read_current_raw() }
            }
            unsafe fn write_current_raw(&self, value: $ty) {
                // SAFETY: forwarded to the caller.
                unsafe { VAR.write_current_raw(value) }
            }
        }
    };

    (@local other $module:ident, $cpu:expr) => {};
    (@local bool $module:ident, $cpu:expr) => {
        check_primitive(&$module::Access, $cpu);
    };
    (@local int $module:ident, $cpu:expr) => {
        check_primitive(&$module::Access, $cpu);
        check_integer(&$module::Access, $cpu);
    };
}

test_vars! {
    int u8_var: u8 = 0x5a;
    int u16_var: u16 = 0x1234;
    int u32_var: u32 = 0x89ab_cdef;
    int u64_var: u64 = 0x0123_4567_89ab_cdef;
    int usize_var: usize = 0x5a5a_5a5a;
    int i8_var: i8 = -8;
    int i16_var: i16 = -1616;
    int i32_var: i32 = -323_232;
    int i64_var: i64 = -64_646_464_646;
    int isize_var: isize = -1;
    bool bool_var: bool = false;
    other record_var: Record = Record::INIT;
    // percpu 0.4 spellings that real hypervisors use: `static mut` (no effect), page-aligned state.
    int u32_mut_var: #[mut] u32 = 0x0bad_cafe;
    other record_mut_var: #[mut] Record = Record::INIT;
}

/// The value CPU `cpu`'s copy must hold after [`check_local`] wrote its
/// pattern. With `selftest-fail`, deliberately the wrong one (the next CPU's),
/// so that the run must fail.
fn expected_pattern<T: Value>(cpu: usize) -> T {
    T::pattern(cpu + usize::from(cfg!(feature = "selftest-fail")))
}

/// Local checks of any variable: initial value, addresses, `with_current`,
/// `reset_to_init` and the raw references; leaves the CPU's pattern in it.
fn check_local<V: PerCpu>(var: &V, cpu: usize) {
    let name = V::NAME;
    let init = var.init();
    let pattern = V::T::pattern(cpu);

    expect_eq(
        cpu,
        format_args!("{name}: initial value"),
        var.with_current(|v| *v),
        init,
    );

    let offset = var.offset();
    expect_eq(
        cpu,
        format_args!("{name}: symbol_vma()"),
        var.symbol_vma(),
        PERCPU_VMA + offset,
    );
    expect(
        cpu,
        offset + size_of::<V::T>() <= percpu::percpu_area_size(),
        format_args!("{name}: offset {offset:#x} outside the area"),
    );
    // SAFETY: this CPU's register is set and nothing preempts this kernel.
    let ptr = unsafe { var.current_ptr() };
    expect_eq(
        cpu,
        format_args!("{name}: current_ptr()"),
        ptr as usize,
        percpu::percpu_area_base(cpu) + offset,
    );
    expect(
        cpu,
        (ptr as usize).is_multiple_of(align_of::<V::T>()),
        format_args!("{name}: current_ptr() {ptr:p} misaligned"),
    );

    var.with_current(|v| *v = pattern);
    // SAFETY: as above, and no `&mut` to the copy is live.
    let got = unsafe { *var.current_ref_raw() };
    expect_eq(
        cpu,
        format_args!("{name}: after with_current"),
        got,
        pattern,
    );

    var.reset_to_init();
    // SAFETY: as above.
    let got = unsafe { var.current_ptr().read() };
    expect_eq(cpu, format_args!("{name}: after reset_to_init"), got, init);

    // SAFETY: as above, and no other reference to the copy is live.
    unsafe { *var.current_ref_mut_raw() = pattern };
    let got = var.with_current(|v| *v);
    expect_eq(
        cpu,
        format_args!("{name}: after current_ref_mut_raw"),
        got,
        expected_pattern(cpu),
    );
}

/// Checks of the `read/write_current(_raw)` accessors; leaves the pattern.
fn check_primitive<V: Primitive>(var: &V, cpu: usize) {
    let name = V::NAME;
    let pattern = V::T::pattern(cpu);
    let init = var.init();

    var.write_current(init);
    expect_eq(
        cpu,
        format_args!("{name}: after write_current"),
        var.read_current(),
        init,
    );
    // SAFETY: this CPU's register is set, nothing preempts this kernel, and no
    // reference to the copy is live.
    let got = unsafe {
        var.write_current_raw(pattern);
        var.read_current_raw()
    };
    expect_eq(
        cpu,
        format_args!("{name}: after write_current_raw"),
        got,
        pattern,
    );
    expect_eq(
        cpu,
        format_args!("{name}: read_current"),
        var.read_current(),
        pattern,
    );
}

/// Checks of `add_current`/`sub_current`, wrapping around for the narrow
/// types; leaves the pattern.
fn check_integer<V: Integer>(var: &V, cpu: usize) {
    let name = V::NAME;
    let pattern = V::T::pattern(cpu);
    let (a, b) = (V::T::small(100), V::T::small(250));

    var.add_current(a);
    let expected = pattern.plus(a);
    expect_eq(
        cpu,
        format_args!("{name}: after add_current"),
        var.read_current(),
        expected,
    );
    var.sub_current(b);
    let expected = expected.minus(b);
    expect_eq(
        cpu,
        format_args!("{name}: after sub_current"),
        var.read_current(),
        expected,
    );
    var.add_current(b.minus(a));
    expect_eq(
        cpu,
        format_args!("{name}: add/sub round trip"),
        var.read_current(),
        pattern,
    );
}

/// Checks CPU `other`'s copy of a variable from CPU `cpu`: its address and its
/// pattern.
fn check_remote<V: PerCpu>(var: &V, cpu: usize, other: usize) {
    let name = V::NAME;
    // SAFETY: `other` is a running CPU that finished writing its copy before
    // the barrier this CPU passed, and no CPU writes it during the checks.
    let (ptr, got) = unsafe { (var.remote_ptr(other), *var.remote_ref_raw(other)) };
    expect_eq(
        cpu,
        format_args!("{name}: remote_ptr({other})"),
        ptr as usize,
        percpu::percpu_area_base(other) + var.offset(),
    );
    expect_eq(
        cpu,
        format_args!("{name} of cpu {other}"),
        got,
        V::T::pattern(other),
    );
}

/// A hypervisor's per-CPU state holding page-aligned structures: its copies are page-aligned on every
/// CPU because the areas and their stride are aligned to the largest alignment in the template. It is
/// checked in place (a copy of it would cost a page of stack each time).
#[repr(C, align(4096))]
pub struct PageState {
    cpu: usize,
    page: [u8; 4096],
}

#[percpu::def_percpu]
static PAGE_STATE: PageState = PageState {
    cpu: usize::MAX,
    page: [0x5a; 4096],
};

/// Checks CPU `cpu`'s copy of [`PAGE_STATE`]: address, alignment and initial contents; then stamps it
/// with the CPU's pattern.
fn check_page_local(cpu: usize) {
    // SAFETY: this CPU's register is set and nothing preempts this kernel.
    let ptr = unsafe { PAGE_STATE.current_ptr() } as usize;
    expect_eq(
        cpu,
        format_args!("page_state: current_ptr()"),
        ptr,
        percpu::percpu_area_base(cpu) + PAGE_STATE.offset(),
    );
    expect(
        cpu,
        ptr.is_multiple_of(4096) && percpu::percpu_area_align() == 4096,
        format_args!("page_state: copy at {ptr:#x} is not page-aligned"),
    );
    PAGE_STATE.with_current(|state| {
        let fresh = state.cpu == usize::MAX && state.page.iter().all(|&b| b == 0x5a);
        expect(cpu, fresh, format_args!("page_state: initial value"));
        state.cpu = cpu;
        state.page[cpu % 4096] = 0xc0;
    });
}

/// Checks CPU `other`'s copy of [`PAGE_STATE`] from CPU `cpu`.
fn check_page_remote(cpu: usize, other: usize) {
    // SAFETY: `other` finished writing its copy before the barrier this CPU passed, and nobody writes
    // it during the checks.
    let state = unsafe { PAGE_STATE.remote_ref_raw(other) };
    let addr = state as *const PageState as usize;
    expect(
        cpu,
        addr.is_multiple_of(4096) && addr == percpu::percpu_area_base(other) + PAGE_STATE.offset(),
        format_args!("page_state: remote copy of cpu {other} at {addr:#x}"),
    );
    let stamped = state.cpu == other
        && state
            .page
            .iter()
            .enumerate()
            .all(|(i, &b)| b == if i == other % 4096 { 0xc0 } else { 0x5a });
    expect(cpu, stamped, format_args!("page_state of cpu {other}"));
}
