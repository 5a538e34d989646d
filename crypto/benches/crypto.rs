//! Criterion benchmarks of the hot paths, with the targets they must meet:
//!
//! - verify + authorize a token delegated 3 times (4 blocks): <= 0.5 ms,
//!   with no revocations and no memberships, and as a serving node does it:
//!   10,000 revoked ids and a membership resolver (collection -> artifact)
//! - repeat check of that token through `VerifiedCache`:       <= 5 us (both)
//! - sign a 4 KiB change batch:                                <= 30 us
//! - verify one change-batch signature:                        >= 20,000/s
//! - batch-verify 64 signatures (reported per signature)
//!
//! Run with `cargo bench -p labmesh-crypto`.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use labmesh_crypto::key::{NodeKey, PublicKey};
use labmesh_crypto::sign::{Signature, sign_batch, verify_batch, verify_batches};
use labmesh_crypto::token::{
    BlockId, NO_EXPIRY, NoMembership, Role, Scope, ScopeResolver, Token, Uid, VerifiedCache,
    VerifyContext,
};

const NOW: i64 = 1_800_000_000;

fn key(i: u8) -> NodeKey {
    NodeKey::from_secret_bytes(&[i; 32])
}

/// lab -> alice -> bob -> carol -> dave: root block plus 3 delegations.
fn delegated_token() -> (Token, NodeKey, NodeKey) {
    let lab = key(1);
    let keys: Vec<NodeKey> = (2..=5).map(key).collect();
    let collection = Scope::collection("Fq8cM2uX0aB1cD2e").unwrap();
    let mut token = Token::issue(
        &lab,
        keys[0].public_key(),
        Role::Admin,
        Scope::Instance,
        NOW - 86_400,
        NO_EXPIRY,
    )
    .unwrap();
    for i in 0..3 {
        let role = [Role::Write, Role::Write, Role::Read][i];
        token = token
            .delegate(
                &keys[i],
                keys[i + 1].public_key(),
                role,
                collection.clone(),
                None,
            )
            .unwrap();
    }
    let holder = key(5);
    (token, lab, holder)
}

const COLLECTION: &str = "Fq8cM2uX0aB1cD2e";
const ARTIFACT: &str = "Zq8cM2uX0aB1cD2e0001";

/// lab -> alice (admin, instance) -> bob (write, collection) -> carol
/// (read, collection) -> dave (read, one artifact of the collection): the
/// last step needs the serving node's membership data.
fn artifact_token() -> Token {
    let keys: Vec<NodeKey> = (2..=5).map(key).collect();
    let collection = Scope::collection(COLLECTION).unwrap();
    let steps = [
        (Role::Write, collection.clone()),
        (Role::Read, collection),
        (Role::Read, Scope::artifact(ARTIFACT).unwrap()),
    ];
    let mut token = Token::issue(
        &key(1),
        keys[0].public_key(),
        Role::Admin,
        Scope::Instance,
        NOW - 86_400,
        NOW + 365 * 86_400,
    )
    .unwrap();
    for (i, (role, scope)) in steps.into_iter().enumerate() {
        token = token
            .delegate(&keys[i], keys[i + 1].public_key(), role, scope, None)
            .unwrap();
    }
    token
}

/// Collection memberships as a node holds them in memory: 1,000
/// (collection, artifact) pairs, one of them the token's.
struct Memberships(HashSet<(String, String)>);

impl Memberships {
    fn new() -> Self {
        let mut pairs: HashSet<(String, String)> = (0..999)
            .map(|i| (format!("C{i:015}"), format!("A{i:019}")))
            .collect();
        pairs.insert((COLLECTION.into(), ARTIFACT.into()));
        Memberships(pairs)
    }
}

impl ScopeResolver for Memberships {
    fn collection_contains(&self, collection: &Uid, artifact: &Uid) -> bool {
        // Allocation-free lookups would need a borrowed pair key; two short
        // string copies are what a simple node implementation pays.
        self.0
            .contains(&(collection.as_str().to_owned(), artifact.as_str().to_owned()))
    }
}

/// 10,000 revoked block ids (none of them the token's).
fn revocations() -> HashSet<BlockId> {
    (0..10_000u32)
        .map(|i| BlockId::from_bytes(*blake3::hash(&i.to_le_bytes()).as_bytes()))
        .collect()
}

fn tokens(c: &mut Criterion) {
    let (token, lab, holder) = delegated_token();
    assert_eq!(token.blocks().len(), 4);
    let roots = [lab.public_key()];
    let ctx = VerifyContext::new(&roots, NOW, holder.public_key());
    let resource = Scope::collection("Fq8cM2uX0aB1cD2e").unwrap();
    let text = token.to_text();

    let mut group = c.benchmark_group("token");
    group.bench_function("verify_authorize_3_delegations", |b| {
        b.iter(|| {
            let v = black_box(&token).verify(&ctx).unwrap();
            v.authorize(Role::Read, &resource, &NoMembership).unwrap();
        })
    });
    let mut cache = VerifiedCache::new();
    cache.check(&token, &ctx, Role::Read, &resource).unwrap();
    group.bench_function("cached_recheck_authorize", |b| {
        b.iter(|| {
            cache
                .check(black_box(&token), &ctx, Role::Read, &resource)
                .unwrap();
        })
    });
    group.bench_function("decode_text_4_blocks", |b| {
        b.iter(|| Token::from_text(black_box(&text)).unwrap())
    });

    // As a serving node checks it: a realistic revocation set and membership.
    let token = artifact_token();
    let holder = key(5);
    let revoked = revocations();
    let members = Memberships::new();
    let ctx = VerifyContext::new(&roots, NOW, holder.public_key())
        .with_revocations(&revoked)
        .with_resolver(&members);
    let resource = Scope::artifact(ARTIFACT).unwrap();
    group.bench_function(
        "verify_authorize_3_delegations_10k_revoked_membership",
        |b| {
            b.iter(|| {
                let v = black_box(&token).verify(&ctx).unwrap();
                v.authorize(Role::Read, &resource, &members).unwrap();
            })
        },
    );
    let mut cache = VerifiedCache::new();
    cache.check(&token, &ctx, Role::Read, &resource).unwrap();
    group.bench_function("cached_recheck_authorize_10k_revoked_membership", |b| {
        b.iter(|| {
            cache
                .check(black_box(&token), &ctx, Role::Read, &resource)
                .unwrap();
        })
    });
    group.finish();
}

fn signatures(c: &mut Criterion) {
    let key = key(9);
    let payload = vec![0x5a_u8; 4096];
    let sig = sign_batch(&key, &payload);
    let public = key.public_key();

    let mut group = c.benchmark_group("change_batch");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sign_4KiB", |b| {
        b.iter(|| sign_batch(&key, black_box(&payload)))
    });
    group.bench_function("verify_one_4KiB", |b| {
        b.iter(|| verify_batch(&public, black_box(&payload), &sig).unwrap())
    });
    let small = [0x5a_u8; 64];
    let small_sig = sign_batch(&key, &small);
    group.bench_function("verify_one_64B", |b| {
        b.iter(|| verify_batch(&public, black_box(&small), &small_sig).unwrap())
    });

    let signers: Vec<NodeKey> = (0..64u8).map(|i| self::key(100 + i)).collect();
    let payloads: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 4096]).collect();
    let items: Vec<(PublicKey, &[u8], Signature)> = signers
        .iter()
        .zip(&payloads)
        .map(|(k, p)| (k.public_key(), p.as_slice(), sign_batch(k, p)))
        .collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("verify_batches_64x4KiB", |b| {
        b.iter(|| verify_batches(black_box(&items)).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // The machine is shared: longer measurement smooths the noise a little.
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = tokens, signatures
}
criterion_main!(benches);
