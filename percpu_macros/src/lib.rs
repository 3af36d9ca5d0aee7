//! The `#[def_percpu]` attribute of the [`percpu`](https://docs.rs/percpu) crate.
//!
//! **Do not depend on this crate directly**: use `percpu::def_percpu`, which is a re-export.
//!
//! The attribute is deliberately thin. It checks the item, then emits
//!
//! - `percpu::__percpu_define! { .. }`: the runtime's `macro_rules!`, which defines the storage (a
//!   `static mut` in the `.percpu` template section, or a plain global in `sp-naive` mode), a
//!   zero-sized wrapper type `<NAME>_WRAPPER` and the static `<NAME>` of that type with its methods.
//!   Every `unsafe` block lives there and reaches the runtime through `$crate`, never through the
//!   path this attribute was given (which its user controls);
//! - compile-time checks of the type (alignment, integer spelling, `Send`, `static mut`), which
//!   contain no `unsafe`.
//!
//! All architecture and feature knowledge lives in the runtime crate, so this crate has no features.

use proc_macro::TokenStream;

mod args;
mod expand;
mod item;
mod stats;

/// Defines a per-CPU static variable: every CPU gets its own copy, initialized to `init`.
///
/// ```text
/// #[percpu::def_percpu]
/// static COUNTER: u64 = 0;
///
/// COUNTER.add_current(1); // one instruction on x86_64: `add gs:[COUNTER], 1`
/// ```
///
/// The generated code names the runtime `percpu`, resolved where the attribute is used (as with
/// `percpu` 0.4): the dependency, or anything a `use` names `percpu`. The optional argument
/// `crate = path` names it otherwise: a renamed dependency (`#[def_percpu(crate = per_cpu)]`) or a
/// re-export (`#[def_percpu(crate = my_kernel::percpu)]`).
/// A type that is not `Send` gets a warning (its copy serves every task of its CPU in turn), which
/// `#[def_percpu(allow_non_send)]` silences for values that never leave their CPU; the checked tier
/// refuses such types.
///
/// See the documentation of the `percpu` crate for the generated methods.
#[proc_macro_attribute]
pub fn def_percpu(attr: TokenStream, item: TokenStream) -> TokenStream {
    let args = match syn::parse::<args::Args>(attr) {
        Ok(args) => args,
        Err(err) => return err.to_compile_error().into(),
    };
    let item = match syn::parse::<syn::Item>(item) {
        Ok(syn::Item::Static(item)) => item,
        Ok(other) => {
            return syn::Error::new_spanned(
                other,
                "`#[def_percpu]` applies to a `static` item: `static NAME: Type = init;`",
            )
            .to_compile_error()
            .into()
        }
        Err(err) => return err.to_compile_error().into(),
    };
    match item::PerCpuStatic::from_item(item) {
        Ok(var) => expand::expand(&var, &args.runtime_path(), args.allow_non_send).into(),
        Err(err) => err.to_compile_error().into(),
    }
}

/// Derives `percpu::stats::StatsStruct` for a plain struct of integer fields, and generates
/// `<Name>Fields<'a>`: the same field names, each a `percpu::stats::Field` whose operations (`add`,
/// `sub`, `inc`) act on this CPU's copy of the field with one guard-less read-modify-write.
///
/// ```text
/// #[derive(percpu::PerCpuStats)]
/// pub struct NetStats { pub rx_packets: u64, pub rx_bytes: u64, pub errors: u32 }
///
/// #[percpu::def_percpu]
/// static NET: percpu::stats::StatsCell<NetStats> = percpu::stats::StatsCell::new();
/// ```
///
/// `#[percpu_stats(crate = path)]` names the `percpu` crate when it is reached through a re-export.
/// See the documentation of `percpu::stats`.
#[proc_macro_derive(PerCpuStats, attributes(percpu_stats))]
pub fn derive_per_cpu_stats(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(input).and_then(stats::derive) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}
