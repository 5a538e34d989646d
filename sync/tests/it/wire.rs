//! Typed refusals of malformed input.

use labmesh_sync::WireError;
use labmesh_sync::wire::Message;
use labmesh_sync::wire::limits::MAX_MESSAGE_BYTES;

use crate::harness::*;

#[test]
fn each_malformation_has_its_own_error() {
    let ok = Message::Denied { scope: scope() }.encode();
    assert_eq!(Message::decode(&[]), Err(WireError::Empty));
    assert_eq!(
        Message::decode(&[2, 10]),
        Err(WireError::UnsupportedVersion(2))
    );
    assert_eq!(Message::decode(&[1, 99]), Err(WireError::UnknownKind(99)));
    assert!(matches!(
        Message::decode(&ok[..ok.len() - 1]),
        Err(WireError::Truncated { .. })
    ));
    let mut trailing = ok.clone();
    trailing.push(0);
    assert_eq!(Message::decode(&trailing), Err(WireError::TrailingBytes(1)));
    let huge = vec![1u8; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        Message::decode(&huge),
        Err(WireError::TooLarge {
            what: "message",
            ..
        })
    ));
    let mut bad_scope = vec![1, 10, 3];
    bad_scope.extend_from_slice(b"x:y");
    assert!(matches!(Message::decode(&bad_scope), Err(WireError::Id(_))));
}

#[test]
fn counts_are_checked_against_the_input_before_allocating() {
    // An announce claiming 4096 marks in a few bytes.
    let mut bytes = Message::Announce {
        scope: scope(),
        marks: vec![],
    }
    .encode();
    let n = bytes.len();
    bytes[n - 4..].copy_from_slice(&4096u32.to_be_bytes());
    assert!(matches!(
        Message::decode(&bytes),
        Err(WireError::Truncated { what: "marks" })
    ));
    bytes[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        Message::decode(&bytes),
        Err(WireError::TooMany { what: "marks", .. })
    ));
}
