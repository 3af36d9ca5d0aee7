//! `#[derive(PerCpuStats)]`: checks that the item is a non-generic struct with named fields, and emits
//! the `<Name>Fields<'a>` struct and the `percpu::stats::StatsStruct` implementation, whose bodies are
//! one call into the runtime (`percpu::stats`) per field.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, Path, Token};

/// Expands the derive on `input`.
pub fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let rt = runtime_path(&input.attrs)?;
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "`#[derive(PerCpuStats)]` takes a struct without generic parameters",
        ));
    }
    let fields =
        match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => &fields.named,
                _ => {
                    return Err(syn::Error::new_spanned(
                        &input.ident,
                        "`#[derive(PerCpuStats)]` takes a struct with named integer fields \
                     (`rx_packets: u64, ...`)",
                    ))
                }
            },
            _ => return Err(syn::Error::new_spanned(
                &input.ident,
                "`#[derive(PerCpuStats)]` takes a struct of integer fields, not an enum or union",
            )),
        };

    if fields.is_empty() {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "`#[derive(PerCpuStats)]` takes a struct with at least one integer field",
        ));
    }

    let name = &input.ident;
    let vis = &input.vis;
    let fields_name = format_ident!("{name}Fields");
    let mut view = Vec::new();
    let mut zero = Vec::new();
    let mut at = Vec::new();
    let mut add = Vec::new();
    let mut checks = Vec::new();
    for field in fields {
        let (ident, ty, field_vis) = (field.ident.as_ref().expect("named"), &field.ty, &field.vis);
        let cfgs: Vec<&Attribute> = field.attrs.iter().filter(|a| is_cfg(a)).collect();
        let docs: Vec<&Attribute> = field
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .collect();
        let heading = format!("`{ident}`: this CPU's copy of the field.");
        // Reported at the field's type, as every error that comes from it.
        let span = ty.span();
        let rt = crate::expand::respan(&rt, span);
        view.push(quote_spanned! {span=>
            #(#cfgs)*
            #[doc = #heading]
            #[doc = ""]
            #(#docs)*
            #field_vis #ident: #rt::stats::Field<'a, #ty>
        });
        zero.push(quote_spanned!(span=> #(#cfgs)* #ident: 0));
        at.push(quote_spanned! {span=>
            #(#cfgs)*
            #ident: #rt::stats::Field::__at(vma, ::core::mem::offset_of!(Self, #ident))
        });
        add.push(quote_spanned! {span=>
            #(#cfgs)*
            copy.add_to(&mut self.#ident, ::core::mem::offset_of!(Self, #ident));
        });
        checks.push(quote_spanned! {span=>
            #(#cfgs)*
            const _: () = #rt::stats::check_field::<#ty>();
        });
    }
    let doc = format!(
        "The fields of [`{name}`] kept per CPU (`#[derive(PerCpuStats)]`): each one's operations act on \
         this CPU's copy of the field."
    );

    Ok(quote! {
        #[doc = #doc]
        #[derive(Clone, Copy)]
        #vis struct #fields_name<'a> {
            #(#view,)*
        }

        #(#checks)*

        // SAFETY: generated from the struct's own fields: every field is a `PerCpuInteger` (the bound
        // of `Field`) that the target loads atomically (`check_field`); `ZERO` sets each to 0; each
        // `Field` and each read uses the field's own offset and type.
        unsafe impl #rt::stats::StatsStruct for #name {
            const ZERO: Self = Self { #(#zero,)* };

            type Fields<'a> = #fields_name<'a>;

            #[inline(always)]
            unsafe fn __fields<'a>(vma: usize) -> #fields_name<'a> {
                // SAFETY: `vma` designates a `StatsCell<Self>` for `'a` (the caller's contract), and
                // each field of that type lies at its offset.
                unsafe { #fields_name { #(#at,)* } }
            }

            #[inline]
            fn __add_copy(&mut self, copy: &#rt::stats::CopyReader<'_, Self>) {
                // SAFETY: each field of that type lies at its offset.
                unsafe { #(#add)* }
            }
        }
    })
}

/// The runtime's path: `#[percpu_stats(crate = path)]`, or found as `#[def_percpu]` finds it.
fn runtime_path(attrs: &[Attribute]) -> syn::Result<TokenStream> {
    let mut path = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("percpu_stats")) {
        let arg: CrateArg = attr.parse_args()?;
        if path.replace(arg.0).is_some() {
            return Err(syn::Error::new_spanned(attr, "`crate` is given twice"));
        }
    }
    Ok(match path {
        Some(path) => quote!(#path),
        None => syn::parse2::<crate::args::Args>(TokenStream::new())?.runtime_path(),
    })
}

/// `crate = path`, the one argument of `#[percpu_stats(...)]`.
struct CrateArg(Path);

impl Parse for CrateArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if !input.peek(Token![crate]) {
            return Err(
                input.error("`#[percpu_stats]` takes one argument: `crate = path::to::percpu`")
            );
        }
        input.parse::<Token![crate]>()?;
        input.parse::<Token![=]>()?;
        Ok(Self(input.parse()?))
    }
}

/// Whether `attr` is `#[cfg]` or `#[cfg_attr]`: kept on everything generated for its field.
fn is_cfg(attr: &Attribute) -> bool {
    attr.path().is_ident("cfg") || attr.path().is_ident("cfg_attr")
}
