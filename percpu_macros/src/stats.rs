//! `#[derive(PerCpuStats)]`: checks that the item is a non-generic struct with named fields, and emits
//! one call of the runtime's `__percpu_stats_define!`, which defines the `<Name>Fields<'a>` struct and
//! the `percpu::stats::StatsStruct` implementation.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
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
    let fields = fields.iter().map(|field| {
        let (ident, ty, field_vis) = (field.ident.as_ref().expect("named"), &field.ty, &field.vis);
        let cfgs = field.attrs.iter().filter(|a| is_cfg(a));
        let docs = field.attrs.iter().filter(|a| a.path().is_ident("doc"));
        let heading = format!("`{ident}`: this CPU's copy of the field.");
        quote! {
            [#(#cfgs)*] [#[doc = #heading] #[doc = ""] #(#docs)*] #field_vis #ident: #ty,
        }
    });
    let doc = format!(
        "The fields of [`{name}`] kept per CPU (`#[derive(PerCpuStats)]`): each one's operations act on \
         this CPU's copy of the field."
    );
    // Everything with `unsafe` comes from the runtime's macro, which reaches the runtime through
    // `$crate`, never through `rt` (a path the user controls): see `percpu::__percpu_define!`.
    Ok(quote! {
        #rt::__percpu_stats_define! {
            doc: #doc,
            #vis struct #name => #fields_name {
                #(#fields)*
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
