//! Validity windows end to end: expired, not yet valid and empty-window
//! tokens signed with a lab's real key file, and the `--expires` forms.

use labmesh_crypto::token::{Block, BlockBody, BlockId};
use labmesh_crypto::{NodeKey, PublicKey, Role, Scope, Token, TokenError};
use labmesh_tests::Sandbox;

use super::{labs, peer_id, refused, verify};

const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The lab's own node key, read from its key file.
fn node_key(sb: &Sandbox, lab: &str) -> NodeKey {
    NodeKey::load_file(sb.path().join(lab).join(".labmesh/node.key")).unwrap()
}

fn key_of(sb: &Sandbox, lab: &str) -> PublicKey {
    peer_id(sb, lab).parse().unwrap()
}

/// lab-a grants lab-b read on the instance for [not_before, expires).
fn grant_window(sb: &Sandbox, not_before: i64, expires: i64) -> String {
    Token::issue(
        &node_key(sb, "lab-a"),
        key_of(sb, "lab-b"),
        Role::Read,
        Scope::Instance,
        not_before,
        expires,
    )
    .unwrap()
    .to_text()
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused_with_the_reason() {
    let sb = Sandbox::new();
    labs(&sb, &["lab-a", "lab-b"]);
    let b = peer_id(&sb, "lab-b");
    let now = now();

    let expired = grant_window(&sb, now - 10 * DAY, now - DAY);
    refused(
        verify(&sb, "lab-a", &expired, &b, "read", "instance"),
        "block 0 expired at",
    );
    let inspected = sb.json("", &["--instance", "lab-a", "token", "inspect", &expired]);
    assert_eq!(inspected["state"], "expired");
    assert!(
        inspected["reason"]
            .as_str()
            .unwrap()
            .contains("ask the issuer for a new token"),
        "{inspected}"
    );
    // The holder does not keep it.
    refused(
        sb.run("", &["--instance", "lab-b", "token", "add", &expired]),
        "block 0 expired at",
    );

    let later = grant_window(&sb, now + DAY, now + 10 * DAY);
    refused(
        verify(&sb, "lab-a", &later, &b, "read", "instance"),
        "block 0 is not valid before",
    );
    // A grant that starts later is worth keeping; it says from when.
    let kept = sb.ok("", &["--instance", "lab-b", "token", "add", &later]);
    assert!(kept.contains("valid from"), "{kept}");
    let tokens = sb.json("", &["--instance", "lab-b", "tokens"]);
    assert_eq!(tokens[0]["state"], "not yet valid", "{tokens}");
    assert!(
        tokens[0]["reason"]
            .as_str()
            .unwrap()
            .contains("not valid before"),
        "{tokens}"
    );
    let shown = sb.ok("", &["--instance", "lab-b", "token", "inspect", &later]);
    assert!(
        shown.contains("state now: not yet valid: block 0 is not valid before"),
        "{shown}"
    );
}

#[test]
fn an_empty_validity_window_is_refused_despite_the_clock_skew_leeway() {
    let sb = Sandbox::new();
    labs(&sb, &["lab-a", "lab-b"]);
    let b = peer_id(&sb, "lab-b");
    let now = now();
    // Starts 10 s ago, ended 20 s ago: both ends are within the 60 s
    // leeway, so only the emptiness rule catches it. `Token::issue`
    // refuses to make it; a hand-signed block with the lab's key does.
    let body = BlockBody {
        issuer: key_of(&sb, "lab-a"),
        holder: key_of(&sb, "lab-b"),
        role: Role::Read,
        scope: Scope::Instance,
        not_before: now - 10,
        expires: now - 20,
        nonce: [7; 16],
        parent: BlockId::ZERO,
    };
    let token = Token::from_blocks(vec![Block::sign(body, &node_key(&sb, "lab-a"))])
        .unwrap()
        .to_text();
    refused(
        verify(&sb, "lab-a", &token, &b, "read", "instance"),
        "block 0 has an empty validity window",
    );
    let inspected = sb.json("", &["--instance", "lab-a", "token", "inspect", &token]);
    assert_eq!(inspected["state"], "invalid");
    refused(
        sb.run("", &["--instance", "lab-b", "token", "add", &token]),
        "must expire after it starts",
    );
    let err = Token::issue(
        &node_key(&sb, "lab-a"),
        key_of(&sb, "lab-b"),
        Role::Read,
        Scope::Instance,
        now - 10,
        now - 20,
    )
    .unwrap_err();
    assert!(
        matches!(err, TokenError::EmptyWindow { block: 0, .. }),
        "{err}"
    );
}

#[test]
fn expires_takes_durations_dates_rfc3339_and_unix_seconds() {
    let sb = Sandbox::new();
    labs(&sb, &["lab-a", "lab-b"]);
    let grant = |expires: &str| {
        sb.run(
            "",
            &[
                "--json",
                "--instance",
                "lab-a",
                "grant",
                "--to",
                "lab-b",
                "--role",
                "read",
                "--scope",
                "instance",
                "--expires",
                expires,
            ],
        )
    };
    let expiry_of = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["expires"].as_i64().unwrap()
    };
    let at = now() + 3_600;
    assert_eq!(expiry_of(grant(&at.to_string())), at, "unix seconds");
    assert_eq!(
        expiry_of(grant("2099-01-31T12:00:00Z")),
        4_073_544_000,
        "RFC 3339"
    );
    assert_eq!(
        expiry_of(grant("2099-01-31T14:00:00+02:00")),
        4_073_544_000,
        "RFC 3339 with an offset"
    );
    // A negative duration reaches labmesh (not clap's "unexpected argument").
    refused(grant("-5d"), "expiry must be in the future");
    refused(
        grant("30"),
        "read as unix seconds; for a duration add a unit",
    );
    refused(grant("2020-01-01"), "expiry must be in the future");
    let err = refused(grant("soon"), "cannot read expiry \"soon\"");
    assert!(err.contains("unix seconds like"), "{err}");
}
