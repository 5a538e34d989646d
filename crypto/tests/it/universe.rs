//! A small, fixed universe of keys, scopes and memberships for property
//! tests: small enough that random choices often coincide (so chains verify
//! and narrowing is exercised), rich enough to cover every containment rule.

use labmesh_crypto::key::NodeKey;
use labmesh_crypto::token::{Role, Scope, ScopeResolver, Uid};
use proptest::prelude::*;

pub const NOW: i64 = 1_800_000_000;
pub const DAY: i64 = 86_400;
pub const KEYS: usize = 5;

/// Key 0 is the lab (the trusted root); the others are collaborators.
pub fn key(i: usize) -> NodeKey {
    NodeKey::from_secret_bytes(&[i as u8 + 1; 32])
}

pub fn keys() -> Vec<NodeKey> {
    (0..KEYS).map(key).collect()
}

pub const SCOPES: [&str; 9] = [
    "instance",
    "registry:artifact",
    "registry:collection",
    "registry:ulabel",
    "collection:C1",
    "collection:C2",
    "artifact:A1",
    "artifact:A2",
    "artifact:A3",
];

pub fn scope(i: usize) -> Scope {
    SCOPES[i].parse().unwrap()
}

/// C1 holds A1, C2 holds A2; A3 is in no collection.
pub struct Members;

impl ScopeResolver for Members {
    fn collection_contains(&self, c: &Uid, a: &Uid) -> bool {
        matches!((c.as_str(), a.as_str()), ("C1", "A1") | ("C2", "A2"))
    }
}

pub fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(Role::ALL.to_vec())
}

pub fn scope_index() -> impl Strategy<Value = usize> {
    0..SCOPES.len()
}

/// Expiries in the future (so time never decides a case) or none.
pub fn expiry() -> impl Strategy<Value = i64> {
    prop_oneof![
        1 => Just(labmesh_crypto::token::NO_EXPIRY),
        4 => (1..100i64).prop_map(|d| NOW + d * DAY),
    ]
}

/// One block of a hand-built chain: each field either inherits the parent's
/// value (`None`, likely, so many chains verify) or is random; each honesty
/// flag is usually true, so chains are mostly well formed.
#[derive(Clone, Debug)]
pub struct BlockSpec {
    pub holder: usize,
    pub role: Option<Role>,
    pub scope: Option<usize>,
    pub not_before_shift: Option<i64>,
    pub expires: Option<i64>,
    pub honest_issuer: bool,
    pub honest_parent: bool,
    pub honest_signer: bool,
    pub other_key: usize,
}

fn mostly(p_false: u32) -> impl Strategy<Value = bool> {
    prop::bool::weighted(1.0 - f64::from(p_false) / 100.0)
}

pub fn block_spec() -> impl Strategy<Value = BlockSpec> {
    (
        0..KEYS,
        prop::option::weighted(0.4, role()),
        prop::option::weighted(0.4, scope_index()),
        prop::option::weighted(0.3, -DAY..DAY),
        prop::option::weighted(0.4, expiry()),
        (mostly(5), mostly(5), mostly(5)),
        0..KEYS,
    )
        .prop_map(
            |(holder, role, scope, not_before_shift, expires, honest, other_key)| BlockSpec {
                holder,
                role,
                scope,
                not_before_shift,
                expires,
                honest_issuer: honest.0,
                honest_parent: honest.1,
                honest_signer: honest.2,
                other_key,
            },
        )
}

/// A chain of 1..=8 block specs.
pub fn chain_specs() -> impl Strategy<Value = Vec<BlockSpec>> {
    prop::collection::vec(block_spec(), 1..=labmesh_crypto::token::MAX_BLOCKS)
}

/// Chains that verify: [`chain_specs`] made well formed by [`well_formed`].
pub fn valid_chain_specs() -> impl Strategy<Value = Vec<BlockSpec>> {
    chain_specs().prop_map(well_formed)
}

/// Makes specs honest (issuer, parent and signer right) and narrowing only,
/// so that [`build_chain`] gives a token that verifies for its holder at
/// [`NOW`] with [`Members`]: a field that would widen is inherited instead.
pub fn well_formed(mut specs: Vec<BlockSpec>) -> Vec<BlockSpec> {
    let mut scopes: Vec<Scope> = Vec::new();
    let (mut role, mut expires) = (Role::Admin, i64::MAX);
    for (i, spec) in specs.iter_mut().enumerate() {
        spec.honest_issuer = true;
        spec.honest_parent = true;
        spec.honest_signer = true;
        if i == 0 {
            role = spec.role.unwrap_or(Role::Admin);
            scopes.push(scope(spec.scope.unwrap_or(0)));
            expires = spec.expires.unwrap_or(NOW + 200 * DAY);
            continue;
        }
        match spec.role {
            Some(r) if r <= role => role = r,
            _ => spec.role = None,
        }
        let parent_scope = scopes[scopes.len() - 1].clone();
        let this_scope = match spec.scope.map(scope) {
            Some(s) if scopes.iter().all(|p| p.covers(&s, &Members)) => s,
            _ => {
                spec.scope = None;
                parent_scope
            }
        };
        scopes.push(this_scope);
        spec.not_before_shift = spec.not_before_shift.map(i64::abs);
        match spec.expires {
            Some(e) if e <= expires => expires = e,
            _ => spec.expires = None,
        }
    }
    specs
}

/// Builds a token from specs, bypassing `delegate` entirely.
pub fn build_chain(keys: &[NodeKey], specs: &[BlockSpec]) -> labmesh_crypto::token::Token {
    use labmesh_crypto::token::{Block, BlockBody, BlockId, Token};
    let mut blocks: Vec<Block> = Vec::new();
    for spec in specs {
        let (issuer, prev) = match blocks.last() {
            None => (0, None),
            Some(prev) => {
                let prev_holder = keys
                    .iter()
                    .position(|k| k.public_key() == prev.body().holder)
                    .unwrap();
                (prev_holder, Some(prev))
            }
        };
        let issuer = if spec.honest_issuer {
            issuer
        } else {
            spec.other_key
        };
        let signer = if spec.honest_signer {
            issuer
        } else {
            spec.other_key
        };
        let body = match prev {
            None => BlockBody {
                issuer: keys[issuer].public_key(),
                holder: keys[spec.holder].public_key(),
                role: spec.role.unwrap_or(Role::Admin),
                scope: scope(spec.scope.unwrap_or(0)),
                not_before: NOW - 10 * DAY + spec.not_before_shift.unwrap_or(0),
                expires: spec.expires.unwrap_or(NOW + 200 * DAY),
                nonce: [blocks.len() as u8; 16],
                parent: if spec.honest_parent {
                    BlockId::ZERO
                } else {
                    BlockId::from_bytes([1; 32])
                },
            },
            Some(prev) => {
                let p = prev.body();
                BlockBody {
                    issuer: keys[issuer].public_key(),
                    holder: keys[spec.holder].public_key(),
                    role: spec.role.unwrap_or(p.role),
                    scope: spec.scope.map(scope).unwrap_or_else(|| p.scope.clone()),
                    not_before: p.not_before + spec.not_before_shift.unwrap_or(0),
                    expires: spec.expires.unwrap_or(p.expires),
                    nonce: [blocks.len() as u8; 16],
                    parent: if spec.honest_parent {
                        prev.id()
                    } else {
                        BlockId::from_bytes([spec.other_key as u8; 32])
                    },
                }
            }
        };
        blocks.push(Block::sign(body, &keys[signer]));
    }
    Token::from_blocks(blocks).unwrap()
}
