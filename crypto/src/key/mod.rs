//! The node key: one ed25519 key per node, stored as a PKCS#8 PEM file
//! (the RFC 8410 form OpenSSL writes and reads).
//!
//! The same key authenticates libp2p transport (its PeerId is derived from
//! it), signs change batches and roots capability tokens, so the file that
//! holds it is guarded: created exclusively with mode 0600, refused on load
//! if group or others may read it.

mod public;

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, KeypairBytes, spki};
use ed25519_dalek::{Signer, SigningKey};
use libp2p_identity::PeerId;
use rand::Rng;
use rand::rand_core::UnwrapErr;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

pub use public::{KeyId, PublicKey};

use crate::error::KeyError;
use crate::sign::Signature;

/// Key files larger than this are not key files; we refuse to read them whole.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Fills an array from the operating system's CSPRNG.
///
/// Panics only if the OS refuses randomness (no `getrandom`, no
/// `/dev/urandom`): then no key this process could make would be safe either.
pub(crate) fn os_random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    UnwrapErr(SysRng).fill_bytes(&mut out);
    out
}

/// A node's secret ed25519 key.
///
/// The secret is zeroized on drop (ed25519-dalek's `zeroize` feature) and
/// never printed: `Debug` shows only the PeerId.
pub struct NodeKey {
    signing: SigningKey,
    public: PublicKey,
}

impl NodeKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> NodeKey {
        let seed = Zeroizing::new(os_random::<32>());
        NodeKey::from_secret_bytes(&seed)
    }

    /// The key whose 32-byte secret seed is `secret` (RFC 8032 private key).
    ///
    /// Meant for tests and key import; `generate` is how keys are made.
    pub fn from_secret_bytes(secret: &[u8; 32]) -> NodeKey {
        let signing = SigningKey::from_bytes(secret);
        let public = PublicKey::from(&signing);
        NodeKey { signing, public }
    }

    /// Generates a key and writes it to a new file at `path`.
    ///
    /// The file is created exclusively (`O_EXCL`: an existing file or
    /// symlink is never replaced) with mode 0600 on unix, and is fsynced, as
    /// is its directory, before this returns. It holds PKCS#8 v1 PEM
    /// (`-----BEGIN PRIVATE KEY-----`, RFC 8410 without the optional public
    /// key): the form `openssl genpkey -algorithm ed25519` writes, which
    /// every OpenSSL 3 reads (`openssl pkey -in node.key -pubout`), unlike
    /// PKCS#8 v2 with the public key, which OpenSSL 3.0 rejects.
    pub fn create_file(path: impl AsRef<Path>) -> Result<NodeKey, KeyError> {
        let path = path.as_ref();
        let key = NodeKey::generate();
        let pem = key
            .pkcs8_v1()
            .to_pkcs8_pem(spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Malformed {
                path: path.to_owned(),
                reason: format!("could not encode the key: {e}"),
            })?;
        let mut file = create_exclusive(path)?;
        let written = file
            .write_all(pem.as_bytes())
            .map_err(io_err("write", path))
            .and_then(|()| file.sync_all().map_err(io_err("sync", path)))
            .and_then(|()| sync_parent_dir(path));
        if let Err(e) = written {
            // Leave no half-written identity behind, so a retry can succeed.
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(key)
    }

    /// Loads a key written by [`NodeKey::create_file`] (or `openssl genpkey
    /// -algorithm ed25519`). Both PKCS#8 forms load: v1 (secret only) and v2
    /// (with the public key, which must match the secret).
    ///
    /// On unix, refuses a file that group or others may access: a readable
    /// node key lets anyone impersonate the node and use every token it holds.
    pub fn load_file(path: impl AsRef<Path>) -> Result<NodeKey, KeyError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => KeyError::NotFound {
                path: path.to_owned(),
            },
            _ => io_err("open", path)(e),
        })?;
        // Check the opened file, not the path, so nothing can swap it in between.
        let meta = file.metadata().map_err(io_err("stat", path))?;
        if !meta.is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(KeyError::InsecurePermissions {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        let not_pem = |reason: String| KeyError::NotPem {
            path: path.to_owned(),
            reason,
        };
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(not_pem(format!(
                "the file is {} bytes, far too large",
                meta.len()
            )));
        }
        let mut raw = Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE_BYTES)
            .read_to_end(&mut raw)
            .map_err(io_err("read", path))?;
        let text = std::str::from_utf8(&raw).map_err(|_| not_pem("it is not text".into()))?;
        let signing = SigningKey::from_pkcs8_pem(text).map_err(|e| pkcs8_error(path, e))?;
        let public = PublicKey::from(&signing);
        Ok(NodeKey { signing, public })
    }

    /// The secret in PKCS#8 v1 form (no public key), zeroized on drop.
    fn pkcs8_v1(&self) -> KeypairBytes {
        KeypairBytes {
            secret_key: self.signing.to_bytes(),
            public_key: None,
        }
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The libp2p PeerId of this node.
    pub fn peer_id(&self) -> PeerId {
        self.public.to_peer_id()
    }

    /// The same key as a libp2p keypair, for building the swarm; the swarm's
    /// local PeerId then equals [`NodeKey::peer_id`].
    pub fn to_libp2p_keypair(&self) -> libp2p_identity::Keypair {
        // `ed25519_from_bytes` zeroizes its input; the copy is zeroized on
        // drop either way. It fails only for a length other than 32.
        let mut secret = Zeroizing::new(self.signing.to_bytes());
        libp2p_identity::Keypair::ed25519_from_bytes(&mut secret[..])
            .expect("a 32-byte seed is always a valid libp2p ed25519 secret key")
    }

    /// Raw ed25519 signature over `message`, without domain separation.
    ///
    /// Prefer [`crate::sign::sign_batch`] and [`crate::token::Token`], which
    /// prefix their own domain strings; never use this on attacker-chosen
    /// bytes that could start with a labmesh domain prefix (`labmesh/`).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature::from_dalek(self.signing.sign(message))
    }

    /// Signs the concatenation of `parts` without copying them.
    pub(crate) fn sign_parts(&self, parts: &[&[u8]]) -> Signature {
        use ed25519_dalek::ed25519::signature::MultipartSigner;
        Signature::from_dalek(self.signing.multipart_sign(parts))
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeKey")
            .field("peer_id", &self.peer_id().to_base58())
            .finish_non_exhaustive()
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyError {
    let path: PathBuf = path.to_owned();
    move |source| KeyError::Io {
        action,
        path,
        source,
    }
}

fn create_exclusive(path: &Path) -> Result<File, KeyError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => KeyError::AlreadyExists {
            path: path.to_owned(),
        },
        _ => io_err("create", path)(e),
    })
}

/// Makes the new directory entry durable, not just the file's bytes.
fn sync_parent_dir(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err("sync the directory of", path))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn pkcs8_error(path: &Path, e: ed25519_dalek::pkcs8::Error) -> KeyError {
    use ed25519_dalek::pkcs8::Error;
    match e {
        Error::PublicKey(spki::Error::OidUnknown { oid }) => KeyError::WrongKeyType {
            path: path.to_owned(),
            oid: oid.to_string(),
        },
        Error::KeyMalformed(_) | Error::ParametersMalformed => KeyError::Malformed {
            path: path.to_owned(),
            reason: e.to_string(),
        },
        other => KeyError::NotPem {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let created = NodeKey::create_file(&path).unwrap();
        let loaded = NodeKey::load_file(&path).unwrap();
        assert_eq!(created.public_key(), loaded.public_key());
        assert_eq!(created.peer_id(), loaded.peer_id());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Same key: a signature by one verifies under the other's public key.
        let sig = loaded.sign(b"hello");
        created
            .public_key()
            .as_verifying_key()
            .verify_strict(b"hello", sig.as_dalek())
            .unwrap();
    }

    /// The key file is the RFC 8410 PKCS#8 v1 form: 48 bytes of DER, the
    /// same shape `openssl genpkey -algorithm ed25519` writes.
    #[test]
    fn key_file_is_pkcs8_v1() {
        use spki::der::Decode;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        NodeKey::create_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let (label, der) = spki::der::pem::decode_vec(text.as_bytes()).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        assert_eq!(der.len(), 48, "v1 without the public key is 48 bytes");
        let info = ed25519_dalek::pkcs8::PrivateKeyInfoRef::from_der(&der).unwrap();
        assert!(info.public_key.is_none(), "no public key: PKCS#8 v1");
    }

    /// Files in the v2 form (with the public key), as earlier labmesh
    /// versions wrote them, still load; a mismatched public key is refused.
    #[test]
    fn pkcs8_v2_files_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let key = NodeKey::from_secret_bytes(&[42; 32]);
        let v2 = key
            .signing
            .to_pkcs8_pem(spki::der::pem::LineEnding::LF)
            .unwrap();
        let path = dir.path().join("v2.key");
        write_owner_only(&path, v2.as_bytes());
        assert_eq!(NodeKey::load_file(&path).unwrap().peer_id(), key.peer_id());

        let other = NodeKey::from_secret_bytes(&[43; 32]);
        let mismatched = KeypairBytes {
            secret_key: key.signing.to_bytes(),
            public_key: Some(ed25519_dalek::pkcs8::PublicKeyBytes(
                *other.public_key().as_bytes(),
            )),
        }
        .to_pkcs8_pem(spki::der::pem::LineEnding::LF)
        .unwrap();
        let path = dir.path().join("mismatched.key");
        write_owner_only(&path, mismatched.as_bytes());
        let err = NodeKey::load_file(&path).unwrap_err();
        assert!(matches!(err, KeyError::Malformed { .. }), "{err:?}");
    }

    /// The real `openssl` reads the file and derives the same public key.
    /// Skipped (with a note) where no `openssl` binary is installed.
    #[test]
    fn openssl_reads_the_key_file() {
        use std::process::Command;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = NodeKey::create_file(&path).unwrap();
        let out = match Command::new("openssl")
            .args(["pkey", "-in"])
            .arg(&path)
            .args(["-pubout", "-outform", "DER"])
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("note: skipping, no openssl binary ({e})");
                return;
            }
        };
        assert!(
            out.status.success(),
            "openssl pkey failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // SubjectPublicKeyInfo DER: a 12-byte header, then the 32 key bytes.
        assert_eq!(out.stdout.len(), 44, "{:x?}", out.stdout);
        assert_eq!(&out.stdout[12..], key.public_key().as_bytes());
    }

    fn write_owner_only(path: &Path, contents: &[u8]) {
        std::fs::write(path, contents).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn create_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let first = NodeKey::create_file(&path).unwrap();
        let err = NodeKey::create_file(&path).unwrap_err();
        assert!(matches!(err, KeyError::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        // The original identity is untouched.
        assert_eq!(
            NodeKey::load_file(&path).unwrap().peer_id(),
            first.peer_id()
        );
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_file_is_refused_with_chmod_hint() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        NodeKey::create_file(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = NodeKey::load_file(&path).unwrap_err();
        assert!(
            matches!(err, KeyError::InsecurePermissions { mode: 0o644, .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("0644"), "{msg}");
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        // Following the hint fixes it.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        NodeKey::load_file(&path).unwrap();
    }

    #[test]
    fn load_errors_are_specific() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.key");
        let err = NodeKey::load_file(&missing).unwrap_err();
        assert!(matches!(err, KeyError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("missing.key"), "{err}");

        let write_private = |name: &str, contents: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, contents).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            p
        };
        let garbage = write_private("garbage.key", "this is not a key\n");
        let err = NodeKey::load_file(&garbage).unwrap_err();
        assert!(matches!(err, KeyError::NotPem { .. }), "{err}");
        assert!(err.to_string().contains("BEGIN PRIVATE KEY"), "{err}");

        // A P-256 PKCS#8 key (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
        let p256 = write_private(
            "p256.key",
            "-----BEGIN PRIVATE KEY-----\n\
             MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgRl2fnC8tGxqCJZBR\n\
             WIe4Bg65gUVgQmX7TSul+KuYqDGhRANCAAQ4TxY9rYjzunO5//VNn/oBSCS0bNUK\n\
             e+ZNgXsHlLtuSDntXozRL/0/2orUv25Lm4A7+SplZ4iNIPreOjIi9Ctm\n\
             -----END PRIVATE KEY-----\n",
        );
        let err = NodeKey::load_file(&p256).unwrap_err();
        assert!(matches!(err, KeyError::WrongKeyType { .. }), "{err:?}");
        assert!(err.to_string().contains("1.2.840.10045.2.1"), "{err}");

        // An ed25519 key from `openssl genpkey -algorithm ed25519` loads.
        let openssl = write_private(
            "openssl.key",
            "-----BEGIN PRIVATE KEY-----\n\
             MC4CAQAwBQYDK2VwBCIEICj2yPj3O8xX0rywqH+VJ2s61YPeDUAhgTPXHaby7r30\n\
             -----END PRIVATE KEY-----\n",
        );
        NodeKey::load_file(&openssl).unwrap();
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = NodeKey::from_secret_bytes(&[7u8; 32]);
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.peer_id().to_base58()), "{shown}");
        assert!(!shown.contains("0707"), "{shown}");
        assert!(!shown.contains("[7, 7"), "{shown}");
    }

    #[test]
    fn peer_id_matches_libp2p_keypair() {
        let key = NodeKey::generate();
        let keypair = key.to_libp2p_keypair();
        assert_eq!(key.peer_id(), keypair.public().to_peer_id());
        assert_eq!(key.peer_id(), PeerId::from(key.public_key()));
        assert!(key.peer_id().to_base58().starts_with("12D3KooW"));
        // libp2p signs with the very same key.
        let sig = keypair.sign(b"transport").unwrap();
        let sig = Signature::from_slice(&sig).unwrap();
        assert_eq!(sig, key.sign(b"transport"));
    }
}
