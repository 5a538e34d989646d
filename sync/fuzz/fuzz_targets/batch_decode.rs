//! Any bytes as a stored or relayed signed batch: decoding and verifying
//! never panic, and decoded batches re-encode to the same bytes.
#![no_main]

use labmesh_sync::feed::SignedBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = SignedBatch::decode(data) {
        assert_eq!(batch.to_bytes(), data, "non-canonical decode");
        let _ = batch.verify();
    }
});
