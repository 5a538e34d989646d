//! labmesh: a lab's data-management node.
//!
//! An [`Instance`] is a directory holding `.labmesh/`: SQLite registries
//! (`instance.db`), a node key, configuration, and a default storage root
//! where content lives under its BLAKE3 hash. Everything the CLI does goes
//! through this API.
//!
//! ```no_run
//! use labmesh::{Instance, InitOptions, SaveOptions};
//!
//! # fn main() -> labmesh::Result<()> {
//! let lab = Instance::init("mylab", &InitOptions::default())?;
//! let saved = lab.save("mylab/plate1.parquet", &SaveOptions {
//!     description: Some("plate 1".into()),
//!     ..SaveOptions::default()
//! })?;
//! println!("{} {:?}", saved.artifact.uid, saved.status);
//!
//! // Later, anywhere inside the lab directory:
//! let lab = Instance::discover(None, std::path::Path::new("."))?;
//! let content = lab.cache("plate1.parquet")?; // verified local path
//! # let _ = content;
//! # Ok(()) }
//! ```
//!
//! Invariants the crate keeps:
//! - content is durable before a row points at it; a crash leaves at most
//!   unreferenced objects, which `gc` removes;
//! - each public call is one transaction, and repeating it is harmless;
//! - uids are global and random; integer ids never leave the node.

pub mod access;
pub mod artifact;
pub mod config;
pub mod daemon;
pub mod db;
pub mod error;
pub mod failpoint;
pub mod hash;
pub mod instance;
pub mod mesh;
pub mod parallel;
pub mod paths;
pub mod progress;
pub mod provenance;
pub mod query;
pub mod registry;
pub mod search;
pub mod similar;
pub mod storage;
pub mod suffix;
pub mod tabular;
pub mod time;
pub mod uid;

pub use artifact::{
    Artifact, ArtifactKind, CachedContent, Deleted, GcOptions, GcReport, ListOptions, SaveOptions,
    SaveStatus, Saved,
};
pub use error::{Error, Result};
pub use hash::ContentHash;
pub use instance::{InitOptions, Instance, InstanceInfo, StorageRecord};
pub use progress::{NoProgress, Progress};
