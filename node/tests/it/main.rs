//! Library-level integration tests of `labmesh::Instance` on real SQLite
//! files and real storage directories.

mod artifacts;
mod folders;
mod lifecycle;
mod mesh;
mod mesh_net;
mod provenance;
mod registries;
mod schema;

use std::path::{Path, PathBuf};

use labmesh::{InitOptions, Instance};

/// A fresh instance in a temporary directory.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub instance: Instance,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    pub fn new() -> Lab {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = InitOptions {
            user: Some("ada".into()),
            ..InitOptions::default()
        };
        let instance = Instance::init(dir.path().join("lab"), &opts).expect("init");
        Lab { dir, instance }
    }

    pub fn root(&self) -> PathBuf {
        self.instance.root().to_path_buf()
    }

    /// Writes a file under the instance root and returns its path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root().join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        // Stored objects are read-only; test files are not, but may be rewritten.
        let _ = std::fs::remove_file(&path);
        std::fs::write(&path, content).unwrap();
        path
    }

    pub fn storage_root(&self) -> PathBuf {
        self.root().join(".labmesh/storage")
    }
}

/// Every object file under a storage root.
pub fn objects(storage: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(shards) = std::fs::read_dir(storage.join("objects")) else {
        return out;
    };
    for shard in shards.flatten() {
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

/// Makes a read-only object writable and overwrites it (simulated corruption).
pub fn tamper(path: &Path, content: &[u8]) {
    let mut perms = std::fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(path, perms).unwrap();
    std::fs::write(path, content).unwrap();
}
