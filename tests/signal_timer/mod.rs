//! A periodic "timer interrupt" for a thread acting as a CPU: a POSIX timer that sends `SIGUSR2` to
//! that very thread (`SIGEV_THREAD_ID`), whose handler then runs on it, with its per-CPU register, in
//! the middle of whatever the thread was doing — as a timer interrupt runs on the CPU it interrupts.

#![allow(dead_code)] // each test binary uses its own subset

use std::time::Duration;

/// The signal of the timers.
const SIGNAL: libc::c_int = libc::SIGUSR2;

/// Installs `handler` for the timers' signal (process-wide; the next call replaces it).
pub fn install(handler: extern "C" fn(libc::c_int)) {
    // SAFETY: installs a handler; the callers' handlers only do async-signal-safe work (per-CPU
    // operations and atomics).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        assert_eq!(libc::sigaction(SIGNAL, &action, std::ptr::null_mut()), 0);
    }
}

/// A timer interrupting the thread that started it every `period` until dropped (by that thread).
pub struct Timer {
    timer: libc::timer_t,
    /// The timer belongs to its thread: it is stopped there, before the thread gives up its CPU.
    _not_send: std::marker::PhantomData<*mut ()>,
}

impl Timer {
    /// Starts interrupting the calling thread with the handler given to [`install`].
    pub fn start(period: Duration) -> Self {
        // SAFETY: plain system calls on values that live through them; the timer is deleted by `Drop`.
        unsafe {
            set_blocked(false);
            let mut event: libc::sigevent = std::mem::zeroed();
            event.sigev_notify = libc::SIGEV_THREAD_ID;
            event.sigev_signo = SIGNAL;
            event.sigev_notify_thread_id = libc::gettid();
            let mut timer: libc::timer_t = std::mem::zeroed();
            assert_eq!(
                libc::timer_create(libc::CLOCK_MONOTONIC, &mut event, &mut timer),
                0
            );
            let interval = libc::timespec {
                tv_sec: 0,
                tv_nsec: period.as_nanos() as libc::c_long,
            };
            let spec = libc::itimerspec {
                it_interval: interval,
                it_value: interval,
            };
            assert_eq!(
                libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()),
                0
            );
            Self {
                timer,
                _not_send: std::marker::PhantomData,
            }
        }
    }
}

impl Drop for Timer {
    /// Blocks the signal first, so that no handler runs on this thread afterwards (a pending one is
    /// discarded when the thread exits), then deletes the timer.
    fn drop(&mut self) {
        // SAFETY: the timer created by `start`, deleted once.
        unsafe {
            set_blocked(true);
            assert_eq!(libc::timer_delete(self.timer), 0);
        }
    }
}

/// Blocks or unblocks the timers' signal on the calling thread.
fn set_blocked(blocked: bool) {
    // SAFETY: a signal set on the stack, initialized by `sigemptyset`.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, SIGNAL);
        let how = if blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        assert_eq!(libc::pthread_sigmask(how, &set, std::ptr::null_mut()), 0);
    }
}
