//! The verified cache and the inspect output.

use std::collections::HashSet;

use super::*;

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
        )
        .unwrap();
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
