// Probes shared by `probe-ours` and `probe-peer`: the per-CPU statics and one function per operation that
// both runtimes offer with the same API, so that both crates compile exactly the same source.
// Included with `include!` by each probe crate's `lib.rs`; `cargo xtask codegen` disassembles every
// `#[unsafe(no_mangle)]` function and counts its instructions.
//
// Every probe is `#[inline(never)]` and `extern "C"`: its body is the access alone, with the arguments
// and the result in the registers of the C calling convention.

use percpu::def_percpu;

#[def_percpu]
static U8: u8 = 0;

#[def_percpu]
static U32: u32 = 0;

#[def_percpu]
static U64: u64 = 0;

#[def_percpu]
static BOOL: bool = false;

/// Defines `read_current_<ty>` and `write_current_<ty>` for each `static: type`.
macro_rules! read_write_probes {
    ($($var:ident: $ty:ty => $read:ident, $write:ident;)*) => {
        $(
            #[doc = concat!("`", stringify!($var), ".read_current()`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $read() -> $ty {
                $var.read_current()
            }

            #[doc = concat!("`", stringify!($var), ".write_current(value)`.")]
            #[inline(never)]
            #[unsafe(no_mangle)]
            pub extern "C" fn $write(value: $ty) {
                $var.write_current(value)
            }
        )*
    };
}

read_write_probes! {
    U8: u8 => read_current_u8, write_current_u8;
    U32: u32 => read_current_u32, write_current_u32;
    U64: u64 => read_current_u64, write_current_u64;
    BOOL: bool => read_current_bool, write_current_bool;
}

/// `with_current` incrementing a `u64`.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn with_current_inc_u64() {
    U64.with_current(|value| *value += 1)
}

/// `current_ptr()` of a `u64`.
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn current_ptr_u64() -> *const u64 {
    // SAFETY: computes a pointer and does not use it.
    unsafe { U64.current_ptr() }
}

/// `remote_ptr(cpu)` of a `u64`.
///
/// # Safety
///
/// `cpu` must be an initialized CPU.
#[inline(never)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn remote_ptr_u64(cpu: usize) -> *const u64 {
    // SAFETY: forwarded to the caller; the pointer is not used.
    unsafe { U64.remote_ptr(cpu) }
}
