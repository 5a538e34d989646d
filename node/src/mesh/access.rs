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
//!
//! **Revocations take effect at their own time.** A revocation carries the
//! moment it was made; a change stamped before it stays valid on every
//! replica, whenever the replica learns of the revocation. Judging every
//! change against the revocations known *now* would make a revoked
//! writer's earlier, legitimate edits unacceptable to anyone who
//! subscribes later, and split the replicas for good.
//!
//! Signatures are checked once per token when the access facts are
//! loaded; each decision then only re-checks time windows, revocations and
//! the role and scope (`Verified::recheck`), a few hundred nanoseconds.
//! The loaded facts are cached per instance and reloaded only when the
//! tables they come from change ([`AccessCache`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use labmesh_crypto::token::{BlockId, NoMembership, RevocationSet, Scope, Verified};
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
    /// Tokens whose signatures and chain verified, by holder: issued here,
    /// received, and replicated grants.
    verified: HashMap<PublicKey, Vec<Verified>>,
    /// Revoked block -> when it was revoked (unix ms).
    revoked: HashMap<BlockId, i64>,
}

/// The revocations in force at one moment.
struct RevokedAt<'a> {
    revoked: &'a HashMap<BlockId, i64>,
    at_ms: i64,
}

impl RevocationSet for RevokedAt<'_> {
    fn is_revoked(&self, id: &BlockId) -> bool {
        self.revoked.get(id).is_some_and(|&t| t <= self.at_ms)
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

/// Verifies a token's signatures, chain and narrowing once, at a moment
/// inside its validity window; time and revocations are re-checked per use.
fn verify_once(token: &Token) -> Option<Verified> {
    let root = token.root_issuer();
    let inside_window = token
        .blocks()
        .iter()
        .map(|b| b.body().not_before)
        .max()
        .unwrap_or(0);
    let roots = [root];
    let ctx = VerifyContext::new(&roots, inside_window, token.holder());
    token.verify(&ctx).ok()
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
        let mut seen = std::collections::HashSet::new();
        let tokens = texts
            .iter()
            .filter_map(|t| Token::from_text(t).ok())
            .chain(replicated_grants(instance, conn)?);
        for token in tokens {
            if seen.insert(token.id())
                && let Some(v) = verify_once(&token)
            {
                access.verified.entry(v.holder()).or_default().push(v);
            }
        }
        let revoked: Vec<(String, i64)> = conn
            .prepare_cached("SELECT block_id, revoked_at FROM revocation")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .db(&db)?;
        access.revoked = revoked
            .into_iter()
            .filter_map(|(b, at)| Some((b.parse().ok()?, at)))
            .collect();
        Ok(access)
    }

    /// The owner of a scope, if this node knows it.
    pub fn owner(&self, scope: &ScopeId) -> Option<PublicKey> {
        self.owners.get(scope.as_str()).copied()
    }

    /// Whether `id` was revoked at or before `at_ms`.
    pub fn revoked_at(&self, id: &BlockId, at_ms: i64) -> bool {
        RevokedAt {
            revoked: &self.revoked,
            at_ms,
        }
        .is_revoked(id)
    }

    /// Whether some token rooted at the scope's owner lets `holder` do `op`
    /// on `scope` at `at_ms`.
    fn granted(
        &self,
        holder: &PublicKey,
        scope: &ScopeId,
        op: Role,
        at_ms: i64,
        presented: &[Verified],
    ) -> bool {
        let (Some(owner), Some(resource)) = (self.owner(scope), token_scope(scope)) else {
            return false;
        };
        let roots = [owner];
        let revocations = RevokedAt {
            revoked: &self.revoked,
            at_ms,
        };
        let ctx = VerifyContext::new(&roots, at_ms.div_euclid(1000), *holder)
            .with_revocations(&revocations)
            .with_resolver(&NoMembership);
        let mine = self.verified.get(holder).map(Vec::as_slice).unwrap_or(&[]);
        mine.iter().chain(presented).any(|v| {
            v.root() == owner
                && v.recheck(&ctx).is_ok()
                && v.authorize(op, &resource, &NoMembership).is_ok()
        })
    }
}

impl NodeAccess {
    fn read(&self, peer: &PublicKey, scope: &ScopeId, presented: &[Verified]) -> bool {
        if Some(*peer) == self.me || self.owner(scope) == Some(*peer) {
            return true;
        }
        self.granted(peer, scope, Role::Read, crate::time::now_ms(), presented)
    }

    fn write(&self, origin: &PublicKey, scope: &ScopeId, at: Hlc, arriving: &[Verified]) -> bool {
        if self.owner(scope) == Some(*origin) {
            return true;
        }
        // Judged at the change's own time, the same on every replica.
        let at_ms = i64::try_from(at.ms).unwrap_or(i64::MAX);
        self.granted(origin, scope, Role::Write, at_ms, arriving)
    }
}

impl NodeAccess {
    /// Whether `origin` ever held a write token for `scope` from its owner,
    /// expired or revoked ones included: its refused batches are kept and
    /// relayed as evidence only then (a reader's forgeries are dropped).
    fn ever_wrote(&self, origin: &PublicKey, scope: &ScopeId) -> bool {
        if self.owner(scope) == Some(*origin) {
            return true;
        }
        let (Some(owner), Some(resource)) = (self.owner(scope), token_scope(scope)) else {
            return false;
        };
        self.verified.get(origin).is_some_and(|tokens| {
            tokens.iter().any(|v| {
                v.root() == owner && v.authorize(Role::Write, &resource, &NoMembership).is_ok()
            })
        })
    }
}

impl Access for NodeAccess {
    fn may_read(&self, peer: &PublicKey, scope: &ScopeId) -> bool {
        self.read(peer, scope, &[])
    }

    fn may_write(&self, origin: &PublicKey, scope: &ScopeId, at: Hlc) -> bool {
        self.write(origin, scope, at, &[])
    }

    fn held_write(&self, origin: &PublicKey, scope: &ScopeId) -> bool {
        self.ever_wrote(origin, scope)
    }
}

/// Tokens peers presented on their (authenticated) connections, verified
/// once; a relay serves a reader on the strength of the token it shows.
#[derive(Clone, Debug, Default)]
pub struct Presented(HashMap<PublicKey, Vec<Verified>>);

impl Presented {
    /// Remembers `peer`'s tokens; those that do not verify, or are not
    /// the peer's, are ignored.
    pub fn present(&mut self, peer: PublicKey, tokens: &[Token]) {
        let verified = tokens
            .iter()
            .filter(|t| t.holder() == peer)
            .filter_map(verify_once)
            .collect();
        self.0.insert(peer, verified);
    }

    /// Forgets a peer's tokens (it disconnected).
    pub fn forget(&mut self, peer: &PublicKey) {
        self.0.remove(peer);
    }

    fn of(&self, peer: &PublicKey) -> &[Verified] {
        self.0.get(peer).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A node's access facts plus what its connected peers presented, and the
/// grants travelling in the message being handled.
pub struct SessionAccess<'a> {
    pub base: &'a NodeAccess,
    pub presented: &'a Presented,
    /// Write grants carried by the documents of the input being handled
    /// (a snapshot holds the grant records beside the changes they allow).
    pub arriving: &'a [Verified],
}

impl Access for SessionAccess<'_> {
    fn may_read(&self, peer: &PublicKey, scope: &ScopeId) -> bool {
        self.base.read(peer, scope, self.presented.of(peer))
    }

    fn may_write(&self, origin: &PublicKey, scope: &ScopeId, at: Hlc) -> bool {
        // Write rights must be judged alike on every replica: only
        // replicated grants count, never a token shown to this node alone.
        self.base.write(origin, scope, at, self.arriving)
    }

    fn held_write(&self, origin: &PublicKey, scope: &ScopeId) -> bool {
        self.base.ever_wrote(origin, scope)
    }
}

/// Write grants inside the documents of a snapshot chunk or a repair
/// message: grant records whose every change is by the scope's owner (who
/// alone writes them), verified. The engine checks a chunk's documents
/// against access before storing any of them, so without these a grant
/// and the changes it allows, arriving together, would refuse each other.
pub fn arriving_grants(base: &NodeAccess, bytes: &[u8]) -> Vec<Verified> {
    use labmesh_sync::wire::Message;
    // Version byte, then the kind: only documents-carrying messages.
    const DOCS: u8 = 7;
    const SNAPSHOT_CHUNK: u8 = 9;
    if !matches!(bytes.get(1), Some(&DOCS) | Some(&SNAPSHOT_CHUNK)) {
        return Vec::new();
    }
    let (scope, records) = match Message::decode(bytes) {
        Ok(Message::SnapshotChunk { scope, records, .. }) => (scope, records),
        Ok(Message::Docs { scope, docs, .. }) => (scope, docs),
        _ => return Vec::new(),
    };
    let Some(owner) = base.owner(&scope) else {
        return Vec::new();
    };
    records
        .iter()
        .filter(|(uid, _)| uid.as_str().starts_with('g'))
        .filter_map(|(_, doc)| labmesh_sync::RecordDoc::load(doc).ok())
        .filter(|doc| doc.authors().iter().all(|a| a.actor == *owner.as_bytes()))
        .filter_map(|doc| crate::mesh::records::text(&doc.view(), "token"))
        .filter_map(|text| Token::from_text(&text).ok())
        .filter(|t| t.root_issuer() == owner)
        .filter_map(|t| verify_once(&t))
        .collect()
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

/// The loaded access facts of an instance, reused while the tables they
/// come from are unchanged.
#[derive(Default)]
pub struct AccessCache(RefCell<Option<(String, Arc<NodeAccess>)>>);

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessCache")
    }
}

/// A cheap fingerprint of everything `NodeAccess::load` reads: it changes
/// whenever a share, token, revocation or replicated grant is added,
/// removed or changed.
fn fingerprint(conn: &Connection) -> rusqlite::Result<String> {
    conn.prepare_cached(
        "SELECT (SELECT count(*) || '.' || coalesce(max(id), 0) || '.' || coalesce(sum(length(text)), 0) FROM token)
             || '/' || (SELECT count(*) || '.' || coalesce(sum(revoked_at), 0) FROM revocation)
             || '/' || (SELECT count(*) || '.' || coalesce(sum(length(owner)), 0) || '.' || coalesce(max(created_at), 0) FROM share)
             || '/' || (SELECT count(*) || '.' || coalesce(sum(length(heads)), 0) FROM sync_document WHERE kind = 'grant')",
    )?
    .query_row([], |r| r.get(0))
}

impl Instance {
    /// Access decisions as of now, from the cache when nothing changed.
    pub fn sync_access(&self, conn: &Connection) -> Result<Arc<NodeAccess>> {
        let print = fingerprint(conn).db(&self.db_path())?;
        if let Some((cached, access)) = &*self.access_cache.0.borrow()
            && *cached == print
        {
            return Ok(access.clone());
        }
        let access = Arc::new(NodeAccess::load(self, conn)?);
        *self.access_cache.0.borrow_mut() = Some((print, access.clone()));
        Ok(access)
    }
}
