//! The semantics of the guard-less read-modify-write operations, on one CPU: every integer type and
//! `bool`, for `#[def_percpu]` statics and `percpu_alloc::PerCpuCell` handles (which reach their copies
//! through `percpu::raw`). Shared by the hosted (`tests/ops.rs`) and `sp-naive` (`tests/sp_naive.rs`)
//! suites.

/// Checks every operation on `$var` (a static or a handle) of integer type `$ty`, on this CPU.
#[macro_export]
macro_rules! check_integer_ops {
    ($var:expr, $ty:ty) => {{
        let var = &$var;
        let n = |v: i8| v as $ty;
        var.write_current(n(10));
        assert_eq!(var.fetch_add_current(n(5)), n(10));
        assert_eq!(var.read_current(), n(15));
        var.add_current(n(2));
        var.sub_current(n(7));
        assert_eq!(var.read_current(), n(10));
        // Wrapping, at the type's width.
        var.write_current(<$ty>::MAX);
        assert_eq!(var.fetch_add_current(n(1)), <$ty>::MAX);
        assert_eq!(var.read_current(), <$ty>::MIN);
        var.sub_current(n(1));
        assert_eq!(var.read_current(), <$ty>::MAX);
        var.add_current(n(-1));
        assert_eq!(var.read_current(), <$ty>::MAX.wrapping_sub(1));

        assert_eq!(var.xchg_current(n(7)), <$ty>::MAX.wrapping_sub(1));
        assert_eq!(var.xchg_current(<$ty>::MIN), n(7));
        assert_eq!(var.cmpxchg_current(<$ty>::MIN, n(9)), Ok(<$ty>::MIN));
        assert_eq!(var.read_current(), n(9));
        assert_eq!(var.cmpxchg_current(n(7), n(11)), Err(n(9)));
        assert_eq!(var.read_current(), n(9));
        // A value that equals the expected one only in its low bits does not match.
        var.write_current(<$ty>::MAX);
        assert_eq!(var.cmpxchg_current(<$ty>::MAX ^ 1, n(3)), Err(<$ty>::MAX));
        assert_eq!(var.cmpxchg_current(<$ty>::MAX, <$ty>::MIN), Ok(<$ty>::MAX));
        assert_eq!(var.read_current(), <$ty>::MIN);

        var.write_current(n(0b1100));
        var.and_current(n(0b1010));
        assert_eq!(var.read_current(), n(0b1000));
        var.or_current(n(0b0011));
        assert_eq!(var.read_current(), n(0b1011));
        var.xor_current(n(0b1001));
        assert_eq!(var.read_current(), n(0b0010));
        // The top bit (the sign bit of a signed type), and all bits.
        let top = n(1).rotate_right(1);
        var.or_current(top);
        assert_eq!(var.read_current(), n(0b0010) | top);
        var.xor_current(!n(0));
        assert_eq!(var.read_current(), !(n(0b0010) | top));
        var.and_current(top);
        assert_eq!(var.read_current(), n(0));
        var.write_current(!n(0));
        var.and_current(n(0));
        assert_eq!(var.read_current(), n(0));
    }};
}

/// Checks the swaps on `$var`, a `bool` static or handle.
#[macro_export]
macro_rules! check_bool_ops {
    ($var:expr) => {{
        let var = &$var;
        var.write_current(false);
        assert!(!var.xchg_current(true));
        assert!(var.read_current());
        assert_eq!(var.cmpxchg_current(false, false), Err(true));
        assert_eq!(var.cmpxchg_current(true, false), Ok(true));
        assert!(!var.read_current());
    }};
}

/// Defines one integer static per type and the test running [`check_integer_ops`] and
/// [`check_bool_ops`] on them and on a `PerCpuCell` handle of each type; `$cpu` is an expression giving a
/// guard that makes this thread a CPU, `$alloc` one that sets up `percpu_alloc` (once).
#[macro_export]
macro_rules! operations_tests {
    ($cpu:expr, $alloc:expr) => {
        mod operations {
            use percpu::def_percpu;
            use percpu_alloc::PerCpuCell;

            #[def_percpu]
            static U8: u8 = 0;
            #[def_percpu]
            static U16: u16 = 0;
            #[def_percpu]
            static U32: u32 = 0;
            #[def_percpu]
            static U64: u64 = 0;
            #[def_percpu]
            static USIZE: usize = 0;
            #[def_percpu]
            static I8: i8 = 0;
            #[def_percpu]
            static I16: i16 = 0;
            #[def_percpu]
            static I32: i32 = 0;
            #[def_percpu]
            static I64: i64 = 0;
            #[def_percpu]
            static ISIZE: isize = 0;
            #[def_percpu]
            static FLAG: bool = false;

            #[test]
            fn every_operation_on_statics() {
                let _cpu = $cpu;
                $crate::check_integer_ops!(U8, u8);
                $crate::check_integer_ops!(U16, u16);
                $crate::check_integer_ops!(U32, u32);
                $crate::check_integer_ops!(U64, u64);
                $crate::check_integer_ops!(USIZE, usize);
                $crate::check_integer_ops!(I8, i8);
                $crate::check_integer_ops!(I16, i16);
                $crate::check_integer_ops!(I32, i32);
                $crate::check_integer_ops!(I64, i64);
                $crate::check_integer_ops!(ISIZE, isize);
                $crate::check_bool_ops!(FLAG);
            }

            #[test]
            fn every_operation_on_handles() {
                let _cpu = $cpu;
                $alloc;
                $crate::check_integer_ops!(PerCpuCell::<u8>::new_with(|_| 0).unwrap(), u8);
                $crate::check_integer_ops!(PerCpuCell::<u16>::new_with(|_| 0).unwrap(), u16);
                $crate::check_integer_ops!(PerCpuCell::<u32>::new_with(|_| 0).unwrap(), u32);
                $crate::check_integer_ops!(PerCpuCell::<u64>::new_with(|_| 0).unwrap(), u64);
                $crate::check_integer_ops!(PerCpuCell::<usize>::new_with(|_| 0).unwrap(), usize);
                $crate::check_integer_ops!(PerCpuCell::<i8>::new_with(|_| 0).unwrap(), i8);
                $crate::check_integer_ops!(PerCpuCell::<i16>::new_with(|_| 0).unwrap(), i16);
                $crate::check_integer_ops!(PerCpuCell::<i32>::new_with(|_| 0).unwrap(), i32);
                $crate::check_integer_ops!(PerCpuCell::<i64>::new_with(|_| 0).unwrap(), i64);
                $crate::check_integer_ops!(PerCpuCell::<isize>::new_with(|_| 0).unwrap(), isize);
                $crate::check_bool_ops!(PerCpuCell::<bool>::new_with(|_| false).unwrap());
            }
        }
    };
}
