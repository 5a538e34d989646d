//! Token unit tests: each rule of TOKENS.md, and each way a token can be bad.

mod cache;
mod format;
mod rules;
mod window;

use super::*;
use crate::error::Widened;

const NOW: i64 = 1_800_000_000;
const DAY: i64 = 86_400;

struct Keys {
    lab: NodeKey,
    alice: NodeKey,
    bob: NodeKey,
    carol: NodeKey,
    mallory: NodeKey,
}

fn keys() -> Keys {
    let k = |b| NodeKey::from_secret_bytes(&[b; 32]);
    Keys {
        lab: k(1),
        alice: k(2),
        bob: k(3),
        carol: k(4),
        mallory: k(5),
    }
}

/// Collection C1 contains artifact A1.
struct Members;
impl ScopeResolver for Members {
    fn collection_contains(&self, c: &Uid, a: &Uid) -> bool {
        c.as_str() == "C1" && a.as_str() == "A1"
    }
}

fn scope(s: &str) -> Scope {
    s.parse().unwrap()
}

/// lab -> alice (admin, instance, 30 days) -> bob (write, collection:C1,
/// 10 days) -> carol (read, artifact:A1, inherits expiry).
fn chain(k: &Keys) -> Token {
    Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Admin,
        Scope::Instance,
        NOW - DAY,
        NOW + 30 * DAY,
    )
    .unwrap()
    .delegate(
        &k.alice,
        k.bob.public_key(),
        Role::Write,
        scope("collection:C1"),
        Some(NOW + 10 * DAY),
    )
    .unwrap()
    .delegate(
        &k.bob,
        k.carol.public_key(),
        Role::Read,
        scope("artifact:A1"),
        None,
    )
    .unwrap()
}

fn verify_as(
    token: &Token,
    k: &Keys,
    presenter: &NodeKey,
    now: i64,
) -> Result<Verified, TokenError> {
    let roots = [k.lab.public_key()];
    let ctx = VerifyContext::new(&roots, now, presenter.public_key()).with_resolver(&Members);
    token.verify(&ctx)
}

/// Appends a hand-built block after `token`'s last one, signed by `signer`,
/// starting from a copy of the last body correctly linked, then `edit`ed.
fn append(token: &Token, signer: &NodeKey, edit: impl FnOnce(&mut BlockBody)) -> Token {
    let mut body = token.blocks().last().unwrap().body().clone();
    body.issuer = signer.public_key();
    body.parent = token.id();
    body.nonce = [9; 16];
    edit(&mut body);
    let mut blocks = token.blocks().to_vec();
    blocks.push(Block::sign(body, signer));
    Token::from_blocks(blocks).unwrap()
}
