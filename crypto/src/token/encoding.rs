//! The canonical binary and text forms of tokens (spec: `crypto/TOKENS.md`).
//!
//! Every field is fixed width except the scope argument, which carries its
//! length, so each token has exactly one encoding: decoding then encoding
//! gives back the same bytes, and the block id (a hash of those bytes) is
//! well defined. The decoder never panics and never allocates more than the
//! input's size: tokens come from peers and from users' clipboards.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::scope::kind;
use super::{MAX_BLOCKS, MAX_TOKEN_BYTES, Role, Scope};
use crate::error::{TokenError, clip};
use crate::key::{NodeKey, PublicKey};
use crate::sign::Signature;

/// First bytes of every binary token.
pub const MAGIC: &[u8; 3] = b"LMT";
/// The binary format version this build reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// Prefix of the text form: `lmt1_` + base64url (no padding) of the bytes.
pub const TEXT_PREFIX: &str = "lmt1_";
/// Domain prefix of block signatures (see [`crate::sign::BATCH_DOMAIN`]).
pub const BLOCK_DOMAIN: &[u8] = b"labmesh/token-block/v1\0";

/// Longest text form: the prefix plus base64 of `MAX_TOKEN_BYTES`.
const MAX_TEXT_LEN: usize = TEXT_PREFIX.len() + MAX_TOKEN_BYTES.div_ceil(3) * 4;

/// Size of a block body without its scope argument.
const FIXED_BODY_LEN: usize = 32 + 32 + 1 + 1 + 1 + 8 + 8 + 16 + 32;

/// A block's id: BLAKE3 of its body and signature. It names the block in
/// chains (`parent`) and in revocation lists; the last block's id is the
/// token's id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId([u8; 32]);

impl BlockId {
    /// The parent id of a root block.
    pub const ZERO: BlockId = BlockId([0; 32]);

    /// From raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> BlockId {
        BlockId(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for BlockId {
    /// Lowercase hex, the form users revoke by.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({self})")
    }
}

impl FromStr for BlockId {
    type Err = TokenError;

    /// Parses 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TokenError::ParseBlockId { input: clip(s) };
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| err())?;
        }
        Ok(BlockId(out))
    }
}

/// The signed part of a block. Built by hand only to test verification;
/// [`super::Token::issue`] and [`super::Token::delegate`] fill it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockBody {
    /// Who signs this block: the root key, or the previous block's holder.
    pub issuer: PublicKey,
    /// Who may use (and further delegate) the token ending here.
    pub holder: PublicKey,
    /// The role granted.
    pub role: Role,
    /// The scope granted.
    pub scope: Scope,
    /// Valid from (unix seconds).
    pub not_before: i64,
    /// Valid until, exclusive (unix seconds; `i64::MAX` = never expires).
    pub expires: i64,
    /// Random, so two otherwise equal grants have distinct, separately
    /// revocable ids.
    pub nonce: [u8; 16],
    /// Id of the previous block; [`BlockId::ZERO`] for the root block.
    pub parent: BlockId,
}

impl BlockBody {
    /// The canonical body bytes (the signed part, without the domain prefix).
    pub fn to_bytes(&self) -> Vec<u8> {
        let arg = self.scope.argument().as_bytes();
        let mut out = Vec::with_capacity(FIXED_BODY_LEN + arg.len());
        out.extend_from_slice(self.issuer.as_bytes());
        out.extend_from_slice(self.holder.as_bytes());
        out.push(self.role.to_byte());
        out.push(self.scope.kind_byte());
        // Scope arguments are at most 64 bytes (validated when built).
        out.push(arg.len() as u8);
        out.extend_from_slice(arg);
        out.extend_from_slice(&self.not_before.to_be_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(self.parent.as_bytes());
        out
    }
}

/// One delegation step: a body and its issuer's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    body: BlockBody,
    body_bytes: Vec<u8>,
    signature: Signature,
    id: BlockId,
}

impl Block {
    /// Signs `body` with `key` over `BLOCK_DOMAIN || body`. The signature
    /// verifies only if `key` is `body.issuer`; anything else is a forgery
    /// that [`super::Token::verify`] rejects.
    pub fn sign(body: BlockBody, key: &NodeKey) -> Block {
        let body_bytes = body.to_bytes();
        let signature = key.sign_parts(&[BLOCK_DOMAIN, &body_bytes]);
        Block::assemble(body, body_bytes, signature)
    }

    /// Pairs a body with any signature (no check is made here).
    pub fn from_parts(body: BlockBody, signature: Signature) -> Block {
        let body_bytes = body.to_bytes();
        Block::assemble(body, body_bytes, signature)
    }

    fn assemble(body: BlockBody, body_bytes: Vec<u8>, signature: Signature) -> Block {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&body_bytes);
        hasher.update(&signature.to_bytes());
        let id = BlockId(*hasher.finalize().as_bytes());
        Block {
            body,
            body_bytes,
            signature,
            id,
        }
    }

    /// The signed fields.
    pub fn body(&self) -> &BlockBody {
        &self.body
    }

    /// The issuer's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The block id (= revocation id).
    pub fn id(&self) -> BlockId {
        self.id
    }

    /// Strictly verifies the signature against `body.issuer`.
    pub fn signature_is_valid(&self) -> bool {
        let mut msg = Vec::with_capacity(BLOCK_DOMAIN.len() + self.body_bytes.len());
        msg.extend_from_slice(BLOCK_DOMAIN);
        msg.extend_from_slice(&self.body_bytes);
        self.body
            .issuer
            .as_verifying_key()
            .verify_strict(&msg, self.signature.as_dalek())
            .is_ok()
    }

    pub(crate) fn encoded_len(&self) -> usize {
        self.body_bytes.len() + Signature::LEN
    }
}

/// Encodes blocks as a binary token. The caller guarantees 1..=MAX_BLOCKS.
pub(crate) fn encode(blocks: &[Block]) -> Vec<u8> {
    let len = 5 + blocks.iter().map(Block::encoded_len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.push(blocks.len() as u8);
    for block in blocks {
        out.extend_from_slice(&block.body_bytes);
        out.extend_from_slice(&block.signature.to_bytes());
    }
    out
}

/// Size of the binary form of `blocks`.
pub(crate) fn encoded_len(blocks: &[Block]) -> usize {
    5 + blocks.iter().map(Block::encoded_len).sum::<usize>()
}

/// A cursor that fails with `Truncated` instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TokenError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(TokenError::Truncated {
            what,
            offset: self.pos,
        })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TokenError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, TokenError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, TokenError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }
}

/// Decodes a binary token into its blocks (format checks only: signatures
/// and chain rules are [`super::Token::verify`]'s job).
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Block>, TokenError> {
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge {
            len: bytes.len(),
            max: MAX_TOKEN_BYTES,
        });
    }
    // A short input that is not a prefix of the magic is not a token at all.
    if !MAGIC.starts_with(&bytes[..bytes.len().min(MAGIC.len())]) {
        return Err(TokenError::BadMagic);
    }
    let mut r = Reader { bytes, pos: 0 };
    r.take(MAGIC.len(), "magic `LMT`")?;
    let version = r.u8("version byte")?;
    if version != FORMAT_VERSION {
        return Err(TokenError::UnsupportedVersion { version });
    }
    let count = usize::from(r.u8("block count")?);
    if count == 0 {
        return Err(TokenError::NoBlocks);
    }
    if count > MAX_BLOCKS {
        return Err(TokenError::TooManyBlocks {
            count,
            max: MAX_BLOCKS,
        });
    }
    let mut blocks = Vec::with_capacity(count);
    for index in 0..count {
        let prev_holder = blocks.last().map(|b: &Block| b.body.holder);
        blocks.push(decode_block(&mut r, index, prev_holder)?);
    }
    let rest = bytes.len() - r.pos;
    if rest != 0 {
        return Err(TokenError::TrailingBytes { count: rest });
    }
    Ok(blocks)
}

/// `prev_holder` is the previous block's holder: in a well-formed chain it is
/// this block's issuer, and reusing it saves a point decompression.
fn decode_block(
    r: &mut Reader<'_>,
    block: usize,
    prev_holder: Option<PublicKey>,
) -> Result<Block, TokenError> {
    let start = r.pos;
    let key = |bytes: [u8; 32], field| match prev_holder {
        Some(prev) if prev.as_bytes() == &bytes => Ok(prev),
        _ => PublicKey::from_bytes(&bytes).map_err(|_| TokenError::InvalidKey { block, field }),
    };
    let issuer = key(r.array("a block's issuer key")?, "issuer")?;
    let holder = key(r.array("a block's holder key")?, "holder")?;
    let role_byte = r.u8("a block's role")?;
    let role = Role::from_byte(role_byte).ok_or(TokenError::UnknownRole {
        block,
        byte: role_byte,
    })?;
    let kind_byte = r.u8("a block's scope kind")?;
    if !(kind::INSTANCE..=kind::REGISTRY).contains(&kind_byte) {
        return Err(TokenError::UnknownScopeKind {
            block,
            byte: kind_byte,
        });
    }
    let arg_len = usize::from(r.u8("a block's scope length")?);
    let arg = r.take(arg_len, "a block's scope argument")?;
    let arg = std::str::from_utf8(arg).map_err(|_| TokenError::InvalidUtf8 { block })?;
    let scope = Scope::from_parts(kind_byte, arg).map_err(|reason| TokenError::InvalidScope {
        block,
        reason: reason.unwrap_or("unknown scope kind").into(),
    })?;
    let not_before = r.i64("a block's not_before")?;
    let expires = r.i64("a block's expiry")?;
    let nonce = r.array("a block's nonce")?;
    let parent = BlockId(r.array("a block's parent id")?);
    let body_bytes = r.bytes[start..r.pos].to_vec();
    let signature = Signature::from_bytes(&r.array("a block's signature")?);
    let body = BlockBody {
        issuer,
        holder,
        role,
        scope,
        not_before,
        expires,
        nonce,
        parent,
    };
    debug_assert_eq!(body.to_bytes(), body_bytes, "decoding is canonical");
    Ok(Block::assemble(body, body_bytes, signature))
}

/// The text form of binary token bytes.
pub(crate) fn to_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(TEXT_PREFIX.len() + bytes.len().div_ceil(3) * 4);
    out.push_str(TEXT_PREFIX);
    URL_SAFE_NO_PAD.encode_string(bytes, &mut out);
    out
}

/// The binary bytes of a text token (surrounding whitespace ignored).
pub(crate) fn from_text(text: &str) -> Result<Vec<u8>, TokenError> {
    let text = text.trim();
    let b64 = text
        .strip_prefix(TEXT_PREFIX)
        .ok_or(TokenError::MissingPrefix)?;
    if text.len() > MAX_TEXT_LEN {
        return Err(TokenError::TooLarge {
            len: b64.len() / 4 * 3,
            max: MAX_TOKEN_BYTES,
        });
    }
    URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|e| TokenError::BadBase64 {
            reason: e.to_string(),
        })
}
