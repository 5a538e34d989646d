//! The byte and text forms: layout, round trips, and every malformed input.

use super::*;

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
