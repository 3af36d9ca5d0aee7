//! [`PerCpuStatic`]: what every `#[def_percpu]` static tells generic code about itself.

/// Implemented by `#[def_percpu]` for the wrapper type of every per-CPU static: the static's type and
/// VMA, so that generic code (the statistics structs of [`stats`](crate::stats)) can reach a static of
/// a given type without knowing its name.
///
/// # Safety
///
/// [`vma`](Self::vma) designates a [`Value`](Self::Value) in every per-CPU area, initialized, for as
/// long as the program runs (what a `#[def_percpu]` static's
/// [`symbol_vma`](crate::EXAMPLE_PERCPU_DATA_WRAPPER::symbol_vma) is).
pub unsafe trait PerCpuStatic {
    /// The static's type.
    type Value;

    /// The static's VMA: its address in the template (see the crate's address model).
    fn vma(&self) -> usize;
}
