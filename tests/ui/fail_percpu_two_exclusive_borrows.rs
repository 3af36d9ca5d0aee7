// A run-time allocated object lends `&mut` to a copy only through `&mut PerCpu<T>`: two at once are
// refused, so no two `&mut` to one copy exist.
fn main() {
    let mut names = percpu_alloc::PerCpu::new_with(|cpu| format!("cpu{cpu}")).unwrap();
    let first = names.get_mut(0);
    let second = names.get_mut(0);
    first.push('!');
    second.push('?');
}
