//! Checking the annotated `static` and sorting its attributes.

use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, ItemStatic, StaticMutability, Type, Visibility};

/// The integer types that get guard-less read-modify-write methods.
const INTEGER_TYPES: [&str; 10] = [
    "u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize",
];

/// What kind of value the variable holds, which decides the extra methods it gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer of at most 64 bits: `read/write_current` and `add/sub_current`.
    Integer,
    /// `bool`: `read/write_current`.
    Bool,
    /// Anything else: only the pointer, reference and closure methods.
    Other,
}

/// A validated `#[def_percpu]` static.
pub struct PerCpuStatic {
    pub name: Ident,
    pub vis: Visibility,
    pub ty: Type,
    /// `ty` with its elided lifetimes (`&str`) written as `'static`, which a static's type means: for
    /// the positions where elision is not allowed (generic arguments in expressions, where clauses).
    pub static_ty: Type,
    pub init: Expr,
    pub kind: Kind,
    /// The `mut` of `static mut`, accepted as percpu 0.4 does (it has no effect), with a warning.
    pub mut_token: Option<proc_macro2::Span>,
    /// `#[cfg]`/`#[cfg_attr]`: go on every generated item.
    pub cfg_attrs: Vec<Attribute>,
    /// Doc comments: go on the wrapper static that users see.
    pub doc_attrs: Vec<Attribute>,
    /// Lint levels: go on both statics.
    pub lint_attrs: Vec<Attribute>,
    /// Everything else (`no_mangle`, `export_name`, ...): goes on the storage static.
    pub storage_attrs: Vec<Attribute>,
}

impl PerCpuStatic {
    /// Checks `item` and sorts its attributes.
    pub fn from_item(item: ItemStatic) -> syn::Result<Self> {
        let mut_token = match item.mutability {
            StaticMutability::Mut(token) => Some(token.span),
            _ => None,
        };
        check_type(&item.ty)?;

        let mut var = Self {
            kind: kind_of(&item.ty),
            mut_token,
            name: item.ident,
            vis: item.vis,
            static_ty: with_static_lifetimes(&item.ty),
            ty: *item.ty,
            init: *item.expr,
            cfg_attrs: Vec::new(),
            doc_attrs: Vec::new(),
            lint_attrs: Vec::new(),
            storage_attrs: Vec::new(),
        };
        for attr in item.attrs {
            let path = attr.path();
            if path.is_ident("cfg") || path.is_ident("cfg_attr") {
                var.cfg_attrs.push(attr);
            } else if path.is_ident("doc") {
                var.doc_attrs.push(attr);
            } else if ["allow", "warn", "deny", "expect"]
                .iter()
                .any(|lint| path.is_ident(lint))
            {
                var.lint_attrs.push(attr);
            } else if path.is_ident("link_section") || is_unsafe_link_section(&attr) {
                return Err(syn::Error::new(
                    attr.span(),
                    "`#[def_percpu]` places the variable in the `.percpu` section itself; \
                     remove this `link_section`",
                ));
            } else {
                var.storage_attrs.push(attr);
            }
        }
        Ok(var)
    }
}

/// `#[unsafe(link_section = "...")]`.
fn is_unsafe_link_section(attr: &Attribute) -> bool {
    let syn::Meta::List(list) = &attr.meta else {
        return false;
    };
    list.path.is_ident("unsafe") && list.tokens.to_string().starts_with("link_section")
}

/// Rejects types that cannot be the type of a per-CPU static, with a message saying why.
fn check_type(ty: &Type) -> syn::Result<()> {
    let reason = match ty {
        Type::Infer(_) => "a per-CPU static needs an explicit type",
        Type::ImplTrait(_) => "a per-CPU static cannot have an `impl Trait` type: name the type",
        Type::Never(_) => "a per-CPU static cannot have the type `!`",
        Type::Slice(_) | Type::TraitObject(_) => {
            "a per-CPU static needs a type whose size is known at compile time \
             (every CPU area holds one copy at a fixed offset)"
        }
        Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
            "a per-CPU static needs a type whose size is known at compile time: \
             use `&'static str` for a string"
        }
        Type::Paren(inner) => return check_type(&inner.elem),
        Type::Group(inner) => return check_type(&inner.elem),
        _ => return Ok(()),
    };
    Err(syn::Error::new(ty.span(), reason))
}

/// Classifies the type by its spelling, as written by the user.
fn kind_of(ty: &Type) -> Kind {
    let path = match ty {
        Type::Path(path) => path,
        // A type passed through a `macro_rules!` `$ty` is wrapped in an invisible group.
        Type::Group(inner) => return kind_of(&inner.elem),
        Type::Paren(inner) => return kind_of(&inner.elem),
        _ => return Kind::Other,
    };
    let Some(ident) = path.path.get_ident() else {
        return Kind::Other;
    };
    let name = ident.to_string();
    if name == "bool" {
        Kind::Bool
    } else if INTEGER_TYPES.contains(&name.as_str()) {
        Kind::Integer
    } else {
        Kind::Other
    }
}

/// `ty` with every elided or anonymous (`'_`) reference lifetime replaced by `'static`.
fn with_static_lifetimes(ty: &Type) -> Type {
    use syn::visit_mut::{self, VisitMut};

    struct FillStatic;

    impl VisitMut for FillStatic {
        fn visit_type_reference_mut(&mut self, reference: &mut syn::TypeReference) {
            match &reference.lifetime {
                Some(lifetime) if lifetime.ident != "_" => {}
                _ => reference.lifetime = Some(syn::parse_quote!('static)),
            }
            visit_mut::visit_type_reference_mut(self, reference);
        }

        fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
            if lifetime.ident == "_" {
                *lifetime = syn::parse_quote!('static);
            }
        }
    }

    let mut ty = ty.clone();
    FillStatic.visit_type_mut(&mut ty);
    ty
}
