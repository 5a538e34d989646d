//! Token decoding from bytes and from text: never panics, and whatever
//! decodes re-encodes to the identical input (the encoding is canonical).
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use labmesh_crypto::token::{MAX_TOKEN_BYTES, NoRevocations, Token, VerifyContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let binary = Token::from_bytes(data);
    if let Ok(token) = &binary {
        assert_eq!(token.to_bytes(), data, "binary decoding is not canonical");
        // Everything a CLI does with a decoded token must be total.
        let _ = token.inspect().to_string();
        let roots = [token.root_issuer()];
        let ctx = VerifyContext::new(&roots, 1_800_000_000, token.holder());
        let verified = token.verify(&ctx);
        // The offline check (what `token add` runs) is the same verification
        // with memberships assumed: it accepts at least what verify accepts.
        let offline = token.check_offline(1_800_000_000, &NoRevocations);
        if verified.is_ok() {
            assert!(offline.is_ok(), "verify accepts what check_offline refuses");
        }
    }

    // The same bytes through the text form decode the same way.
    if data.len() <= MAX_TOKEN_BYTES {
        let text = format!("lmt1_{}", URL_SAFE_NO_PAD.encode(data));
        assert_eq!(
            Token::from_text(&text),
            binary,
            "text and binary forms disagree"
        );
    }

    // Arbitrary text: never panics; what parses prints back identically.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(token) = Token::from_text(text) {
            assert_eq!(
                token.to_text(),
                text.trim(),
                "text decoding is not canonical"
            );
        }
    }
});
