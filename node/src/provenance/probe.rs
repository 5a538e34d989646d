//! The interpreter's version, asked beside the run: `<program> --version`
//! starts with the command and has until shortly after the command ends
//! to answer. A slow probe is killed (with anything it started) and the
//! run is recorded without it, so the probe never counts as the run's
//! time nor delays `labmesh run`'s exit by more than [`GRACE`].
//!
//! An answer is remembered in `.labmesh/cache/interpreters.json` under
//! the executable's resolved path and file identity (size, mtime, inode),
//! so an interpreter is started for its version once, not for every run
//! (a Python start costs as much CPU as a short script).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::provenance::RUN_ENV;

const CACHE_FILE: &str = "interpreters.json";

/// The identity of an executable file: its resolved path, size, mtime, inode.
fn identity(executable: &Path) -> Option<(String, String)> {
    let real = std::fs::canonicalize(executable).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos();
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some((
        real.to_string_lossy().into_owned(),
        format!("{} {mtime} {inode}", meta.len()),
    ))
}

fn read_cache(cache_dir: &Path) -> BTreeMap<String, (String, String)> {
    std::fs::read(cache_dir.join(CACHE_FILE))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// The version remembered for this executable, if it has not changed since.
pub fn remembered(cache_dir: &Path, executable: &Path) -> Option<String> {
    let (path, stamp) = identity(executable)?;
    match read_cache(cache_dir).remove(&path) {
        Some((seen, version)) if seen == stamp => Some(version),
        _ => None,
    }
}

/// Remembers a version (best effort: a cache that cannot be written only
/// means the next run asks again). Written whole and renamed into place.
pub fn remember(cache_dir: &Path, executable: &Path, version: &str) {
    let Some((path, stamp)) = identity(executable) else {
        return;
    };
    let mut cache = read_cache(cache_dir);
    cache.insert(path, (stamp, version.to_string()));
    let Ok(text) = serde_json::to_vec_pretty(&cache) else {
        return;
    };
    let written = std::fs::create_dir_all(cache_dir).and_then(|()| {
        let mut tmp = tempfile::NamedTempFile::new_in(cache_dir)?;
        std::io::Write::write_all(&mut tmp, &text)?;
        tmp.persist(cache_dir.join(CACHE_FILE))
            .map_err(|e| e.error)?;
        Ok(())
    });
    let _ = written;
}

/// How long after the command ends a probe may still answer.
pub const GRACE: Duration = Duration::from_millis(50);

/// A running `--version` probe.
pub(crate) struct Probe {
    child: Child,
    line: mpsc::Receiver<String>,
}

impl Probe {
    /// Starts `<program> --version`; `None` if it cannot start.
    pub fn start(program: &OsStr) -> Option<Probe> {
        let (reader, writer) = std::io::pipe().ok()?;
        let mut cmd = Command::new(program);
        cmd.arg("--version")
            .stdin(Stdio::null())
            .stdout(writer.try_clone().ok()?)
            .stderr(writer)
            .env_remove(RUN_ENV);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().ok()?;
        drop(cmd); // our copies of the pipe's write end: EOF comes with the probe's end
        let (tx, line) = mpsc::channel();
        thread::spawn(move || {
            for l in BufReader::new(reader).lines() {
                let Ok(l) = l else { break };
                let l = l.trim();
                if !l.is_empty() {
                    let _ = tx.send(l.chars().take(200).collect());
                    break;
                }
            }
        });
        Some(Probe { child, line })
    }

    /// The first line the probe printed, if it comes within `wait`; the
    /// probe (and its process group) is stopped either way.
    pub fn finish(mut self, wait: Duration) -> Option<String> {
        let line = self.line.recv_timeout(wait).ok();
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            #[cfg(unix)]
            // SAFETY: the group's leader is our unreaped child, so its id
            // cannot have been reused.
            unsafe {
                libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
            }
            #[cfg(not(unix))]
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_remembered_until_the_executable_changes() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "one").unwrap();
        let cache = dir.path().join("cache");
        assert_eq!(remembered(&cache, &exe), None);
        remember(&cache, &exe, "tool 1.0");
        assert_eq!(remembered(&cache, &exe).as_deref(), Some("tool 1.0"));
        std::fs::write(&exe, "a new build").unwrap();
        assert_eq!(remembered(&cache, &exe), None, "size and mtime changed");
    }

    #[test]
    fn the_probe_reads_the_first_line() {
        let Some(probe) = Probe::start(OsStr::new("bash")) else {
            return; // no bash here
        };
        let line = probe.finish(Duration::from_secs(5)).unwrap_or_default();
        assert!(line.to_lowercase().contains("bash"), "{line}");
    }

    #[cfg(unix)]
    #[test]
    fn a_slow_probe_is_stopped_without_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let slow = dir.path().join("slow");
        std::fs::write(&slow, "#!/bin/sh\nsleep 30\necho 'slow 1.0'\n").unwrap();
        let mut perms = std::fs::metadata(&slow).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&slow, perms).unwrap();
        let probe = Probe::start(slow.as_os_str()).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(probe.finish(Duration::from_millis(100)), None);
        // Killed, not waited for (30 s).
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}
