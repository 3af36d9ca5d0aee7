#[percpu::def_percpu]
static FLAG: bool = false;

#[percpu::def_percpu]
static PAIR: (u32, u32) = (0, 0);

fn main() {
    FLAG.add_current(true);
    PAIR.read_current();
}
