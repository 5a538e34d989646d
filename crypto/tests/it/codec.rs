//! Properties of the binary and text forms: canonical round trips, and no
//! input — random, structured or a mutated real token — makes the decoder
//! panic or accept a non-canonical encoding.

use labmesh_crypto::sign::Signature;
use labmesh_crypto::token::{Token, VerifyContext};
use proptest::prelude::*;

use crate::universe::*;

/// Decodes `bytes`; if that succeeds, the encoding must be exactly `bytes`.
fn decode_is_canonical(bytes: &[u8]) -> Result<Option<Token>, TestCaseError> {
    match Token::from_bytes(bytes) {
        Ok(token) => {
            prop_assert_eq!(token.to_bytes(), bytes);
            Ok(Some(token))
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            Ok(None)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn encode_decode_round_trip(specs in chain_specs()) {
        let token = build_chain(&keys(), &specs);
        let bytes = token.to_bytes();
        prop_assert!(bytes.len() <= labmesh_crypto::token::MAX_TOKEN_BYTES);
        prop_assert_eq!(&Token::from_bytes(&bytes).unwrap(), &token);
        let text = token.to_text();
        prop_assert_eq!(&Token::from_text(&text).unwrap(), &token);
        prop_assert_eq!(text.parse::<Token>().unwrap().id(), token.id());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        decode_is_canonical(&bytes)?;
    }

    #[test]
    fn structured_garbage_never_panics(
        count in 0u8..12,
        rest in prop::collection::vec(any::<u8>(), 0..2500),
    ) {
        let mut bytes = b"LMT\x01".to_vec();
        bytes.push(count);
        bytes.extend_from_slice(&rest);
        decode_is_canonical(&bytes)?;
    }

    /// Only chains that verify are mutated, so every refusal is the
    /// mutation's doing.
    #[test]
    fn mutated_tokens_never_verify(
        specs in valid_chain_specs(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let keys = keys();
        let token = build_chain(&keys, &specs);
        let roots = [key(0).public_key()];
        let holder = VerifyContext::new(&roots, NOW, token.holder()).with_resolver(&Members);
        prop_assert!(token.verify(&holder).is_ok(), "{:?}", token.verify(&holder));
        let original = token.to_bytes();
        let mut bytes = original.clone();
        for (index, value) in edits {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        let mutated = decode_is_canonical(&bytes)?;
        if let Some(mutated) = mutated.filter(|_| bytes != original) {
            for presenter in &keys {
                let ctx = VerifyContext::new(&roots, NOW, presenter.public_key())
                    .with_resolver(&Members);
                prop_assert!(mutated.verify(&ctx).is_err());
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(s in "(lmt1_)?[A-Za-z0-9_=+/-]{0,400}\\s?") {
        if let Ok(token) = Token::from_text(&s) {
            prop_assert_eq!(token.to_text(), s.trim());
        }
    }

    #[test]
    fn signature_from_slice_accepts_exactly_64_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..130),
    ) {
        match Signature::from_slice(&bytes) {
            Ok(sig) => prop_assert_eq!(sig.to_bytes().to_vec(), bytes),
            Err(_) => prop_assert_ne!(bytes.len(), 64),
        }
    }
}

/// Writes valid tokens (binary and text) as a fuzzing seed corpus:
/// `LABMESH_FUZZ_SEEDS=$PWD/crypto/fuzz/corpus/token_decode cargo test -p labmesh-crypto --test it -- --ignored write_fuzz_seeds`
#[test]
#[ignore = "writes files; run by hand to seed the fuzzer"]
fn write_fuzz_seeds() {
    use proptest::strategy::ValueTree;
    let dir = std::env::var("LABMESH_FUZZ_SEEDS").expect("set LABMESH_FUZZ_SEEDS to a directory");
    std::fs::create_dir_all(&dir).unwrap();
    let keys = keys();
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    for i in 0..16 {
        let specs = chain_specs().new_tree(&mut runner).unwrap().current();
        let token = build_chain(&keys, &specs);
        std::fs::write(format!("{dir}/seed-{i:02}.bin"), token.to_bytes()).unwrap();
        std::fs::write(format!("{dir}/seed-{i:02}.txt"), token.to_text()).unwrap();
    }
}
