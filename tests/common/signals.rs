//! Interrupts simulated with signals, for the hosted tests: a handler runs on the thread it
//! interrupts, so with that thread's per-CPU register, as an interrupt handler on its CPU.

/// Installs `handler` for `signal`, restarting the system calls it interrupts.
///
/// # Safety
///
/// `handler` may run at any point of any thread that does not block `signal`: it must only do what is
/// safe there (no heap, no lock that the interrupted code may hold).
pub unsafe fn install(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed `sigaction` is a valid empty one; the caller vouches for the handler.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}

/// The threads that signals go to, each registered by itself.
pub struct Targets(std::sync::Mutex<Vec<libc::pthread_t>>);

impl Targets {
    /// No thread yet.
    pub const fn new() -> Self {
        Self(std::sync::Mutex::new(Vec::new()))
    }

    /// Adds the calling thread.
    pub fn register(&self) {
        // SAFETY: pthread_self has no precondition.
        let this = unsafe { libc::pthread_self() };
        self.0.lock().unwrap().push(this);
    }

    /// Sends `signal` to the thread `n` modulo the number registered, which must not be 0.
    ///
    /// # Safety
    ///
    /// The registered threads have not ended.
    pub unsafe fn send(&self, n: usize, signal: libc::c_int) {
        let threads = self.0.lock().unwrap();
        let thread = threads[n % threads.len()];
        // SAFETY: a live thread (the caller's contract).
        unsafe { libc::pthread_kill(thread, signal) };
    }
}
