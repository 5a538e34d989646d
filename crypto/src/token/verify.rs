//! Token verification: the rules that make a chain of blocks a grant.
//!
//! Checks run in a fixed order (limits, root, signatures, chain links,
//! narrowing, time, revocation, holder) so the first error reported is the
//! most fundamental one; each has its own [`TokenError`] variant.

use std::collections::HashSet;
use std::hash::BuildHasher;

use super::encoding::{self, BlockId};
use super::scope::{AnyMembership, NoMembership, Scope, ScopeResolver, Uid};
use super::{
    CLOCK_SKEW_SECS, MAX_BLOCKS, MAX_TOKEN_BYTES, NO_EXPIRY, Role, Token, check_window,
    format_unix_time,
};
use crate::error::{TokenError, Widened};
use crate::key::PublicKey;

/// The set of revoked block ids, as synced from the mesh. Revoking a block
/// revokes every token delegated from it.
pub trait RevocationSet {
    /// Whether `id` has been revoked.
    fn is_revoked(&self, id: &BlockId) -> bool;
}

impl<S: BuildHasher> RevocationSet for HashSet<BlockId, S> {
    fn is_revoked(&self, id: &BlockId) -> bool {
        self.contains(id)
    }
}

/// An empty revocation set.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRevocations;

impl RevocationSet for NoRevocations {
    fn is_revoked(&self, _: &BlockId) -> bool {
        false
    }
}

/// What verification needs to know about the verifying node and connection.
#[derive(Clone, Copy)]
pub struct VerifyContext<'a> {
    /// Keys whose root blocks this node accepts (its own node key).
    pub trusted_roots: &'a [PublicKey],
    /// The current time, unix seconds.
    pub now: i64,
    /// The key the presenting peer authenticated with (from the libp2p
    /// connection): a token is useless to anyone but its holder.
    pub presenter: PublicKey,
    /// Revoked block ids.
    pub revocations: &'a dyn RevocationSet,
    /// Collection membership, from the node's database.
    pub resolver: &'a dyn ScopeResolver,
}

impl<'a> VerifyContext<'a> {
    /// A context with no revocations and no collection memberships.
    pub fn new(trusted_roots: &'a [PublicKey], now: i64, presenter: PublicKey) -> Self {
        VerifyContext {
            trusted_roots,
            now,
            presenter,
            revocations: &NoRevocations,
            resolver: &NoMembership,
        }
    }

    /// Replaces the revocation set.
    pub fn with_revocations(mut self, revocations: &'a dyn RevocationSet) -> Self {
        self.revocations = revocations;
        self
    }

    /// Replaces the scope resolver.
    pub fn with_resolver(mut self, resolver: &'a dyn ScopeResolver) -> Self {
        self.resolver = resolver;
        self
    }
}

/// A collection -> artifact narrowing a chain relies on: block `block`
/// is scoped to `artifact`, and an earlier block to `collection`, so the
/// token is good only while the serving node's database puts the artifact
/// in the collection.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MembershipClaim {
    /// The block whose scope is the artifact.
    pub block: usize,
    /// The earlier block's collection.
    pub collection: Uid,
    /// The artifact.
    pub artifact: Uid,
}

/// The outcome of a successful verification: what the token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    token_id: BlockId,
    root: PublicKey,
    holder: PublicKey,
    role: Role,
    /// The distinct scopes of the chain, root first; the last is the
    /// effective scope. Containment is not transitive (`registry:collection`
    /// covers `collection:c`, which covers its artifacts, but not artifacts),
    /// so a resource must be covered by every one of them.
    scopes: Vec<Scope>,
    /// Per block (not_before, expires), to re-check time without the token.
    windows: Vec<(i64, i64)>,
    block_ids: Vec<BlockId>,
    /// Narrowings the chain relies on; membership can change, so
    /// re-checks ask the resolver again.
    memberships: Vec<MembershipClaim>,
}

impl Verified {
    /// The token id (last block's id).
    pub fn token_id(&self) -> BlockId {
        self.token_id
    }

    /// The root issuer.
    pub fn root(&self) -> PublicKey {
        self.root
    }

    /// The holder (= the presenter).
    pub fn holder(&self) -> PublicKey {
        self.holder
    }

    /// The effective role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The effective scope (the last block's). [`Verified::authorize`] also
    /// requires the earlier blocks' scopes to cover a resource.
    pub fn scope(&self) -> &Scope {
        // Never empty: a verified chain has at least one block.
        &self.scopes[self.scopes.len() - 1]
    }

    /// The effective start (unix seconds).
    pub fn not_before(&self) -> i64 {
        self.windows.last().map_or(i64::MIN, |w| w.0)
    }

    /// The effective expiry (unix seconds; [`NO_EXPIRY`] for none).
    pub fn expires(&self) -> i64 {
        self.windows.last().map_or(NO_EXPIRY, |w| w.1)
    }

    /// The ids of every block, root first; any of them in the revocation
    /// set voids the token.
    pub fn block_ids(&self) -> &[BlockId] {
        &self.block_ids
    }

    /// The collection -> artifact memberships the chain relies on.
    pub fn membership_claims(&self) -> &[MembershipClaim] {
        &self.memberships
    }

    /// Whether the token allows `op` on `resource`.
    pub fn authorize(
        &self,
        op: Role,
        resource: &Scope,
        resolver: &dyn ScopeResolver,
    ) -> Result<(), TokenError> {
        if self.role < op {
            return Err(TokenError::InsufficientRole {
                have: self.role,
                need: op,
            });
        }
        // Last scope first: it is the narrowest, so the likeliest to refuse.
        if let Some(scope) = self
            .scopes
            .iter()
            .rev()
            .find(|s| !s.covers(resource, resolver))
        {
            return Err(TokenError::OutOfScope {
                scope: scope.clone(),
                resource: resource.clone(),
            });
        }
        Ok(())
    }

    /// Re-checks what can change after verification without touching
    /// signatures: the root is still trusted, the presenter is the holder,
    /// the time window, revocations, and collection memberships.
    pub fn recheck(&self, ctx: &VerifyContext<'_>) -> Result<(), TokenError> {
        if !ctx.trusted_roots.contains(&self.root) {
            return Err(TokenError::UnknownRoot {
                issuer: self.root.id(),
            });
        }
        for claim in &self.memberships {
            let MembershipClaim {
                block,
                collection,
                artifact,
            } = claim;
            if !ctx.resolver.collection_contains(collection, artifact) {
                return Err(TokenError::Widening {
                    block: *block,
                    what: Widened::Scope,
                    detail: format!("artifact {artifact} is no longer in collection {collection}"),
                });
            }
        }
        check_time(&self.windows, ctx.now)?;
        check_revocation(&self.block_ids, ctx.revocations)?;
        if ctx.presenter != self.holder {
            return Err(TokenError::WrongHolder {
                holder: self.holder.id(),
                presenter: ctx.presenter.id(),
            });
        }
        Ok(())
    }
}

/// The chain's scopes without repeats, in chain order.
fn distinct_scopes(blocks: &[super::Block]) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = Vec::with_capacity(1);
    for block in blocks {
        let scope = &block.body().scope;
        if scopes.last() != Some(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes
}

fn check_time(windows: &[(i64, i64)], now: i64) -> Result<(), TokenError> {
    for (block, &(not_before, expires)) in windows.iter().enumerate() {
        // Before the leeway: skew must not turn an empty window valid.
        check_window(block, not_before, expires)?;
        if now < not_before.saturating_sub(CLOCK_SKEW_SECS) {
            return Err(TokenError::NotYetValid {
                block,
                at: not_before,
            });
        }
        if expires != NO_EXPIRY && now >= expires.saturating_add(CLOCK_SKEW_SECS) {
            return Err(TokenError::Expired { block, at: expires });
        }
    }
    Ok(())
}

fn check_revocation(ids: &[BlockId], revocations: &dyn RevocationSet) -> Result<(), TokenError> {
    match ids.iter().position(|id| revocations.is_revoked(id)) {
        Some(block) => Err(TokenError::Revoked {
            block,
            id: ids[block],
        }),
        None => Ok(()),
    }
}

impl Token {
    /// Verifies the whole chain for a presenter (see `TOKENS.md`, "Verification").
    pub fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Verified, TokenError> {
        let blocks = self.blocks();
        // 1. Limits (guaranteed by construction; checked so the rule holds here too).
        if blocks.is_empty() {
            return Err(TokenError::NoBlocks);
        }
        if blocks.len() > MAX_BLOCKS {
            return Err(TokenError::TooManyBlocks {
                count: blocks.len(),
                max: MAX_BLOCKS,
            });
        }
        let len = encoding::encoded_len(blocks);
        if len > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge {
                len,
                max: MAX_TOKEN_BYTES,
            });
        }
        // 2. Root.
        let root = blocks[0].body().issuer;
        if !ctx.trusted_roots.contains(&root) {
            return Err(TokenError::UnknownRoot { issuer: root.id() });
        }
        // 3. Signatures.
        if let Some(block) = blocks.iter().position(|b| !b.signature_is_valid()) {
            return Err(TokenError::BadSignature { block });
        }
        // 4. Chain links.
        if blocks[0].body().parent != BlockId::ZERO {
            return Err(TokenError::BrokenChain {
                block: 0,
                reason: "the root block's parent id is not all zeros",
            });
        }
        for (i, pair) in blocks.windows(2).enumerate() {
            let (prev, this) = (&pair[0], pair[1].body());
            if this.issuer != prev.body().holder {
                return Err(TokenError::BrokenChain {
                    block: i + 1,
                    reason: "its issuer is not the previous block's holder",
                });
            }
            if this.parent != prev.id() {
                return Err(TokenError::BrokenChain {
                    block: i + 1,
                    reason: "its parent id is not the previous block's id",
                });
            }
        }
        // 5. Narrowing.
        let mut memberships = Vec::new();
        for (i, pair) in blocks.windows(2).enumerate() {
            let (prev, this) = (pair[0].body(), pair[1].body());
            let widening = |what, detail: String| TokenError::Widening {
                block: i + 1,
                what,
                detail,
            };
            if this.role > prev.role {
                let detail = format!("{} is above {}", this.role, prev.role);
                return Err(widening(Widened::Role, detail));
            }
            // Every earlier scope, not only the parent's: containment is
            // not transitive.
            for (j, ancestor) in blocks[..=i].iter().enumerate() {
                let ancestor = &ancestor.body().scope;
                if !ancestor.covers(&this.scope, ctx.resolver) {
                    let detail =
                        format!("block {j}'s scope {ancestor} does not cover {}", this.scope);
                    return Err(widening(Widened::Scope, detail));
                }
                if let (Scope::Collection(c), Scope::Artifact(a)) = (ancestor, &this.scope) {
                    let m = MembershipClaim {
                        block: i + 1,
                        collection: c.clone(),
                        artifact: a.clone(),
                    };
                    if !memberships.contains(&m) {
                        memberships.push(m);
                    }
                }
            }
            if this.expires > prev.expires {
                let detail = format!(
                    "{} is after {}",
                    format_unix_time(this.expires),
                    format_unix_time(prev.expires)
                );
                return Err(widening(Widened::Expiry, detail));
            }
            if this.not_before < prev.not_before {
                let detail = format!(
                    "{} is before {}",
                    format_unix_time(this.not_before),
                    format_unix_time(prev.not_before)
                );
                return Err(widening(Widened::NotBefore, detail));
            }
        }
        // 6. Time.
        let windows: Vec<(i64, i64)> = blocks
            .iter()
            .map(|b| (b.body().not_before, b.body().expires))
            .collect();
        check_time(&windows, ctx.now)?;
        // 7. Revocation.
        let block_ids: Vec<BlockId> = blocks.iter().map(|b| b.id()).collect();
        check_revocation(&block_ids, ctx.revocations)?;
        // 8. Holder.
        let last = blocks[blocks.len() - 1].body();
        if ctx.presenter != last.holder {
            return Err(TokenError::WrongHolder {
                holder: last.holder.id(),
                presenter: ctx.presenter.id(),
            });
        }
        Ok(Verified {
            token_id: self.id(),
            root,
            holder: last.holder,
            role: last.role,
            scopes: distinct_scopes(blocks),
            windows,
            block_ids,
            memberships,
        })
    }
}

/// What [`Token::check_offline`] found: a self-consistent chain.
///
/// Its root is whoever signed block 0 and its collection memberships are
/// assumed, so it grants nothing by itself; only [`Token::verify`] at the
/// root node does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineCheck {
    verified: Verified,
}

impl OfflineCheck {
    /// The key that signed the root block (not checked to be trusted).
    pub fn root(&self) -> PublicKey {
        self.verified.root
    }

    /// The last block's holder.
    pub fn holder(&self) -> PublicKey {
        self.verified.holder
    }

    /// The effective role.
    pub fn role(&self) -> Role {
        self.verified.role
    }

    /// The effective scope.
    pub fn scope(&self) -> &Scope {
        self.verified.scope()
    }

    /// The effective window (unix seconds; `expires` = [`NO_EXPIRY`] for none).
    pub fn window(&self) -> (i64, i64) {
        (self.verified.not_before(), self.verified.expires())
    }

    /// Memberships only the root node can confirm; empty when the chain
    /// needs none.
    pub fn membership_claims(&self) -> &[MembershipClaim] {
        &self.verified.memberships
    }
}

impl Token {
    /// Checks everything that needs nothing from the root node: limits,
    /// signatures, chain links, narrowing (assuming every collection ->
    /// artifact narrowing is a real membership, which only the root's
    /// database can confirm), the time window at `now`, and `revocations`.
    ///
    /// For nodes other than the root — a delegator, a holder — deciding
    /// whether a token is worth keeping or showing as valid.
    pub fn check_offline(
        &self,
        now: i64,
        revocations: &dyn RevocationSet,
    ) -> Result<OfflineCheck, TokenError> {
        let roots = [self.root_issuer()];
        let ctx = VerifyContext::new(&roots, now, self.holder())
            .with_revocations(revocations)
            .with_resolver(&AnyMembership);
        self.verify(&ctx).map(|verified| OfflineCheck { verified })
    }
}
