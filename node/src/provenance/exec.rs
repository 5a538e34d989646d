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
use std::sync::{Arc, Mutex};
use std::thread;

use serde_json::{Map, json};

use crate::artifact::SaveOptions;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::paths::INSTANCE_ENV;
use crate::provenance::link::{note_shown, note_text};
use crate::provenance::orphan::RECORDED_BY;
use crate::provenance::params;
use crate::provenance::probe::{self, Probe};
use crate::provenance::signals;
use crate::provenance::{Outcome, TrackOptions};
use crate::provenance::{RUN_ENV, Run, RunStatus, TransformKind, command};
use crate::time::now_ms;

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
    /// Things the user should know (refused links, outputs not found),
    /// each once; notes a save inside the command already printed are
    /// not repeated.
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
        environment.insert(RECORDED_BY.into(), json!("labmesh run"));
        let program = cmd.argv[c.program_index].clone();
        // Inline code (`sh -c '…'`) is the transform's source: a file for
        // as long as it takes to store it.
        let inline_source = match &c.inline {
            Some(inline) => Some(inline_file(&inline.code, inline.suffix)?),
            None => None,
        };
        let source = match &inline_source {
            Some(file) => Some(file.path().to_path_buf()),
            None => c.script.clone(),
        };
        let track = TrackOptions {
            key: Some(c.key.clone()),
            kind: Some(c.kind),
            source,
            description: cmd.description.clone(),
            params: Some(params::params(
                &cmd.argv,
                c.script_index.unwrap_or(c.program_index),
                &cwd,
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
        drop(inline_source);
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
        let cache_dir = self.paths.cache();
        let known = match (&c.executable, c.probe_version) {
            (Some(exe), true) => probe::remembered(&cache_dir, exe),
            _ => None,
        };
        let probe = (c.probe_version && known.is_none())
            .then(|| Probe::start(&program))
            .flatten();
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
        // The run's time is the command's: saving its outputs and report
        // (and the version probe) come after.
        let ended_at = now_ms();
        signals::set_child(0);
        let mut notes = Vec::new();
        for t in tees.into_iter().flatten() {
            if let Ok(Err(e)) = t.join() {
                notes.push(format!("part of the output could not be captured: {e}"));
            }
        }
        let status = status.map_err(|e| Error::io("waiting for", PathBuf::from(&program), e))?;
        let mut outcome = Outcome::completed();
        outcome.finished_at = Some(ended_at);
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
        let waited = std::time::Duration::from_millis((now_ms() - ended_at).max(0) as u64);
        let asked = probe.and_then(|p| p.finish(probe::GRACE.saturating_sub(waited)));
        if let (Some(version), Some(exe)) = (&asked, &c.executable) {
            probe::remember(&cache_dir, exe, version);
        }
        if let Some(version) = known.or(asked) {
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
        notices.extend(self.unshown_notes(&run)?);
        let mut seen = std::collections::HashSet::new();
        notices.retain(|n| seen.insert(n.clone()));
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

/// A temporary file holding inline code, with the suffix of its language.
fn inline_file(code: &str, suffix: &str) -> Result<tempfile::NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("labmesh-inline-")
        .suffix(suffix)
        .tempfile()
        .map_err(|e| Error::io("creating", std::env::temp_dir(), e))?;
    file.write_all(code.as_bytes())
        .map_err(|e| Error::io("writing", file.path(), e))?;
    Ok(file)
}

impl Instance {
    /// The run's notes that no save has shown the user yet.
    fn unshown_notes(&self, run: &Run) -> Result<Vec<String>> {
        use crate::error::DbContext;
        let stored: Option<String> = self
            .conn
            .prepare_cached("SELECT notes FROM run WHERE id = ?1")
            .and_then(|mut s| s.query_row([run.id], |r| r.get(0)))
            .db(&self.db_path())?;
        let notes: Vec<serde_json::Value> = stored
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Ok(notes
            .iter()
            .filter(|n| !note_shown(n))
            .map(|n| note_text(n).to_string())
            .collect())
    }
}
