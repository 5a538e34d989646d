//! Revocations between nodes that do not share a scope the revoker writes.
//!
//! A revocation made by the root travels as a record of the root's scopes.
//! One made by a delegator (lab B revoking what it passed on to lab C) has
//! no scope of B's to travel in where it matters — at the root, which
//! serves the data — and the revoked holder can no longer read the scope
//! that would carry it. So nodes hand revocations to each other directly,
//! in the hello, as notices: the revoked block and the token containing it.
//!
//! A notice is accepted from a peer only if the token's chain shows the
//! peer may revoke that block: it signed that block or one before it (an
//! issuer may always withdraw what it granted, and what was delegated from
//! it). The peer is the one the connection authenticated. A root that
//! accepts a notice writes it into its own scopes like its own revocations,
//! so every replica learns of it.

use labmesh_crypto::token::BlockId;
use labmesh_crypto::{PublicKey, Token};
use rusqlite::{OptionalExtension, params};

use crate::daemon::envelope::{MAX_HELLO_TOKENS, RevocationNotice};
use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;

/// Longest reason kept from a peer's notice.
const MAX_REASON_CHARS: usize = 200;

/// Why a notice was not taken.
fn refuse(why: impl Into<String>) -> Error {
    Error::InvalidArgument(why.into())
}

/// Whether `revoker` may revoke block `block` of `token`: it issued that
/// block or an earlier one.
pub fn may_revoke(token: &Token, block: &BlockId, revoker: &PublicKey) -> bool {
    let Some(index) = token.blocks().iter().position(|b| b.id() == *block) else {
        return false;
    };
    token.blocks()[..=index]
        .iter()
        .any(|b| b.body().issuer == *revoker)
}

impl Instance {
    /// Revocations to hand `peer`: those this node knows of (its own and
    /// accepted ones) in tokens whose chain names the peer.
    pub(crate) fn revocation_notices_for(&self, peer: &PublicKey) -> Result<Vec<RevocationNotice>> {
        let db = self.db_path();
        let revoked: Vec<(String, i64, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT block_id, revoked_at, reason FROM revocation ORDER BY revoked_at DESC",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .db(&db)?;
        if revoked.is_empty() {
            return Ok(Vec::new());
        }
        let tokens: Vec<Token> = self
            .conn
            .prepare_cached("SELECT text FROM token")
            .and_then(|mut s| {
                s.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .db(&db)?
            .iter()
            .filter_map(|t| Token::from_text(t).ok())
            .collect();
        let mut out = Vec::new();
        for (block, revoked_at, reason) in revoked {
            let Ok(id) = block.parse::<BlockId>() else {
                continue;
            };
            let names_peer = |t: &Token| {
                t.blocks()
                    .iter()
                    .any(|b| b.body().issuer == *peer || b.body().holder == *peer)
            };
            if let Some(token) = tokens
                .iter()
                .find(|t| t.blocks().iter().any(|b| b.id() == id) && names_peer(t))
            {
                out.push(RevocationNotice {
                    token: token.to_text(),
                    block,
                    revoked_at,
                    reason,
                });
            }
            if out.len() == MAX_HELLO_TOKENS {
                break;
            }
        }
        Ok(out)
    }

    /// Takes a revocation notice from `peer` (authenticated by the
    /// connection). Returns whether it was new here.
    pub(crate) fn accept_revocation_notice(
        &self,
        peer: &PublicKey,
        notice: &RevocationNotice,
    ) -> Result<bool> {
        let token = Token::from_text(&notice.token)
            .map_err(|e| refuse(format!("a revocation notice with a bad token: {e}")))?;
        let block: BlockId = notice
            .block
            .parse()
            .map_err(|_| refuse("a revocation notice with a bad block id"))?;
        if !may_revoke(&token, &block, peer) {
            return Err(refuse(format!(
                "{peer} sent a revocation of a block it did not issue, nor anything before it"
            )));
        }
        // Not before the token existed, never in the future: a revoker
        // cannot backdate a revocation past the grant, nor post-date one.
        let earliest = token
            .blocks()
            .iter()
            .map(|b| b.body().not_before)
            .max()
            .unwrap_or(0)
            .saturating_mul(1000);
        let revoked_at = notice.revoked_at.clamp(earliest.min(now_ms()), now_ms());
        let db = self.db_path();
        let tx = crate::db::write_txn(&self.conn).db(&db)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT revoked_at FROM revocation WHERE block_id = ?1",
                [&notice.block],
                |r| r.get(0),
            )
            .optional()
            .db(&db)?;
        if known.is_some_and(|at| at <= revoked_at) {
            return Ok(false);
        }
        let origin = self.node_id_for(&tx, &peer.to_string())?;
        let reason: Option<String> = notice
            .reason
            .as_deref()
            .map(|r| r.chars().take(MAX_REASON_CHARS).collect());
        tx.execute(
            "INSERT INTO revocation (block_id, reason, revoked_at, origin_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (block_id) DO UPDATE SET revoked_at = excluded.revoked_at",
            params![notice.block, reason, revoked_at, origin],
        )
        .db(&db)?;
        if token.root_issuer().to_string() == self.peer_id {
            // The root spreads it to every replica of its scopes.
            self.share_revocation(&tx, &notice.block, reason.as_deref())?;
        }
        tx.commit().db(&db)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use labmesh_crypto::token::{NO_EXPIRY, Scope};
    use labmesh_crypto::{NodeKey, Role};

    use super::*;

    #[test]
    fn only_an_issuer_at_or_before_the_block_may_revoke_it() {
        let (a, b, c, d) = (
            NodeKey::generate(),
            NodeKey::generate(),
            NodeKey::generate(),
            NodeKey::generate(),
        );
        let root = Token::issue(
            &a,
            b.public_key(),
            Role::Write,
            Scope::Instance,
            0,
            NO_EXPIRY,
        )
        .expect("issue");
        let child = root
            .delegate(&b, c.public_key(), Role::Read, Scope::Instance, None)
            .expect("delegate");
        let first = child.blocks()[0].id();
        let second = child.blocks()[1].id();
        // A issued the root block: it may revoke both.
        assert!(may_revoke(&child, &first, &a.public_key()));
        assert!(may_revoke(&child, &second, &a.public_key()));
        // B issued only the second.
        assert!(!may_revoke(&child, &first, &b.public_key()));
        assert!(may_revoke(&child, &second, &b.public_key()));
        // The holder and strangers may revoke nothing.
        assert!(!may_revoke(&child, &second, &c.public_key()));
        assert!(!may_revoke(&child, &second, &d.public_key()));
        // A block that is not in the token.
        let other = Token::issue(
            &a,
            d.public_key(),
            Role::Read,
            Scope::Instance,
            0,
            NO_EXPIRY,
        )
        .expect("issue");
        assert!(!may_revoke(&child, &other.id(), &a.public_key()));
    }
}
