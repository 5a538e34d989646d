//! Where content lives: a storage root on the local file system or in an
//! object store, addressed by content (see `layout`).

pub mod cloud;
pub mod layout;
pub mod local;
pub(crate) mod recorded;
pub mod staging;
mod sys;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

pub use cloud::CloudStorage;
pub use local::LocalStorage;
pub use staging::StagedBatch;

/// The kinds of storage root, named by URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Local,
    S3,
    Gcs,
    Azure,
    Http,
}

impl StorageKind {
    /// The value stored in the `storage.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageKind::Local => "local",
            StorageKind::S3 => "s3",
            StorageKind::Gcs => "gs",
            StorageKind::Azure => "az",
            StorageKind::Http => "http",
        }
    }
}

/// An object found in a storage listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub key: String,
    pub size: u64,
    pub modified_ms: i64,
}

/// Where `init` puts the default storage, recorded relative to the
/// instance directory so that a moved or copied instance keeps using its own.
pub const DEFAULT_LOCAL_ROOT: &str = ".labmesh/storage";

/// A storage root URL, normalized: `file:///abs/path` for local roots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageUrl {
    pub url: String,
    pub kind: StorageKind,
}

impl StorageUrl {
    /// Parses a URL or a local path (relative paths resolve against `base`).
    pub fn parse(input: &str, base: &Path) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidStorage {
            url: input.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            let path = base.join(trimmed);
            return Ok(StorageUrl::local(&path));
        };
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(invalid(
                        "file:// URLs need an absolute path, e.g. file:///data/labmesh",
                    ));
                }
                return Ok(StorageUrl::local(Path::new(rest)));
            }
            "s3" | "s3a" => StorageKind::S3,
            "gs" | "gcs" => StorageKind::Gcs,
            "az" | "azure" | "abfs" | "abfss" | "adl" => StorageKind::Azure,
            "http" | "https" => StorageKind::Http,
            other => {
                return Err(invalid(&format!(
                    "unknown scheme {other:?}; use a local path, file://, s3://, gs://, az:// or https://"
                )));
            }
        };
        if rest.trim_matches('/').is_empty() {
            return Err(invalid("the bucket (or host) is missing"));
        }
        // Secrets in a URL would be recorded and echoed: refuse them, without repeating them.
        let authority = rest.split('/').next().unwrap_or("");
        if let Some((_, host)) = authority.rsplit_once('@') {
            return Err(Error::InvalidStorage {
                url: format!("{scheme}://***@{host}/…"),
                reason: "it holds credentials (user:password@); labmesh never records secrets, \
                         so set them in the environment (AWS_*, GOOGLE_*, AZURE_*) and drop them from the URL"
                    .into(),
            });
        }
        if let Some((base_url, _)) = trimmed.split_once('?') {
            return Err(Error::InvalidStorage {
                url: format!("{base_url}?…"),
                reason: "storage URLs take no query string; pass settings with --storage-option, \
                         and secrets such as SAS tokens in the environment"
                    .into(),
            });
        }
        Ok(StorageUrl {
            url: trimmed.trim_end_matches('/').to_string(),
            kind,
        })
    }

    fn local(path: &Path) -> Self {
        let clean = normalize(path);
        StorageUrl {
            url: format!("file://{}", clean.display()),
            kind: StorageKind::Local,
        }
    }

    /// The local root directory, for `file://` URLs.
    pub fn local_path(&self) -> Option<PathBuf> {
        self.url.strip_prefix("file://").map(PathBuf::from)
    }

    /// How this root is recorded in `config.toml` and the storage table: a
    /// local root inside the instance directory as a path relative to it
    /// (so the instance can be moved or copied), anything else as its URL.
    pub fn recorded(&self, instance_root: &Path) -> String {
        let inside = self
            .local_path()
            .and_then(|p| p.strip_prefix(instance_root).ok().map(Path::to_path_buf))
            .filter(|rel| !rel.as_os_str().is_empty());
        match inside {
            Some(rel) => rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            None => self.url.clone(),
        }
    }
}

/// Lexically removes `.` and `..` so stored roots are canonical without
/// requiring the directory to exist yet.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// An opened storage root.
#[derive(Clone, Debug)]
pub enum Storage {
    Local(LocalStorage),
    Cloud(CloudStorage),
}

impl Storage {
    /// Opens the storage at `url` with `object_store` options for cloud stores.
    pub fn open(url: &StorageUrl, options: &[(String, String)]) -> Result<Self> {
        match url.local_path() {
            Some(root) => Ok(Storage::Local(LocalStorage::new(root))),
            None => Ok(Storage::Cloud(CloudStorage::open(
                &url.url, url.kind, options,
            )?)),
        }
    }

    /// A human-readable location of an object.
    pub fn location(&self, key: &str) -> String {
        match self {
            Storage::Local(s) => s.path_of(key).display().to_string(),
            Storage::Cloud(s) => format!("{}/{key}", s.url()),
        }
    }

    /// Removes an object; `Ok(false)` when it was already gone.
    pub fn remove(&self, key: &str) -> Result<bool> {
        match self {
            Storage::Local(s) => s.remove(key),
            Storage::Cloud(s) => s.remove(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        let base = Path::new("/home/lab");
        let local = StorageUrl::parse("data/../store", base).unwrap();
        assert_eq!(local.url, "file:///home/lab/store");
        assert_eq!(
            local.local_path().unwrap(),
            PathBuf::from("/home/lab/store")
        );
        let s3 = StorageUrl::parse("s3://bucket/prefix/", base).unwrap();
        assert_eq!(
            (s3.url.as_str(), s3.kind),
            ("s3://bucket/prefix", StorageKind::S3)
        );
        assert_eq!(
            StorageUrl::parse("gs://b", base).unwrap().kind,
            StorageKind::Gcs
        );
        assert_eq!(
            StorageUrl::parse("az://c/p", base).unwrap().kind,
            StorageKind::Azure
        );
        assert_eq!(
            StorageUrl::parse("https://host/x", base).unwrap().kind,
            StorageKind::Http
        );
        for bad in ["", "ftp://x", "s3://", "file://relative"] {
            assert!(StorageUrl::parse(bad, base).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roots_inside_the_instance_are_recorded_relative_to_it() {
        let root = Path::new("/home/lab");
        let inside = StorageUrl::parse(DEFAULT_LOCAL_ROOT, root).unwrap();
        assert_eq!(inside.url, "file:///home/lab/.labmesh/storage");
        assert_eq!(inside.recorded(root), ".labmesh/storage");
        // The recorded form resolves against wherever the instance is now.
        let moved = StorageUrl::parse(&inside.recorded(root), Path::new("/srv/lab")).unwrap();
        assert_eq!(moved.url, "file:///srv/lab/.labmesh/storage");
        let outside = StorageUrl::parse("/srv/share", root).unwrap();
        assert_eq!(outside.recorded(root), "file:///srv/share");
        let s3 = StorageUrl::parse("s3://b/p", root).unwrap();
        assert_eq!(s3.recorded(root), "s3://b/p");
    }

    #[test]
    fn credentials_in_a_url_are_refused() {
        let base = Path::new("/");
        for url in [
            "https://ada:hunter2@dav.example.org/lab",
            "s3://AKIA:topsecret@bucket/x",
            "az://container/x?sv=2024&sig=abc",
        ] {
            let err = StorageUrl::parse(url, base).unwrap_err().to_string();
            assert!(err.contains("environment"), "{url}: {err}");
            assert!(
                !err.contains("hunter2") && !err.contains("topsecret") && !err.contains("sig="),
                "the secret is not echoed: {err}"
            );
        }
    }
}
