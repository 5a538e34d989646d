//! The state of a token now, as this node can judge it, and the list of
//! tokens it knows.
//!
//! Only the root (issuing) node can verify a token completely: it alone
//! trusts the root key as its own and has the collection memberships a
//! collection -> artifact delegation relies on. Elsewhere — a delegator, a
//! holder — a token is checked offline (signatures, chain, narrowing, time,
//! revocations known here), and what only the root can confirm is named,
//! not counted against it.

use labmesh_crypto::token::{MembershipClaim, NO_EXPIRY};
use labmesh_crypto::{Token, TokenError, VerifyContext};
use serde::Serialize;

use super::scope::{Membership, Revocations};
use super::{TokenKind, TokenRecord};
use crate::error::{DbContext, Result};
use crate::instance::Instance;

/// What this node can say about a token now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenState {
    /// `valid`, `expired`, `not yet valid`, `revoked` or `invalid`.
    pub state: &'static str,
    /// Why it is not valid (the verifier's reason); `None` when valid.
    pub reason: Option<String>,
    /// What was checked, and by whom the rest is.
    pub checked: String,
}

impl TokenState {
    /// `valid (…)` or `expired: block 0 expired at …`.
    pub fn summary(&self) -> String {
        match &self.reason {
            None => format!("{} ({})", self.state, self.checked),
            Some(reason) => format!("{}: {reason}", self.state),
        }
    }
}

fn refused(e: &TokenError) -> &'static str {
    match e {
        TokenError::Expired { .. } => "expired",
        TokenError::NotYetValid { .. } => "not yet valid",
        TokenError::Revoked { .. } => "revoked",
        _ => "invalid",
    }
}

/// "membership of artifact A in collection C", for every claim.
fn claims_text(claims: &[MembershipClaim]) -> String {
    let parts: Vec<String> = claims
        .iter()
        .map(|c| format!("artifact {} in collection {}", c.artifact, c.collection))
        .collect();
    parts.join(", ")
}

impl Instance {
    /// The state of a token now: verified in full if this node is its root,
    /// checked offline otherwise.
    pub fn token_state(&self, token: &Token, now: i64) -> TokenState {
        let revocations = Revocations(self);
        let is_root = self.public_key().is_ok_and(|me| me == token.root_issuer());
        let outcome = if is_root {
            let roots = [token.root_issuer()];
            let membership = Membership(self);
            let ctx = VerifyContext::new(&roots, now, token.holder())
                .with_revocations(&revocations)
                .with_resolver(&membership);
            token.verify(&ctx).map(|v| {
                let mut checked =
                    "signatures, chain, time window and revocations checked by this node, its root"
                        .to_string();
                if !v.membership_claims().is_empty() {
                    checked.push_str(&format!(
                        "; membership of {} confirmed",
                        claims_text(v.membership_claims())
                    ));
                }
                checked
            })
        } else {
            token.check_offline(now, &revocations).map(|c| {
                let mut checked = "signatures, chain, time window and revocations known here \
                                   checked; the issuing node also checks its own revocations"
                    .to_string();
                if !c.membership_claims().is_empty() {
                    checked.push_str(&format!(
                        "; membership of {} is checked by the issuing node",
                        claims_text(c.membership_claims())
                    ));
                }
                checked
            })
        };
        match outcome {
            Ok(checked) => TokenState {
                state: "valid",
                reason: None,
                checked,
            },
            Err(e) => TokenState {
                state: refused(&e),
                reason: Some(e.to_string()),
                checked: if is_root {
                    "verified by this node, its root".into()
                } else {
                    "checked offline on this node".into()
                },
            },
        }
    }

    /// Every token this node issued, received or delegated, newest first.
    pub fn tokens(&self, now: i64) -> Result<Vec<TokenRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.token_id, t.kind, t.root, t.holder,
                        coalesce(n.name, CASE WHEN n.is_self THEN 'this node' END),
                        t.role, t.scope, t.not_before, t.expires, t.text
                 FROM token t LEFT JOIN node n ON n.peer_id = t.holder
                 ORDER BY t.created_at DESC, t.id DESC",
            )
            .db(&self.db_path())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, String>(9)?,
                ))
            })
            .db(&self.db_path())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db(&self.db_path())?;
        let mut out = Vec::with_capacity(rows.len());
        for (token_id, kind, root, holder, holder_name, role, scope, not_before, expires, text) in
            rows
        {
            let token = Token::from_text(&text)?;
            let state = self.token_state(&token, now);
            out.push(TokenRecord {
                token_id,
                kind: match kind.as_str() {
                    "issued" => TokenKind::Issued,
                    "delegated" => TokenKind::Delegated,
                    _ => TokenKind::Received,
                },
                root,
                holder,
                holder_name,
                role,
                scope,
                not_before,
                expires: (expires != NO_EXPIRY).then_some(expires),
                state: state.state,
                reason: state.reason,
                checked: state.checked,
                token: text,
            });
        }
        Ok(out)
    }
}
