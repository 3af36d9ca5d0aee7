// A guard of the checked tier proves that the code holding it runs on one CPU: it cannot be sent to
// another thread.
use percpu::checked::IrqGuard;

fn main() {
    let guard = IrqGuard::new();
    std::thread::spawn(move || drop(guard));
}
