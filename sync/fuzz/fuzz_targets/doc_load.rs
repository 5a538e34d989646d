//! Documents and changes from peers: loading, applying a change, merging
//! and reading must never panic or hang (automerge panics are caught and
//! reported as errors).
#![no_main]

use labmesh_crypto::NodeKey;
use labmesh_sync::RecordDoc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(mut doc) = RecordDoc::load(data) {
        let _ = doc.view();
        let _ = doc.conflicts();
        let _ = doc.authors();
        let mut copy = doc.clone();
        let _ = doc.merge(&mut copy);
    }
    let origin = NodeKey::from_secret_bytes(&[7; 32]).public_key();
    let mut doc = RecordDoc::new();
    let _ = doc.apply_change(&origin, data);
    let _ = RecordDoc::change_authorship(data);
});
