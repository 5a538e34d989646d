//! Signal handling for the process that waits on a run's command: it
//! stays alive through SIGINT/SIGQUIT (the terminal sends them to the
//! command too) and forwards SIGTERM/SIGHUP to the command, so the run is
//! always recorded.

#[cfg(unix)]
mod imp {
    use std::sync::atomic::{AtomicI32, Ordering};

    static CHILD: AtomicI32 = AtomicI32::new(0);
    static PENDING: AtomicI32 = AtomicI32::new(0);
    const HANDLED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

    extern "C" fn on_signal(sig: libc::c_int) {
        // Async-signal-safe: atomics and kill(2) only.
        if sig == libc::SIGTERM || sig == libc::SIGHUP {
            let pid = CHILD.load(Ordering::SeqCst);
            if pid > 0 {
                unsafe { libc::kill(pid, sig) };
            } else {
                PENDING.store(sig, Ordering::SeqCst);
            }
        }
    }

    /// Installed handlers; the previous ones come back on drop. A
    /// caught (not ignored) signal resets to its default in the child
    /// at exec, so the command sees normal signal behaviour.
    pub struct Guard {
        previous: Vec<(libc::c_int, libc::sigaction)>,
    }

    impl Guard {
        pub fn install() -> Guard {
            let mut previous = Vec::new();
            for sig in HANDLED {
                // SAFETY: a zeroed sigaction with a plain handler and an
                // empty mask is valid; `old` receives the previous one.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                    action.sa_flags = libc::SA_RESTART;
                    libc::sigemptyset(&mut action.sa_mask);
                    let mut old: libc::sigaction = std::mem::zeroed();
                    if libc::sigaction(sig, &action, &mut old) == 0 {
                        previous.push((sig, old));
                    }
                }
            }
            Guard { previous }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            for (sig, old) in &self.previous {
                // SAFETY: restores the action saved by `install`.
                unsafe { libc::sigaction(*sig, old, std::ptr::null_mut()) };
            }
        }
    }

    /// Names the child that SIGTERM/SIGHUP are forwarded to (0: none).
    pub fn set_child(pid: u32) {
        CHILD.store(pid as i32, Ordering::SeqCst);
        let pending = PENDING.swap(0, Ordering::SeqCst);
        if pid > 0 && pending != 0 {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(pid as i32, pending) };
        }
    }
}

#[cfg(not(unix))]
mod imp {
    pub struct Guard;
    impl Guard {
        pub fn install() -> Guard {
            Guard
        }
    }
    pub fn set_child(_: u32) {}
}

pub use imp::{Guard, set_child};
