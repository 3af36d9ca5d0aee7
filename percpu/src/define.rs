//! What `#[def_percpu]` expands to: the storage static, the wrapper type and its methods, written
//! here as a `macro_rules!` so that every `unsafe` block of a per-CPU static is the runtime's own,
//! reached through `$crate`.
//!
//! The attribute names the runtime by a path that its user controls (`percpu` where it is used, or
//! `crate = path`). Had it written the `unsafe` blocks itself around calls through that path, a
//! module re-exporting `percpu` with a substitute `__percpu_access!` (or a substitute function) would
//! have run its tokens inside them, unsafe operations with no `unsafe` written (an outside review
//! found it). Now a substitute for [`__percpu_define!`] can only expand to code its author writes,
//! where the `unsafe_code` lint sees every `unsafe`; the inputs of the genuine macro (name, type,
//! initializer, attributes) are what the user could write in the static anyway.

/// Defines a per-CPU static: `#[def_percpu]`'s expansion. Not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_define {
    (
        kind: $kind:ident,
        cfg: [$(#[$cfg:meta])*],
        doc: [$(#[$doc:meta])*],
        lint: [$(#[$lint:meta])*],
        storage: [$(#[$storage_attr:meta])*],
        $vis:vis static $name:ident: $ty:ty = $init:expr;
        wrapper: $wrapper:ident,
        storage: $storage:ident,
        static_ty: $static_ty:ty,
    ) => {
        // The type checks live here, not only in the attribute: a direct use of this macro (hidden,
        // but callable from safe code) must not get past them.
        $(#[$cfg])*
        const _: () = $crate::__priv::check_percpu_type::<$ty>();
        $(#[$cfg])*
        $crate::__percpu_define!(@check $kind, $ty);

        $(#[$cfg])*
        $crate::__percpu_storage! {
            $(#[$lint])*
            $(#[$storage_attr])*
            static $storage: $ty = $init;
        }

        #[doc = concat!(
            "The per-CPU variable [`", stringify!($name), "`]: one copy of `", stringify!($ty),
            "` per CPU."
        )]
        $(#[$cfg])*
        #[allow(non_camel_case_types)]
        $vis struct $wrapper {
            _private: (),
        }

        $(#[$cfg])*
        $(#[$doc])*
        $(#[$lint])*
        $vis static $name: $wrapper = $wrapper { _private: () };

        $(#[$cfg])*
        // SAFETY: `symbol_vma` is the static's VMA, which designates its `T` in every area for good.
        unsafe impl $crate::PerCpuStatic for $wrapper {
            type Value = $static_ty;
            #[inline(always)]
            fn vma(&self) -> usize {
                self.symbol_vma()
            }
        }

        $(#[$cfg])*
        // The methods a program does not call are no dead code of its own; in `sp-naive` mode some
        // accesses are safe code, and their `unsafe` blocks unnecessary.
        #[allow(dead_code, unused_unsafe)]
        impl $wrapper {
            /// The address of the variable's template in the `.percpu` section: the same on every CPU,
            /// and equal to [`offset`](Self::offset) unless the section has a non-zero address.
            #[inline]
            pub fn symbol_vma(&self) -> usize {
                // SAFETY: computes a link-time address, touches no memory.
                unsafe { $crate::__percpu_access!(addr_of, sym $storage) }
            }

            /// The variable's offset from the start of a per-CPU area.
            #[inline]
            pub fn offset(&self) -> usize {
                $crate::__priv::offset_of(self.symbol_vma())
            }

            /// A pointer to this CPU's copy.
            ///
            /// # Safety
            ///
            /// The per-CPU register of this CPU must be initialized, and the caller must not migrate to
            /// another CPU while it uses the pointer (preemption disabled).
            #[inline]
            pub unsafe fn current_ptr(&self) -> *const $ty {
                // SAFETY: forwarded to the caller.
                unsafe { $crate::__percpu_access!(ptr, $ty, sym $storage) }
            }

            /// A reference to this CPU's copy.
            ///
            /// # Safety
            ///
            /// As [`current_ptr`](Self::current_ptr), and no `&mut` to this CPU's copy may exist while
            /// the reference lives.
            #[inline]
            pub unsafe fn current_ref_raw(&self) -> &$ty {
                // SAFETY: forwarded to the caller.
                unsafe { &*self.current_ptr() }
            }

            /// A mutable reference to this CPU's copy.
            ///
            /// # Safety
            ///
            /// As [`current_ptr`](Self::current_ptr), and no other reference to this CPU's copy may
            /// exist while the reference lives (beware of interrupt handlers using the same variable).
            #[inline]
            #[allow(clippy::mut_from_ref)]
            pub unsafe fn current_ref_mut_raw(&self) -> &mut $ty {
                // SAFETY: forwarded to the caller.
                unsafe { &mut *(self.current_ptr() as *mut $ty) }
            }

            /// Runs `f` on this CPU's copy, with preemption disabled (feature `preempt`).
            ///
            /// # Panics
            ///
            /// In debug builds, when called while a `with_current` on the same variable is already
            /// running on this CPU (nested call, or an interrupt handler): that would create two
            /// `&mut` to one copy.
            #[inline]
            pub fn with_current<__PercpuF, __PercpuR>(&self, f: __PercpuF) -> __PercpuR
            where
                __PercpuF: FnOnce(&mut $ty) -> __PercpuR,
            {
                // SAFETY: the VMA of this static designates a `T` in every area.
                unsafe { $crate::__priv::with_current(self.symbol_vma(), f) }
            }

            /// Resets this CPU's copy to the initial value (evaluating the initializer again).
            #[inline]
            pub fn reset_to_init(&self) {
                self.with_current(|value| *value = $init);
            }

            /// A pointer to CPU `cpu_id`'s copy.
            ///
            /// # Safety
            ///
            /// `cpu_id` must be below `percpu::cpu_count()` (checked by `debug_assert!`), and the
            /// caller must rule out data races with that CPU.
            #[inline]
            pub unsafe fn remote_ptr(&self, cpu_id: usize) -> *const $ty {
                // SAFETY: forwarded to the caller.
                unsafe { $crate::__priv::remote_ptr(cpu_id, self.symbol_vma()) }
            }

            /// A reference to CPU `cpu_id`'s copy.
            ///
            /// # Safety
            ///
            /// As [`remote_ptr`](Self::remote_ptr); no `&mut` to that copy may exist while it lives.
            #[inline]
            pub unsafe fn remote_ref_raw(&self, cpu_id: usize) -> &$ty {
                // SAFETY: forwarded to the caller.
                unsafe { &*self.remote_ptr(cpu_id) }
            }

            /// A mutable reference to CPU `cpu_id`'s copy.
            ///
            /// # Safety
            ///
            /// As [`remote_ptr`](Self::remote_ptr); no other reference to that copy may exist while
            /// it lives.
            #[inline]
            #[allow(clippy::mut_from_ref)]
            pub unsafe fn remote_ref_mut_raw(&self, cpu_id: usize) -> &mut $ty {
                // SAFETY: forwarded to the caller.
                unsafe { &mut *(self.remote_ptr(cpu_id) as *mut $ty) }
            }

            $crate::__percpu_define!(@methods $kind, $ty, $static_ty, $storage);
        }
    };

    // The integer methods are chosen by how the type is spelled: a type alias named like an integer
    // must really be one (`type i8 = bool;` would give a `bool` an integer add), and `bool` must be
    // `bool`.
    (@check integer, $ty:ty) => {
        const _: () = $crate::__priv::check_integer::<$ty>();
    };
    (@check bool, $ty:ty) => {
        const _: ::core::marker::PhantomData<bool> = ::core::marker::PhantomData::<$ty>;
    };
    (@check other, $ty:ty) => {};

    // Reference-like statics (any other type): the checked tier's references.
    (@methods other, $ty:ty, $static_ty:ty, $storage:ident) => {
        /// This CPU's copy, shared, for as long as `guard` pins the task to this CPU (checked tier:
        /// any `T: Send` through an `IrqGuard`, `T: Send + Sync` through a `PreemptGuard` of
        /// `percpu::checked`; mutate through interior mutability).
        #[inline]
        pub fn get<'g, __PercpuG>(&self, guard: &'g __PercpuG) -> &'g $static_ty
        where
            __PercpuG: $crate::checked::GuardFor<$static_ty>,
        {
            // SAFETY: the VMA of this static designates a `T` in every area, for good.
            unsafe { $crate::__priv::get(self.symbol_vma(), guard) }
        }

        /// CPU `cpu_id`'s copy, shared (checked tier; `T: Sync`).
        ///
        /// # Panics
        ///
        /// If `cpu_id` is not below `percpu::cpu_count()`.
        #[inline]
        pub fn remote(&self, cpu_id: usize) -> &'static $static_ty
        where
            for<'__percpu> $static_ty: ::core::marker::Sync,
        {
            // SAFETY: as in `get`.
            unsafe { $crate::__priv::remote(self.symbol_vma(), cpu_id) }
        }
    };

    // Integers: the primitives' methods and every guard-less read-modify-write operation.
    (@methods integer, $ty:ty, $static_ty:ty, $storage:ident) => {
        $crate::__percpu_define!(@methods bool, $ty, $static_ty, $storage);
        $crate::__percpu_define!(@rmw $ty, $storage, add_current, add, (),
            "Adds `val` (wrapping) to this CPU's copy.");
        $crate::__percpu_define!(@rmw $ty, $storage, sub_current, sub, (),
            "Subtracts `val` (wrapping) from this CPU's copy.");
        $crate::__percpu_define!(@rmw $ty, $storage, fetch_add_current, fetch_add, $ty,
            "Adds `val` (wrapping) to this CPU's copy and returns the value it replaced.");
        $crate::__percpu_define!(@rmw $ty, $storage, and_current, and, (),
            "Replaces this CPU's copy by its bitwise and with `val`.");
        $crate::__percpu_define!(@rmw $ty, $storage, or_current, or, (),
            "Replaces this CPU's copy by its bitwise or with `val`.");
        $crate::__percpu_define!(@rmw $ty, $storage, xor_current, xor, (),
            "Replaces this CPU's copy by its bitwise exclusive or with `val`.");
    };

    // `bool` (and, through the arm above, the integers): one-value accesses and the swaps.
    (@methods bool, $ty:ty, $static_ty:ty, $storage:ident) => {
        /// Reads this CPU's copy (one instruction on x86_64).
        ///
        /// # Safety
        ///
        /// The per-CPU register must be initialized; with preemption, the caller must not migrate
        /// during the access (it cannot on x86_64, where the access is one instruction).
        #[inline]
        pub unsafe fn read_current_raw(&self) -> $ty {
            // SAFETY: forwarded to the caller.
            unsafe { $crate::__percpu_access!(read, $ty, sym $storage) }
        }

        /// Writes this CPU's copy (one instruction on x86_64).
        ///
        /// # Safety
        ///
        /// As [`read_current_raw`](Self::read_current_raw), and no reference to this CPU's copy may
        /// be live.
        #[inline]
        pub unsafe fn write_current_raw(&self, val: $ty) {
            // SAFETY: forwarded to the caller.
            unsafe { $crate::__percpu_access!(write, $ty, sym $storage, val) }
        }

        /// Reads this CPU's copy, with preemption disabled where the read is not one instruction.
        ///
        /// # Panics
        ///
        /// In debug builds, when called inside a `with_current` on this variable (which lends the
        /// copy out as `&mut`); the same holds for `write_current` and the read-modify-write
        /// operations (`add_current`, `xchg_current`, ...).
        #[inline]
        pub fn read_current(&self) -> $ty {
            $crate::__priv::check_not_lent(self.symbol_vma());
            let _guard = $crate::__priv::AccessGuard::new();
            // SAFETY: the guard keeps this task on this CPU.
            unsafe { self.read_current_raw() }
        }

        /// Writes this CPU's copy, with preemption disabled where the write is not one instruction.
        #[inline]
        pub fn write_current(&self, val: $ty) {
            $crate::__priv::check_not_lent(self.symbol_vma());
            let _guard = $crate::__priv::AccessGuard::new();
            // SAFETY: the guard keeps this task on this CPU.
            unsafe { self.write_current_raw(val) }
        }

        $crate::__percpu_define!(@rmw $ty, $storage, xchg_current, xchg, $ty,
            "Replaces this CPU's copy by `val` and returns the value it replaced.");

        /// Replaces this CPU's copy by `new` if it holds `current`, with the guarantees of
        /// [`xchg_current`](Self::xchg_current): `Ok(previous)` if it did, `Err(actual)` with the
        /// value the copy holds if not (as `compare_exchange` of the standard atomics).
        #[inline]
        pub fn cmpxchg_current(&self, current: $ty, new: $ty) -> ::core::result::Result<$ty, $ty> {
            $crate::__priv::check_not_lent(self.symbol_vma());
            // SAFETY: as in `xchg_current`.
            let previous =
                unsafe { $crate::__percpu_access!(cmpxchg, $ty, sym $storage, current, new) };
            $crate::__priv::cmpxchg_result(previous, current)
        }

        /// Reads CPU `cpu_id`'s copy with an atomic load (checked tier: it races with nothing).
        ///
        /// # Panics
        ///
        /// If `cpu_id` is not below `percpu::cpu_count()`.
        #[inline]
        pub fn remote_read(&self, cpu_id: usize) -> $ty {
            // SAFETY: the VMA of this static designates a `T` in every area.
            unsafe { $crate::__priv::remote_read(self.symbol_vma(), cpu_id) }
        }
    };

    // One guard-less read-modify-write method, returning `$output`.
    (@rmw $ty:ty, $storage:ident, $method:ident, $op:ident, $output:ty, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Safe against interrupts and preemption without any guard; see the crate documentation for
        /// each architecture's sequence and for the CPU whose copy it acts on when the task migrates.
        #[inline]
        pub fn $method(&self, val: $ty) -> $output {
            $crate::__priv::check_not_lent(self.symbol_vma());
            // SAFETY: a guard-less sequence (one instruction, an atomic operation or retried
            // exclusive sequence reading the register, or interrupts off around it: see the crate
            // documentation); no reference to the copy is live (checked in debug builds).
            unsafe { $crate::__percpu_access!($op, $ty, sym $storage, val) }
        }
    };
}

/// `#[derive(PerCpuStats)]`'s expansion: the `<Name>Fields<'a>` struct and the `StatsStruct`
/// implementation, whose `unsafe` parts reach the runtime through `$crate` (as for
/// [`__percpu_define!`]). Each field comes with its `#[cfg]` attributes, then its documentation.
/// Not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_stats_define {
    (
        doc: $doc:literal,
        $vis:vis struct $name:ident => $fields_name:ident {
            $( [$(#[$cfg:meta])*] [$(#[$field_doc:meta])*] $field_vis:vis $field:ident: $ty:ty, )*
        }
    ) => {
        #[doc = $doc]
        #[derive(Clone, Copy)]
        // The fields are named as the struct's own: how they are named is for the lints of the
        // struct (an `#[allow]` on it would not reach this one: an outside review).
        #[allow(non_snake_case)]
        $vis struct $fields_name<'a> {
            $(
                $(#[$cfg])*
                $(#[$field_doc])*
                $field_vis $field: $crate::stats::Field<'a, $ty>,
            )*
        }

        $(
            $(#[$cfg])*
            const _: () = $crate::stats::check_field::<$ty>();
        )*

        // SAFETY: generated from the struct's own fields: every field is a `PerCpuInteger` (the bound
        // of `Field`) that the target loads atomically (`check_field`, above); `ZERO` sets each to 0;
        // each `Field` and each read uses the field's own offset and type.
        unsafe impl $crate::stats::StatsStruct for $name {
            const ZERO: Self = Self { $( $(#[$cfg])* $field: 0, )* };

            type Fields<'a> = $fields_name<'a>;

            #[inline(always)]
            unsafe fn __fields<'a>(vma: usize) -> $fields_name<'a> {
                // SAFETY: `vma` designates a `StatsCell<Self>` for `'a` (the caller's contract), and
                // each field of that type lies at its offset.
                unsafe {
                    $fields_name {
                        $(
                            $(#[$cfg])*
                            $field: $crate::stats::Field::__at(
                                vma,
                                ::core::mem::offset_of!(Self, $field),
                            ),
                        )*
                    }
                }
            }

            #[inline]
            fn __add_copy(&mut self, copy: &$crate::stats::CopyReader<'_, Self>) {
                $(
                    $(#[$cfg])*
                    // SAFETY: the field of that type lies at its offset.
                    unsafe { copy.add_to(&mut self.$field, ::core::mem::offset_of!(Self, $field)) };
                )*
            }
        }
    };
}
