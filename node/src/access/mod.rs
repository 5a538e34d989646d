//! Access: capability tokens this node issues, receives and delegates,
//! revocations, and verifying a token the way a serving node will.
//!
//! The token format and its rules live in `labmesh-crypto` (see
//! `crypto/TOKENS.md`); this module keeps the instance's records of them.

mod args;
mod peers;
mod scope;
mod state;
mod when;

use std::str::FromStr;

use labmesh_crypto::token::{BlockId, OfflineCheck};
use labmesh_crypto::{PublicKey, Role, Scope, Token, TokenError, Verified, VerifyContext};
use rusqlite::params;
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;

pub use args::{RevocationTarget, block_id_from_arg, quote_arg, token_from_arg};
pub use peers::Peer;
pub use scope::{Membership, Revocations, ScopeUse};
pub use state::TokenState;
pub use when::parse_expiry;

/// Why a token record exists here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Rooted at this node, granted to a collaborator.
    Issued,
    /// Held by this node's key, granted by another node (or a delegate).
    Received,
    /// Delegated by this node from a token it holds.
    Delegated,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Issued => "issued",
            TokenKind::Received => "received",
            TokenKind::Delegated => "delegated",
        }
    }
}

/// A token as this node knows it, with its state now.
#[derive(Clone, Debug, Serialize)]
pub struct TokenRecord {
    pub token_id: String,
    pub kind: TokenKind,
    pub root: String,
    pub holder: String,
    /// The holder's name in the address book, if known.
    pub holder_name: Option<String>,
    pub role: String,
    pub scope: String,
    pub not_before: i64,
    /// Unix seconds; `None` for no expiry.
    pub expires: Option<i64>,
    /// `valid`, `expired`, `not yet valid`, `revoked` or `invalid`.
    pub state: &'static str,
    /// Why it is not valid, when it is not.
    pub reason: Option<String>,
    /// What this node checked (away from the root: what only the root can).
    pub checked: String,
    pub token: String,
}

impl Instance {
    /// Issues a token rooted at this node: `holder` may `role` on `scope`
    /// from `not_before` until `expires` (unix seconds).
    ///
    /// The scope must name records of this instance: an artifact by uid, a
    /// collection by uid, uid prefix or key — written as its version
    /// family's stem, so the grant covers every version.
    pub fn grant(
        &self,
        holder: &PublicKey,
        role: Role,
        scope: Scope,
        not_before: i64,
        expires: i64,
    ) -> Result<Token> {
        let scope = self.grantable_scope(scope)?;
        let key = self.node_key()?;
        let token = Token::issue(&key, *holder, role, scope, not_before, expires)?;
        let tx = crate::db::write_txn(&self.conn).db(&self.db_path())?;
        self.record_token(&token, TokenKind::Issued)?;
        if role >= Role::Write {
            // Replicas judge this holder's changes from the grant itself.
            self.share_grant(&tx, &token)?;
        }
        tx.commit().db(&self.db_path())?;
        Ok(token)
    }

    /// Passes on a narrower grant from a token this node holds, signed with
    /// this node's key. The parent is recorded as received.
    pub fn delegate(
        &self,
        parent: &Token,
        holder: &PublicKey,
        role: Role,
        scope: Scope,
        expires: Option<i64>,
    ) -> Result<Token> {
        let key = self.node_key()?;
        // A forged, expired or revoked parent is worth nothing passed on.
        self.check_received(parent, now_ms() / 1000)
            .map_err(|e| refusal("cannot delegate from", parent, e))?;
        // Refuses unless this node holds `parent`, and any widening.
        let token = parent.delegate(&key, *holder, role, scope, expires)?;
        self.record_token(parent, TokenKind::Received)?;
        self.record_token(&token, TokenKind::Delegated)?;
        Ok(token)
    }

    /// Keeps a token granted to this node, after checking everything that
    /// can be checked without the root's data (`Token::check_offline`):
    /// held by this node's key, signatures, chain, narrowing, time window,
    /// revocations known here. A token whose window starts later is kept.
    pub fn add_received_token(&self, token: &Token) -> Result<OfflineCheck> {
        let me = self.public_key()?;
        if token.holder() != me {
            return Err(Error::InvalidArgument(format!(
                "this token is held by {}, not by this node ({me}); only its holder can use it",
                token.holder()
            )));
        }
        let checked = self
            .check_received(token, now_ms() / 1000)
            .map_err(|e| refusal("not keeping", token, e))?;
        self.record_token(token, TokenKind::Received)?;
        Ok(checked)
    }

    /// The offline check of a token this node holds, at `now` or, for a
    /// grant that starts later, at its start.
    fn check_received(&self, token: &Token, now: i64) -> Result<OfflineCheck, TokenError> {
        let starts = token
            .blocks()
            .iter()
            .map(|b| b.body().not_before)
            .max()
            .unwrap_or(now);
        token.check_offline(now.max(starts), &Revocations(self))
    }

    /// This node's public key (from its PeerId; no secret is read).
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_str(&self.peer_id).map_err(Error::Key)
    }

    fn record_token(&self, token: &Token, kind: TokenKind) -> Result<()> {
        let expires = token.expires();
        self.conn
            .execute(
                "INSERT INTO token (token_id, kind, text, root, holder, role, scope, not_before, expires, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (token_id) DO NOTHING",
                params![
                    token.id().to_string(),
                    kind.as_str(),
                    token.to_text(),
                    token.root_issuer().to_string(),
                    token.holder().to_string(),
                    token.role().to_string(),
                    token.scope().to_string(),
                    token.not_before(),
                    expires,
                    now_ms(),
                ],
            )
            .map(|_| ())
            .db(&self.db_path())
    }

    /// Records the revocation of a token block (idempotent). Every token
    /// that contains the block stops verifying here at once, and on peers
    /// once the revocation has synced.
    pub fn revoke(&self, id: &BlockId, reason: Option<&str>) -> Result<bool> {
        let tx = crate::db::write_txn(&self.conn).db(&self.db_path())?;
        let inserted = tx
            .execute(
                "INSERT INTO revocation (block_id, reason, revoked_at, origin_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (block_id) DO NOTHING",
                params![id.to_string(), reason, now_ms(), self.self_node_id],
            )
            .db(&self.db_path())?;
        if inserted == 1 {
            self.share_revocation(&tx, &id.to_string(), reason)?;
        }
        tx.commit().db(&self.db_path())?;
        Ok(inserted == 1)
    }

    /// Finds a known token by id or unique id prefix (8+ hex digits).
    pub fn find_token(&self, query: &str) -> Result<Option<Token>> {
        let query = query.trim().to_ascii_lowercase();
        if query.len() < 8 || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT text FROM token WHERE token_id >= ?1 AND token_id < ?2 LIMIT 2")
            .db(&self.db_path())?;
        let texts: Vec<String> = stmt
            .query_map(params![query, format!("{query}g")], |r| r.get(0))
            .db(&self.db_path())?
            .collect::<rusqlite::Result<_>>()
            .db(&self.db_path())?;
        match texts.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(Token::from_text(one)?)),
            _ => Err(Error::InvalidArgument(format!(
                "token id prefix {query:?} matches several tokens; give more digits"
            ))),
        }
    }

    /// Verifies `token` as this node would when `presenter` shows it, and
    /// authorizes `op` on `resource`. `root` defaults to this node.
    pub fn verify_token(
        &self,
        token: &Token,
        presenter: &PublicKey,
        op: Role,
        resource: &Scope,
        root: Option<&PublicKey>,
        now: i64,
    ) -> Result<Verified, TokenError> {
        let own = self.public_key().map_err(|_| TokenError::UnknownRoot {
            issuer: token.root_issuer().id(),
        })?;
        let roots = [root.copied().unwrap_or(own)];
        let revocations = Revocations(self);
        let membership = Membership(self);
        let ctx = VerifyContext::new(&roots, now, *presenter)
            .with_revocations(&revocations)
            .with_resolver(&membership);
        let verified = token.verify(&ctx)?;
        verified.authorize(op, resource, &membership)?;
        Ok(verified)
    }

    /// The root issuer of a known token that contains block `id`.
    pub fn root_of_block(&self, id: &BlockId) -> Result<Option<PublicKey>> {
        let texts: Vec<String> = self
            .conn
            .prepare_cached("SELECT text FROM token")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&self.db_path())?;
        Ok(texts
            .iter()
            .filter_map(|t| Token::from_text(t).ok())
            .find(|t| t.blocks().iter().any(|b| b.id() == *id))
            .map(|t| t.root_issuer()))
    }
}

/// "not keeping token 1a2b…: <reason>".
fn refusal(what: &str, token: &Token, e: TokenError) -> Error {
    Error::InvalidArgument(format!(
        "{what} token {}: {e}",
        &token.id().to_string()[..16]
    ))
}
