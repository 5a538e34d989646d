//! One daemon per instance: `labmesh serve` holds `.labmesh/daemon.lock`
//! (an advisory lock the kernel drops when the process dies, however it
//! dies) and writes its pid into it, so the CLI can tell whether a daemon
//! is serving the instance.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn lock_path(root: &Path) -> PathBuf {
    root.join(".labmesh").join("daemon.lock")
}

/// Held while a daemon serves the instance.
pub(super) struct DaemonLock(#[allow(dead_code)] File);

/// Takes the daemon lock, or says which process holds it.
pub(super) fn acquire(root: &Path) -> Result<DaemonLock> {
    let path = lock_path(root);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io("opening", &path, e))?;
    if file.try_lock().is_err() {
        let pid = read_pid(&mut file).map_or("?".to_string(), |p| p.to_string());
        return Err(Error::InvalidArgument(format!(
            "a labmesh daemon (pid {pid}) already serves this instance; stop it first, \
             or use `labmesh sync` for a one-off round"
        )));
    }
    file.set_len(0)
        .map_err(|e| Error::io("writing", &path, e))?;
    file.seek(SeekFrom::Start(0))
        .and_then(|_| writeln!(file, "{}", std::process::id()))
        .map_err(|e| Error::io("writing", &path, e))?;
    Ok(DaemonLock(file))
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The pid of the daemon serving the instance at `root`, if one is.
pub(super) fn running(root: &Path) -> Option<u32> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(lock_path(root))
        .ok()?;
    match file.try_lock() {
        // Nobody holds it: no daemon. (Dropping the file releases it.)
        Ok(()) => None,
        Err(_) => read_pid(&mut file),
    }
}
