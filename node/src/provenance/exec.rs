//! `labmesh run -- <command>`: runs a command as a tracked run.
//!
//! The command's stdout and stderr stream through to ours as they come and
//! are copied, in the order they arrive, to a temporary file (memory stays
//! bounded by two 64 KiB buffers); that file becomes the run's report
//! artifact. The child gets `LABMESH_RUN` and `LABMESH_INSTANCE`, so
//! `labmesh cache`/`save` (or the library) inside it link to the run.
//! If our stdout is closed (`… | head`), the child's pipe is closed too,
//! so it sees the same broken pipe it would without labmesh.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{Map, json};

use crate::artifact::SaveOptions;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::paths::INSTANCE_ENV;
use crate::provenance::{Outcome, TrackOptions};
use crate::provenance::{RUN_ENV, Run, RunStatus, TransformKind, command};

/// A command to run as a tracked run.
#[derive(Clone, Debug, Default)]
pub struct RunCommand {
    /// The program and its arguments.
    pub argv: Vec<OsString>,
    /// Name the transform (default: from the command line, see `command`).
    pub key: Option<String>,
    pub kind: Option<TransformKind>,
    pub description: Option<String>,
    /// Artifacts the command reads without going through labmesh.
    pub inputs: Vec<String>,
    /// Files or folders the command writes, saved (and linked) after it
    /// exits, whatever its status.
    pub outputs: Vec<PathBuf>,
    /// Copy the command's output to this process's stdout and stderr
    /// (else it is only captured).
    pub echo: bool,
    /// Stay alive through SIGINT/SIGQUIT (the terminal delivers them to
    /// the command too) and forward SIGTERM/SIGHUP to the command, so the
    /// run is always recorded. For programs that own their process (the CLI).
    pub handle_signals: bool,
}

/// How a command run went.
#[derive(Clone, Debug)]
pub struct Executed {
    pub run: Run,
    /// The exit code to pass on: the command's; 128 + signal when killed;
    /// 127 when the command was not found, 126 when it could not start.
    pub exit_code: i32,
    /// Things the user should know (refused links, outputs not found).
    pub notices: Vec<String>,
}

impl Instance {
    /// Runs a command as a tracked run and waits for it. The run is
    /// recorded whatever happens to the command; an `Err` means the run
    /// could not be recorded (or was refused before it started).
    pub fn run_command(&self, cmd: &RunCommand) -> Result<Executed> {
        // The run's row is written before and after the command. Leave the
        // WAL to the next writer's automatic checkpoint instead of syncing and
        // deleting it at exit (and re-creating it, with a directory sync, at
        // the next run): that was most of this wrapper's cost. Durability is
        // unchanged: committed WAL frames are the database.
        let _ = self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        );
        let cwd = std::env::current_dir().map_err(|e| Error::io("reading", ".", e))?;
        let c = command::classify(&cmd.argv, &cwd, self.root(), cmd.key.as_deref(), cmd.kind)?;
        let mut environment = Map::new();
        if let Some(exe) = &c.executable {
            environment.insert("executable".into(), json!(exe.to_string_lossy()));
        }
        let program = cmd.argv[c.program_index].clone();
        let track = TrackOptions {
            key: Some(c.key.clone()),
            kind: Some(c.kind),
            source: c.script.clone(),
            description: cmd.description.clone(),
            params: Some(command::params(
                &cmd.argv,
                c.script_index.unwrap_or(c.program_index),
            )),
            inputs: cmd.inputs.clone(),
            environment,
        };
        let capture = tempfile::Builder::new()
            .prefix("labmesh-run-")
            .suffix(".txt")
            .tempfile()
            .map_err(|e| Error::io("creating", std::env::temp_dir(), e))?;
        let sink = Arc::new(Mutex::new(
            capture
                .reopen()
                .map_err(|e| Error::io("opening", capture.path(), e))?,
        ));
        let ctx = self.track(&track)?;
        let _signals = cmd.handle_signals.then(signals::Guard::install);

        let mut child = Command::new(&cmd.argv[0]);
        child
            .args(&cmd.argv[1..])
            .env(RUN_ENV, ctx.uid())
            .env(INSTANCE_ENV, self.root())
            .stdin(Stdio::inherit())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Piped output is block-buffered by Python; stream it as it comes.
        if std::env::var_os("PYTHONUNBUFFERED").is_none() {
            child.env("PYTHONUNBUFFERED", "1");
        }
        let mut child = match child.spawn() {
            Ok(child) => child,
            Err(e) => {
                let name = program.to_string_lossy();
                let (error, code) = match e.kind() {
                    std::io::ErrorKind::NotFound => (
                        format!("command not found: {name} (not a file, nor a program in PATH)"),
                        127,
                    ),
                    std::io::ErrorKind::PermissionDenied => {
                        (format!("{name} is not executable (permission denied)"), 126)
                    }
                    _ => (format!("{name} could not be started: {e}"), 126),
                };
                let run = ctx.end(Outcome::errored(error))?;
                return Ok(Executed {
                    run,
                    exit_code: code,
                    notices: Vec::new(),
                });
            }
        };
        signals::set_child(child.id());
        let probe = c.probe_version.then(|| probe_version(program.clone()));
        let tees = [
            child
                .stdout
                .take()
                .map(|s| tee(s, true, sink.clone(), cmd.echo)),
            child
                .stderr
                .take()
                .map(|s| tee(s, false, sink.clone(), cmd.echo)),
        ];
        let status = child.wait();
        signals::set_child(0);
        let mut notes = Vec::new();
        for t in tees.into_iter().flatten() {
            if let Ok(Err(e)) = t.join() {
                notes.push(format!("part of the output could not be captured: {e}"));
            }
        }
        let status = status.map_err(|e| Error::io("waiting for", PathBuf::from(&program), e))?;
        let mut outcome = Outcome::completed();
        let exit_code = match (status.code(), signal_of(&status)) {
            (Some(code), _) => {
                outcome.exit_code = Some(code);
                if code != 0 {
                    outcome.status = RunStatus::Errored;
                }
                code
            }
            (None, Some(sig)) => {
                outcome.status = RunStatus::Killed;
                outcome.signal = Some(sig);
                128 + sig
            }
            (None, None) => {
                outcome.status = RunStatus::Errored;
                outcome.error = Some("the command ended without an exit status".into());
                1
            }
        };

        let mut notices = Vec::new();
        for path in &cmd.outputs {
            if !path.exists() {
                if outcome.status == RunStatus::Completed {
                    notes.push(format!(
                        "output {} was not created by the command",
                        path.display()
                    ));
                }
                continue;
            }
            match self.save(path, &SaveOptions::default()) {
                Ok(saved) => notices.extend(saved.notices),
                Err(e) => notes.push(format!("output {} was not saved: {e}", path.display())),
            }
        }
        if let Some(version) = probe.and_then(|rx| rx.recv_timeout(Duration::from_secs(2)).ok()) {
            outcome
                .environment
                .insert("interpreter".into(), json!(version));
        }
        let captured = capture.as_file().metadata().map_or(0, |m| m.len());
        if captured > 0 {
            outcome.report = Some(capture.path().to_path_buf());
        }
        outcome.notes = notes;
        let run = ctx.end(outcome)?;
        notices.extend(run.notes.iter().cloned());
        notices.dedup();
        Ok(Executed {
            run,
            exit_code,
            notices,
        })
    }
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Copies a child's stream to the capture file and (with `echo`) to our
/// stdout or stderr. A failing capture never stops the stream; a closed
/// terminal stream closes the child's pipe.
fn tee(
    mut source: impl Read + Send + 'static,
    to_stdout: bool,
    sink: Arc<Mutex<std::fs::File>>,
    echo: bool,
) -> thread::JoinHandle<std::io::Result<()>> {
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        let mut capture_error = None;
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let chunk = &buf[..n];
            if capture_error.is_none() {
                let mut file = sink.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = file.write_all(chunk) {
                    capture_error = Some(e);
                }
            }
            if echo {
                let written = if to_stdout {
                    let mut out = std::io::stdout().lock();
                    out.write_all(chunk).and_then(|()| out.flush())
                } else {
                    std::io::stderr().lock().write_all(chunk)
                };
                if written.is_err() {
                    break; // our reader went away: let the child see a closed pipe
                }
            }
        }
        capture_error.map_or(Ok(()), Err)
    })
}

/// Starts `<program> --version` beside the run; its first line arrives on
/// the channel (or never, if it is slow: the run does not wait for it).
fn probe_version(program: OsString) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let out = Command::new(&program)
            .arg("--version")
            .stdin(Stdio::null())
            .env_remove(RUN_ENV)
            .output();
        if let Ok(out) = out {
            let text = [out.stdout, out.stderr].concat();
            let text = String::from_utf8_lossy(&text);
            if let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
                let line: String = line.chars().take(200).collect();
                let _ = tx.send(line);
            }
        }
    });
    rx
}

/// Signal handling for the process that waits on a run's command.
mod signals {
    #[cfg(unix)]
    mod imp {
        use std::sync::atomic::{AtomicI32, Ordering};

        static CHILD: AtomicI32 = AtomicI32::new(0);
        static PENDING: AtomicI32 = AtomicI32::new(0);
        const HANDLED: [libc::c_int; 4] =
            [libc::SIGINT, libc::SIGQUIT, libc::SIGTERM, libc::SIGHUP];

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
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_probe_reads_the_first_line() {
        let rx = super::probe_version("sh".into());
        // `sh --version` may be unsupported (dash): only check it never blocks.
        let _ = rx.recv_timeout(std::time::Duration::from_secs(5));
        let rx = super::probe_version("bash".into());
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
            assert!(line.to_lowercase().contains("bash"), "{line}");
        }
    }
}
