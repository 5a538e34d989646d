//! Error types of the crate, one enum per job.
//!
//! Every message says what happened and, where there is one, what to do about
//! it: these strings reach the `labmesh` CLI unchanged.

use std::io;
use std::path::PathBuf;

use crate::key::KeyId;
use crate::token::{BlockId, Role, Scope};

/// Problems with node keys, key files, PeerIds and identity lines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file is not there.
    #[error("no key file at {path}; create one first (e.g. `labmesh init`)", path = path.display())]
    NotFound {
        /// The path that was looked at.
        path: PathBuf,
    },

    /// `create_file` found something at the path and refused to replace it.
    #[error(
        "refusing to overwrite {path}: a key file is an identity and cannot be recreated; \
         move it away first if you really want a new one",
        path = path.display()
    )]
    AlreadyExists {
        /// The existing path.
        path: PathBuf,
    },

    /// The key file can be read by other users.
    #[error(
        "key file {path} has mode {mode:04o}, which lets group or other users access it; \
         fix it with `chmod 600 {path}`",
        path = path.display()
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// The path exists but is not a regular file.
    #[error("{path} is not a regular file; a node key file is a PEM file", path = path.display())]
    NotAFile {
        /// The offending path.
        path: PathBuf,
    },

    /// The file is not PEM-encoded PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    #[error(
        "{path} is not a PEM-encoded PKCS#8 private key ({reason}); \
         a labmesh key file starts with `-----BEGIN PRIVATE KEY-----`",
        path = path.display()
    )]
    NotPem {
        /// The key file.
        path: PathBuf,
        /// What the PEM/DER decoder said.
        reason: String,
    },

    /// The file holds a PKCS#8 key of another algorithm (RSA, P-256, ...).
    #[error(
        "{path} holds a key of algorithm {oid}, but labmesh node keys are ed25519 \
         (OID 1.3.101.112)",
        path = path.display()
    )]
    WrongKeyType {
        /// The key file.
        path: PathBuf,
        /// The algorithm OID found in the file.
        oid: String,
    },

    /// The file is ed25519 PKCS#8 but its contents are inconsistent.
    #[error("{path} holds a malformed ed25519 key: {reason}", path = path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },

    /// Any other I/O failure, with what we were doing.
    #[error("could not {action} {path}: {source}", path = path.display())]
    Io {
        /// What we were doing ("read", "create", "sync", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// 32 bytes that are not a usable ed25519 public key.
    #[error("not a usable ed25519 public key: {reason}")]
    InvalidPublicKey {
        /// Why.
        reason: &'static str,
    },

    /// A string that does not parse as a libp2p PeerId.
    #[error("`{input}` is not a libp2p PeerId ({reason}); expected something like `12D3KooW…`")]
    InvalidPeerId {
        /// The input (truncated if long).
        input: String,
        /// What the parser said.
        reason: String,
    },

    /// A PeerId that does not inline an ed25519 key (e.g. an RSA or hashed PeerId).
    #[error(
        "PeerId {peer_id} does not contain an ed25519 public key ({reason}); \
         labmesh identities are ed25519 PeerIds starting with `12D3KooW`"
    )]
    NotEd25519PeerId {
        /// The PeerId in text form.
        peer_id: String,
        /// Why.
        reason: &'static str,
    },

    /// An identity line that does not follow `labmesh-identity:v1:<name>:<peer-id>`.
    #[error("invalid identity line: {reason}; expected `labmesh-identity:v1:<name>:<peer-id>`")]
    InvalidIdentity {
        /// What was wrong.
        reason: String,
    },

    /// An identity name outside 1..=64 chars of `[A-Za-z0-9._-]`.
    #[error("invalid identity name `{name}`: {reason} (use 1 to 64 of A-Z a-z 0-9 . _ -)")]
    InvalidName {
        /// The rejected name (truncated if long).
        name: String,
        /// What was wrong.
        reason: &'static str,
    },
}

/// Problems decoding or verifying signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A signature must be exactly 64 bytes.
    #[error("an ed25519 signature is exactly 64 bytes, got {len}")]
    WrongLength {
        /// The length received.
        len: usize,
    },

    /// The signature does not verify for this key and payload.
    #[error("signature does not verify: the payload was not signed by {signer} or was altered")]
    Invalid {
        /// The key the signature was checked against.
        signer: KeyId,
    },

    /// One item of a batch failed; `index` says which.
    #[error(
        "batch item {index}: signature does not verify: the payload was not signed by \
         {signer} or was altered"
    )]
    BatchItem {
        /// Position of the first failing item in the batch.
        index: usize,
        /// The key it was checked against.
        signer: KeyId,
    },

    /// The batch equation failed although every item verified alone (should
    /// not happen; reported rather than accepted).
    #[error(
        "batch verification failed although each signature verifies alone; rejecting the batch"
    )]
    BatchInconsistent,
}

/// Which right a delegation step tried to widen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Widened {
    /// The role is higher than the parent's.
    Role,
    /// The scope is not covered by the parent's.
    Scope,
    /// The expiry is later than the parent's.
    Expiry,
    /// The start is earlier than the parent's.
    NotBefore,
}

impl std::fmt::Display for Widened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Widened::Role => "role",
            Widened::Scope => "scope",
            Widened::Expiry => "expiry",
            Widened::NotBefore => "not_before",
        })
    }
}

/// Problems parsing, building, verifying or using capability tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    // ---- text form ----
    /// Text tokens start with `lmt1_`.
    #[error("not a labmesh token: text tokens start with `lmt1_`")]
    MissingPrefix,

    /// The part after `lmt1_` is not canonical base64url without padding.
    #[error("token text is not valid base64url (no padding): {reason}; was it cut or re-wrapped?")]
    BadBase64 {
        /// What the decoder said.
        reason: String,
    },

    // ---- binary form ----
    /// Larger than [`crate::token::MAX_TOKEN_BYTES`].
    #[error("token is {len} bytes, the limit is {max}")]
    TooLarge {
        /// Size received.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// The input ended inside a field.
    #[error("token is truncated: {what} at byte {offset} is cut short; was it copied whole?")]
    Truncated {
        /// The field that was cut.
        what: &'static str,
        /// Where it started.
        offset: usize,
    },

    /// Does not start with `LMT`.
    #[error("not a labmesh token: binary tokens start with the bytes `LMT`")]
    BadMagic,

    /// A format version this build does not know.
    #[error(
        "token format version {version} is not supported (this build reads version 1); upgrade labmesh"
    )]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },

    /// A block count of zero.
    #[error("token has no blocks")]
    NoBlocks,

    /// More blocks than [`crate::token::MAX_BLOCKS`].
    #[error(
        "token has {count} blocks, the limit is {max} (delegation chains are at most {max} long)"
    )]
    TooManyBlocks {
        /// Blocks found or requested.
        count: usize,
        /// The limit.
        max: usize,
    },

    /// Bytes left after the last block.
    #[error("token has {count} unexpected bytes after its last block")]
    TrailingBytes {
        /// How many.
        count: usize,
    },

    /// A role byte other than 1, 2, 3.
    #[error("block {block}: unknown role byte {byte} (expected 1=read, 2=write, 3=admin)")]
    UnknownRole {
        /// Block index.
        block: usize,
        /// The byte found.
        byte: u8,
    },

    /// A scope kind byte other than 1..=4.
    #[error(
        "block {block}: unknown scope kind byte {byte} \
         (expected 1=instance, 2=collection, 3=artifact, 4=registry)"
    )]
    UnknownScopeKind {
        /// Block index.
        block: usize,
        /// The byte found.
        byte: u8,
    },

    /// Scope bytes that are not UTF-8.
    #[error("block {block}: scope argument is not valid UTF-8")]
    InvalidUtf8 {
        /// Block index.
        block: usize,
    },

    /// Scope bytes that are UTF-8 but not a valid uid / registry name.
    #[error("block {block}: invalid scope: {reason}")]
    InvalidScope {
        /// Block index.
        block: usize,
        /// What was wrong.
        reason: String,
    },

    /// A key field that is not a usable ed25519 public key.
    #[error("block {block}: {field} is not a usable ed25519 public key")]
    InvalidKey {
        /// Block index.
        block: usize,
        /// "issuer" or "holder".
        field: &'static str,
    },

    // ---- text forms of parts ----
    /// A role string other than read/write/admin.
    #[error("unknown role `{input}`; valid roles are read, write, admin")]
    ParseRole {
        /// The input.
        input: String,
    },

    /// A scope string that does not parse.
    #[error("invalid scope `{input}`: {reason}")]
    ParseScope {
        /// The input (truncated if long).
        input: String,
        /// What was wrong, and the valid forms.
        reason: String,
    },

    /// A block id that is not 64 lowercase hex digits.
    #[error("invalid token/block id `{input}`: expected 64 hex digits")]
    ParseBlockId {
        /// The input (truncated if long).
        input: String,
    },

    // ---- building ----
    /// `delegate` was called with a key that is not the token's current holder.
    #[error(
        "only the current holder can delegate this token: it is held by {holder}, \
         but the signing key is {signer}"
    )]
    NotHolder {
        /// The token's holder.
        holder: KeyId,
        /// The key that tried to sign.
        signer: KeyId,
    },

    // ---- verification (in the order they are checked) ----
    /// The root block was not issued by a key this node trusts.
    #[error("token was issued by {issuer}, which is not a trusted root on this node")]
    UnknownRoot {
        /// The root issuer.
        issuer: KeyId,
    },

    /// A block's signature does not verify against its issuer.
    #[error("block {block}: signature does not verify against its issuer (forged or altered)")]
    BadSignature {
        /// Block index.
        block: usize,
    },

    /// A block does not follow from the previous one.
    #[error("block {block}: broken chain: {reason}")]
    BrokenChain {
        /// Block index.
        block: usize,
        /// Which link is wrong.
        reason: &'static str,
    },

    /// A block grants more than its parent (or `delegate` was asked to).
    #[error("block {block} widens its {what}: {detail}; a delegation can only narrow rights")]
    Widening {
        /// Block index.
        block: usize,
        /// Which right.
        what: Widened,
        /// Parent vs child values.
        detail: String,
    },

    /// A block whose window `[not_before, expires)` holds no instant: it
    /// could never be valid (clock-skew leeway must not make it so).
    #[error(
        "block {block} has an empty validity window: it expires at {} ({expires}), \
         which is not after its start {} ({not_before}); a token must expire after it starts",
        crate::token::format_unix_time(*expires),
        crate::token::format_unix_time(*not_before)
    )]
    EmptyWindow {
        /// Block index.
        block: usize,
        /// Its `not_before` (unix seconds).
        not_before: i64,
        /// Its `expires` (unix seconds).
        expires: i64,
    },

    /// `now` is before a block's `not_before` (beyond the clock-skew leeway).
    #[error(
        "block {block} is not valid before {} (unix {at}); check the clocks or wait",
        crate::token::format_unix_time(*at)
    )]
    NotYetValid {
        /// Block index.
        block: usize,
        /// Its `not_before`.
        at: i64,
    },

    /// `now` is at or past a block's `expires` (beyond the clock-skew leeway).
    #[error(
        "block {block} expired at {} (unix {at}); ask the issuer for a new token",
        crate::token::format_unix_time(*at)
    )]
    Expired {
        /// Block index.
        block: usize,
        /// Its `expires`.
        at: i64,
    },

    /// A block of the chain has been revoked.
    #[error("block {block} (id {id}) has been revoked")]
    Revoked {
        /// Block index.
        block: usize,
        /// Its id.
        id: BlockId,
    },

    /// The token is held by another key than the one presenting it.
    #[error(
        "token is held by {holder} but was presented by {presenter}; \
         a token works only over a connection authenticated by its holder's key"
    )]
    WrongHolder {
        /// The last block's holder.
        holder: KeyId,
        /// The authenticated peer.
        presenter: KeyId,
    },

    // ---- authorization ----
    /// The token's role is below what the operation needs.
    #[error("token grants role {have}, but this operation needs {need}")]
    InsufficientRole {
        /// The token's effective role.
        have: Role,
        /// What the operation requires.
        need: Role,
    },

    /// The resource is outside the token's scope.
    #[error("token scope `{scope}` does not cover `{resource}`")]
    OutOfScope {
        /// The token's effective scope.
        scope: Scope,
        /// The resource asked for.
        resource: Scope,
    },
}

/// Shortens user input echoed inside an error message.
pub(crate) fn clip(input: &str) -> String {
    const MAX: usize = 80;
    match input.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &input[..i]),
        None => input.to_owned(),
    }
}
