// A type aligned to more than a page cannot be per-CPU: the areas are aligned to at most a page.
#[repr(align(8192))]
struct TwoPages([u8; 8192]);

#[percpu::def_percpu]
static PAGES: TwoPages = TwoPages([0; 8192]);

fn main() {}
