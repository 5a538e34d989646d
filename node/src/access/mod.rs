//! Access: capability tokens this node issues, receives and delegates,
//! revocations, and verifying a token the way a serving node will.
//!
//! The token format and its rules live in `labmesh-crypto` (see
//! `crypto/TOKENS.md`); this module keeps the instance's records of them.

mod peers;
mod when;

use std::str::FromStr;

use labmesh_crypto::token::{BlockId, RevocationSet, ScopeResolver, Uid};
use labmesh_crypto::{PublicKey, Role, Scope, Token, TokenError, Verified, VerifyContext};
use rusqlite::params;
use serde::Serialize;

use crate::error::{DbContext, Error, Result};
use crate::instance::Instance;
use crate::time::now_ms;

pub use peers::Peer;
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
    /// `valid`, `expired`, `not yet valid` or `revoked`.
    pub state: &'static str,
    pub token: String,
}

/// Revoked block ids, looked up in the instance database.
pub struct Revocations<'a>(&'a Instance);

impl RevocationSet for Revocations<'_> {
    fn is_revoked(&self, id: &BlockId) -> bool {
        // A failing lookup must not grant access: treat it as revoked.
        self.0
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM revocation WHERE block_id = ?1)")
            .and_then(|mut s| s.query_row([id.to_string()], |r| r.get::<_, bool>(0)))
            .unwrap_or(true)
    }
}

/// Collection membership from the instance database. Collections arrive
/// with the registries; until then a collection covers only itself.
pub struct Membership<'a>(&'a Instance);

impl ScopeResolver for Membership<'_> {
    fn collection_contains(&self, collection: &Uid, artifact: &Uid) -> bool {
        self.0
            .collection_has_artifact(collection.as_str(), artifact.as_str())
            .unwrap_or(false)
    }
}

impl Instance {
    /// Issues a token rooted at this node: `holder` may `role` on `scope`
    /// from `not_before` until `expires` (unix seconds).
    pub fn grant(
        &self,
        holder: &PublicKey,
        role: Role,
        scope: Scope,
        not_before: i64,
        expires: i64,
    ) -> Result<Token> {
        self.check_scope_exists(&scope)?;
        let key = self.node_key()?;
        let token = Token::issue(&key, *holder, role, scope, not_before, expires);
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
        // Refuses unless this node holds `parent`, and any widening.
        let token = parent.delegate(&key, *holder, role, scope, expires)?;
        self.record_token(parent, TokenKind::Received)?;
        self.record_token(&token, TokenKind::Delegated)?;
        Ok(token)
    }

    /// Keeps a token granted to this node (checked to be held by its key).
    pub fn add_received_token(&self, token: &Token) -> Result<()> {
        let me = self.public_key()?;
        if token.holder() != me {
            return Err(Error::InvalidArgument(format!(
                "this token is held by {}, not by this node ({me}); only its holder can use it",
                token.holder()
            )));
        }
        self.record_token(token, TokenKind::Received)
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

    /// The state of a token now, checked against its own root.
    pub fn token_state(&self, token: &Token, now: i64) -> &'static str {
        let roots = [token.root_issuer()];
        let revocations = Revocations(self);
        let membership = Membership(self);
        let ctx = VerifyContext::new(&roots, now, token.holder())
            .with_revocations(&revocations)
            .with_resolver(&membership);
        match token.verify(&ctx) {
            Ok(_) => "valid",
            Err(TokenError::Expired { .. }) => "expired",
            Err(TokenError::NotYetValid { .. }) => "not yet valid",
            Err(TokenError::Revoked { .. }) => "revoked",
            Err(_) => "invalid",
        }
    }

    /// Every token this node issued, received or delegated, newest first.
    pub fn tokens(&self, now: i64) -> Result<Vec<TokenRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.token_id, t.kind, t.root, t.holder,
                        coalesce(n.name, CASE WHEN n.is_self THEN 'this node' END),
                        t.role, t.scope, t.not_before, t.expires, t.text
                 FROM token t LEFT JOIN node n ON n.peer_id = t.holder
                 ORDER BY t.created_at DESC, t.id DESC",
            )
            .db(&self.db_path())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })
            .db(&self.db_path())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())?;
        let mut out = Vec::with_capacity(rows.len());
        for (token_id, kind, root, holder, holder_name, role, scope, not_before, expires, text) in
            rows
        {
            let token = Token::from_text(&text)?;
            out.push(TokenRecord {
                token_id,
                kind: match kind.as_str() {
                    "issued" => TokenKind::Issued,
                    "delegated" => TokenKind::Delegated,
                    _ => TokenKind::Received,
                },
                root,
                holder,
                holder_name,
                role,
                scope,
                not_before,
                expires: (expires != labmesh_crypto::token::NO_EXPIRY).then_some(expires),
                state: self.token_state(&token, now),
                token: text,
            });
        }
        Ok(out)
    }

    /// Refuses grants on artifacts this instance does not have.
    fn check_scope_exists(&self, scope: &Scope) -> Result<()> {
        if let Scope::Artifact(uid) = scope {
            let exists = self
                .conn
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM artifact WHERE uid = ?1)")
                .and_then(|mut s| s.query_row([uid.as_str()], |r| r.get::<_, bool>(0)))
                .db(&self.db_path())?;
            if !exists {
                return Err(Error::ArtifactNotFound {
                    query: uid.as_str().to_string(),
                    suggestion: None,
                });
            }
        }
        Ok(())
    }

    /// Whether a collection contains an artifact (false until collections exist).
    pub(crate) fn collection_has_artifact(&self, collection: &str, artifact: &str) -> Result<bool> {
        let has_table: bool = self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'collection_artifact')")
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .db(&self.db_path())?;
        if !has_table {
            return Ok(false);
        }
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM collection_artifact ca
                     JOIN collection c ON c.id = ca.collection_id
                     JOIN artifact a ON a.id = ca.artifact_id
                     WHERE c.uid = ?1 AND a.uid = ?2)",
            )
            .and_then(|mut s| s.query_row([collection, artifact], |r| r.get(0)))
            .db(&self.db_path())
    }
}

/// Looks a token up among known ones, or parses it as token text.
pub fn token_from_arg(instance: &Instance, arg: &str) -> Result<Token> {
    if let Some(token) = instance.find_token(arg)? {
        return Ok(token);
    }
    Token::from_text(arg.trim()).map_err(|e| {
        Error::InvalidArgument(format!(
            "{arg:?} is neither a known token id nor a token ({e}); tokens start with lmt1_, \
             `labmesh tokens` lists known ones"
        ))
    })
}

/// The block id a revocation names: a known token's id (or prefix), a full
/// 64-hex block id, or a token (its last block).
pub fn block_id_from_arg(instance: &Instance, arg: &str) -> Result<BlockId> {
    if let Some(token) = instance.find_token(arg)? {
        return Ok(token.id());
    }
    if let Ok(id) = BlockId::from_str(arg.trim()) {
        return Ok(id);
    }
    match Token::from_text(arg.trim()) {
        Ok(token) => Ok(token.id()),
        Err(_) => Err(Error::InvalidArgument(format!(
            "{arg:?} is not a token id: give a known token's id (or 8+ of its hex digits), \
             a 64-digit block id, or the token itself"
        ))),
    }
}
