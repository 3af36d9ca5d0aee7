//! The storage of a `#[def_percpu]` static: where its template copy lives.

/// Defines the storage static of a per-CPU variable: in the `.percpu` template section (and, in a
/// hosted program, registered so that the template can be found without a linker script), or a plain
/// global in `sp-naive` mode.
#[cfg(not(feature = "sp-naive"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_storage {
    ($(#$attr:tt)* static $name:ident: $ty:ty = $init:expr;) => {
        $(#$attr)*
        #[unsafe(link_section = ".percpu")]
        static mut $name: $ty = $init;

        $crate::__percpu_register!($name, $ty);
    };
}

/// Defines the storage static of a per-CPU variable: a plain global in `sp-naive` mode.
#[cfg(feature = "sp-naive")]
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_storage {
    ($(#$attr:tt)* static $name:ident: $ty:ty = $init:expr;) => {
        $(#$attr)*
        static mut $name: $ty = $init;
    };
}

/// Registers a hosted program's per-CPU static, so that the template is found without a linker script.
#[cfg(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive")
))]
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_register {
    ($name:ident, $ty:ty) => {
        const _: () = {
            #[used]
            #[unsafe(link_section = "percpu_registry")]
            static ENTRY: $crate::__priv::RegistryEntry = $crate::__priv::RegistryEntry::new(
                &raw const $name as *const u8,
                ::core::mem::size_of::<$ty>(),
                ::core::mem::align_of::<$ty>(),
            );
        };
    };
}

/// A kernel finds its template through the linker script: nothing to register.
#[cfg(not(all(
    target_arch = "x86_64",
    not(target_os = "none"),
    not(feature = "sp-naive")
)))]
#[doc(hidden)]
#[macro_export]
macro_rules! __percpu_register {
    ($name:ident, $ty:ty) => {};
}

/// Fails the compile-time evaluation for a type that a per-CPU area cannot hold: one aligned to more
/// than a page. Called as `const _: () = check_percpu_type::<T>();` by `#[def_percpu]`.
#[doc(hidden)]
pub const fn check_percpu_type<T>() {
    assert!(
        core::mem::align_of::<T>() <= crate::PERCPU_MAX_ALIGN,
        "a per-CPU static's type may be aligned to at most a page, 4096 bytes (PERCPU_MAX_ALIGN): \
         the per-CPU areas and their stride are aligned to the largest alignment in the template, up to a page"
    );
}

/// Fails to compile unless `T` is an integer type: `#[def_percpu]` gives a static the integer methods
/// when its type is spelled as an integer, which a type alias can fake (`type i8 = bool;`). Called as
/// `const _: () = check_integer::<T>();`.
#[doc(hidden)]
pub const fn check_integer<T: crate::PerCpuInteger>() {}

/// Called by `#[def_percpu]` for a `static mut`: its deprecation warning tells the user that `mut` has
/// no effect (as in percpu 0.4, the generated variable and its methods are the same).
#[doc(hidden)]
#[deprecated(
    note = "`mut` has no effect on a `#[def_percpu]` static (as in percpu 0.4): remove it; \
            change this CPU's copy with `write_current`, `add_current` or `with_current`"
)]
pub const fn static_mut_has_no_effect() {}

/// The check behind the warning of `#[def_percpu]` for a type that is not `Send`: `SendCheck::<T>::
/// new().check()` resolves to the inherent method when `T: Send`, and to the deprecated trait method
/// [`NotSendFallback::check`] otherwise.
#[doc(hidden)]
pub struct SendCheck<T: ?Sized>(core::marker::PhantomData<T>);

impl<T: ?Sized> SendCheck<T> {
    /// The check for `T`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self(core::marker::PhantomData)
    }
}

impl<T: ?Sized + Send> SendCheck<T> {
    /// `T` is `Send`: nothing to say.
    pub fn check(&self) {}
}

/// The method that `SendCheck::check` falls back to for a type that is not `Send`.
#[doc(hidden)]
pub trait NotSendFallback {
    /// `T` is not `Send`: the deprecation note is the warning.
    #[deprecated(
        note = "the type of this per-CPU static is not `Send`, yet its copy serves every task that runs \
                on its CPU in turn (a task may keep a clone of an `Rc`, say, and migrate): \
                use a `Send` type, or write `#[def_percpu(allow_non_send)]` if the value never leaves \
                its CPU; the checked tier (`percpu::checked`) refuses it"
    )]
    fn check(&self) {}
}

impl<T: ?Sized> NotSendFallback for SendCheck<T> {}
