//! A document's change history: who wrote what when, applying changes
//! from feeds, merging replicas, and rebuilding a document without changes
//! that turned out to be unauthorised.
//!
//! Everything here reads untrusted bytes or merges untrusted documents, so
//! automerge runs under [`guarded`] (a panic becomes an error) and every
//! mutation is checked first, so a refused change leaves the document as
//! it was.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{Automerge, AutomergeError, Change, ChangeHash, ReadDoc, TextEncoding};
use labmesh_crypto::PublicKey;

use super::{RecordDoc, guarded};
use crate::error::DocError;

/// A change in a document: who made it, when (as its author stamped it),
/// and its hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authorship {
    /// The actor bytes, which labmesh requires to be a public key (all
    /// zeros when the actor is not 32 bytes, which is no key).
    pub actor: [u8; 32],
    /// The change's timestamp: the physical part of its HLC.
    pub ms: u64,
    /// The change's hash.
    pub hash: [u8; 32],
}

/// A change the document holds that [`RecordDoc::invalid_changes`] found
/// unacceptable, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidChange {
    /// The change.
    pub change: Authorship,
    /// `true`: its author may not write it; `false`: it depends (directly
    /// or not) on such a change.
    pub direct: bool,
}

pub(super) fn authorship(change: &Change) -> Authorship {
    let mut actor = [0u8; 32];
    let bytes = change.actor_id().to_bytes();
    if bytes.len() == 32 {
        actor.copy_from_slice(bytes);
    }
    Authorship {
        actor,
        ms: u64::try_from(change.timestamp()).unwrap_or(0),
        hash: change.hash().0,
    }
}

fn parse(change: &[u8]) -> Result<Change, DocError> {
    Change::from_bytes(change.to_vec()).map_err(DocError::am)
}

impl RecordDoc {
    /// The hash of a change's bytes, if they parse.
    pub fn change_hash(change: &[u8]) -> Result<[u8; 32], DocError> {
        guarded(|| Ok(parse(change)?.hash().0))
    }

    /// Who made a change (given as bytes), when, and its hash.
    pub fn change_authorship(change: &[u8]) -> Result<Authorship, DocError> {
        guarded(|| Ok(authorship(&parse(change)?)))
    }

    /// Whether the document contains the change with this hash.
    pub fn has_change(&self, hash: &[u8; 32]) -> bool {
        self.doc.get_change_by_hash(&ChangeHash(*hash)).is_some()
    }

    /// The direct dependencies of a change this document holds.
    pub fn deps_of(&self, hash: &[u8; 32]) -> Option<Vec<[u8; 32]>> {
        self.doc
            .get_change_by_hash(&ChangeHash(*hash))
            .map(|c| c.deps().iter().map(|d| d.0).collect())
    }

    /// The dependencies of a change (given as bytes) that this document
    /// does not hold.
    pub fn missing_deps(&self, change: &[u8]) -> Result<Vec<[u8; 32]>, DocError> {
        guarded(|| {
            Ok(parse(change)?
                .deps()
                .iter()
                .filter(|d| self.doc.get_change_by_hash(d).is_none())
                .map(|d| d.0)
                .collect())
        })
    }

    /// Applies a change received in `origin`'s feed. Refuses a change made
    /// by another actor (`WrongActor`), one whose dependencies are not here
    /// yet (`MissingDeps`: retry after they arrive — automerge would
    /// otherwise hold it in a queue that is never saved) and one that reuses
    /// a sequence number of its actor (`SeqReused`: its author rebuilt its
    /// replica without a refused change; retry once this replica did the
    /// same). On error the document is unchanged. Returns whether the change
    /// was new.
    pub fn apply_change(&mut self, origin: &PublicKey, change: &[u8]) -> Result<bool, DocError> {
        guarded(|| {
            let change = parse(change)?;
            if change.actor_id().to_bytes() != origin.as_bytes().as_slice() {
                return Err(DocError::WrongActor {
                    found: change.actor_id().to_hex_string().chars().take(16).collect(),
                });
            }
            if self.doc.get_change_by_hash(&change.hash()).is_some() {
                return Ok(false);
            }
            let missing = change
                .deps()
                .iter()
                .filter(|d| self.doc.get_change_by_hash(d).is_none())
                .count();
            if missing > 0 {
                return Err(DocError::MissingDeps { missing });
            }
            self.doc.apply_changes([change]).map_err(map_apply)?;
            Ok(true)
        })
    }

    /// The changes `other` holds that this document lacks. Check them
    /// before [`RecordDoc::merge`].
    pub fn authors_added(&self, other: &RecordDoc) -> Vec<Authorship> {
        self.doc
            .get_changes_added(&other.doc)
            .into_iter()
            .map(authorship)
            .collect()
    }

    /// Every change's author, time and hash.
    pub fn authors(&self) -> Vec<Authorship> {
        self.doc
            .get_changes(&[])
            .into_iter()
            .map(authorship)
            .collect()
    }

    /// Merges another replica's document into this one; returns whether
    /// anything was new. Refuses (`SeqReused`, document unchanged) when
    /// `other` holds a change that reuses the sequence number of one here:
    /// one of the two replicas was rebuilt without a refused change and the
    /// other not yet.
    pub fn merge(&mut self, other: &mut RecordDoc) -> Result<bool, DocError> {
        guarded(|| {
            let added: Vec<Change> = self
                .doc
                .get_changes_added(&other.doc)
                .into_iter()
                .cloned()
                .collect();
            if added.is_empty() {
                return Ok(false);
            }
            let mut seqs: BTreeMap<(Vec<u8>, u64), ChangeHash> = BTreeMap::new();
            for c in self.doc.get_changes(&[]) {
                seqs.insert((c.actor_id().to_bytes().to_vec(), c.seq()), c.hash());
            }
            for c in &added {
                if seqs
                    .insert((c.actor_id().to_bytes().to_vec(), c.seq()), c.hash())
                    .is_some()
                {
                    return Err(DocError::SeqReused);
                }
            }
            self.doc.apply_changes(added).map_err(map_apply)?;
            Ok(true)
        })
    }

    /// The changes that fail `allowed` (called once per change with its
    /// author and time), and every change that depends on one of them,
    /// directly or not — what a replica must drop once it learns that those
    /// authors had no right to write them. Empty when all are allowed.
    pub fn invalid_changes(
        &self,
        mut allowed: impl FnMut(&Authorship) -> bool,
    ) -> Vec<InvalidChange> {
        let changes = self.doc.get_changes(&[]);
        let mut bad: BTreeSet<ChangeHash> = BTreeSet::new();
        let mut out = Vec::new();
        // `get_changes` lists every change after its dependencies.
        for c in changes {
            let a = authorship(c);
            let direct = !allowed(&a);
            if direct || c.deps().iter().any(|d| bad.contains(d)) {
                bad.insert(c.hash());
                out.push(InvalidChange { change: a, direct });
            }
        }
        out
    }

    /// This document rebuilt from its changes without those in `drop`
    /// (which must be closed under dependents, as
    /// [`RecordDoc::invalid_changes`] returns them).
    pub fn without(&self, drop: &BTreeSet<[u8; 32]>) -> Result<RecordDoc, DocError> {
        guarded(|| {
            let keep: Vec<Change> = self
                .doc
                .get_changes(&[])
                .into_iter()
                .filter(|c| !drop.contains(&c.hash().0))
                .cloned()
                .collect();
            let mut doc = Automerge::new_with_encoding(TextEncoding::UnicodeCodePoint);
            doc.apply_changes(keep).map_err(map_apply)?;
            if !doc.get_missing_deps(&[]).is_empty() {
                return Err(DocError::Automerge(
                    "the changes to drop are not closed under dependents".into(),
                ));
            }
            Ok(RecordDoc {
                doc,
                saved_heads: Vec::new(),
            })
        })
    }
}

fn map_apply(e: AutomergeError) -> DocError {
    match e {
        AutomergeError::DuplicateSeqNumber(..) => DocError::SeqReused,
        e => DocError::am(e),
    }
}
