// `PerCpuPrimitive` and `PerCpuInteger` are sealed: an outside type cannot opt into the hardware integer
// operations (a `bool` wrapper would end up holding 2 after an `add_current`).

#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq)]
struct Flag(bool);

impl percpu::PerCpuPrimitive for Flag {
    fn to_bits(self) -> u64 {
        self.0 as u64
    }
    unsafe fn from_bits(bits: u64) -> Self {
        Flag(bits != 0)
    }
}

impl percpu::PerCpuInteger for Flag {
    fn wrapping_neg(self) -> Self {
        self
    }
    fn wrapping_add(self, rhs: Self) -> Self {
        Flag(self.0 | rhs.0)
    }
}

fn main() {}
