//! Provenance: transforms (the code), runs (one execution of it), and
//! lineage (which artifacts each run read and wrote).
//!
//! A run is started by `labmesh run -- <command>` (see `exec`) or by the
//! library's [`Instance::track`]. While it runs, every artifact this process
//! reads through `cache` is linked as an input and every artifact it saves
//! as an output; child processes do the same through `LABMESH_RUN`, which
//! names the run. Links are rows in `run_input` and `run_output`, written in
//! the transaction of the save (or in one small transaction of their own
//! for a read), so recording provenance costs tens of microseconds.
//!
//! Invariants:
//! - the lineage graph is acyclic: a link that would close a cycle (a run
//!   reading what it produced, or producing what it read) is refused;
//! - an artifact has at most one creating run (`run_output.created = 1`);
//!   runs that produce the same content again are linked, never duplicated;
//! - a run leaves `running` exactly once, and only links to `running` runs
//!   are recorded.

mod collapse;
mod command;
mod exec;
mod layout;
mod lineage;
mod link;
mod lookup;
mod orphan;
mod owner;
mod params;
mod probe;
mod render;
mod signals;
mod svg;
mod track;
mod transform;

use serde::Serialize;

use crate::artifact::Artifact;
use crate::error::{Error, Result};

pub use command::{Classified, InlineCode, classify};
pub use exec::{Executed, RunCommand};
pub use lineage::{
    ArtifactNode, Direction, EdgeKind, Lineage, LineageEdge, LineageNode, LineageOptions, RunNode,
};
pub use link::WALK_BUDGET;
pub use render::Format;
pub use track::{Outcome, RunContext, TrackOptions};

/// Environment variable naming the run that child processes record into.
pub const RUN_ENV: &str = "LABMESH_RUN";

/// Length of a run uid (runs are not versioned).
pub const RUN_UID_LEN: usize = 16;

/// What a transform is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransformKind {
    Script,
    Pipeline,
    Notebook,
    /// A program without a source file in the instance (`make`, `samtools`, `python -m x`).
    Command,
}

impl TransformKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransformKind::Script => "script",
            TransformKind::Pipeline => "pipeline",
            TransformKind::Notebook => "notebook",
            TransformKind::Command => "command",
        }
    }

    fn from_db(s: &str) -> TransformKind {
        match s {
            "pipeline" => TransformKind::Pipeline,
            "notebook" => TransformKind::Notebook,
            "command" => TransformKind::Command,
            _ => TransformKind::Script,
        }
    }
}

impl std::str::FromStr for TransformKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "script" => Ok(TransformKind::Script),
            "pipeline" => Ok(TransformKind::Pipeline),
            "notebook" => Ok(TransformKind::Notebook),
            "command" => Ok(TransformKind::Command),
            _ => Err(Error::InvalidArgument(format!(
                "unknown transform kind {s:?}: use script, pipeline, notebook or command"
            ))),
        }
    }
}

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Completed,
    Errored,
    /// Ended by a signal.
    Killed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Errored => "errored",
            RunStatus::Killed => "killed",
        }
    }

    fn from_db(s: &str) -> RunStatus {
        match s {
            "completed" => RunStatus::Completed,
            "errored" => RunStatus::Errored,
            "killed" => RunStatus::Killed,
            _ => RunStatus::Running,
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "running" => Ok(RunStatus::Running),
            "completed" => Ok(RunStatus::Completed),
            "errored" => Ok(RunStatus::Errored),
            "killed" => Ok(RunStatus::Killed),
            _ => Err(Error::InvalidArgument(format!(
                "unknown run status {s:?}: use running, completed, errored or killed"
            ))),
        }
    }
}

/// One version of a transform: a script, pipeline, notebook or command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transform {
    /// 16-character stem shared by the versions of a key + 4-character version.
    pub uid: String,
    pub key: String,
    pub kind: TransformKind,
    pub description: Option<String>,
    /// BLAKE3 of the source (none for commands).
    pub hash: Option<String>,
    pub size: Option<u64>,
    /// The artifact holding the source.
    pub source: Option<String>,
    /// 1 for the first version of the key, 2 for the next, …
    pub version: u64,
    pub is_latest: bool,
    pub revises: Option<String>,
    /// Runs of this version.
    pub n_runs: u64,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub created_at: i64,
    pub created_by: String,
    #[serde(skip)]
    pub(crate) id: i64,
}

/// The transform of a run, in brief.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransformRef {
    pub uid: String,
    pub key: String,
    pub kind: TransformKind,
    pub version: u64,
}

/// One execution of a transform.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Run {
    pub uid: String,
    pub transform: TransformRef,
    pub status: RunStatus,
    #[serde(serialize_with = "crate::time::serde_ms::serialize")]
    pub started_at: i64,
    #[serde(serialize_with = "crate::time::serde_ms::option::serialize")]
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why the run errored when the command gave no exit status.
    pub error: Option<String>,
    /// Links refused during the run, and other things worth knowing.
    pub notes: Vec<String>,
    pub params: serde_json::Value,
    pub environment: serde_json::Value,
    /// The artifact holding the captured stdout and stderr.
    pub report: Option<String>,
    /// The run that was active when this one started.
    pub parent: Option<String>,
    pub n_inputs: u64,
    pub n_outputs: u64,
    pub created_by: String,
    pub origin: String,
    #[serde(skip)]
    pub(crate) id: i64,
}

/// An artifact a run wrote, and whether the run created it (or produced
/// content that was already saved).
#[derive(Clone, Debug, Serialize)]
pub struct RunOutput {
    #[serde(flatten)]
    pub artifact: Artifact,
    pub created: bool,
}

/// Which runs `runs` lists.
#[derive(Clone, Debug)]
pub struct RunListOptions {
    /// Only runs of this transform key (any version) or transform uid.
    pub transform: Option<String>,
    pub status: Option<RunStatus>,
    pub limit: usize,
}

impl Default for RunListOptions {
    fn default() -> Self {
        RunListOptions {
            transform: None,
            status: None,
            limit: 50,
        }
    }
}

/// The version number of transform `t` in its family.
const VERSION_OF_T: &str =
    "(SELECT count(*) FROM transform v WHERE substr(v.uid, 1, 16) = substr(t.uid, 1, 16)
     AND (v.created_at < t.created_at OR (v.created_at = t.created_at AND v.id <= t.id)))";
