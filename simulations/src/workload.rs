//! Random local activity: creates, field writes, text edits, deletes,
//! conflict resolutions, forged writes by read-only nodes, and records
//! rolled back behind the engine's back. Every acknowledged write is
//! remembered for the invariants.

use std::collections::BTreeMap;

use labmesh_sync::feed::{Batch, Entry, SignedBatch};
use labmesh_sync::wire::Message;
use labmesh_sync::{Edit, FieldValue, LocalWrite, RecordDoc, RecordUid, ScopeId, WriteError};
use rand::RngExt;

use crate::net::Packet;
use crate::world::World;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SCALARS: [&str; 4] = ["key", "size", "kind", "note"];
const TEXT: &str = "description";

/// One acknowledged write of a scalar field (a value, or `None` for a delete).
#[derive(Clone, Debug)]
pub(crate) struct Ack {
    pub(crate) scope: ScopeId,
    pub(crate) uid: RecordUid,
    pub(crate) field: String,
    pub(crate) value: Option<FieldValue>,
    pub(crate) node: usize,
    /// The change that made it.
    pub(crate) change: [u8; 32],
    /// Earlier acks of the same field this write saw, and so overwrote.
    pub(crate) overwrote: Vec<usize>,
}

/// Every acknowledged write and change.
#[derive(Default)]
pub(crate) struct Acks {
    pub(crate) writes: Vec<Ack>,
    by_field: BTreeMap<(ScopeId, RecordUid, String), Vec<usize>>,
    /// (scope, uid, change hash) of every acknowledged change.
    pub(crate) changes: Vec<(ScopeId, RecordUid, [u8; 32])>,
}

impl World {
    fn fresh_value(&mut self, field: &str) -> FieldValue {
        let n = self.acks.writes.len() as i64;
        match field {
            "size" => FieldValue::Int(n * 1000 + self.rng.random_range(0..1000)),
            _ => FieldValue::Str(format!(
                "{field}-{n}-{}",
                self.rng.random_range(0..1_000_000)
            )),
        }
    }

    fn new_uid(&mut self) -> Result<RecordUid, labmesh_sync::error::IdError> {
        let s: String = (0..20)
            .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        RecordUid::new(&s)
    }

    /// One random local write by a random joined node.
    pub(crate) fn random_write(&mut self) {
        let joined: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].joined)
            .collect();
        let i = joined[self.rng.random_range(0..joined.len())];
        let scopes = self.nodes[i].scopes.clone();
        let scope = scopes[self.rng.random_range(0..scopes.len())].clone();
        if self.nodes[i].engine.bootstrapping(&scope) {
            return;
        }
        let existing: Vec<RecordUid> = self.nodes[i]
            .store
            .records(&scope)
            .map(|(u, _)| u.clone())
            .collect();
        let roll = self.rng.random_range(0..100);
        let (uid, edits) = if existing.is_empty() || roll < 25 {
            let Ok(uid) = self.new_uid() else { return };
            let mut edits: Vec<Edit> = Vec::new();
            for f in SCALARS.iter().take(3) {
                let v = self.fresh_value(f);
                edits.push(Edit::set(*f, v));
            }
            edits.push(Edit::set(TEXT, FieldValue::Text("first words".into())));
            (uid, edits)
        } else {
            let uid = existing[self.rng.random_range(0..existing.len())].clone();
            let edit = match roll {
                25..=59 => {
                    let f = SCALARS[self.rng.random_range(0..SCALARS.len())];
                    let v = self.fresh_value(f);
                    Edit::set(f, v)
                }
                60..=74 => Edit::Splice {
                    field: TEXT.into(),
                    pos: self.rng.random_range(0..30),
                    delete: self.rng.random_range(0..3),
                    insert: format!(" w{}", self.acks.writes.len()),
                },
                75..=79 => Edit::Delete(SCALARS[self.rng.random_range(0..SCALARS.len())].into()),
                80..=84 => {
                    if self.rng.random_bool(0.5) {
                        Edit::Tombstone
                    } else {
                        Edit::Restore
                    }
                }
                _ => self.resolution(i, &scope, &uid),
            };
            (uid, vec![edit])
        };
        let write = LocalWrite {
            scope: scope.clone(),
            uid: uid.clone(),
            edits,
        };
        if !self.nodes[i].writer {
            self.rogue_write(i, write);
            return;
        }
        self.honest_write(i, write);
    }

    /// Resolves a conflict on the record if it has one (else sets a field).
    fn resolution(&mut self, i: usize, scope: &ScopeId, uid: &RecordUid) -> Edit {
        let conflict = self.nodes[i]
            .store
            .record(scope, uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok())
            .and_then(|d| {
                d.conflicts()
                    .into_iter()
                    .find(|c| !c.field.starts_with('$') && c.field != TEXT)
            });
        match conflict {
            Some(c) => {
                let pick = c.values[self.rng.random_range(0..c.values.len())].clone();
                Edit::resolve(c.field, pick)
            }
            None => {
                let v = self.fresh_value("note");
                Edit::set("note", v)
            }
        }
    }

    fn honest_write(&mut self, i: usize, write: LocalWrite) {
        let before = self.nodes[i]
            .store
            .record(&write.scope, &write.uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok());
        let now = self.wall(i);
        let node = &mut self.nodes[i];
        let written =
            match node
                .engine
                .write(now, std::slice::from_ref(&write), &node.store, &self.access)
            {
                Ok(w) => w,
                Err(e) => {
                    self.violations
                        .push(format!("node {i}: an authorised write failed: {e}"));
                    return;
                }
            };
        for receipt in &written.receipts {
            self.acks
                .changes
                .push((receipt.scope.clone(), receipt.uid.clone(), receipt.change));
            self.report.changes += 1;
        }
        for edit in &write.edits {
            let (field, value) = match edit {
                Edit::Set(f, FieldValue::Text(_)) if f == TEXT => continue,
                Edit::Set(f, v) => (f.clone(), Some(v.clone())),
                Edit::Delete(f) => (f.clone(), None),
                _ => continue,
            };
            let key = (write.scope.clone(), write.uid.clone(), field.clone());
            let earlier = self.acks.by_field.get(&key).cloned().unwrap_or_default();
            let overwrote = earlier
                .into_iter()
                .filter(|&k| {
                    before
                        .as_ref()
                        .is_some_and(|d| d.has_change(&self.acks.writes[k].change))
                })
                .collect();
            let change = written
                .receipts
                .first()
                .map(|r| r.change)
                .unwrap_or_default();
            let idx = self.acks.writes.len();
            let ack = Ack {
                scope: write.scope.clone(),
                uid: write.uid.clone(),
                field,
                value,
                node: i,
                change,
                overwrote,
            };
            self.acks.writes.push(ack);
            self.acks.by_field.entry(key).or_default().push(idx);
        }
        self.process(i, written.output);
    }

    /// A read-only node writes: its engine refuses; it then forges a signed
    /// batch by hand and sends it to its peers, who must reject it.
    fn rogue_write(&mut self, i: usize, write: LocalWrite) {
        self.report.rogue_attempts += 1;
        let now = self.wall(i);
        let node = &mut self.nodes[i];
        match node
            .engine
            .write(now, std::slice::from_ref(&write), &node.store, &self.access)
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
        let mut doc = node
            .store
            .record(&write.scope, &write.uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok())
            .unwrap_or_default();
        let hlc = labmesh_sync::Hlc {
            ms: now,
            logical: 0,
            node: labmesh_sync::Hlc::node_tag(&node.id),
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
        let peers: Vec<usize> = self.links[i]
            .iter()
            .filter(|(p, s)| self.nodes[**p].joined && s.contains(&write.scope))
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

    /// Replaces one record's document at a node with another replica's copy,
    /// keeping the node's marks, as a restore from an old backup would. Only
    /// records that hold no change by that node itself are rolled back (a
    /// node must never lose its own changes: it would reuse their automerge
    /// sequence numbers).
    pub(crate) fn inject_drift(&mut self) {
        let i = self.rng.random_range(0..self.nodes.len());
        if !self.nodes[i].joined {
            return;
        }
        let scopes = self.nodes[i].scopes.clone();
        let scope = scopes[self.rng.random_range(0..scopes.len())].clone();
        let uids: Vec<RecordUid> = self.nodes[i]
            .store
            .records(&scope)
            .map(|(u, _)| u.clone())
            .collect();
        if uids.is_empty() {
            return;
        }
        let uid = uids[self.rng.random_range(0..uids.len())].clone();
        let Some(mine) = self.nodes[i]
            .store
            .record(&scope, &uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok())
        else {
            return;
        };
        let me = *self.nodes[i].id.as_bytes();
        if mine.authors().iter().any(|a| a.actor == me) {
            return;
        }
        let subs = self.subscribers(&scope);
        let j = subs[self.rng.random_range(0..subs.len())];
        if j == i {
            return;
        }
        let Some(theirs) = self.nodes[j]
            .store
            .record(&scope, &uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok())
        else {
            return;
        };
        if theirs.heads() == mine.heads() {
            return;
        }
        self.nodes[i].store.overwrite_document(&scope, &uid, theirs);
        self.report.drift_injected += 1;
    }
}
