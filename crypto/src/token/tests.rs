//! Token unit tests: each rule of TOKENS.md, and each way a token can be bad.

use std::collections::HashSet;

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
fn binary_and_text_round_trip() {
    let k = keys();
    let token = chain(&k);
    let bytes = token.to_bytes();
    assert_eq!(Token::from_bytes(&bytes).unwrap(), token);
    let text = token.to_text();
    assert!(text.starts_with("lmt1_"));
    assert!(
        text[5..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert_eq!(text.parse::<Token>().unwrap(), token);
    assert_eq!(Token::from_text(&format!("  {text}\n")).unwrap(), token);
    assert_eq!(token.to_string(), text);
}

#[test]
fn byte_layout_matches_the_spec() {
    let k = keys();
    let body = BlockBody {
        issuer: k.lab.public_key(),
        holder: k.alice.public_key(),
        role: Role::Write,
        scope: scope("registry:ulabel"),
        not_before: 0x0102_0304_0506_0708,
        expires: NO_EXPIRY,
        nonce: [0xAA; 16],
        parent: BlockId::ZERO,
    };
    let block = Block::sign(body, &k.lab);
    let token = Token::from_blocks(vec![block.clone()]).unwrap();
    let b = token.to_bytes();
    assert_eq!(&b[..5], b"LMT\x01\x01");
    let body = &b[5..];
    assert_eq!(&body[0..32], k.lab.public_key().as_bytes());
    assert_eq!(&body[32..64], k.alice.public_key().as_bytes());
    assert_eq!(body[64], 2, "role write");
    assert_eq!(body[65], 4, "scope kind registry");
    assert_eq!(body[66], 6, "scope length");
    assert_eq!(&body[67..73], b"ulabel");
    assert_eq!(&body[73..81], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        &body[81..89],
        &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    assert_eq!(&body[89..105], &[0xAA; 16]);
    assert_eq!(&body[105..137], &[0; 32]);
    assert_eq!(&body[137..201], &block.signature().to_bytes());
    assert_eq!(b.len(), 5 + 201);
    // Signature input and id, as specified.
    let mut input = b"labmesh/token-block/v1\0".to_vec();
    input.extend_from_slice(&body[..137]);
    assert_eq!(k.lab.sign(&input), *block.signature());
    assert_eq!(block.id().as_bytes(), blake3::hash(&body[..201]).as_bytes());
    assert_eq!(token.id(), block.id());
    assert_eq!(
        block.id().to_string(),
        blake3::hash(&body[..201]).to_hex().as_str()
    );
    assert_eq!(
        block.id().to_string().parse::<BlockId>().unwrap(),
        block.id()
    );
}

#[test]
fn every_prefix_is_truncated() {
    let bytes = chain(&keys()).to_bytes();
    for len in 0..bytes.len() {
        match Token::from_bytes(&bytes[..len]) {
            Err(TokenError::Truncated { .. }) => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn every_bit_flip_is_rejected() {
    let k = keys();
    let token = chain(&k);
    let bytes = token.to_bytes();
    for pos in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[pos] ^= 1 << bit;
            if let Ok(t) = Token::from_bytes(&bad) {
                let result = verify_as(&t, &k, &k.carol, NOW);
                assert!(result.is_err(), "flip of bit {bit} at byte {pos} verified");
            }
        }
    }
}

#[test]
fn decode_errors_are_specific() {
    let bytes = chain(&keys()).to_bytes();
    let with = |pos: usize, value: u8| {
        let mut b = bytes.clone();
        b[pos] = value;
        Token::from_bytes(&b).unwrap_err()
    };
    assert_eq!(with(0, b'X'), TokenError::BadMagic);
    assert_eq!(
        Token::from_bytes(b"hello").unwrap_err(),
        TokenError::BadMagic
    );
    assert_eq!(with(3, 2), TokenError::UnsupportedVersion { version: 2 });
    assert_eq!(with(4, 0), TokenError::NoBlocks);
    assert_eq!(with(4, 9), TokenError::TooManyBlocks { count: 9, max: 8 });
    assert!(matches!(with(4, 2), TokenError::TrailingBytes { .. }));
    assert!(matches!(with(4, 4), TokenError::Truncated { .. }));
    assert_eq!(
        with(5 + 64, 0),
        TokenError::UnknownRole { block: 0, byte: 0 }
    );
    assert_eq!(
        with(5 + 65, 7),
        TokenError::UnknownScopeKind { block: 0, byte: 7 }
    );
    // Block 0 is `instance` (no argument); give it one.
    assert!(matches!(
        with(5 + 66, 1),
        TokenError::InvalidScope { block: 0, .. }
    ));
    // The second block (after 5 header bytes and a 195-byte root block)
    // has scope collection:C1, whose argument starts at its byte 67.
    let second = 5 + 195;
    assert_eq!(
        with(second + 67, 0xff),
        TokenError::InvalidUtf8 { block: 1 }
    );
    assert!(matches!(
        with(second + 67, b'-'),
        TokenError::InvalidScope { block: 1, .. }
    ));
    // A y coordinate that is not on the curve.
    let off_curve = (2u8..)
        .map(|y| {
            let mut b = [0u8; 32];
            b[0] = y;
            b
        })
        .find(|b| PublicKey::from_bytes(b).is_err())
        .unwrap();
    let mut b = bytes.clone();
    b[5..37].copy_from_slice(&off_curve);
    assert_eq!(
        Token::from_bytes(&b).unwrap_err(),
        TokenError::InvalidKey {
            block: 0,
            field: "issuer"
        }
    );
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        Token::from_bytes(&long).unwrap_err(),
        TokenError::TrailingBytes { count: 1 }
    );
    let huge = vec![0u8; MAX_TOKEN_BYTES + 1];
    assert_eq!(
        Token::from_bytes(&huge).unwrap_err(),
        TokenError::TooLarge {
            len: 4097,
            max: 4096
        }
    );
}

#[test]
fn text_errors_say_what_is_wrong() {
    let text = chain(&keys()).to_text();
    assert_eq!(
        Token::from_text(&text[5..]).unwrap_err(),
        TokenError::MissingPrefix
    );
    assert!(matches!(
        Token::from_text(&format!("lmt1_{}=", &text[5..])),
        Err(TokenError::BadBase64 { .. })
    ));
    assert!(matches!(
        Token::from_text("lmt1_a+b"),
        Err(TokenError::BadBase64 { .. })
    ));
    let bytes = chain(&keys()).to_bytes();
    let cut = encoding::to_text(&bytes[..bytes.len() - 3]);
    assert!(matches!(
        Token::from_text(&cut),
        Err(TokenError::Truncated { .. })
    ));
    let huge = format!("lmt1_{}", "A".repeat(8000));
    assert!(matches!(
        Token::from_text(&huge),
        Err(TokenError::TooLarge { .. })
    ));
    let msg = TokenError::MissingPrefix.to_string();
    assert!(msg.contains("lmt1_"), "{msg}");
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
    );
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
    );
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
    );
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
    );
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
    );
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

#[test]
fn verified_cache_rechecks_what_can_change() {
    let k = keys();
    let token = chain(&k);
    let roots = [k.lab.public_key()];
    let a1 = scope("artifact:A1");
    let ctx = VerifyContext::new(&roots, NOW, k.carol.public_key()).with_resolver(&Members);
    let mut cache = VerifiedCache::new();
    assert_eq!(
        cache.check(&token, &ctx, Role::Read, &a1).unwrap().role(),
        Role::Read
    );
    assert_eq!(cache.len(), 1);
    // Hit: same answer; authorization is still checked.
    cache.check(&token, &ctx, Role::Read, &a1).unwrap();
    assert!(matches!(
        cache.check(&token, &ctx, Role::Write, &a1),
        Err(TokenError::InsufficientRole { .. })
    ));
    assert_eq!(cache.len(), 1);
    // Time moves on.
    let later = VerifyContext {
        now: NOW + 20 * DAY,
        ..ctx
    };
    assert!(matches!(
        cache.check(&token, &later, Role::Read, &a1),
        Err(TokenError::Expired { block: 1, .. })
    ));
    assert!(cache.is_empty(), "a failed re-check drops the entry");
    cache.check(&token, &ctx, Role::Read, &a1).unwrap();
    // Revocation arrives.
    let revoked: HashSet<BlockId> = [token.blocks()[1].id()].into_iter().collect();
    let rctx = ctx.with_revocations(&revoked);
    assert!(matches!(
        cache.check(&token, &rctx, Role::Read, &a1),
        Err(TokenError::Revoked { block: 1, .. })
    ));
    // Membership changes: A1 leaves C1.
    cache.check(&token, &ctx, Role::Read, &a1).unwrap();
    let mctx = ctx.with_resolver(&NoMembership);
    assert!(matches!(
        cache.check(&token, &mctx, Role::Read, &a1),
        Err(TokenError::Widening {
            block: 2,
            what: Widened::Scope,
            ..
        })
    ));
    // Another presenter is another entry, and fails.
    let mctx = VerifyContext {
        presenter: k.mallory.public_key(),
        ..ctx
    };
    assert!(matches!(
        cache.check(&token, &mctx, Role::Read, &a1),
        Err(TokenError::WrongHolder { .. })
    ));
    // Bounded.
    for _ in 0..VERIFIED_CACHE_CAPACITY + 5 {
        let t = Token::issue(
            &k.lab,
            k.carol.public_key(),
            Role::Read,
            Scope::Instance,
            0,
            NO_EXPIRY,
        );
        cache.check(&t, &ctx, Role::Read, &a1).unwrap();
    }
    assert_eq!(cache.len(), VERIFIED_CACHE_CAPACITY);
}

#[test]
fn inspect_describes_every_block() {
    let k = keys();
    let token = chain(&k);
    let text = token.inspect().to_string();
    for block in token.blocks() {
        assert!(text.contains(&block.id().to_string()), "{text}");
        assert!(text.contains(&block.body().issuer.to_string()), "{text}");
    }
    for needle in [
        "block 2",
        "scope        collection:C1",
        "role         admin",
        "grants       read on artifact:A1",
        "2027-01-25T08:00:00Z (1800864000)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}
