//! Storage in object stores (S3 and S3-compatible servers, GCS, Azure,
//! HTTP/WebDAV) through `object_store`.
//!
//! Credentials come from the usual environment variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), never from files in the instance. Objects are
//! uploaded under their final content address: a PUT (or the completion of
//! a multipart upload) makes the object appear whole or not at all, so no
//! staging rename is needed. Large files are uploaded in parts, several at
//! a time. Downloads are hashed while they stream and land in the local
//! cache only when the hash matches.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::error::{Error, Result};
use crate::hash::{CHUNK, ContentHash, Hasher, read_full};
use crate::progress::Progress;
use crate::storage::{StorageKind, StoredObject};

/// Files up to this size are uploaded in one PUT; larger ones in parts.
const SINGLE_PUT_MAX: u64 = 16 << 20;
/// Size of each part of a multipart upload.
const PART_SIZE: usize = 16 << 20;
/// Parts in flight at once (bounds memory to about PART_SIZE x this).
const PARTS_IN_FLIGHT: usize = 3;

/// A storage root in an object store.
#[derive(Clone)]
pub struct CloudStorage {
    url: String,
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for CloudStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CloudStorage({})", self.url)
    }
}

/// The runtime that drives object-store futures for the blocking API.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("labmesh-storage")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::InvalidArgument(format!("cannot start the storage runtime: {e}")))
}

impl CloudStorage {
    /// Connects to the store named by `url` (`s3://bucket/prefix`, `gs://…`,
    /// `az://container/prefix`, `https://host/path`). `options` are
    /// `object_store` config keys (e.g. `aws_endpoint`, `aws_region`,
    /// `aws_allow_http`) that override the environment.
    pub fn open(url: &str, kind: StorageKind, options: &[(String, String)]) -> Result<Self> {
        // One TLS provider for the whole process: ring (what libp2p uses too).
        // Installing twice is harmless; the first one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let invalid = |reason: String| Error::InvalidStorage {
            url: url.to_string(),
            reason,
        };
        let (bucket_url, prefix) = split_url(url, kind).map_err(invalid)?;
        let store: Arc<dyn ObjectStore> = match kind {
            StorageKind::S3 => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(&bucket_url);
                for (k, v) in options {
                    let key = k.parse().map_err(|e| invalid(format!("option {k}: {e}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| invalid(e.to_string()))?)
            }
            StorageKind::Gcs => {
                let mut b =
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(&bucket_url);
                for (k, v) in options {
                    let key = k.parse().map_err(|e| invalid(format!("option {k}: {e}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| invalid(e.to_string()))?)
            }
            StorageKind::Azure => {
                let mut b =
                    object_store::azure::MicrosoftAzureBuilder::from_env().with_url(&bucket_url);
                for (k, v) in options {
                    let key = k.parse().map_err(|e| invalid(format!("option {k}: {e}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| invalid(e.to_string()))?)
            }
            StorageKind::Http => Arc::new(
                object_store::http::HttpBuilder::new()
                    .with_url(&bucket_url)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            StorageKind::Local => return Err(invalid("not an object-store URL".into())),
        };
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            store
        } else {
            Arc::new(PrefixStore::new(store, ObjectPath::from(prefix.as_str())))
        };
        Ok(CloudStorage {
            url: url.to_string(),
            store,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn err(&self, source: object_store::Error) -> Error {
        Error::Storage {
            url: self.url.clone(),
            source,
        }
    }

    /// Checks at `init` that the store is there and answers with these
    /// credentials: a listing fails for a missing bucket, where a `HEAD` of
    /// a missing object could not tell "no bucket" from "no object".
    pub fn probe(&self) -> Result<()> {
        if self.url.starts_with("http") {
            // Plain HTTP stores may not list; reaching the server is the check.
            return self.size_of("objects/.labmesh-probe").map(|_| ());
        }
        let prefix = ObjectPath::from("objects");
        let first = runtime()?.block_on(async { self.store.list(Some(&prefix)).next().await });
        match first {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) if is_missing_bucket(&e) => Err(Error::InvalidStorage {
                url: self.url.clone(),
                reason:
                    "the bucket (or container) does not exist; create it first, or check its name"
                        .into(),
            }),
            Some(Err(e)) => Err(self.err(e)),
        }
    }

    /// The object's entity tag, as the store reports it (for S3, a
    /// multipart upload's tag ends in `-<number of parts>`).
    pub fn e_tag(&self, key: &str) -> Result<Option<String>> {
        let path = ObjectPath::from(key);
        match runtime()?.block_on(self.store.head(&path)) {
            Ok(meta) => Ok(meta.e_tag),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// The object's size if it exists.
    pub fn size_of(&self, key: &str) -> Result<Option<u64>> {
        let path = ObjectPath::from(key);
        match runtime()?.block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    pub fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let path = ObjectPath::from(key);
        runtime()?
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Uploads a file (in parts when large), checking that what was read is
    /// what the caller hashed before the upload completes.
    pub fn put_file(
        &self,
        key: &str,
        src: &Path,
        expected: (ContentHash, u64),
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut file = File::open(src).map_err(|e| Error::io("reading", src, e))?;
        if expected.1 <= SINGLE_PUT_MAX {
            let mut bytes = Vec::with_capacity(expected.1 as usize);
            file.read_to_end(&mut bytes)
                .map_err(|e| Error::io("reading", src, e))?;
            if ContentHash::of(&bytes) != expected.0 {
                return Err(changed_while_saving(src));
            }
            self.put_bytes(key, bytes)?;
            progress.advance(expected.1);
            return Ok(());
        }
        let path = ObjectPath::from(key);
        runtime()?.block_on(async {
            let upload = self
                .store
                .put_multipart(&path)
                .await
                .map_err(|e| self.err(e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut hasher = Hasher::new();
            let mut buf = vec![0u8; PART_SIZE];
            loop {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.err(e))?;
                let n = match read_full(&mut file, &mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        writer.abort().await.ok();
                        return Err(Error::io("reading", src, e));
                    }
                };
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                writer.write(&buf[..n]);
                progress.advance(n as u64);
            }
            if hasher.finish() != expected {
                writer.abort().await.ok();
                return Err(changed_while_saving(src));
            }
            writer.finish().await.map(|_| ()).map_err(|e| self.err(e))
        })
    }

    /// Downloads an object into `dest` (a staging file the caller owns),
    /// hashing as it streams. Returns what arrived; the caller compares it
    /// with the object reference before publishing the file.
    pub fn download(
        &self,
        key: &str,
        dest: &mut File,
        dest_path: &Path,
        progress: &dyn Progress,
    ) -> Result<(ContentHash, u64)> {
        let path = ObjectPath::from(key);
        runtime()?.block_on(async {
            let result = self.store.get(&path).await.map_err(|e| self.err(e))?;
            let mut stream = result.into_stream();
            let mut hasher = Hasher::new();
            let mut pending: Vec<u8> = Vec::with_capacity(CHUNK);
            while let Some(bytes) = stream.next().await {
                let bytes = bytes.map_err(|e| self.err(e))?;
                dest.write_all(&bytes)
                    .map_err(|e| Error::io("writing", dest_path, e))?;
                progress.advance(bytes.len() as u64);
                // Hash in big slices so large downloads use all cores.
                pending.extend_from_slice(&bytes);
                if pending.len() >= CHUNK {
                    hasher.update(&pending);
                    pending.clear();
                }
            }
            hasher.update(&pending);
            Ok(hasher.finish())
        })
    }

    pub fn remove(&self, key: &str) -> Result<bool> {
        let path = ObjectPath::from(key);
        match runtime()?.block_on(self.store.delete(&path)) {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Every object under `prefix`.
    pub fn list(&self, prefix: &str) -> Result<Vec<StoredObject>> {
        let prefix = ObjectPath::from(prefix);
        runtime()?.block_on(async {
            let mut out = Vec::new();
            let mut stream = self.store.list(Some(&prefix));
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| self.err(e))?;
                out.push(StoredObject {
                    key: meta.location.to_string(),
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                });
            }
            Ok(out)
        })
    }
}

fn changed_while_saving(src: &Path) -> Error {
    Error::ChangedWhileSaving {
        path: src.to_path_buf(),
    }
}

/// Whether a listing failed because the bucket or container is not there.
fn is_missing_bucket(e: &object_store::Error) -> bool {
    if matches!(e, object_store::Error::NotFound { .. }) {
        return true;
    }
    let text = e.to_string();
    [
        "NoSuchBucket",
        "ContainerNotFound",
        "404 Not Found",
        "status code: 404",
    ]
    .iter()
    .any(|marker| text.contains(marker))
}

/// Splits `s3://bucket/some/prefix` into the bucket URL and the prefix.
fn split_url(url: &str, kind: StorageKind) -> std::result::Result<(String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected a URL like s3://bucket/prefix")?;
    if kind == StorageKind::Http {
        // The whole URL is the root; HttpStore takes it as its base.
        return Ok((url.trim_end_matches('/').to_string(), String::new()));
    }
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("the bucket (or container) name is missing".into());
    }
    Ok((
        format!("{scheme}://{bucket}"),
        prefix.trim_matches('/').to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_bucket_and_prefix() {
        assert_eq!(
            split_url("s3://lab-data/labmesh/main/", StorageKind::S3).unwrap(),
            ("s3://lab-data".into(), "labmesh/main".into())
        );
        assert_eq!(
            split_url("s3://lab-data", StorageKind::S3).unwrap(),
            ("s3://lab-data".into(), "".into())
        );
        assert!(split_url("s3:///x", StorageKind::S3).is_err());
    }
}
