//! Ground truth the simulator knows and no node does: every change honest
//! writers really made (with its author, time and dependencies) and every
//! grant and revocation as issued. The invariants judge replicas against it,
//! so a forged change is caught even when it carries a writer's actor id.

use std::collections::{BTreeMap, BTreeSet};

use labmesh_crypto::PublicKey;
use labmesh_sync::memory::StaticAccess;
use labmesh_sync::{Access, Hlc, ScopeId};

/// One change an honest writer made.
#[derive(Clone, Debug)]
pub(crate) struct Made {
    pub(crate) scope: ScopeId,
    pub(crate) author: PublicKey,
    pub(crate) ms: u64,
    pub(crate) deps: Vec<[u8; 32]>,
}

#[derive(Default)]
pub(crate) struct Truth {
    /// Changes in the order they were made.
    order: Vec<[u8; 32]>,
    made: BTreeMap<[u8; 32], Made>,
    /// Grants and revocations as the owner issued them.
    pub(crate) access: StaticAccess,
}

impl Truth {
    pub(crate) fn new(access: StaticAccess) -> Truth {
        Truth {
            access,
            ..Truth::default()
        }
    }

    pub(crate) fn record(&mut self, hash: [u8; 32], made: Made) {
        if self.made.insert(hash, made).is_none() {
            self.order.push(hash);
        }
    }

    /// Whether an honest writer made this change.
    pub(crate) fn honest(&self, hash: &[u8; 32]) -> bool {
        self.made.contains_key(hash)
    }

    /// The changes that must end up everywhere: made by a writer allowed to
    /// write the scope at the change's time, on top of such changes only.
    pub(crate) fn valid(&self) -> BTreeSet<[u8; 32]> {
        let mut valid = BTreeSet::new();
        for hash in &self.order {
            let m = &self.made[hash];
            let at = Hlc {
                ms: m.ms,
                logical: 0,
                node: Hlc::node_tag(&m.author),
            };
            if self.access.may_write(&m.author, &m.scope, at)
                && m.deps.iter().all(|d| valid.contains(d))
            {
                valid.insert(*hash);
            }
        }
        valid
    }
}
