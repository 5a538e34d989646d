//! A sync session: one long-lived engine for a process that talks to peers
//! (the daemon, or a test pumping messages). Every input runs in one write
//! transaction: the engine reads through it, its effects are applied in
//! it, and it commits before the messages go out.

use labmesh_crypto::{PublicKey, Token};
use labmesh_sync::{Engine, Outgoing, Output, ScopeId};

use crate::db::write_txn;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::mesh::access::NodeAccess;
use crate::mesh::store::SqlStore;
use crate::time::now_ms;

pub struct SyncSession {
    engine: Engine,
    /// Tokens peers presented, kept across access reloads.
    presented: Vec<(PublicKey, Vec<Token>)>,
}

impl SyncSession {
    pub fn new(instance: &Instance) -> Result<SyncSession> {
        Ok(SyncSession {
            engine: instance.sync_engine(&instance.conn)?,
            presented: Vec::new(),
        })
    }

    /// This node's key.
    pub fn id(&self) -> PublicKey {
        self.engine.id()
    }

    /// Remembers the tokens a peer presented on its connection.
    pub fn present(&mut self, peer: PublicKey, tokens: Vec<Token>) {
        self.presented.retain(|(p, _)| *p != peer);
        self.presented.push((peer, tokens));
    }

    fn run(
        &mut self,
        instance: &Instance,
        call: impl FnOnce(&mut Engine, &SqlStore<'_>, &NodeAccess) -> Output,
    ) -> Result<Vec<Outgoing>> {
        let db = instance.db_path();
        let tx = write_txn(&instance.conn).db(&db)?;
        let mut access = instance.sync_access(&tx)?;
        for (peer, tokens) in &self.presented {
            access.present(*peer, tokens.clone());
        }
        let store = SqlStore { conn: &tx };
        let output = call(&mut self.engine, &store, &access);
        let mut messages = instance.apply_sync_output(&tx, output)?;
        tx.commit().db(&db)?;
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
        self.run(instance, |e, s, a| {
            e.connect(now_ms() as u64, peer, scopes, s, a)
        })
    }

    pub fn disconnect(&mut self, peer: &PublicKey) {
        self.engine.disconnect(peer);
    }

    /// Bytes from an authenticated peer.
    pub fn handle(
        &mut self,
        instance: &Instance,
        peer: PublicKey,
        bytes: &[u8],
    ) -> Result<Vec<Outgoing>> {
        self.run(instance, |e, s, a| {
            e.handle(now_ms() as u64, peer, bytes, s, a)
        })
    }

    /// The periodic timer (every few seconds).
    pub fn tick(&mut self, instance: &Instance) -> Result<Vec<Outgoing>> {
        self.run(instance, |e, s, a| e.tick(now_ms() as u64, s, a))
    }

    /// Starts a snapshot bootstrap of `scope` from `peer`.
    pub fn bootstrap(
        &mut self,
        instance: &Instance,
        peer: PublicKey,
        scope: &ScopeId,
    ) -> Result<Vec<Outgoing>> {
        self.run(instance, |e, _, _| {
            e.bootstrap(now_ms() as u64, peer, scope.clone())
        })
    }

    /// Whether a bootstrap of `scope` is under way.
    pub fn bootstrapping(&self, scope: &ScopeId) -> bool {
        self.engine.bootstrapping(scope)
    }
}
