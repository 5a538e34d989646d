//! Any bytes from a peer: decoding never panics, and whatever decodes
//! re-encodes to the same bytes (the encoding is canonical).
#![no_main]

use labmesh_sync::wire::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        assert_eq!(message.encode(), data, "non-canonical decode");
    }
});
