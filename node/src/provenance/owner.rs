//! The process that records a run, and whether it is still alive.
//!
//! `labmesh run` (or a program that called `track`) ends its run when the
//! command ends. Killed with SIGKILL, it cannot: the run would stay
//! `running` forever and its orphaned command could still link to it. So
//! each run records its owner — pid, the process's start time, the boot id
//! and the host — and whoever finds a `running` run whose owner is gone
//! ends it as errored. The start time (clock ticks after boot, field 22 of
//! `/proc/<pid>/stat`) tells the owner from a later process that reuses
//! its pid; the boot id, from a process of an earlier boot. A run owned by
//! another host (an instance on a shared file system) or another pid
//! namespace (another container) cannot be checked from here and is left
//! alone.

/// A process that records runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub pid: u32,
    /// Clock ticks after boot at which the process started (Linux).
    pub start: Option<i64>,
    pub boot: Option<String>,
    pub host: Option<String>,
}

/// What can be said about an owner from this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    Dead,
    /// Another host's process, or an owner recorded without a pid.
    Unknown,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        static CURRENT: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
        CURRENT
            .get_or_init(|| {
                let pid = std::process::id();
                Owner {
                    pid,
                    start: start_time(pid),
                    boot: boot_id(),
                    host: host_and_pid_namespace(),
                }
            })
            .clone()
    }

    /// Whether this owner still runs (as seen from this host).
    pub fn liveness(&self) -> Liveness {
        let here = host_and_pid_namespace();
        if self.host.is_none() || here.is_none() || self.host != here {
            return Liveness::Unknown;
        }
        if let (Some(then), Some(now)) = (&self.boot, boot_id())
            && *then != now
        {
            return Liveness::Dead; // the machine rebooted since
        }
        match process_state(self.pid) {
            ProcessState::Gone | ProcessState::Zombie => Liveness::Dead,
            ProcessState::Running { start } => match (self.start, start) {
                (Some(recorded), Some(found)) if recorded != found => Liveness::Dead,
                _ => Liveness::Alive,
            },
            ProcessState::Unknown => Liveness::Unknown,
        }
    }
}

enum ProcessState {
    Gone,
    /// Exited, not yet reaped by its parent: it records nothing any more.
    Zombie,
    Running {
        start: Option<i64>,
    },
    Unknown,
}

#[cfg(target_os = "linux")]
fn process_state(pid: u32) -> ProcessState {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => match parse_stat(&stat) {
            Some(('Z' | 'X', _)) => ProcessState::Zombie,
            Some((_, start)) => ProcessState::Running { start: Some(start) },
            None => ProcessState::Unknown,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ProcessState::Gone,
        Err(_) => ProcessState::Unknown,
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn process_state(pid: u32) -> ProcessState {
    // SAFETY: kill with signal 0 only checks that the process exists.
    let found = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if found {
        ProcessState::Running { start: None }
    } else {
        ProcessState::Gone
    }
}

#[cfg(not(unix))]
fn process_state(_pid: u32) -> ProcessState {
    ProcessState::Unknown
}

/// (state, start time) from the text of `/proc/<pid>/stat`. The command
/// name (field 2) is in parentheses and may itself hold spaces and
/// parentheses, so fields are counted after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

fn start_time(pid: u32) -> Option<i64> {
    #[cfg(target_os = "linux")]
    {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&stat).map(|(_, start)| start)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

fn boot_id() -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// Where a pid means something: the host name (`uname -n`) and, on Linux,
/// the pid namespace (containers on one host may share an instance, and a
/// pid in one of them says nothing about another).
fn host_and_pid_namespace() -> Option<String> {
    let host = uname().1?;
    #[cfg(target_os = "linux")]
    if let Ok(ns) = std::fs::read_link("/proc/self/ns/pid") {
        return Some(format!("{host} {}", ns.display()));
    }
    Some(host)
}

/// The kernel release and host name.
#[cfg(unix)]
pub(crate) fn uname() -> (Option<String>, Option<String>) {
    // SAFETY: uname fills a zeroed struct of fixed-size, NUL-terminated arrays.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (None, None);
    }
    let text = |field: &[libc::c_char]| {
        let bytes: Vec<u8> = field
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
    };
    (text(&u.release), text(&u.nodename))
}

#[cfg(not(unix))]
pub(crate) fn uname() -> (Option<String>, Option<String>) {
    (None, std::env::var("COMPUTERNAME").ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                    987654 1000 100 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_dead() {
        let me = Owner::current();
        assert_eq!(me.liveness(), Liveness::Alive);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let owner = Owner {
            pid,
            start: start_time(pid),
            ..me.clone()
        };
        child.wait().unwrap();
        assert_eq!(owner.liveness(), Liveness::Dead);
        // A live pid with another start time is a different process.
        let impostor = Owner {
            start: me.start.map(|s| s + 1),
            ..me.clone()
        };
        if cfg!(target_os = "linux") {
            let other = Owner { pid: 1, ..impostor };
            assert_eq!(other.liveness(), Liveness::Dead);
        }
        let elsewhere = Owner {
            host: Some("another-host.example".into()),
            ..me
        };
        assert_eq!(elsewhere.liveness(), Liveness::Unknown);
    }
}
