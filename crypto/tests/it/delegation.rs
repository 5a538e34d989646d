//! Property: no sequence of delegations — through `delegate` or built by
//! hand — yields a token that verifies with rights wider than its root's.

use labmesh_crypto::token::{MAX_BLOCKS, Role, Scope, Token, Verified, VerifyContext};
use labmesh_crypto::{TokenError, Widened};
use proptest::prelude::*;

use crate::universe::*;

#[derive(Clone, Debug)]
struct Step {
    /// `None`: the current holder signs; `Some(i)`: key i tries to.
    signer: Option<usize>,
    holder: usize,
    role: Role,
    scope: usize,
    expires: Option<i64>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop::option::weighted(0.1, 0..KEYS),
        0..KEYS,
        role(),
        scope_index(),
        prop::option::of(expiry()),
    )
        .prop_map(|(signer, holder, role, scope, expires)| Step {
            signer,
            holder,
            role,
            scope,
            expires,
        })
}

fn verify(token: &Token, presenter: usize) -> Result<Verified, TokenError> {
    let roots = [key(0).public_key()];
    let ctx = VerifyContext::new(&roots, NOW, key(presenter).public_key()).with_resolver(&Members);
    token.verify(&ctx)
}

/// The root grant bounds what a verified token may grant: its effective
/// rights, and every resource it authorizes.
fn assert_within_root(root: &Token, v: &Verified) -> Result<(), TestCaseError> {
    for resource in (0..SCOPES.len()).map(scope) {
        for op in Role::ALL {
            if v.authorize(op, &resource, &Members).is_ok() {
                prop_assert!(op <= root.role());
                prop_assert!(
                    root.scope().covers(&resource, &Members),
                    "root {} does not cover {} but the token authorizes it",
                    root.scope(),
                    resource
                );
            }
        }
    }
    prop_assert!(v.role() <= root.role(), "{} > {}", v.role(), root.role());
    prop_assert!(
        root.scope().covers(v.scope(), &Members),
        "{} does not cover {}",
        root.scope(),
        v.scope()
    );
    prop_assert!(v.expires() <= root.expires());
    prop_assert!(v.not_before() >= root.not_before());
    Ok(())
}

/// Whether the chain narrows a collection to an artifact outside it (which
/// `delegate` allows and verification rejects).
fn has_non_member_narrowing(token: &Token) -> bool {
    token.blocks().windows(2).any(|w| {
        matches!(
            (&w[0].body().scope, &w[1].body().scope),
            (Scope::Collection(_), Scope::Artifact(_))
        ) && !w[0].body().scope.covers(&w[1].body().scope, &Members)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn delegate_never_widens(
        root_holder in 1..KEYS,
        root_role in role(),
        root_scope in scope_index(),
        root_expires in expiry(),
        steps in prop::collection::vec(step(), 0..10),
    ) {
        let keys = keys();
        let root = Token::issue(
            &keys[0],
            keys[root_holder].public_key(),
            root_role,
            scope(root_scope),
            NOW - 10 * DAY,
            root_expires,
        ).unwrap();
        let mut token = root.clone();
        let mut holder = root_holder;
        for step in steps {
            let signer = step.signer.unwrap_or(holder);
            let new_scope = scope(step.scope);
            let result = token.delegate(
                &keys[signer],
                keys[step.holder].public_key(),
                step.role,
                new_scope.clone(),
                step.expires,
            );
            match result {
                Ok(next) => {
                    prop_assert_eq!(signer, holder, "only the holder can delegate");
                    prop_assert!(next.role() <= token.role());
                    for b in token.blocks() {
                        prop_assert!(b.body().scope.may_delegate_to(next.scope()));
                    }
                    prop_assert!(next.expires() <= token.expires());
                    prop_assert_eq!(next.not_before(), token.not_before());
                    prop_assert_eq!(next.blocks().len(), token.blocks().len() + 1);
                    token = next;
                    holder = step.holder;
                }
                Err(TokenError::NotHolder { .. }) => prop_assert_ne!(signer, holder),
                Err(TokenError::TooManyBlocks { .. }) => {
                    prop_assert_eq!(token.blocks().len(), MAX_BLOCKS)
                }
                Err(TokenError::Widening { what, .. }) => match what {
                    Widened::Role => prop_assert!(step.role > token.role()),
                    Widened::Scope => prop_assert!(
                        token.blocks().iter().any(|b| !b.body().scope.may_delegate_to(&new_scope))
                    ),
                    Widened::Expiry => {
                        prop_assert!(step.expires.is_some_and(|e| e > token.expires()))
                    }
                    Widened::NotBefore => prop_assert!(false, "delegate inherits not_before"),
                },
                Err(other) => prop_assert!(false, "unexpected refusal: {other}"),
            }
            match verify(&token, holder) {
                Ok(v) => assert_within_root(&root, &v)?,
                Err(TokenError::Widening { what: Widened::Scope, .. }) => {
                    prop_assert!(has_non_member_narrowing(&token))
                }
                Err(other) => prop_assert!(false, "token from delegate failed: {other}"),
            }
        }
    }

    #[test]
    fn hand_built_chains_that_verify_never_widen(specs in chain_specs()) {
        let keys = keys();
        let token = build_chain(&keys, &specs);
        let presenter = keys
            .iter()
            .position(|k| k.public_key() == token.holder())
            .unwrap();
        if let Ok(v) = verify(&token, presenter) {
            let root = Token::from_blocks(token.blocks()[..1].to_vec()).unwrap();
            assert_within_root(&root, &v)?;
            // And every step narrows its parent.
            for w in token.blocks().windows(2) {
                let (p, c) = (w[0].body(), w[1].body());
                prop_assert!(c.role <= p.role);
                prop_assert!(p.scope.covers(&c.scope, &Members));
                prop_assert!(c.expires <= p.expires && c.not_before >= p.not_before);
                prop_assert_eq!(c.issuer, p.holder);
            }
        }
    }
}

/// The hand-built property is only as good as its inputs: check that the
/// generator yields both chains that verify and chains rejected for each
/// kind of widening, not just forgeries.
#[test]
fn hand_built_generator_covers_accept_and_each_rejection() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let keys = keys();
    let mut runner = TestRunner::deterministic();
    let (mut ok, mut bad_sig, mut broken) = (0, 0, 0);
    let mut widened = std::collections::HashSet::new();
    for _ in 0..400 {
        let specs = chain_specs().new_tree(&mut runner).unwrap().current();
        let token = build_chain(&keys, &specs);
        let presenter = keys
            .iter()
            .position(|k| k.public_key() == token.holder())
            .unwrap();
        match verify(&token, presenter) {
            Ok(_) => ok += 1,
            Err(TokenError::Widening { what, .. }) => {
                widened.insert(what);
            }
            Err(TokenError::BadSignature { .. }) => bad_sig += 1,
            Err(TokenError::BrokenChain { .. }) => broken += 1,
            Err(_) => {}
        }
    }
    assert!(ok >= 40, "only {ok} of 400 chains verified");
    assert!(bad_sig > 0 && broken > 0, "{bad_sig} {broken}");
    for what in [
        Widened::Role,
        Widened::Scope,
        Widened::Expiry,
        Widened::NotBefore,
    ] {
        assert!(widened.contains(&what), "no chain widened {what}");
    }
}
