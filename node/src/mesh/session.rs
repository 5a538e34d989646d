//! A sync session: one long-lived engine for a process that talks to peers
//! (the daemon, or a test pumping messages). Every input runs in one write
//! transaction: the engine reads through it, its effects are applied in
//! it, and it commits before the messages go out.

use labmesh_crypto::{PublicKey, Token};
use labmesh_sync::{Engine, Outgoing, Output, ScopeId};

use crate::db::write_txn;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::mesh::access::{Presented, SessionAccess, arriving_grants};
use crate::mesh::store::SqlStore;
use crate::time::now_ms;

pub struct SyncSession {
    engine: Engine,
    /// Tokens peers presented, kept across access reloads.
    presented: Presented,
    /// The revocations already revalidated against (`None`: not yet).
    revocations_seen: Option<String>,
}

impl SyncSession {
    pub fn new(instance: &Instance) -> Result<SyncSession> {
        Ok(SyncSession {
            engine: instance.sync_engine(&instance.conn)?,
            presented: Presented::default(),
            revocations_seen: None,
        })
    }

    /// This node's key.
    pub fn id(&self) -> PublicKey {
        self.engine.id()
    }

    /// Remembers the tokens a peer presented on its connection.
    pub fn present(&mut self, peer: PublicKey, tokens: &[Token]) {
        self.presented.present(peer, tokens);
    }

    fn run(
        &mut self,
        instance: &Instance,
        input: Option<&[u8]>,
        call: impl FnOnce(&mut Engine, &SqlStore<'_>, &SessionAccess<'_>) -> Output,
    ) -> Result<Vec<Outgoing>> {
        let db = instance.db_path();
        let tx = write_txn(&instance.conn).db(&db)?;
        let base = instance.sync_access(&tx)?;
        let arriving = input.map(|b| arriving_grants(&base, b)).unwrap_or_default();
        let access = SessionAccess {
            base: &base,
            presented: &self.presented,
            arriving: &arriving,
        };
        let store = SqlStore { conn: &tx };
        let output = call(&mut self.engine, &store, &access);
        let mut messages = instance.apply_sync_output(&tx, output)?;
        tx.commit().db(&db)?;
        messages.extend(instance.take_outbox());
        messages.extend(self.revalidate_if_revoked(instance)?);
        Ok(messages)
    }

    /// When revocations were added since the last look (by a peer's record,
    /// a notice, or `labmesh revoke` in another process): documents holding
    /// changes the revoked holders made after their revocation are rebuilt
    /// without them, as on replicas that learnt of the revocation first.
    /// Each shared scope in its own transaction.
    pub fn revalidate_if_revoked(&mut self, instance: &Instance) -> Result<Vec<Outgoing>> {
        let print = super::revalidate::revocations_fingerprint(instance)?;
        if self.revocations_seen.as_ref() == Some(&print) {
            return Ok(Vec::new());
        }
        self.revocations_seen = Some(print);
        let holders = super::revalidate::revoked_holders(instance)?;
        if holders.is_empty() {
            return Ok(Vec::new());
        }
        let mut messages = Vec::new();
        for share in instance.shares()? {
            let scope = crate::mesh::parse_scope(&share.scope)?;
            let db = instance.db_path();
            let tx = write_txn(&instance.conn).db(&db)?;
            let base = instance.sync_access(&tx)?;
            let access = SessionAccess {
                base: &base,
                presented: &self.presented,
                arriving: &[],
            };
            let store = SqlStore { conn: &tx };
            for holder in &holders {
                let output =
                    self.engine
                        .revalidate(now_ms() as u64, &scope, Some(holder), &store, &access);
                messages.extend(instance.apply_sync_output(&tx, output)?);
            }
            tx.commit().db(&db)?;
        }
        messages.extend(instance.take_outbox());
        Ok(messages)
    }

    /// A peer connected; both sides sync `scopes`.
    pub fn connect(
        &mut self,
        instance: &Instance,
        peer: PublicKey,
        scopes: &[ScopeId],
    ) -> Result<Vec<Outgoing>> {
        self.run(instance, None, |e, s, a| {
            e.connect(now_ms() as u64, peer, scopes, s, a)
        })
    }

    pub fn disconnect(&mut self, peer: &PublicKey) {
        self.engine.disconnect(peer);
        self.presented.forget(peer);
    }

    /// Bytes from an authenticated peer.
    pub fn handle(
        &mut self,
        instance: &Instance,
        peer: PublicKey,
        bytes: &[u8],
    ) -> Result<Vec<Outgoing>> {
        self.run(instance, Some(bytes), |e, s, a| {
            e.handle(now_ms() as u64, peer, bytes, s, a)
        })
    }

    /// The periodic timer (every few seconds).
    pub fn tick(&mut self, instance: &Instance) -> Result<Vec<Outgoing>> {
        self.run(instance, None, |e, s, a| e.tick(now_ms() as u64, s, a))
    }

    /// Starts a snapshot bootstrap of `scope` from `peer`.
    pub fn bootstrap(
        &mut self,
        instance: &Instance,
        peer: PublicKey,
        scope: &ScopeId,
    ) -> Result<Vec<Outgoing>> {
        self.run(instance, None, |e, _, _| {
            e.bootstrap(now_ms() as u64, peer, scope.clone())
        })
    }

    /// Whether a bootstrap of `scope` is under way.
    pub fn bootstrapping(&self, scope: &ScopeId) -> bool {
        self.engine.bootstrapping(scope)
    }
}
