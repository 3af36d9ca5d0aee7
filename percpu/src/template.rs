//! Locating the template: the initial image of the `.percpu` section, its VMA and its size.
//!
//! - A kernel links the section with the script snippet `percpu.x`, which defines `_percpu_start`,
//!   `_percpu_end` (the areas reserved in the image, area 0 holding the initial values) and
//!   `_percpu_load_start`, `_percpu_load_end` (the section's VMA range: 0.. unless `non-zero-vma`).
//! - A hosted x86_64 program may link with such a script too (then the symbols are defined), or with
//!   none: then every `#[def_percpu]` static has registered its address and size in the section
//!   `percpu_registry`, whose bounds the linker provides, and the template is their span.

/// The template of the per-CPU areas.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Template {
    /// Where the initial values are (the load address of the section).
    pub image: usize,
    /// Bytes of per-CPU data from the template's first byte.
    pub size: usize,
    /// Leading bytes of the template that belong to no per-CPU variable (alignment) and are not copied.
    pub skip: usize,
    /// The areas reserved in the image for `init_in_place`: start and length in bytes.
    pub reserved: (usize, usize),
    /// The largest alignment of a per-CPU static, at least [`PERCPU_AREA_ALIGN`](crate::PERCPU_AREA_ALIGN):
    /// the alignment of every area base and of the stride.
    pub align: usize,
}

/// The offset inside a per-CPU area of the per-CPU data at `vma`.
#[inline]
pub fn offset_of_vma(vma: usize) -> usize {
    vma.wrapping_sub(template_vma())
}

/// The VMA of the per-CPU data at `offset` inside a per-CPU area: what the by-address accessors of
/// [`raw`](crate::raw) take. The inverse of [`offset_of_vma`].
#[inline]
pub fn vma_of_offset(offset: usize) -> usize {
    offset.wrapping_add(template_vma())
}

cfg_if::cfg_if! {
    if #[cfg(feature = "sp-naive")] {
        /// Per-CPU variables are plain globals: their VMA is their address, the only area is at 0.
        #[inline]
        pub(crate) fn template_vma() -> usize {
            0
        }

        /// There is no template: nothing to copy.
        pub(crate) fn template() -> Template {
            Template { image: 0, size: 0, skip: 0, reserved: (0, 0), align: crate::PERCPU_AREA_ALIGN }
        }
    } else if #[cfg(target_os = "none")] {
        unsafe extern "C" {
            static _percpu_start: u8;
            static _percpu_end: u8;
            static _percpu_load_start: u8;
            static _percpu_load_end: u8;
        }

        /// The VMA of the `.percpu` section: 0 unless the `non-zero-vma` feature is on.
        #[inline]
        pub(crate) fn template_vma() -> usize {
            if cfg!(feature = "non-zero-vma") {
                linked_vma()
            } else {
                0
            }
        }

        /// `_percpu_load_start`, read as a link-time constant (it may be 0: never through a reference).
        #[inline]
        fn linked_vma() -> usize {
            // SAFETY: takes the symbol's address, touches no memory.
            unsafe { crate::__percpu_access!(addr_of, sym _percpu_load_start) }
        }

        /// The template described by the linker script's symbols.
        pub(crate) fn template() -> Template {
            let vma = linked_vma();
            assert!(
                cfg!(feature = "non-zero-vma") || vma == 0,
                "percpu: the .percpu section is linked at {vma:#x}, not 0: \
                 use the linker snippet `percpu.x` or enable the `non-zero-vma` feature"
            );
            // SAFETY: takes the symbol's address, touches no memory.
            let end = unsafe { crate::__percpu_access!(addr_of, sym _percpu_load_end) };
            let start = &raw const _percpu_start as usize;
            Template {
                image: start,
                size: end - vma,
                skip: 0,
                reserved: (start, &raw const _percpu_end as usize - start),
                align: script_align(),
            }
        }

        // The value of `_percpu_align`, which `percpu.x` defines as the largest alignment in the
        // section (at least 64), as a data word: an absolute relocation resolves a weak undefined
        // symbol (a linker script written for percpu 0.4) to 0 on every architecture, where a
        // PC-relative one could be out of range.
        #[cfg(target_pointer_width = "64")]
        core::arch::global_asm!(
            ".weak _percpu_align",
            ".pushsection .rodata.__percpu_0_5_script_align, \"a\"",
            ".balign 8",
            ".hidden __percpu_0_5_script_align",
            ".globl __percpu_0_5_script_align",
            "__percpu_0_5_script_align:",
            ".quad _percpu_align",
            ".popsection",
        );
        #[cfg(target_pointer_width = "32")]
        core::arch::global_asm!(
            ".weak _percpu_align",
            ".pushsection .rodata.__percpu_0_5_script_align, \"a\"",
            ".balign 4",
            ".hidden __percpu_0_5_script_align",
            ".globl __percpu_0_5_script_align",
            "__percpu_0_5_script_align:",
            ".long _percpu_align",
            ".popsection",
        );

        unsafe extern "C" {
            static __percpu_0_5_script_align: usize;
        }

        /// The template's alignment that the linker script reports (`_percpu_align` of `percpu.x`),
        /// or [`PERCPU_AREA_ALIGN`](crate::PERCPU_AREA_ALIGN) under a script that does not define it
        /// (percpu 0.4's snippet: its areas are only 64-byte aligned).
        fn script_align() -> usize {
            // SAFETY: an initialized, never written word of this crate's `global_asm!` above.
            let align = unsafe { __percpu_0_5_script_align };
            align.max(crate::PERCPU_AREA_ALIGN)
        }
    } else if #[cfg(target_arch = "x86_64")] {
        use core::sync::atomic::{AtomicUsize, Ordering};

        /// One `#[def_percpu]` static of a hosted program, as registered in `percpu_registry`.
        #[doc(hidden)]
        #[repr(C)]
        pub struct RegistryEntry {
            start: *const u8,
            size: usize,
            align: usize,
        }

        // SAFETY: an entry is immutable and only its address value is ever used.
        unsafe impl Sync for RegistryEntry {}

        impl RegistryEntry {
            /// The entry of a static at `start` of `size` bytes, aligned to `align`.
            pub const fn new(start: *const u8, size: usize, align: usize) -> Self {
                Self { start, size, align }
            }
        }

        /// The value of a linker symbol that may be undefined (then 0), loaded from the GOT, as
        /// position-independent code must for a weak undefined symbol.
        macro_rules! weak_symbol {
            ($name:literal) => {{
                let value: usize;
                // SAFETY: reads the GOT slot that the linker fills with the symbol's address.
                unsafe {
                    core::arch::asm!(
                        concat!(".weak ", $name),
                        concat!("mov {}, qword ptr [rip + ", $name, "@GOTPCREL]"),
                        out(reg) value,
                        options(pure, readonly, nostack, preserves_flags),
                    );
                }
                value
            }};
        }

        /// The cached template VMA plus one (0: not computed yet).
        static VMA_PLUS_ONE: AtomicUsize = AtomicUsize::new(0);

        /// The VMA of the template: the start of the script's `.percpu` section, or the registered
        /// statics' lowest address rounded down to the area alignment.
        #[inline]
        pub(crate) fn template_vma() -> usize {
            match VMA_PLUS_ONE.load(Ordering::Relaxed) {
                0 => located().1,
                cached => cached - 1,
            }
        }

        /// The template.
        pub(crate) fn template() -> Template {
            located().0
        }

        /// The template and its VMA: from a 0.4-style linker script if one defined the symbols, else
        /// from the registry.
        fn located() -> (Template, usize) {
            let start = weak_symbol!("_percpu_start");
            let registered = registered_template();
            let (template, vma) = if start != 0 {
                let vma = weak_symbol!("_percpu_load_start");
                let template = Template {
                    image: start,
                    size: weak_symbol!("_percpu_load_end") - vma,
                    skip: 0,
                    reserved: (start, weak_symbol!("_percpu_end") - start),
                    // The registry knows every static's alignment, whatever the script says.
                    align: registered.0.align,
                };
                (template, vma)
            } else {
                registered
            };
            VMA_PLUS_ONE.store(vma + 1, Ordering::Relaxed);
            (template, vma)
        }

        /// The span of the registered statics: the `.percpu` output section the linker made without a script.
        fn registered_template() -> (Template, usize) {
            let first = weak_symbol!("__start_percpu_registry") as *const RegistryEntry;
            let end = weak_symbol!("__stop_percpu_registry") as *const RegistryEntry;
            let (mut low, mut high, mut align) = (usize::MAX, 0, crate::PERCPU_AREA_ALIGN);
            let mut entry = first;
            while entry < end {
                // SAFETY: the linker gathered the entries between these bounds; they are never written.
                let RegistryEntry { start, size, align: entry_align } = unsafe { entry.read() };
                low = low.min(start as usize);
                high = high.max(start as usize + size);
                align = align.max(entry_align);
                // SAFETY: stays within or one past the registry.
                entry = unsafe { entry.add(1) };
            }
            // `SELF_PTR` is always registered, so the registry is never empty.
            assert!(low < high, "percpu: no per-CPU static is registered");
            // Statics are placed at their alignment, so rounding down to the largest one keeps every
            // offset (static address - VMA) a multiple of its own alignment.
            let vma = low & !(align - 1);
            let size = high - vma;
            // Area 0 is the template itself: one area, in place.
            let one_area = size.next_multiple_of(align);
            (Template { image: vma, size, skip: low - vma, reserved: (vma, one_area), align }, vma)
        }
    } else {
        compile_error!(
            "percpu: a hosted build is supported on x86_64 only (the per-CPU register of the other \
             architectures is privileged); enable the `sp-naive` feature for a single-CPU build"
        );
    }
}
