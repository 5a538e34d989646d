//! A per-connection cache of verified tokens.
//!
//! A peer presents the same token on every request of a session; verifying
//! its signatures each time would cost ~50 µs per block. Once a token has
//! verified for a presenter, a repeat check only re-validates what can
//! change — the time window, revocations, collection memberships, trusted
//! roots — and then authorizes the operation.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use super::encoding::BlockId;
use super::scope::Scope;
use super::verify::{Verified, VerifyContext};
use super::{Role, Token};
use crate::error::TokenError;
use crate::key::PublicKey;

/// How many (token, presenter) entries a cache holds; a connection rarely
/// uses more than a handful of tokens.
pub const VERIFIED_CACHE_CAPACITY: usize = 32;

type Key = (BlockId, PublicKey);

/// Verified tokens keyed by (token id, presenter), oldest evicted first.
///
/// The token id is a hash over the last block, whose `parent` field chains
/// hashes back to the root, so the id commits to the whole verified chain.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    entries: HashMap<Key, Verified>,
    order: VecDeque<Key>,
}

impl VerifiedCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything (e.g. when the node's trusted roots change).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Verifies `token` for `ctx.presenter` (fully the first time, cheaply
    /// after) and authorizes `op` on `resource`.
    ///
    /// An entry that fails its re-check is dropped, so a token that became
    /// valid again (e.g. a membership restored) is verified afresh next time.
    pub fn check(
        &mut self,
        token: &Token,
        ctx: &VerifyContext<'_>,
        op: Role,
        resource: &Scope,
    ) -> Result<&Verified, TokenError> {
        let key = (token.id(), ctx.presenter);
        if let Some(Err(e)) = self.entries.get(&key).map(|v| v.recheck(ctx)) {
            self.entries.remove(&key);
            self.order.retain(|k| *k != key);
            return Err(e);
        }
        if !self.entries.contains_key(&key) {
            self.make_room();
        }
        let verified = match self.entries.entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let verified = token.verify(ctx)?;
                self.order.push_back(key);
                entry.insert(verified)
            }
        };
        verified.authorize(op, resource, ctx.resolver)?;
        Ok(verified)
    }

    fn make_room(&mut self) {
        while self.entries.len() >= VERIFIED_CACHE_CAPACITY {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
    }
}
