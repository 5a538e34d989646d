//! What read-only nodes do when their engine refuses their writes: they
//! forge. Signed batches under their own key, documents carrying changes in
//! a writer's name (automerge actor ids need no private key), snapshot
//! chunks of such documents when asked for a snapshot, and garbage bytes.
//! Receivers must refuse all of it; the ground truth catches any forgery
//! that got through, whatever actor id it carries.

use labmesh_sync::feed::{Batch, Entry, SignedBatch};
use labmesh_sync::wire::Message;
use labmesh_sync::{Edit, FieldValue, Hlc, LocalWrite, RecordDoc, RecordUid, ScopeId, WriteError};
use rand::RngExt;

use crate::config::Fault;
use crate::net::Packet;
use crate::world::World;

impl World {
    /// A read-only node writes: its engine refuses; it forges instead.
    pub(crate) fn rogue_write(&mut self, i: usize, write: LocalWrite) {
        self.report.rogue_attempts += 1;
        let permissive = self.cfg.fault == Some(Fault::PermissiveAccess);
        if !permissive {
            let now = self.wall(i);
            let node = &mut self.nodes[i];
            match node
                .engine
                .write(now, std::slice::from_ref(&write), &node.store, &node.access)
            {
                Err(WriteError::NotAuthorized { .. }) => {}
                other => {
                    self.violations.push(format!(
                        "node {i} (read-only) was allowed to write: {:?}",
                        other.map(|w| w.receipts)
                    ));
                    return;
                }
            }
        }
        // Impersonation would make a permissive mesh diverge (the forged
        // change takes a writer's sequence number), so that self-test
        // forges under the rogue's own key only.
        match self.rng.random_range(0..4) {
            _ if permissive => self.forge_batch(i, write),
            0 | 1 => self.forge_batch(i, write),
            2 => self.forge_docs(i, write),
            _ => self.send_garbage(i, &write.scope),
        }
    }

    fn send_to_peers(&mut self, i: usize, scope: &ScopeId, bytes: Vec<u8>) {
        let peers: Vec<usize> = self.links[i]
            .iter()
            .filter(|(p, s)| self.nodes[**p].joined && s.contains(scope))
            .map(|(p, _)| *p)
            .collect();
        for p in peers {
            let packet = Packet {
                from: i,
                to: p,
                bytes: bytes.clone(),
            };
            self.net
                .send(self.now, packet, self.faults.as_ref(), &mut self.rng);
        }
    }

    /// A batch signed with its own key.
    fn forge_batch(&mut self, i: usize, write: LocalWrite) {
        let now = self.wall(i);
        let node = &mut self.nodes[i];
        let mut doc = node
            .store
            .record(&write.scope, &write.uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok())
            .unwrap_or_default();
        let hlc = Hlc {
            ms: now,
            logical: 0,
            node: Hlc::node_tag(&node.id),
        };
        let Ok(Some(change)) = doc.edit(&node.id, hlc, &write.edits) else {
            return;
        };
        node.rogue_seq += 1;
        let prev = node
            .rogue_prev
            .insert(write.scope.clone(), node.rogue_seq)
            .unwrap_or(0);
        let batch = Batch {
            origin: node.id,
            scope: write.scope.clone(),
            prev,
            first_seq: node.rogue_seq,
            entries: vec![Entry {
                hlc,
                uid: write.uid.clone(),
                change,
            }],
        };
        let Ok(signed) = SignedBatch::sign(&node.key, batch) else {
            return;
        };
        let bytes = Message::Batches {
            scope: write.scope.clone(),
            more: false,
            batches: vec![signed],
        }
        .encode();
        self.send_to_peers(i, &write.scope, bytes);
    }

    /// A writer's name on changes the rogue made itself.
    fn impersonate(
        &mut self,
        i: usize,
        scope: &ScopeId,
        uid: &RecordUid,
        edits: &[Edit],
    ) -> Option<Vec<u8>> {
        let victim = self.nodes[0].id;
        let mut doc = self.nodes[i]
            .store
            .record(scope, uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok())
            .unwrap_or_default();
        let hlc = Hlc {
            ms: self.wall(i),
            logical: 0,
            node: Hlc::node_tag(&victim),
        };
        doc.edit(&victim, hlc, edits).ok()??;
        Some(doc.save())
    }

    /// Repair documents carrying a change in node 0's name.
    fn forge_docs(&mut self, i: usize, write: LocalWrite) {
        let Some(bytes) = self.impersonate(i, &write.scope, &write.uid, &write.edits) else {
            return;
        };
        self.report.forged_docs += 1;
        let message = Message::Docs {
            scope: write.scope.clone(),
            docs: vec![(write.uid.clone(), bytes)],
            want: Vec::new(),
        };
        self.send_to_peers(i, &write.scope, message.encode());
    }

    /// Bytes that are no message (or a truncated one).
    fn send_garbage(&mut self, i: usize, scope: &ScopeId) {
        self.report.garbage += 1;
        let len = self.rng.random_range(0..120);
        let mut bytes: Vec<u8> = (0..len).map(|_| self.rng.random()).collect();
        if !bytes.is_empty() && self.rng.random_bool(0.7) {
            bytes[0] = 1; // the right version, so decoding goes further
        }
        self.send_to_peers(i, scope, bytes);
    }

    /// Answers a snapshot request with documents carrying changes in node
    /// 0's name.
    pub(crate) fn forge_snapshot(&mut self, rogue: usize, to: usize, scope: ScopeId) {
        let uids: Vec<RecordUid> = self.nodes[rogue]
            .store
            .records(&scope)
            .map(|(u, _)| u.clone())
            .collect();
        let edits = [Edit::set("note", FieldValue::Str("forged".into()))];
        let records: Vec<(RecordUid, Vec<u8>)> = uids
            .into_iter()
            .filter_map(|u| self.impersonate(rogue, &scope, &u, &edits).map(|d| (u, d)))
            .collect();
        self.report.forged_snapshots += 1;
        let marks =
            labmesh_sync::Store::marks(&self.nodes[rogue].store, &scope).unwrap_or_default();
        let bytes = Message::SnapshotChunk {
            scope,
            marks,
            records,
            next: None,
        }
        .encode();
        let packet = Packet {
            from: rogue,
            to,
            bytes,
        };
        self.net
            .send(self.now, packet, self.faults.as_ref(), &mut self.rng);
    }
}
