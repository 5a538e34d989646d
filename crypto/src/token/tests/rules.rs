//! Chain rules: issue, delegate and each verification failure.

use std::collections::HashSet;

use super::*;

#[test]
fn issue_and_three_level_delegation_verify() {
    let k = keys();
    let token = chain(&k);
    assert_eq!(token.blocks().len(), 3);
    let token = token
        .delegate(
            &k.carol,
            k.mallory.public_key(),
            Role::Read,
            scope("artifact:A1"),
            Some(NOW + DAY),
        )
        .unwrap();
    assert_eq!(token.blocks().len(), 4);
    let v = verify_as(&token, &k, &k.mallory, NOW).unwrap();
    assert_eq!(v.role(), Role::Read);
    assert_eq!(v.scope(), &scope("artifact:A1"));
    assert_eq!(v.expires(), NOW + DAY);
    assert_eq!(v.not_before(), NOW - DAY);
    assert_eq!(v.root(), k.lab.public_key());
    assert_eq!(v.holder(), k.mallory.public_key());
    assert_eq!(v.token_id(), token.id());
    let ids: Vec<BlockId> = token.blocks().iter().map(Block::id).collect();
    assert_eq!(v.block_ids(), ids.as_slice());
    v.authorize(Role::Read, &scope("artifact:A1"), &Members)
        .unwrap();
    assert_eq!(
        v.authorize(Role::Write, &scope("artifact:A1"), &Members),
        Err(TokenError::InsufficientRole {
            have: Role::Read,
            need: Role::Write
        })
    );
    assert_eq!(
        v.authorize(Role::Read, &scope("artifact:A2"), &Members),
        Err(TokenError::OutOfScope {
            scope: scope("artifact:A1"),
            resource: scope("artifact:A2")
        })
    );
    // The holder in the middle of a chain cannot use the final token.
    assert!(matches!(
        verify_as(&token, &k, &k.carol, NOW),
        Err(TokenError::WrongHolder { .. })
    ));
}

#[test]
fn attacker_resigning_a_block_is_rejected() {
    let k = keys();
    let token = chain(&k);
    // Mallory rewrites block 1 to give herself the token, signs with her key.
    let mut blocks = token.blocks().to_vec();
    let mut body = blocks[1].body().clone();
    body.holder = k.mallory.public_key();
    blocks[1] = Block::sign(body.clone(), &k.mallory);
    let forged = Token::from_blocks(blocks[..2].to_vec()).unwrap();
    assert_eq!(
        verify_as(&forged, &k, &k.mallory, NOW).unwrap_err(),
        TokenError::BadSignature { block: 1 }
    );
    // Claiming to be the issuer herself breaks the chain instead.
    body.issuer = k.mallory.public_key();
    blocks[1] = Block::sign(body, &k.mallory);
    let forged = Token::from_blocks(blocks[..2].to_vec()).unwrap();
    assert_eq!(
        verify_as(&forged, &k, &k.mallory, NOW).unwrap_err(),
        TokenError::BrokenChain {
            block: 1,
            reason: "its issuer is not the previous block's holder"
        }
    );
    // Splicing a block from another chain breaks the parent link.
    let other = Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Read,
        Scope::Instance,
        0,
        NO_EXPIRY,
    )
    .unwrap();
    let spliced =
        Token::from_blocks(vec![other.blocks()[0].clone(), token.blocks()[1].clone()]).unwrap();
    assert!(matches!(
        verify_as(&spliced, &k, &k.bob, NOW),
        Err(TokenError::BrokenChain { block: 1, .. })
    ));
    // A batch signature by the right key is not a block signature.
    let body = token.blocks()[0].body().clone();
    let sig = crate::sign::sign_batch(&k.lab, &body.to_bytes());
    let replayed = Token::from_blocks(vec![Block::from_parts(body, sig)]).unwrap();
    assert_eq!(
        verify_as(&replayed, &k, &k.alice, NOW).unwrap_err(),
        TokenError::BadSignature { block: 0 }
    );
}

#[test]
fn unknown_root_is_rejected() {
    let k = keys();
    let token = Token::issue(
        &k.mallory,
        k.bob.public_key(),
        Role::Admin,
        Scope::Instance,
        0,
        NO_EXPIRY,
    )
    .unwrap();
    assert_eq!(
        verify_as(&token, &k, &k.bob, NOW).unwrap_err(),
        TokenError::UnknownRoot {
            issuer: k.mallory.public_key().id()
        }
    );
    let msg = verify_as(&token, &k, &k.bob, NOW).unwrap_err().to_string();
    assert!(msg.contains("not a trusted root"), "{msg}");
}

#[test]
fn time_window_with_leeway() {
    let k = keys();
    let token = Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Read,
        Scope::Instance,
        NOW,
        NOW + DAY,
    )
    .unwrap();
    let at = |now| verify_as(&token, &k, &k.alice, now);
    assert!(at(NOW).is_ok());
    assert!(at(NOW - CLOCK_SKEW_SECS).is_ok());
    assert_eq!(
        at(NOW - CLOCK_SKEW_SECS - 1).unwrap_err(),
        TokenError::NotYetValid { block: 0, at: NOW }
    );
    assert!(at(NOW + DAY + CLOCK_SKEW_SECS - 1).is_ok());
    assert_eq!(
        at(NOW + DAY + CLOCK_SKEW_SECS).unwrap_err(),
        TokenError::Expired {
            block: 0,
            at: NOW + DAY
        }
    );
    // No expiry and extreme clocks never overflow.
    let forever = Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Read,
        Scope::Instance,
        i64::MIN,
        NO_EXPIRY,
    )
    .unwrap();
    assert!(verify_as(&forever, &k, &k.alice, i64::MAX).is_ok());
    assert!(verify_as(&forever, &k, &k.alice, i64::MIN).is_ok());
    // A delegated block with a shorter expiry expires first.
    let chain = chain(&k);
    assert_eq!(
        verify_as(&chain, &k, &k.carol, NOW + 20 * DAY).unwrap_err(),
        TokenError::Expired {
            block: 1,
            at: NOW + 10 * DAY
        }
    );
}

#[test]
fn wrong_holder_is_rejected() {
    let k = keys();
    let token = chain(&k);
    let err = verify_as(&token, &k, &k.mallory, NOW).unwrap_err();
    assert_eq!(
        err,
        TokenError::WrongHolder {
            holder: k.carol.public_key().id(),
            presenter: k.mallory.public_key().id()
        }
    );
    assert!(
        err.to_string()
            .contains("authenticated by its holder's key")
    );
}

#[test]
fn hand_built_widening_is_rejected() {
    let k = keys();
    // bob holds write on collection:C1 until NOW + 10 days.
    let base = chain(&k);
    let base = Token::from_blocks(base.blocks()[..2].to_vec()).unwrap();
    let widen = |edit: fn(&mut BlockBody)| {
        let t = append(&base, &k.bob, |b| {
            b.holder = k.carol.public_key();
            edit(b);
        });
        verify_as(&t, &k, &k.carol, NOW).unwrap_err()
    };
    let what = |e: TokenError| match e {
        TokenError::Widening { block: 2, what, .. } => what,
        other => panic!("expected widening at block 2, got {other:?}"),
    };
    assert_eq!(what(widen(|b| b.role = Role::Admin)), Widened::Role);
    assert_eq!(what(widen(|b| b.scope = Scope::Instance)), Widened::Scope);
    assert_eq!(
        what(widen(|b| b.scope = "collection:C2".parse().unwrap())),
        Widened::Scope
    );
    // A2 is not in C1 (the resolver says so), though delegate would allow it.
    assert_eq!(
        what(widen(|b| b.scope = "artifact:A2".parse().unwrap())),
        Widened::Scope
    );
    assert_eq!(what(widen(|b| b.expires += 1)), Widened::Expiry);
    assert_eq!(what(widen(|b| b.not_before -= 1)), Widened::NotBefore);
    // The unchanged copy verifies: the edits alone caused the errors.
    let same = append(&base, &k.bob, |b| b.holder = k.carol.public_key());
    verify_as(&same, &k, &k.carol, NOW).unwrap();
    let msg = widen(|b| b.role = Role::Admin).to_string();
    assert!(
        msg.contains("block 2 widens its role: admin is above write"),
        "{msg}"
    );
}

#[test]
fn delegate_refuses_to_widen_or_impersonate() {
    let k = keys();
    let base = chain(&k); // carol: read on artifact:A1
    let err = base
        .delegate(
            &k.mallory,
            k.mallory.public_key(),
            Role::Read,
            scope("artifact:A1"),
            None,
        )
        .unwrap_err();
    assert!(matches!(err, TokenError::NotHolder { .. }), "{err}");
    let d = |role, s: &str, exp| base.delegate(&k.carol, k.bob.public_key(), role, scope(s), exp);
    let what = |r: Result<Token, TokenError>| match r {
        Err(TokenError::Widening { block: 3, what, .. }) => what,
        other => panic!("{other:?}"),
    };
    assert_eq!(what(d(Role::Write, "artifact:A1", None)), Widened::Role);
    assert_eq!(what(d(Role::Read, "artifact:A2", None)), Widened::Scope);
    assert_eq!(
        what(d(Role::Read, "artifact:A1", Some(NOW + 11 * DAY))),
        Widened::Expiry
    );
    // Collection -> artifact is a syntactic narrowing, even for a non-member.
    let bob_token = Token::from_blocks(base.blocks()[..2].to_vec()).unwrap();
    let t = bob_token
        .delegate(
            &k.bob,
            k.carol.public_key(),
            Role::Read,
            scope("artifact:A2"),
            None,
        )
        .unwrap();
    // ... but verification asks the resolver, and A2 is not in C1.
    assert!(matches!(
        verify_as(&t, &k, &k.carol, NOW),
        Err(TokenError::Widening {
            block: 2,
            what: Widened::Scope,
            ..
        })
    ));
    // Chains stop at MAX_BLOCKS.
    let mut t = Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Read,
        Scope::Instance,
        0,
        NO_EXPIRY,
    )
    .unwrap();
    for _ in 1..MAX_BLOCKS {
        t = t
            .delegate(
                &k.alice,
                k.alice.public_key(),
                Role::Read,
                Scope::Instance,
                None,
            )
            .unwrap();
    }
    verify_as(&t, &k, &k.alice, NOW).unwrap();
    assert_eq!(
        t.delegate(
            &k.alice,
            k.alice.public_key(),
            Role::Read,
            Scope::Instance,
            None
        )
        .unwrap_err(),
        TokenError::TooManyBlocks { count: 9, max: 8 }
    );
}

#[test]
fn revoking_the_root_block_revokes_delegated_tokens() {
    let k = keys();
    let token = chain(&k);
    let roots = [k.lab.public_key()];
    let root_id = token.blocks()[0].id();
    let revoked: HashSet<BlockId> = [root_id].into_iter().collect();
    let ctx = VerifyContext::new(&roots, NOW, k.carol.public_key())
        .with_resolver(&Members)
        .with_revocations(&revoked);
    assert_eq!(
        token.verify(&ctx).unwrap_err(),
        TokenError::Revoked {
            block: 0,
            id: root_id
        }
    );
    // Revoking a middle block voids it and what follows, not the parent.
    let middle: HashSet<BlockId> = [token.blocks()[1].id()].into_iter().collect();
    let ctx = ctx.with_revocations(&middle);
    assert!(matches!(
        token.verify(&ctx),
        Err(TokenError::Revoked { block: 1, .. })
    ));
    let alice_token = Token::from_blocks(token.blocks()[..1].to_vec()).unwrap();
    let ctx = VerifyContext::new(&roots, NOW, k.alice.public_key()).with_revocations(&middle);
    alice_token.verify(&ctx).unwrap();
}

/// Containment is not transitive: `registry:collection` covers `collection:C1`,
/// which covers its artifact A1, but `registry:collection` does not cover
/// artifacts. Neither delegation nor authorization may chain through it.
#[test]
fn scope_narrowing_is_checked_against_every_ancestor() {
    let k = keys();
    let root = Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Read,
        scope("registry:collection"),
        0,
        NO_EXPIRY,
    )
    .unwrap();
    let c1 = root
        .delegate(
            &k.alice,
            k.bob.public_key(),
            Role::Read,
            scope("collection:C1"),
            None,
        )
        .unwrap();
    // Bob's token covers collection C1, but not its artifacts: the root does not.
    let v = verify_as(&c1, &k, &k.bob, NOW).unwrap();
    v.authorize(Role::Read, &scope("collection:C1"), &Members)
        .unwrap();
    assert_eq!(
        v.authorize(Role::Read, &scope("artifact:A1"), &Members),
        Err(TokenError::OutOfScope {
            scope: scope("registry:collection"),
            resource: scope("artifact:A1")
        })
    );
    // delegate refuses to narrow to the artifact...
    let err = c1
        .delegate(
            &k.bob,
            k.carol.public_key(),
            Role::Read,
            scope("artifact:A1"),
            None,
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("block 0's scope registry:collection does not cover artifact:A1"),
        "{err}"
    );
    // ... and a hand-built block doing it does not verify.
    let forced = append(&c1, &k.bob, |b| {
        b.holder = k.carol.public_key();
        b.scope = scope("artifact:A1");
    });
    assert!(matches!(
        verify_as(&forced, &k, &k.carol, NOW),
        Err(TokenError::Widening {
            block: 2,
            what: Widened::Scope,
            ..
        })
    ));
}
