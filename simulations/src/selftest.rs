//! Deliberate bugs planted after convergence, for the self-tests: each
//! breaks exactly one invariant while leaving the others (and convergence)
//! intact, so the test shows that invariant's check fires.

use std::collections::BTreeSet;

use labmesh_sync::{Edit, FieldValue, Hlc, RecordDoc};

use crate::config::Fault;
use crate::workload::Ack;
use crate::world::World;

impl World {
    /// Plants the configured post-convergence fault; returns whether it
    /// found something to break.
    pub(crate) fn plant(&mut self, fault: Fault) -> bool {
        match fault {
            Fault::CorruptConflicts => self.corrupt_conflicts(),
            Fault::DropAckedChange => self.drop_acked_change(),
            Fault::PhantomWrite => self.phantom_write(),
            Fault::ImpersonatedChange => self.impersonated_change(),
            Fault::PermissiveAccess => true,
        }
    }

    fn at(&self) -> Hlc {
        Hlc {
            ms: self.wall(0),
            logical: 0,
            node: 0,
        }
    }

    fn corrupt_conflicts(&mut self) -> bool {
        let scope = self.scopes[0].clone();
        let subs = self.subscribers(&scope);
        let Some(&victim) = subs.get(1) else {
            return false;
        };
        let Some((uid, doc)) = self.nodes[victim]
            .store
            .records(&scope)
            .next()
            .and_then(|(u, r)| Some((u.clone(), RecordDoc::load(&r.doc).ok()?)))
        else {
            return false;
        };
        let (mut a, mut b) = (doc.clone(), doc);
        let at = self.at();
        let edit = |v| [Edit::set("selftest", FieldValue::Int(v))];
        if a.edit(&self.nodes[0].id, at, &edit(1)).is_err()
            || b.edit(&self.nodes[1].id, at, &edit(2)).is_err()
            || a.merge(&mut b).is_err()
        {
            return false;
        }
        self.nodes[victim]
            .store
            .corrupt_document(&scope, &uid, a.save());
        true
    }

    fn drop_acked_change(&mut self) -> bool {
        let valid = self.truth.valid();
        let Some((scope, uid, hash)) = self
            .acks
            .changes
            .iter()
            .rev()
            .find(|(_, _, h)| valid.contains(h))
            .cloned()
        else {
            return false;
        };
        for i in self.subscribers(&scope) {
            let Some(doc) = self.nodes[i]
                .store
                .record(&scope, &uid)
                .and_then(|r| RecordDoc::load(&r.doc).ok())
            else {
                continue;
            };
            let drop: BTreeSet<[u8; 32]> = doc
                .invalid_changes(|a| a.hash != hash)
                .into_iter()
                .map(|c| c.change.hash)
                .collect();
            let Ok(rebuilt) = doc.without(&drop) else {
                return false;
            };
            self.nodes[i]
                .store
                .overwrite_document(&scope, &uid, rebuilt);
        }
        true
    }

    fn phantom_write(&mut self) -> bool {
        let valid = self.truth.valid();
        let Some(real) = self
            .acks
            .writes
            .iter()
            .find(|a| a.value.is_some() && valid.contains(&a.change))
            .cloned()
        else {
            return false;
        };
        self.acks.phantom(Ack {
            value: Some(FieldValue::Str("a value nobody wrote".into())),
            overwrote: Vec::new(),
            ..real
        });
        true
    }

    fn impersonated_change(&mut self) -> bool {
        let scope = self.scopes[0].clone();
        let subs = self.subscribers(&scope);
        let Some((uid, mut doc)) = self.nodes[subs[0]]
            .store
            .records(&scope)
            .next()
            .and_then(|(u, r)| Some((u.clone(), RecordDoc::load(&r.doc).ok()?)))
        else {
            return false;
        };
        let victim = self.nodes[0].id;
        let at = self.at();
        if doc
            .edit(&victim, at, &[Edit::set("forged", FieldValue::Bool(true))])
            .is_err()
        {
            return false;
        }
        for i in subs {
            self.nodes[i]
                .store
                .overwrite_document(&scope, &uid, doc.clone());
        }
        true
    }
}
