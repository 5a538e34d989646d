//! One module per group of verbs; each handler parses nothing itself and
//! only wraps the library.

pub mod access;
pub mod artifacts;
pub mod demo;
pub mod demo_mesh;
pub mod instance;
pub mod mesh;
pub mod provenance;
pub mod registry;

use std::path::PathBuf;
use std::sync::Arc;

use labmesh::Instance;

/// What every command gets from the global flags.
pub struct Context {
    pub instance: Option<PathBuf>,
    pub json: bool,
}

impl Context {
    /// Opens the instance the flags or the current directory name, with
    /// progress bars on stderr.
    pub fn open(&self) -> anyhow::Result<Instance> {
        let cwd = std::env::current_dir()?;
        let mut instance = Instance::discover(self.instance.as_deref(), &cwd)?;
        instance.set_progress(Arc::new(crate::progress::Bars::new()));
        Ok(instance)
    }
}
