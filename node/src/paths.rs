//! The files of an instance, and finding an instance the way git finds a
//! repository: the given directory, else the current directory or a parent.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the directory that marks an instance.
pub const DOT_DIR: &str = ".labmesh";
/// Environment variable naming an instance directory.
pub const INSTANCE_ENV: &str = "LABMESH_INSTANCE";

/// Paths of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstancePaths {
    /// The directory that contains `.labmesh/` (the lab's project directory).
    pub root: PathBuf,
}

impl InstancePaths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        InstancePaths { root: root.into() }
    }
    pub fn dot(&self) -> PathBuf {
        self.root.join(DOT_DIR)
    }
    pub fn db(&self) -> PathBuf {
        self.dot().join("instance.db")
    }
    pub fn config(&self) -> PathBuf {
        self.dot().join("config.toml")
    }
    pub fn node_key(&self) -> PathBuf {
        self.dot().join("node.key")
    }
    pub fn default_storage(&self) -> PathBuf {
        self.dot().join("storage")
    }
    /// Verified local copies of remote content, and materialized folders.
    pub fn cache(&self) -> PathBuf {
        self.dot().join("cache")
    }

    /// Checks that `root` holds an instance.
    pub fn existing(root: &Path) -> Result<Self> {
        let paths = InstancePaths::new(absolute(root)?);
        let db = paths.db();
        if !db.is_file() {
            return Err(Error::NotAnInstance {
                path: paths.root.clone(),
                missing: db,
            });
        }
        Ok(paths)
    }

    /// Finds the instance: `explicit` if given, else `$LABMESH_INSTANCE`, else
    /// `start` or its nearest parent holding `.labmesh/instance.db`.
    pub fn discover(explicit: Option<&Path>, start: &Path) -> Result<Self> {
        if let Some(dir) = explicit {
            return InstancePaths::existing(dir);
        }
        if let Some(dir) = std::env::var_os(INSTANCE_ENV).filter(|v| !v.is_empty()) {
            return InstancePaths::existing(Path::new(&dir));
        }
        let start = absolute(start)?;
        let mut dir = Some(start.as_path());
        while let Some(d) = dir {
            if d.join(DOT_DIR).join("instance.db").is_file() {
                return Ok(InstancePaths::new(d));
            }
            dir = d.parent();
        }
        Err(Error::NoInstanceFound { searched: start })
    }
}

/// Makes a path absolute against the current directory, without resolving links.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map(|p| crate::storage::normalize(&p))
        .map_err(|e| Error::io("resolving", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_from_a_subdirectory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lab");
        std::fs::create_dir_all(root.join(".labmesh")).unwrap();
        std::fs::write(root.join(".labmesh/instance.db"), b"").unwrap();
        let deep = root.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(InstancePaths::discover(None, &deep).unwrap().root, root);
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir_all(&outside).unwrap();
        assert!(matches!(
            InstancePaths::discover(None, &outside),
            Err(Error::NoInstanceFound { .. })
        ));
        assert!(matches!(
            InstancePaths::discover(Some(&outside), &deep),
            Err(Error::NotAnInstance { .. })
        ));
    }
}
