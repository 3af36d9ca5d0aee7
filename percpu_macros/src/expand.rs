//! Code generation: the runtime's `__percpu_define!` with the checked item, and the compile-time
//! checks of its type.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::item::{Kind, PerCpuStatic};

/// Expands a validated per-CPU static; `rt` is the path of the runtime crate; `allow_non_send`
/// silences the warning for a type that is not `Send`.
pub fn expand(var: &PerCpuStatic, rt: &TokenStream, allow_non_send: bool) -> TokenStream {
    let PerCpuStatic {
        name,
        vis,
        ty,
        init,
        cfg_attrs,
        doc_attrs,
        lint_attrs,
        storage_attrs,
        ..
    } = var;
    let storage = format_ident!("__PERCPU_{}", name);
    let wrapper = format_ident!("{}_WRAPPER", name);
    let kind = match var.kind {
        Kind::Integer => quote!(integer),
        Kind::Bool => quote!(bool),
        Kind::Other => quote!(other),
    };
    // Reported at the type.
    let rt_at_type = respan(rt, ty.span());
    // `static mut` compiles as in percpu 0.4, where `mut` has no effect, with a warning at the `mut`.
    let mut_warning = var.mut_token.map(|span| {
        let rt = respan(rt, span);
        quote_spanned! {span=>
            #(#lint_attrs)*
            const _: () = #rt::__priv::static_mut_has_no_effect();
        }
    });
    // A warning at the type when it is not `Send` (never an error: percpu 0.4 compiles it).
    let static_ty = &var.static_ty;
    let send_check = (!allow_non_send).then(|| {
        quote_spanned! {ty.span()=>
            const _: fn() = || {
                #[allow(unused_imports)]
                use #rt_at_type::__priv::NotSendFallback as _;
                #rt_at_type::__priv::SendCheck::<#static_ty>::new().check();
            };
        }
    });

    // The storage, the wrapper and its methods come from the runtime's `__percpu_define!`, where
    // every `unsafe` block reaches the runtime through `$crate`: no `unsafe` here names anything
    // through `rt`, a path the user controls.
    quote! {
        #rt::__percpu_define! {
            kind: #kind,
            cfg: [#(#cfg_attrs)*],
            doc: [#(#doc_attrs)*],
            lint: [#(#lint_attrs)*],
            storage: [#(#storage_attrs)*],
            #vis static #name: #ty = #init;
            wrapper: #wrapper,
            storage: #storage,
            static_ty: #static_ty,
        }

        #(#cfg_attrs)*
        #mut_warning

        #(#cfg_attrs)*
        #(#lint_attrs)*
        #send_check
    }
}

/// `tokens` with every span set to `span`, so that an error in code built from them points there.
pub(crate) fn respan(tokens: &TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}
