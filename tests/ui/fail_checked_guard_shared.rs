// Nor can a reference to it (the guard is `!Sync`): a `&guard` on another CPU would prove nothing there.
use percpu::checked::PreemptGuard;

fn main() {
    let guard = PreemptGuard::new();
    let guard = &guard;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            std::hint::black_box(guard);
        });
    });
}
