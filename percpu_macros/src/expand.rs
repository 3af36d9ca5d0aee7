//! Code generation: the storage static, the wrapper type and its methods.

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
    let value_methods = value_methods(var, rt, &storage);
    let checked_methods = checked_methods(var, rt);
    // Reported at the type: the types a per-CPU area cannot hold.
    let rt_at_type = respan(rt, ty.span());
    // The integer methods are chosen by how the type is spelled: a type alias named like an integer
    // must really be one (`type i8 = bool;` would give a `bool` an integer add).
    let integer_check = (var.kind == Kind::Integer).then(|| {
        quote_spanned! {ty.span()=>
            const _: () = #rt_at_type::__priv::check_integer::<#ty>();
        }
    });
    let type_check = quote_spanned! {ty.span()=>
        const _: () = #rt_at_type::__priv::check_percpu_type::<#ty>();
        #integer_check
    };
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
    let wrapper_doc = format!(
        "The per-CPU variable [`{name}`]: one copy of `{}` per CPU.",
        quote!(#ty)
    );

    quote! {
        #(#cfg_attrs)*
        #rt::__percpu_storage! {
            #(#lint_attrs)*
            #(#storage_attrs)*
            static #storage: #ty = #init;
        }

        #(#cfg_attrs)*
        #type_check

        #(#cfg_attrs)*
        #mut_warning

        #(#cfg_attrs)*
        #(#lint_attrs)*
        #send_check

        #[doc = #wrapper_doc]
        #(#cfg_attrs)*
        #[allow(non_camel_case_types)]
        #vis struct #wrapper {
            _private: (),
        }

        #(#cfg_attrs)*
        #(#doc_attrs)*
        #(#lint_attrs)*
        #vis static #name: #wrapper = #wrapper { _private: () };

        #(#cfg_attrs)*
        // SAFETY: `symbol_vma` is the static's VMA, which designates its `T` in every area for good.
        unsafe impl #rt::PerCpuStatic for #wrapper {
            type Value = #static_ty;
            #[inline(always)]
            fn vma(&self) -> usize {
                self.symbol_vma()
            }
        }

        #(#cfg_attrs)*
        impl #wrapper {
            /// The address of the variable's template in the `.percpu` section: the same on every CPU,
            /// and equal to [`offset`](Self::offset) unless the section has a non-zero address.
            #[inline]
            pub fn symbol_vma(&self) -> usize {
                // SAFETY: computes a link-time address, touches no memory.
                unsafe { #rt::__percpu_access!(addr_of, sym #storage) }
            }

            /// The variable's offset from the start of a per-CPU area.
            #[inline]
            pub fn offset(&self) -> usize {
                #rt::__priv::offset_of(self.symbol_vma())
            }

            /// A pointer to this CPU's copy.
            ///
            /// # Safety
            ///
            /// The per-CPU register of this CPU must be initialized, and the caller must not migrate to
            /// another CPU while it uses the pointer (preemption disabled).
            #[inline]
            pub unsafe fn current_ptr(&self) -> *const #ty {
                // SAFETY: forwarded to the caller.
                unsafe { #rt::__percpu_access!(ptr, #ty, sym #storage) }
            }

            /// A reference to this CPU's copy.
            ///
            /// # Safety
            ///
            /// As [`current_ptr`](Self::current_ptr), and no `&mut` to this CPU's copy may exist while the
            /// reference lives.
            #[inline]
            pub unsafe fn current_ref_raw(&self) -> &#ty {
                // SAFETY: forwarded to the caller.
                unsafe { &*self.current_ptr() }
            }

            /// A mutable reference to this CPU's copy.
            ///
            /// # Safety
            ///
            /// As [`current_ptr`](Self::current_ptr), and no other reference to this CPU's copy may exist
            /// while the reference lives (beware of interrupt handlers using the same variable).
            #[inline]
            #[allow(clippy::mut_from_ref)]
            pub unsafe fn current_ref_mut_raw(&self) -> &mut #ty {
                // SAFETY: forwarded to the caller.
                unsafe { &mut *(self.current_ptr() as *mut #ty) }
            }

            /// Runs `f` on this CPU's copy, with preemption disabled (feature `preempt`).
            ///
            /// # Panics
            ///
            /// In debug builds, when called while a `with_current` on the same variable is already running on
            /// this CPU (nested call, or an interrupt handler): that would create two `&mut` to one copy.
            #[inline]
            pub fn with_current<__PercpuF, __PercpuR>(&self, f: __PercpuF) -> __PercpuR
            where
                __PercpuF: FnOnce(&mut #ty) -> __PercpuR,
            {
                // SAFETY: the VMA of this static designates a `T` in every area.
                unsafe { #rt::__priv::with_current(self.symbol_vma(), f) }
            }

            /// Resets this CPU's copy to the initial value (evaluating the initializer again).
            #[inline]
            pub fn reset_to_init(&self) {
                self.with_current(|value| *value = #init);
            }

            /// A pointer to CPU `cpu_id`'s copy.
            ///
            /// # Safety
            ///
            /// `cpu_id` must be below [`cpu_count()`](#rt::cpu_count) (checked by `debug_assert!`), and
            /// the caller must rule out data races with that CPU.
            #[inline]
            pub unsafe fn remote_ptr(&self, cpu_id: usize) -> *const #ty {
                // SAFETY: forwarded to the caller.
                unsafe { #rt::__priv::remote_ptr(cpu_id, self.symbol_vma()) }
            }

            /// A reference to CPU `cpu_id`'s copy.
            ///
            /// # Safety
            ///
            /// As [`remote_ptr`](Self::remote_ptr); no `&mut` to that copy may exist while it lives.
            #[inline]
            pub unsafe fn remote_ref_raw(&self, cpu_id: usize) -> &#ty {
                // SAFETY: forwarded to the caller.
                unsafe { &*self.remote_ptr(cpu_id) }
            }

            /// A mutable reference to CPU `cpu_id`'s copy.
            ///
            /// # Safety
            ///
            /// As [`remote_ptr`](Self::remote_ptr); no other reference to that copy may exist while it lives.
            #[inline]
            #[allow(clippy::mut_from_ref)]
            pub unsafe fn remote_ref_mut_raw(&self, cpu_id: usize) -> &mut #ty {
                // SAFETY: forwarded to the caller.
                unsafe { &mut *(self.remote_ptr(cpu_id) as *mut #ty) }
            }

            #value_methods

            #checked_methods
        }
    }
}

/// The checked tier (`percpu::checked`): references through a guard and remote references for
/// reference-like statics, atomic remote reads for cell-like (primitive) ones.
fn checked_methods(var: &PerCpuStatic, rt: &TokenStream) -> TokenStream {
    let (ty, static_ty) = (&var.ty, &var.static_ty);
    match var.kind {
        Kind::Other => quote! {
            /// This CPU's copy, shared, for as long as `guard` pins the task to this CPU (checked
            /// tier: any `T: Send` through an [`IrqGuard`](#rt::checked::IrqGuard), `T: Send + Sync`
            /// through a [`PreemptGuard`](#rt::checked::PreemptGuard); mutate through interior
            /// mutability).
            #[inline]
            pub fn get<'g, __PercpuG>(&self, guard: &'g __PercpuG) -> &'g #static_ty
            where
                __PercpuG: #rt::checked::GuardFor<#static_ty>,
            {
                // SAFETY: the VMA of this static designates a `T` in every area, for good.
                unsafe { #rt::__priv::get(self.symbol_vma(), guard) }
            }

            /// CPU `cpu_id`'s copy, shared (checked tier; `T: Sync`).
            ///
            /// # Panics
            ///
            /// If `cpu_id` is not below [`cpu_count()`](#rt::cpu_count).
            #[inline]
            pub fn remote(&self, cpu_id: usize) -> &'static #static_ty
            where
                for<'__percpu> #static_ty: ::core::marker::Sync,
            {
                // SAFETY: as in `get`.
                unsafe { #rt::__priv::remote(self.symbol_vma(), cpu_id) }
            }
        },
        Kind::Integer | Kind::Bool => quote! {
            /// Reads CPU `cpu_id`'s copy with an atomic load (checked tier: it races with nothing).
            ///
            /// # Panics
            ///
            /// If `cpu_id` is not below [`cpu_count()`](#rt::cpu_count).
            #[inline]
            pub fn remote_read(&self, cpu_id: usize) -> #ty {
                // SAFETY: the VMA of this static designates a `T` in every area.
                unsafe { #rt::__priv::remote_read(self.symbol_vma(), cpu_id) }
            }
        },
    }
}

/// `read/write_current(_raw)`, `xchg_current` and `cmpxchg_current` for primitives, and the other
/// guard-less read-modify-write operations for integers.
fn value_methods(var: &PerCpuStatic, rt: &TokenStream, storage: &syn::Ident) -> TokenStream {
    let ty = &var.ty;
    let xchg = guard_less(
        rt,
        storage,
        ty,
        "xchg_current",
        "xchg",
        "Replaces this CPU's copy by `val` and returns the value it replaced.",
        true,
    );
    let read_write = quote! {
        /// Reads this CPU's copy (one instruction on x86_64).
        ///
        /// # Safety
        ///
        /// The per-CPU register must be initialized; with preemption, the caller must not migrate
        /// during the access (it cannot on x86_64, where the access is one instruction).
        #[inline]
        pub unsafe fn read_current_raw(&self) -> #ty {
            // SAFETY: forwarded to the caller.
            unsafe { #rt::__percpu_access!(read, #ty, sym #storage) }
        }

        /// Writes this CPU's copy (one instruction on x86_64).
        ///
        /// # Safety
        ///
        /// As [`read_current_raw`](Self::read_current_raw), and no reference to this CPU's copy may be live.
        #[inline]
        pub unsafe fn write_current_raw(&self, val: #ty) {
            // SAFETY: forwarded to the caller.
            unsafe { #rt::__percpu_access!(write, #ty, sym #storage, val) }
        }

        /// Reads this CPU's copy, with preemption disabled where the read is not one instruction.
        ///
        /// # Panics
        ///
        /// In debug builds, when called inside a `with_current` on this variable (which lends the
        /// copy out as `&mut`); the same holds for `write_current` and the read-modify-write
        /// operations (`add_current`, `xchg_current`, ...).
        #[inline]
        pub fn read_current(&self) -> #ty {
            #rt::__priv::check_not_lent(self.symbol_vma());
            let _guard = #rt::__priv::AccessGuard::new();
            // SAFETY: the guard keeps this task on this CPU.
            unsafe { self.read_current_raw() }
        }

        /// Writes this CPU's copy, with preemption disabled where the write is not one instruction.
        #[inline]
        pub fn write_current(&self, val: #ty) {
            #rt::__priv::check_not_lent(self.symbol_vma());
            let _guard = #rt::__priv::AccessGuard::new();
            // SAFETY: the guard keeps this task on this CPU.
            unsafe { self.write_current_raw(val) }
        }
    };
    let swap = quote! {
        #xchg

        /// Replaces this CPU's copy by `new` if it holds `current`, with the guarantees of
        /// [`xchg_current`](Self::xchg_current): `Ok(previous)` if it did, `Err(actual)` with the
        /// value the copy holds if not (as `compare_exchange` of the standard atomics).
        #[inline]
        pub fn cmpxchg_current(&self, current: #ty, new: #ty) -> ::core::result::Result<#ty, #ty> {
            #rt::__priv::check_not_lent(self.symbol_vma());
            // SAFETY: as in `xchg_current`.
            let previous = unsafe { #rt::__percpu_access!(cmpxchg, #ty, sym #storage, current, new) };
            #rt::__priv::cmpxchg_result(previous, current)
        }
    };
    match var.kind {
        Kind::Integer => {
            let rmw = INTEGER_RMW.iter().map(|&(name, op, doc, returns)| {
                guard_less(rt, storage, ty, name, op, doc, returns)
            });
            quote!(#read_write #swap #(#rmw)*)
        }
        Kind::Bool => quote!(#read_write #swap),
        Kind::Other => TokenStream::new(),
    }
}

/// The guard-less read-modify-write methods of integer statics besides the swaps: method, operation of
/// `__percpu_access!`, documentation, whether it returns the previous value.
const INTEGER_RMW: [(&str, &str, &str, bool); 6] = [
    (
        "add_current",
        "add",
        "Adds `val` (wrapping) to this CPU's copy.",
        false,
    ),
    (
        "sub_current",
        "sub",
        "Subtracts `val` (wrapping) from this CPU's copy.",
        false,
    ),
    (
        "fetch_add_current",
        "fetch_add",
        "Adds `val` (wrapping) to this CPU's copy and returns the value it replaced.",
        true,
    ),
    (
        "and_current",
        "and",
        "Replaces this CPU's copy by its bitwise and with `val`.",
        false,
    ),
    (
        "or_current",
        "or",
        "Replaces this CPU's copy by its bitwise or with `val`.",
        false,
    ),
    (
        "xor_current",
        "xor",
        "Replaces this CPU's copy by its bitwise exclusive or with `val`.",
        false,
    ),
];

/// One guard-less read-modify-write method `name`: `__percpu_access!(op, ..)`, returning the previous
/// value if `returns`.
fn guard_less(
    rt: &TokenStream,
    storage: &syn::Ident,
    ty: &syn::Type,
    name: &str,
    op: &str,
    doc: &str,
    returns: bool,
) -> TokenStream {
    let (name, op) = (format_ident!("{name}"), format_ident!("{op}"));
    let output = if returns { quote!(-> #ty) } else { quote!() };
    quote! {
        #[doc = #doc]
        ///
        /// Safe against interrupts and preemption without any guard; see the crate documentation for
        /// each architecture's sequence and for the CPU whose copy it acts on when the task migrates.
        #[inline]
        pub fn #name(&self, val: #ty) #output {
            #rt::__priv::check_not_lent(self.symbol_vma());
            // SAFETY: a guard-less sequence (one instruction, an atomic operation or retried
            // exclusive sequence reading the register, or interrupts off around it: see the crate
            // documentation); no reference to the copy is live (checked in debug builds).
            unsafe { #rt::__percpu_access!(#op, #ty, sym #storage, val) }
        }
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
