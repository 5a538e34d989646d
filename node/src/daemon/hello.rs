//! The node-level handshake: what each side holds and wants, the tokens
//! they issued each other, and revocations; then the engine connects the
//! scopes both hold.

use std::collections::HashSet;

use labmesh_crypto::{PublicKey, Token};
use labmesh_sync::net::PeerId;
use labmesh_sync::{Access, Hlc, Outgoing, ScopeId};

use super::envelope::{Envelope, Hello, MAX_HELLO_TOKENS};
use super::node::Daemon;
use crate::error::{DbContext, Result};
use crate::instance::Instance;
use crate::mesh::parse_scope;
use crate::time::now_ms;

impl Instance {
    /// This node's hello to `peer`.
    pub(crate) fn hello(&self, peer: &PublicKey) -> Result<Hello> {
        let instance = self;
        let db = instance.db_path();
        let conn = instance.connection();
        let shares = instance.shares()?;
        let holds = shares.iter().map(|s| s.scope.clone()).collect();
        let subscriptions: Vec<String> = shares
            .iter()
            .filter(|s| s.subscribed_from.is_some())
            .map(|s| s.scope.clone())
            .collect();
        let owners: HashSet<String> = shares
            .iter()
            .filter(|s| s.subscribed_from.is_some())
            .map(|s| s.owner.clone())
            .collect();
        let offers: Vec<String> = conn
            .prepare(
                "SELECT text FROM token WHERE kind IN ('issued', 'delegated') AND holder = ?1
                 ORDER BY created_at DESC LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(
                    rusqlite::params![peer.to_string(), MAX_HELLO_TOKENS as i64],
                    |r| r.get(0),
                )?
                .collect()
            })
            .db(&db)?;
        // Tokens we hold for what we subscribe to, so a relay can check us.
        let held: Vec<(String, String)> = conn
            .prepare(
                "SELECT text, root FROM token WHERE kind = 'received' AND holder = ?1
                 ORDER BY created_at DESC",
            )
            .and_then(|mut s| {
                s.query_map([instance.peer_id()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .db(&db)?;
        let presents = held
            .into_iter()
            .filter(|(_, root)| owners.contains(root))
            .map(|(text, _)| text)
            .take(MAX_HELLO_TOKENS)
            .collect();
        Ok(Hello {
            instance_uid: instance.uid().to_string(),
            name: instance.name().to_string(),
            holds,
            subscriptions,
            offers,
            presents,
            revocations: instance.revocation_notices_for(peer)?,
        })
    }
}

impl Daemon<'_> {
    pub(super) fn hello_for(&self, peer: &PublicKey) -> Result<Hello> {
        self.instance.hello(peer)
    }

    /// A peer's hello: keep what it offers and shows, take its revocations,
    /// then sync the scopes both hold.
    pub(super) fn on_hello(
        &mut self,
        peer: PeerId,
        key: PublicKey,
        hello: Hello,
    ) -> Result<Vec<Outgoing>> {
        self.instance
            .remember_instance(&key, &hello.instance_uid, &hello.name)?;
        for text in &hello.offers {
            // Grants the peer made us while we were apart: keep those we hold.
            match Token::from_text(text) {
                Ok(token) if token.holder() == self.session.id() => {
                    if let Err(e) = self.instance.add_received_token(&token) {
                        let name = self.name_of(&key);
                        (self.report)(super::DaemonEvent::Problem(format!(
                            "{name} offered a token that was not kept: {e}"
                        )));
                    }
                }
                _ => {}
            }
        }
        let presents: Vec<Token> = hello
            .presents
            .iter()
            .filter_map(|t| Token::from_text(t).ok())
            .collect();
        self.session.present(key, &presents);
        if let Ok(mut shared) = self.presented.lock() {
            shared.present(key, &presents);
        }
        for notice in &hello.revocations {
            if let Err(e) = self.instance.accept_revocation_notice(&key, notice) {
                let name = self.name_of(&key);
                (self.report)(super::DaemonEvent::Problem(format!(
                    "{name}: revocation not taken: {e}"
                )));
            }
        }
        let mine: HashSet<String> = self
            .instance
            .shares()?
            .into_iter()
            .map(|s| s.scope)
            .collect();
        let common: Vec<ScopeId> = hello
            .holds
            .iter()
            .filter(|s| mine.contains(*s))
            .filter_map(|s| parse_scope(s).ok())
            .collect();
        if let Some(p) = self.peers.get_mut(&peer) {
            p.hello = true;
        }
        let mut out = self.refuse_unreadable(key, &common)?;
        out.extend(self.connect_scopes(peer, key, common)?);
        self.send_locations(peer)?;
        Ok(out)
    }

    /// Says no, once per hello, to a peer that holds a scope of this node's
    /// it may no longer read (its token expired or was revoked): the peer
    /// learns why nothing arrives, and the refusal is logged here.
    fn refuse_unreadable(&mut self, key: PublicKey, common: &[ScopeId]) -> Result<Vec<Outgoing>> {
        let access = self.instance.sync_access(self.instance.connection())?;
        let mut out = Vec::new();
        for scope in common {
            let ours = access.owner(scope) == Some(self.session.id());
            if ours && !self.session_may_read(&access, &key, scope) {
                self.instance.record_sync_event(
                    "denied",
                    Some(&key.to_string()),
                    Some(scope.as_str()),
                    "no valid read token: nothing sent",
                )?;
                out.push(Outgoing {
                    to: key,
                    bytes: labmesh_sync::wire::Message::Denied {
                        scope: scope.clone(),
                    }
                    .encode(),
                });
            }
        }
        Ok(out)
    }

    fn session_may_read(
        &self,
        base: &crate::mesh::access::NodeAccess,
        key: &PublicKey,
        scope: &ScopeId,
    ) -> bool {
        let presented = self.presented.lock().map(|p| p.clone()).unwrap_or_default();
        crate::mesh::access::SessionAccess {
            base,
            presented: &presented,
            arriving: &[],
        }
        .may_read(key, scope)
    }

    /// Connects the engine for new scopes with a peer, and bootstraps
    /// empty subscriptions from it when it is the scope's owner or a writer
    /// (snapshots are unsigned documents: only they are trusted to serve one).
    pub(super) fn connect_scopes(
        &mut self,
        peer: PeerId,
        key: PublicKey,
        scopes: Vec<ScopeId>,
    ) -> Result<Vec<Outgoing>> {
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(Vec::new());
        };
        let fresh: Vec<ScopeId> = scopes
            .into_iter()
            .filter(|s| p.scopes.insert(s.clone()))
            .collect();
        if fresh.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = self.session.connect(&self.instance, key, &fresh)?;
        // Tell the peer where our feeds stand, so it pulls what it lacks at
        // once instead of after two anti-entropy rounds (edits made apart).
        let store = crate::mesh::store::SqlStore {
            conn: self.instance.connection(),
        };
        let readable = self.instance.sync_access(self.instance.connection())?;
        for scope in &fresh {
            if !self.session_may_read(&readable, &key, scope) {
                continue;
            }
            let marks = labmesh_sync::Store::marks(&store, scope)
                .map_err(|e| crate::error::Error::InvalidArgument(format!("sync store: {e}")))?;
            if !marks.is_empty() {
                let announce = labmesh_sync::wire::Message::Announce {
                    scope: scope.clone(),
                    marks,
                };
                out.push(Outgoing {
                    to: key,
                    bytes: announce.encode(),
                });
            }
        }
        let access = self.instance.sync_access(self.instance.connection())?;
        let shares = self.instance.shares()?;
        for scope in &fresh {
            let Some(share) = shares.iter().find(|s| s.scope == scope.as_str()) else {
                continue;
            };
            let empty: bool = self
                .instance
                .connection()
                .query_row(
                    "SELECT NOT EXISTS (SELECT 1 FROM sync_document WHERE scope = ?1)",
                    [scope.as_str()],
                    |r| r.get(0),
                )
                .db(&self.instance.db_path())?;
            let trusted = share.owner == key.to_string()
                || access.may_write(
                    &key,
                    scope,
                    Hlc {
                        ms: now_ms() as u64,
                        logical: 0,
                        node: Hlc::node_tag(&key),
                    },
                );
            if share.subscribed_from.is_some() && empty && trusted {
                out.extend(self.session.bootstrap(&self.instance, key, scope)?);
            }
        }
        Ok(out)
    }

    /// Sends a hello again to every connected peer: this node's shares or
    /// tokens changed (a new subscription, a grant).
    pub(super) fn rehello(&mut self) -> Result<()> {
        let peers: Vec<(PeerId, PublicKey)> = self.peers.iter().map(|(p, v)| (*p, v.key)).collect();
        for (peer, key) in peers {
            let hello = self.hello_for(&key)?;
            self.send_to(peer, Envelope::Hello(Box::new(hello)).encode());
        }
        Ok(())
    }
}
