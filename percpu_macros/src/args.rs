//! Arguments of `#[def_percpu(...)]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::{Path, Token};

/// The parsed attribute arguments.
pub struct Args {
    /// `crate = path`: where the `percpu` runtime is, when it is re-exported.
    runtime: Option<Path>,
    /// `allow_non_send`: no warning for a type that is not `Send` (its value never leaves its CPU).
    pub allow_non_send: bool,
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut runtime = None;
        let mut allow_non_send = false;
        while !input.is_empty() {
            if input.peek(syn::Ident) && input.fork().parse::<syn::Ident>()? == "allow_non_send" {
                let key: syn::Ident = input.parse()?;
                if std::mem::replace(&mut allow_non_send, true) {
                    return Err(syn::Error::new(
                        key.span(),
                        "`allow_non_send` is given twice",
                    ));
                }
            } else if input.peek(Token![crate]) {
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
                    "unknown argument: `#[def_percpu]` takes `crate = path::to::percpu` and \
                     `allow_non_send`",
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(Self {
            runtime,
            allow_non_send,
        })
    }
}

impl Args {
    /// The path through which generated code reaches the runtime crate: `crate = path` if given;
    /// else `crate` inside the runtime itself, and `percpu` elsewhere, resolved where the attribute
    /// is used, as `percpu` 0.4 does: the dependency itself, or a `use` that names the crate `percpu`
    /// (a renamed dependency, a re-export). Nothing reads `Cargo.toml`: the crate needs no TOML
    /// parser (see the README, "What a kernel's build pulls in").
    pub fn runtime_path(&self) -> TokenStream {
        match &self.runtime {
            Some(path) => quote!(#path),
            // The runtime's own per-CPU statics (cargo names the crate being compiled).
            None if std::env::var("CARGO_CRATE_NAME").as_deref() == Ok("percpu") => quote!(crate),
            None => quote!(percpu),
        }
    }
}
