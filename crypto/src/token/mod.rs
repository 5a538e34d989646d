//! Capability tokens: offline, delegable grants of a role on a scope.
//!
//! A token is a chain of 1..=[`MAX_BLOCKS`] signed blocks. The root block is
//! signed by the granting node's key (the *root*); each later block is
//! signed by the previous block's holder and may only narrow role, scope and
//! validity window. The last block's holder is the only key that can use the
//! token: it must present it over a connection authenticated by that key.
//! Format and rules are specified in `crypto/TOKENS.md`.

mod cache;
mod encoding;
mod inspect;
mod role;
mod scope;
mod verify;

use std::fmt;
use std::str::FromStr;

pub use cache::{VERIFIED_CACHE_CAPACITY, VerifiedCache};
pub use encoding::{BLOCK_DOMAIN, Block, BlockBody, BlockId, FORMAT_VERSION, MAGIC, TEXT_PREFIX};
pub use inspect::{Inspect, format_unix_time};
pub use role::Role;
pub use scope::{
    MAX_REGISTRY_LEN, MAX_UID_LEN, NoMembership, RegistryName, Scope, ScopeResolver, Uid,
};
pub use verify::{
    MembershipClaim, NoRevocations, OfflineCheck, RevocationSet, Verified, VerifyContext,
};

use crate::error::{TokenError, Widened};
use crate::key::{NodeKey, PublicKey, os_random};

/// Largest binary token accepted (8 blocks with the longest scopes take 2077).
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest delegation chain, root block included.
pub const MAX_BLOCKS: usize = 8;
/// Clock-skew leeway of verification, in seconds: a token is accepted from
/// `not_before - 60` until `expires + 60`, so peers whose clocks disagree by
/// up to a minute agree on validity.
pub const CLOCK_SKEW_SECS: i64 = 60;
/// The `expires` value of a token that never expires.
pub const NO_EXPIRY: i64 = i64::MAX;

/// A capability token (a delegation chain). Build with [`Token::issue`] and
/// [`Token::delegate`]; check with [`Token::verify`].
///
/// The accessors report what the last block *claims*; only a successful
/// [`Token::verify`] makes them trustworthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// 1..=MAX_BLOCKS blocks, encoding to at most MAX_TOKEN_BYTES.
    blocks: Vec<Block>,
}

impl Token {
    /// Grants `role` on `scope` to `holder`, signed by this node's `root` key,
    /// valid from `not_before` until `expires` (unix seconds; [`NO_EXPIRY`]
    /// for none).
    ///
    /// Refuses an empty window (`expires <= not_before`,
    /// [`TokenError::EmptyWindow`]): such a token could never be valid.
    pub fn issue(
        root: &NodeKey,
        holder: PublicKey,
        role: Role,
        scope: Scope,
        not_before: i64,
        expires: i64,
    ) -> Result<Token, TokenError> {
        check_window(0, not_before, expires)?;
        let body = BlockBody {
            issuer: root.public_key(),
            holder,
            role,
            scope,
            not_before,
            expires,
            nonce: os_random(),
            parent: BlockId::ZERO,
        };
        Ok(Token {
            blocks: vec![Block::sign(body, root)],
        })
    }

    /// Passes a narrower grant on to `new_holder`, signed by the current
    /// holder. `expires: None` keeps the current expiry; the start
    /// (`not_before`) is always inherited.
    ///
    /// Refuses if `current_holder` is not the holder, if the chain is
    /// already [`MAX_BLOCKS`] long, if the new block would widen role,
    /// scope or expiry, or if its window would be empty (an expiry at or
    /// before the inherited start). The new scope must be covered by the scope of every
    /// block so far, checked syntactically: narrowing a collection to one of
    /// its artifacts is allowed here and checked against the node's
    /// database at verification.
    pub fn delegate(
        &self,
        current_holder: &NodeKey,
        new_holder: PublicKey,
        role: Role,
        scope: Scope,
        expires: Option<i64>,
    ) -> Result<Token, TokenError> {
        let last = self.last().body();
        let signer = current_holder.public_key();
        if signer != last.holder {
            return Err(TokenError::NotHolder {
                holder: last.holder.id(),
                signer: signer.id(),
            });
        }
        if self.blocks.len() >= MAX_BLOCKS {
            return Err(TokenError::TooManyBlocks {
                count: self.blocks.len() + 1,
                max: MAX_BLOCKS,
            });
        }
        let block = self.blocks.len();
        let expires = expires.unwrap_or(last.expires);
        let widening = |what, detail: String| TokenError::Widening {
            block,
            what,
            detail,
        };
        if role > last.role {
            return Err(widening(
                Widened::Role,
                format!("{} is above {}", role, last.role),
            ));
        }
        // Every earlier scope must cover the new one: containment is not
        // transitive (see `Verified::authorize`).
        let uncovered = self
            .blocks
            .iter()
            .enumerate()
            .rev()
            .find(|(_, b)| !b.body().scope.may_delegate_to(&scope));
        if let Some((j, b)) = uncovered {
            return Err(widening(
                Widened::Scope,
                format!(
                    "block {j}'s scope {} does not cover {scope}",
                    b.body().scope
                ),
            ));
        }
        if expires > last.expires {
            return Err(widening(
                Widened::Expiry,
                format!(
                    "{} is after {}",
                    format_unix_time(expires),
                    format_unix_time(last.expires)
                ),
            ));
        }
        check_window(block, last.not_before, expires)?;
        let body = BlockBody {
            issuer: signer,
            holder: new_holder,
            role,
            scope,
            not_before: last.not_before,
            expires,
            nonce: os_random(),
            parent: self.id(),
        };
        let mut blocks = self.blocks.clone();
        blocks.push(Block::sign(body, current_holder));
        Token::from_blocks(blocks)
    }

    /// Assembles a token from blocks without checking chain rules (that is
    /// [`Token::verify`]'s job); only the count and size limits apply.
    pub fn from_blocks(blocks: Vec<Block>) -> Result<Token, TokenError> {
        if blocks.is_empty() {
            return Err(TokenError::NoBlocks);
        }
        if blocks.len() > MAX_BLOCKS {
            return Err(TokenError::TooManyBlocks {
                count: blocks.len(),
                max: MAX_BLOCKS,
            });
        }
        let len = encoding::encoded_len(&blocks);
        if len > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge {
                len,
                max: MAX_TOKEN_BYTES,
            });
        }
        Ok(Token { blocks })
    }

    /// Decodes the binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Token, TokenError> {
        encoding::decode(bytes).map(|blocks| Token { blocks })
    }

    /// The canonical binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(&self.blocks)
    }

    /// Decodes the text form `lmt1_…` (surrounding whitespace ignored).
    pub fn from_text(text: &str) -> Result<Token, TokenError> {
        Token::from_bytes(&encoding::from_text(text)?)
    }

    /// The text form: `lmt1_` + base64url (no padding) of the binary form.
    pub fn to_text(&self) -> String {
        encoding::to_text(&self.to_bytes())
    }

    /// The blocks, root first.
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    fn last(&self) -> &Block {
        // Invariant: a Token always has at least one block.
        &self.blocks[self.blocks.len() - 1]
    }

    /// The key that signed the root block.
    pub fn root_issuer(&self) -> PublicKey {
        self.blocks[0].body().issuer
    }

    /// The key that may use the token (the last block's holder).
    pub fn holder(&self) -> PublicKey {
        self.last().body().holder
    }

    /// The token id: the last block's id.
    pub fn id(&self) -> BlockId {
        self.last().id()
    }

    /// The effective role (the last block's).
    pub fn role(&self) -> Role {
        self.last().body().role
    }

    /// The effective scope (the last block's).
    pub fn scope(&self) -> &Scope {
        &self.last().body().scope
    }

    /// The effective start (the last block's `not_before`).
    pub fn not_before(&self) -> i64 {
        self.last().body().not_before
    }

    /// The effective expiry (the last block's).
    pub fn expires(&self) -> i64 {
        self.last().body().expires
    }

    /// A human-readable description of the chain (`labmesh token inspect`).
    pub fn inspect(&self) -> Inspect<'_> {
        Inspect::new(self)
    }
}

/// Refuses a window `[not_before, expires)` that holds no instant.
pub(crate) fn check_window(block: usize, not_before: i64, expires: i64) -> Result<(), TokenError> {
    if expires <= not_before {
        return Err(TokenError::EmptyWindow {
            block,
            not_before,
            expires,
        });
    }
    Ok(())
}

impl fmt::Display for Token {
    /// The text form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl FromStr for Token {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Token::from_text(s)
    }
}

#[cfg(test)]
mod tests;
