//! Who may read and write a shared scope, decided from capability tokens.
//!
//! Every scope has an owner: the node whose data it is. The owner reads
//! and writes its scopes. Anyone else needs a token rooted at the owner:
//! - reading: the serving node checks a token for the requesting peer —
//!   one it issued itself (the owner), or one the peer presented on the
//!   connection (a relay);
//! - writing: every replica checks, for each change, a write token of the
//!   change's origin valid at the change's time. Write grants travel as
//!   records of the scope, so replicas that never met the writer judge its
//!   changes from the same facts; revocations travel the same way.

use std::collections::{HashMap, HashSet};

use labmesh_crypto::token::{BlockId, NoMembership, RevocationSet, Scope};
use labmesh_crypto::{PublicKey, Role, Token, VerifyContext};
use labmesh_sync::{Access, Hlc, ScopeId};
use rusqlite::Connection;

use crate::error::{DbContext, Result};
use crate::instance::Instance;

/// Access decisions for the sync engine, loaded from the database.
#[derive(Clone, Debug, Default)]
pub struct NodeAccess {
    me: Option<PublicKey>,
    /// Scope -> owner.
    owners: HashMap<String, PublicKey>,
    /// Tokens that may grant access: issued here, received, and replicated
    /// grants (`verify` sorts out which apply).
    tokens: Vec<Token>,
    /// Tokens peers presented on their connections.
    presented: HashMap<PublicKey, Vec<Token>>,
    revoked: HashSet<BlockId>,
}

impl RevocationSet for NodeAccess {
    fn is_revoked(&self, id: &BlockId) -> bool {
        self.revoked.contains(id)
    }
}

/// The token scope a sync scope corresponds to.
pub fn token_scope(scope: &ScopeId) -> Option<Scope> {
    let (kind, arg) = scope.as_str().split_once(':')?;
    match kind {
        "instance" => Some(Scope::Instance),
        "collection" => Scope::collection(arg).ok(),
        "artifact" => Scope::artifact(arg).ok(),
        "registry" => Scope::registry(arg).ok(),
        _ => None,
    }
}

impl NodeAccess {
    /// Loads shares, tokens (local and replicated) and revocations.
    pub fn load(instance: &Instance, conn: &Connection) -> Result<NodeAccess> {
        let db = instance.db_path();
        let mut access = NodeAccess {
            me: instance.public_key().ok(),
            ..NodeAccess::default()
        };
        let shares: Vec<(String, String)> = conn
            .prepare_cached("SELECT scope, owner FROM share")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .db(&db)?;
        for (scope, owner) in shares {
            if let Ok(key) = owner.parse::<PublicKey>() {
                access.owners.insert(scope, key);
            }
        }
        let texts: Vec<String> = conn
            .prepare_cached("SELECT text FROM token")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&db)?;
        access
            .tokens
            .extend(texts.iter().filter_map(|t| Token::from_text(t).ok()));
        access.tokens.extend(replicated_grants(instance, conn)?);
        let revoked: Vec<String> = conn
            .prepare_cached("SELECT block_id FROM revocation")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .db(&db)?;
        access.revoked = revoked.iter().filter_map(|b| b.parse().ok()).collect();
        Ok(access)
    }

    /// Remembers tokens a peer presented on its (authenticated) connection.
    pub fn present(&mut self, peer: PublicKey, tokens: Vec<Token>) {
        self.presented.insert(peer, tokens);
    }

    /// The owner of a scope, if this node knows it.
    pub fn owner(&self, scope: &ScopeId) -> Option<PublicKey> {
        self.owners.get(scope.as_str()).copied()
    }

    /// Whether some token rooted at the scope's owner lets `holder` do `op`
    /// on `scope` at `at` (unix seconds).
    fn granted(
        &self,
        holder: &PublicKey,
        scope: &ScopeId,
        op: Role,
        at: i64,
        extra: &[Token],
    ) -> bool {
        let (Some(owner), Some(resource)) = (self.owner(scope), token_scope(scope)) else {
            return false;
        };
        let roots = [owner];
        let ctx = VerifyContext::new(&roots, at, *holder)
            .with_revocations(self)
            .with_resolver(&NoMembership);
        self.tokens
            .iter()
            .chain(extra)
            .filter(|t| t.holder() == *holder && t.root_issuer() == owner)
            .any(|t| {
                t.verify(&ctx)
                    .and_then(|v| v.authorize(op, &resource, &NoMembership))
                    .is_ok()
            })
    }
}

impl Access for NodeAccess {
    fn may_read(&self, peer: &PublicKey, scope: &ScopeId) -> bool {
        if Some(*peer) == self.me || self.owner(scope) == Some(*peer) {
            return true;
        }
        let now = crate::time::now_ms() / 1000;
        let presented = self.presented.get(peer).map(Vec::as_slice).unwrap_or(&[]);
        self.granted(peer, scope, Role::Read, now, presented)
    }

    fn may_write(&self, origin: &PublicKey, scope: &ScopeId, at: Hlc) -> bool {
        if self.owner(scope) == Some(*origin) {
            return true;
        }
        // Judged at the change's own time, the same on every replica.
        self.granted(origin, scope, Role::Write, (at.ms / 1000) as i64, &[])
    }
}

/// Write tokens replicated as `grant` records.
fn replicated_grants(instance: &Instance, conn: &Connection) -> Result<Vec<Token>> {
    let docs: Vec<Vec<u8>> = conn
        .prepare_cached("SELECT doc FROM sync_document WHERE kind = 'grant'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .db(&instance.db_path())?;
    let mut out = Vec::new();
    for bytes in docs {
        if let Ok(doc) = labmesh_sync::RecordDoc::load(&bytes)
            && let Some(text) = crate::mesh::records::text(&doc.view(), "token")
            && let Ok(token) = Token::from_text(&text)
        {
            out.push(token);
        }
    }
    Ok(out)
}
