//! Signature parsing and verification on arbitrary input: never panics,
//! accepts exactly 64 bytes, and a random signature never verifies.
#![no_main]

use labmesh_crypto::key::{NodeKey, PublicKey};
use labmesh_crypto::sign::{Signature, verify_batch, verify_batches};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First 32 bytes: a candidate public key; the rest: a signature candidate.
    let (key_bytes, rest) = data.split_at(data.len().min(32));
    let parsed = Signature::from_slice(rest);
    assert_eq!(parsed.is_ok(), rest.len() == 64);
    let Ok(sig) = parsed else { return };
    assert_eq!(sig.to_bytes().as_slice(), rest);

    // A fixed key: its signatures are not something a fuzzer can guess.
    let fixed = NodeKey::from_secret_bytes(&[7; 32]).public_key();
    assert!(verify_batch(&fixed, b"payload", &sig).is_err());

    // Arbitrary 32 bytes as a key: parsing never panics; if it is a key,
    // single and batch verification agree that nothing here verifies.
    if let Ok(bytes) = <[u8; 32]>::try_from(key_bytes) {
        if let Ok(key) = PublicKey::from_bytes(&bytes) {
            let single = verify_batch(&key, b"payload", &sig);
            let batch = verify_batches(&[(key, b"payload".as_slice(), sig), (fixed, b"x", sig)]);
            assert!(batch.is_err());
            assert!(single.is_err());
        }
    }
});
