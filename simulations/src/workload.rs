//! Random local activity: creates, field writes, text edits, deletes,
//! conflict resolutions, long descriptions, revocations by the owner, and
//! records rolled back behind the engine's back. Every acknowledged write
//! is remembered for the invariants, and every change honest writers make
//! goes into the ground truth.

use std::collections::BTreeMap;

use labmesh_sync::{
    Edit, Effect, FieldValue, LocalWrite, RecordDoc, RecordUid, ScopeId, WriteError,
};
use rand::RngExt;

use crate::truth::Made;
use crate::world::World;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SCALARS: [&str; 4] = ["key", "size", "kind", "note"];
const TEXT: &str = "description";
/// The field of a revocation record: the revoked writer's key.
pub(crate) const REVOKES: &str = "revokes";

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

impl Acks {
    /// Records an acknowledged write that never happened (the
    /// `PhantomWrite` self-test).
    pub(crate) fn phantom(&mut self, ack: Ack) {
        self.writes.push(ack);
    }
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

    /// A random joined node and one of its scopes it is not bootstrapping.
    fn pick_writer_scope(&mut self, writers_only: bool) -> Option<(usize, ScopeId)> {
        let joined: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].joined && (!writers_only || self.nodes[i].writer))
            .collect();
        if joined.is_empty() {
            return None;
        }
        let i = joined[self.rng.random_range(0..joined.len())];
        let scopes = self.nodes[i].scopes.clone();
        let scope = scopes[self.rng.random_range(0..scopes.len())].clone();
        (!self.nodes[i].engine.bootstrapping(&scope)).then_some((i, scope))
    }

    /// One random local write by a random joined node.
    pub(crate) fn random_write(&mut self) {
        let Some((i, scope)) = self.pick_writer_scope(false) else {
            return;
        };
        let existing: Vec<RecordUid> = self.nodes[i]
            .store
            .records(&scope)
            .map(|(u, _)| u.clone())
            .collect();
        let roll = self.rng.random_range(0..100);
        let (uid, edits) = if existing.is_empty() || roll < 20 {
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
                20..=54 => {
                    let f = SCALARS[self.rng.random_range(0..SCALARS.len())];
                    let v = self.fresh_value(f);
                    Edit::set(f, v)
                }
                55..=64 => Edit::Splice {
                    field: TEXT.into(),
                    pos: self.rng.random_range(0..30),
                    delete: self.rng.random_range(0..3),
                    insert: format!(" w{}", self.acks.writes.len()),
                },
                65..=71 => {
                    let text = self.text_of(i, &scope, &uid);
                    let n = self.acks.writes.len();
                    let cut = text.chars().count() / 2;
                    let updated: String = if self.rng.random_bool(0.5) {
                        format!("u{n} {}", text.chars().skip(cut).collect::<String>())
                    } else {
                        format!("{} u{n}", text.chars().take(cut).collect::<String>())
                    };
                    Edit::update_text(TEXT, updated)
                }
                72..=76 => Edit::Delete(SCALARS[self.rng.random_range(0..SCALARS.len())].into()),
                77..=84 => {
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

    fn text_of(&self, i: usize, scope: &ScopeId, uid: &RecordUid) -> String {
        match self.nodes[i]
            .store
            .record(scope, uid)
            .and_then(|r| r.view.fields.get(TEXT).cloned())
        {
            Some(FieldValue::Text(t)) => t,
            _ => String::new(),
        }
    }

    /// A writer gives a record a large blob (its document outgrows a
    /// response: it travels alone in snapshots and repair, and its change
    /// is larger than a 64 KiB entry) and a longer description.
    pub(crate) fn large_write(&mut self) {
        let Some((i, scope)) = self.pick_writer_scope(true) else {
            return;
        };
        let Some(uid) = self.nodes[i]
            .store
            .records(&scope)
            .next()
            .map(|(u, _)| u.clone())
        else {
            return;
        };
        let blob: Vec<u8> = (0..self.cfg.large_bytes)
            .map(|_| self.rng.random())
            .collect();
        let text = self.text_of(i, &scope, &uid);
        let words: String = (0..300)
            .map(|_| SCALARS[self.rng.random_range(0..SCALARS.len())])
            .collect::<Vec<_>>()
            .join(" ");
        self.report.large_writes += 1;
        let write = LocalWrite {
            scope,
            uid,
            edits: vec![
                Edit::set("blob", FieldValue::Bytes(blob)),
                Edit::update_text(TEXT, format!("{text} {words}")),
            ],
        };
        self.honest_write(i, write);
    }

    /// Resolves a conflict on the record if it has one (else sets a field).
    fn resolution(&mut self, i: usize, scope: &ScopeId, uid: &RecordUid) -> Edit {
        let conflict = self.nodes[i]
            .store
            .record(scope, uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok())
            .and_then(|d| d.conflicts().into_iter().find(|c| c.field != TEXT));
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

    /// The owner (node 0) revokes a writer's right on one of its scopes:
    /// a revocation record, which reaches each node in its own time.
    pub(crate) fn revoke_someone(&mut self) {
        let candidates: Vec<(usize, ScopeId)> = (1..self.nodes.len())
            .filter(|&w| self.nodes[w].writer)
            .flat_map(|w| {
                self.nodes[w]
                    .scopes
                    .iter()
                    .filter(|s| self.truth.access.revoked_at(&self.nodes[w].id, s).is_none())
                    .map(move |s| (w, s.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        if candidates.is_empty() || !self.nodes[0].joined {
            return;
        }
        let (w, scope) = candidates[self.rng.random_range(0..candidates.len())].clone();
        let Ok(uid) = self.new_uid() else { return };
        let revoked = self.nodes[w].id;
        let write = LocalWrite {
            scope: scope.clone(),
            uid,
            edits: vec![
                Edit::set("kind", FieldValue::Str("revocation".into())),
                Edit::set(REVOKES, FieldValue::Bytes(revoked.as_bytes().to_vec())),
            ],
        };
        if let Some(at) = self.honest_write(0, write) {
            self.truth.access.revoke_write(revoked, &scope, at.ms);
            self.report.revocations += 1;
        }
    }

    /// An authorised node writes through its engine; returns the change's
    /// clock if something was written.
    pub(crate) fn honest_write(
        &mut self,
        i: usize,
        write: LocalWrite,
    ) -> Option<labmesh_sync::Hlc> {
        let before = self.nodes[i]
            .store
            .record(&write.scope, &write.uid)
            .and_then(|r| RecordDoc::load(&r.doc).ok());
        let now = self.wall(i);
        let node = &mut self.nodes[i];
        let view = crate::world::View {
            acl: &node.access,
            permissive: false,
        };
        let written = match node
            .engine
            .write(now, std::slice::from_ref(&write), &node.store, &view)
        {
            Ok(w) => w,
            Err(WriteError::NotAuthorized { .. })
                if node.access.revoked_at(&node.id, &write.scope).is_some() =>
            {
                // It learned of its revocation: refusing is right.
                self.report.refused_revoked += 1;
                return None;
            }
            Err(e) => {
                self.violations
                    .push(format!("node {i}: an authorised write failed: {e}"));
                return None;
            }
        };
        let me = self.nodes[i].id;
        for receipt in &written.receipts {
            self.acks
                .changes
                .push((receipt.scope.clone(), receipt.uid.clone(), receipt.change));
            self.report.changes += 1;
            let deps = written
                .output
                .effects
                .iter()
                .find_map(|e| match e {
                    Effect::PutDocument {
                        scope, uid, doc, ..
                    } if *scope == receipt.scope && *uid == receipt.uid => {
                        RecordDoc::load(doc).ok()
                    }
                    _ => None,
                })
                .and_then(|d| d.deps_of(&receipt.change))
                .unwrap_or_default();
            self.truth.record(
                receipt.change,
                Made {
                    scope: receipt.scope.clone(),
                    author: me,
                    ms: receipt.hlc.ms,
                    deps,
                },
            );
        }
        let change = written.receipts.first().map(|r| (r.change, r.hlc));
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
            let idx = self.acks.writes.len();
            let ack = Ack {
                scope: write.scope.clone(),
                uid: write.uid.clone(),
                field,
                value,
                node: i,
                change: change.map(|c| c.0).unwrap_or_default(),
                overwrote,
            };
            self.acks.writes.push(ack);
            self.acks.by_field.entry(key).or_default().push(idx);
        }
        self.process(i, written.output);
        change.map(|c| c.1)
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
        // A rollback must not bring back changes this node already dropped.
        let access = &self.nodes[i].access;
        let invalid = theirs.invalid_changes(|a| {
            labmesh_crypto::PublicKey::from_bytes(&a.actor).is_ok_and(|k| {
                let at = labmesh_sync::Hlc {
                    ms: a.ms,
                    logical: 0,
                    node: 0,
                };
                labmesh_sync::Access::may_write(access, &k, &scope, at)
            })
        });
        if !invalid.is_empty() {
            return;
        }
        self.nodes[i].store.overwrite_document(&scope, &uid, theirs);
        self.report.drift_injected += 1;
    }
}
