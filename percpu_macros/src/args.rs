//! Arguments of `#[def_percpu(...)]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Path, Token};

/// The parsed attribute arguments.
pub struct Args {
    /// `crate = path`: where the `percpu` runtime is, when it is re-exported.
    runtime: Option<Path>,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut runtime = None;
        while !input.is_empty() {
            if input.peek(Token![crate]) {
                let key: Token![crate] = input.parse()?;
                input.parse::<Token![=]>()?;
                let path: Path = input.parse()?;
                if runtime.replace(path).is_some() {
                    return Err(syn::Error::new(key.span, "`crate` is given twice"));
                }
            } else {
                let unknown: TokenStream = input.parse()?;
                return Err(syn::Error::new_spanned(
                    unknown,
                    "unknown argument: `#[def_percpu]` takes no argument or `crate = path::to::percpu`",
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(Self { runtime })
    }
}

impl Args {
    /// The path through which generated code reaches the runtime crate.
    pub fn runtime_path(&self) -> TokenStream {
        if let Some(path) = &self.runtime {
            return quote!(#path);
        }
        use proc_macro_crate::{crate_name, FoundCrate};
        match crate_name("percpu") {
            // Inside the runtime crate itself (its own per-CPU statics), but not in its doctests
            // or examples, which are separate crates that depend on it.
            Ok(FoundCrate::Itself)
                if std::env::var("CARGO_CRATE_NAME").as_deref() == Ok("percpu") =>
            {
                quote!(crate)
            }
            Ok(FoundCrate::Name(name)) => {
                let ident = syn::Ident::new(&name, Span::call_site());
                quote!(::#ident)
            }
            _ => quote!(::percpu),
        }
    }
}
