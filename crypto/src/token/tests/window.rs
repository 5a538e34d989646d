//! Empty validity windows, and the offline check a non-root node runs.

use std::collections::HashSet;

use super::*;

/// A root block signed by the lab with any window, bypassing `issue`.
fn hand_built_root(k: &Keys, not_before: i64, expires: i64) -> Token {
    let body = BlockBody {
        issuer: k.lab.public_key(),
        holder: k.alice.public_key(),
        role: Role::Admin,
        scope: Scope::Instance,
        not_before,
        expires,
        nonce: [3; 16],
        parent: BlockId::ZERO,
    };
    Token::from_blocks(vec![Block::sign(body, &k.lab)]).unwrap()
}

#[test]
fn issue_refuses_an_empty_window() {
    let k = keys();
    for expires in [NOW, NOW - 1, NOW - DAY] {
        let err = Token::issue(
            &k.lab,
            k.alice.public_key(),
            Role::Read,
            Scope::Instance,
            NOW,
            expires,
        )
        .unwrap_err();
        assert_eq!(
            err,
            TokenError::EmptyWindow {
                block: 0,
                not_before: NOW,
                expires
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("empty validity window"), "{msg}");
        assert!(msg.contains("must expire after it starts"), "{msg}");
    }
    // One second is a window.
    assert!(
        Token::issue(
            &k.lab,
            k.alice.public_key(),
            Role::Read,
            Scope::Instance,
            NOW,
            NOW + 1
        )
        .is_ok()
    );
}

#[test]
fn delegate_refuses_an_expiry_at_or_before_the_inherited_start() {
    let k = keys();
    let root = Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Write,
        Scope::Instance,
        NOW,
        NOW + DAY,
    )
    .unwrap();
    for expires in [NOW, NOW - 20] {
        let err = root
            .delegate(
                &k.alice,
                k.bob.public_key(),
                Role::Read,
                Scope::Instance,
                Some(expires),
            )
            .unwrap_err();
        assert_eq!(
            err,
            TokenError::EmptyWindow {
                block: 1,
                not_before: NOW,
                expires
            }
        );
    }
}

#[test]
fn verify_refuses_empty_windows_despite_the_clock_skew_leeway() {
    let k = keys();
    // not_before = now - 10, expires = now - 20: inside the 60 s leeway of
    // both ends, so only the emptiness rule refuses it.
    let root = hand_built_root(&k, NOW - 10, NOW - 20);
    assert_eq!(
        verify_as(&root, &k, &k.alice, NOW).unwrap_err(),
        TokenError::EmptyWindow {
            block: 0,
            not_before: NOW - 10,
            expires: NOW - 20
        }
    );
    let zero = hand_built_root(&k, NOW, NOW);
    assert!(matches!(
        verify_as(&zero, &k, &k.alice, NOW),
        Err(TokenError::EmptyWindow { block: 0, .. })
    ));
    // A delegated block with an empty window, otherwise a valid narrowing.
    let good = hand_built_root(&k, NOW - DAY, NOW + DAY);
    let bad = append(&good, &k.alice, |b| {
        b.holder = k.bob.public_key();
        b.expires = b.not_before;
    });
    assert_eq!(
        verify_as(&bad, &k, &k.bob, NOW).unwrap_err(),
        TokenError::EmptyWindow {
            block: 1,
            not_before: NOW - DAY,
            expires: NOW - DAY
        }
    );
    assert!(matches!(
        bad.check_offline(NOW, &NoRevocations),
        Err(TokenError::EmptyWindow { block: 1, .. })
    ));
}

#[test]
fn offline_check_needs_no_trusted_root_but_catches_forgeries() {
    let k = keys();
    // A chain through collection C9 to artifact A9: no resolver here knows
    // that membership, yet offline it is a well-formed chain.
    let token = Token::issue(
        &k.lab,
        k.alice.public_key(),
        Role::Write,
        scope("collection:C9"),
        NOW - DAY,
        NOW + DAY,
    )
    .unwrap()
    .delegate(
        &k.alice,
        k.bob.public_key(),
        Role::Read,
        scope("artifact:A9"),
        None,
    )
    .unwrap();
    let checked = token.check_offline(NOW, &NoRevocations).unwrap();
    assert_eq!(checked.root(), k.lab.public_key());
    assert_eq!(checked.holder(), k.bob.public_key());
    assert_eq!(checked.role(), Role::Read);
    assert_eq!(checked.scope(), &scope("artifact:A9"));
    assert_eq!(
        checked.membership_claims(),
        &[MembershipClaim {
            block: 1,
            collection: Uid::new("C9").unwrap(),
            artifact: Uid::new("A9").unwrap(),
        }]
    );
    // At the root, with its database, the same chain is refused.
    assert!(matches!(
        verify_as(&token, &k, &k.bob, NOW),
        Err(TokenError::Widening {
            block: 1,
            what: Widened::Scope,
            ..
        })
    ));

    // A block claiming the lab as issuer but signed by Mallory.
    let mut body = token.blocks()[0].body().clone();
    body.holder = k.mallory.public_key();
    let forged = Token::from_blocks(vec![Block::sign(body, &k.mallory)]).unwrap();
    assert_eq!(forged.root_issuer(), k.lab.public_key());
    assert_eq!(
        forged.check_offline(NOW, &NoRevocations).unwrap_err(),
        TokenError::BadSignature { block: 0 }
    );
    // Time and revocations are checked too.
    assert!(matches!(
        token.check_offline(NOW + 2 * DAY, &NoRevocations),
        Err(TokenError::Expired { block: 0, .. })
    ));
    assert!(matches!(
        token.check_offline(NOW - 2 * DAY, &NoRevocations),
        Err(TokenError::NotYetValid { block: 0, .. })
    ));
    let revoked: HashSet<BlockId> = [token.blocks()[0].id()].into();
    assert!(matches!(
        token.check_offline(NOW, &revoked),
        Err(TokenError::Revoked { block: 0, .. })
    ));
    // Offline narrowing still refuses widening.
    let widened = append(&token, &k.bob, |b| {
        b.holder = k.carol.public_key();
        b.role = Role::Admin;
    });
    assert!(matches!(
        widened.check_offline(NOW, &NoRevocations),
        Err(TokenError::Widening {
            what: Widened::Role,
            ..
        })
    ));
}
