#[repr(align(4096))]
struct Page([u8; 4096]);

#[percpu::def_percpu]
static PAGE: Page = Page([0; 4096]);

fn main() {}
