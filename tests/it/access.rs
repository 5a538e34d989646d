//! Identities and capability tokens through the CLI: three labs, a grant,
//! a delegation, verification as the serving node does it, revocation.

mod chain;
mod collections;
mod time;

use std::process::Output;

use labmesh_tests::Sandbox;

fn peer_id(sb: &Sandbox, lab: &str) -> String {
    sb.json("", &["--instance", lab, "id"])["peer_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Asserts a clean refusal: exit code 1 (not a clap usage error, 2, nor a
/// panic, 101) and `why` in stderr. Returns stderr.
fn refused(out: Output, why: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "exit status; stderr:\n{err}");
    assert!(err.contains(why), "expected {why:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `labmesh --instance <lab> token verify <token> --holder … --op … --resource …`.
fn verify(sb: &Sandbox, lab: &str, token: &str, holder: &str, op: &str, resource: &str) -> Output {
    sb.run(
        "",
        &[
            "--instance",
            lab,
            "token",
            "verify",
            token,
            "--holder",
            holder,
            "--op",
            op,
            "--resource",
            resource,
        ],
    )
}

/// `n` fresh instances, each knowing every other by name.
fn labs(sb: &Sandbox, names: &[&str]) {
    for lab in names {
        sb.ok("", &["init", lab]);
    }
    for book in names {
        for other in names.iter().filter(|o| *o != book) {
            let line = sb.ok("", &["--instance", other, "id", "export"]);
            sb.ok("", &["--instance", book, "id", "import", line.trim()]);
        }
    }
}

#[test]
fn grant_delegate_verify_revoke() {
    let sb = Sandbox::new();
    for lab in ["lab-a", "lab-b", "lab-c"] {
        sb.ok("", &["init", lab]);
    }
    let (b, c) = (peer_id(&sb, "lab-b"), peer_id(&sb, "lab-c"));
    assert!(b.starts_with("12D3KooW"), "{b}");
    // Address books: lab-a knows lab-b and lab-c by name.
    for (book, other) in [("lab-a", "lab-b"), ("lab-a", "lab-c"), ("lab-b", "lab-c")] {
        let line = sb.ok("", &["--instance", other, "id", "export"]);
        assert!(
            line.starts_with(&format!("labmesh-identity:v1:{other}:12D3KooW")),
            "{line}"
        );
        sb.ok("", &["--instance", book, "id", "import", line.trim()]);
    }
    sb.write("lab-a/plate.csv", "a,b\n");
    let uid = sb.json("lab-a", &["save", "plate.csv"])["artifact"]["uid"]
        .as_str()
        .unwrap()
        .to_string();

    // lab-a grants lab-b write on the whole instance; lab-b keeps it.
    let granted = sb.json(
        "",
        &[
            "--instance",
            "lab-a",
            "grant",
            "--to",
            "lab-b",
            "--role",
            "write",
            "--scope",
            "instance",
        ],
    );
    let token = granted["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("lmt1_"));
    assert_eq!(granted["holder"], b.as_str());
    sb.ok("", &["--instance", "lab-b", "token", "add", &token]);
    // lab-c cannot keep a token held by lab-b.
    let err = sb.fails("", &["--instance", "lab-c", "token", "add", &token]);
    assert!(err.contains("only its holder can use it"), "{err}");

    // lab-b delegates read on one artifact to lab-c, offline.
    let scope = format!("artifact:{uid}");
    let delegated = sb.json(
        "",
        &[
            "--instance",
            "lab-b",
            "grant",
            "--from-token",
            &token,
            "--to",
            "lab-c",
            "--role",
            "read",
            "--scope",
            &scope,
        ],
    );
    let child = delegated["token"].as_str().unwrap().to_string();
    let inspected = sb.json("", &["--instance", "lab-a", "token", "inspect", &child]);
    assert_eq!(inspected["blocks"].as_array().unwrap().len(), 2);
    assert_eq!(inspected["holder"], c.as_str());
    assert_eq!(inspected["state"], "valid");

    // lab-a, the serving node, checks it the way a request would be checked.
    let verify = |holder: &str, op: &str, resource: &str| {
        sb.run(
            "",
            &[
                "--instance",
                "lab-a",
                "token",
                "verify",
                &child,
                "--holder",
                holder,
                "--op",
                op,
                "--resource",
                resource,
            ],
        )
    };
    assert!(verify(&c, "read", &scope).status.success());
    refused(verify(&c, "write", &scope), "needs write");
    refused(verify(&b, "read", &scope), "presented by");
    refused(
        verify(&c, "read", "instance"),
        &format!("token scope `{scope}` does not cover `instance`"),
    );

    // Widening a delegation is refused when it is made.
    let err = sb.fails(
        "",
        &[
            "--instance",
            "lab-b",
            "grant",
            "--from-token",
            &token,
            "--to",
            "lab-c",
            "--role",
            "admin",
            "--scope",
            "instance",
        ],
    );
    assert!(err.contains("can only narrow"), "{err}");

    // Revoking the root grant cuts the delegated token too.
    let said = sb.ok(
        "",
        &[
            "--instance",
            "lab-a",
            "revoke",
            &granted["token_id"].as_str().unwrap()[..12],
        ],
    );
    assert!(
        said.contains("this node issued it and refuses it"),
        "{said}"
    );
    refused(verify(&c, "read", &scope), "block 0 (id");
    refused(verify(&c, "read", &scope), "has been revoked");
    let tokens = sb.json("", &["--instance", "lab-a", "tokens"]);
    assert_eq!(tokens[0]["state"], "revoked");
    assert_eq!(tokens[0]["holder_name"], "lab-b");
    let again = sb.json("", &["--instance", "lab-a", "revoke", &token]);
    assert_eq!(again["already"], true, "revoking twice is harmless");
}

#[test]
fn forged_and_foreign_tokens_are_refused() {
    let sb = Sandbox::new();
    for lab in ["lab-a", "lab-b"] {
        sb.ok("", &["init", lab]);
    }
    let b = peer_id(&sb, "lab-b");
    // A token lab-b issues itself is not rooted at lab-a.
    let own = sb.json(
        "",
        &[
            "--instance",
            "lab-b",
            "grant",
            "--to",
            &b,
            "--role",
            "admin",
            "--scope",
            "instance",
        ],
    );
    let err = sb.fails(
        "",
        &[
            "--instance",
            "lab-a",
            "token",
            "verify",
            own["token"].as_str().unwrap(),
            "--holder",
            &b,
            "--op",
            "read",
            "--resource",
            "instance",
        ],
    );
    assert!(err.contains("not a trusted root"), "{err}");

    // A bit flipped in a token lab-a issued.
    let granted = sb.json(
        "",
        &[
            "--instance",
            "lab-a",
            "grant",
            "--to",
            &b,
            "--role",
            "read",
            "--scope",
            "instance",
        ],
    );
    let text = granted["token"].as_str().unwrap();
    let mut chars: Vec<char> = text.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let forged: String = chars.into_iter().collect();
    // The flipped character lies in the signature: decoding succeeds and
    // the signature check names the block.
    refused(
        verify(&sb, "lab-a", &forged, &b, "read", "instance"),
        "block 0: signature does not verify against its issuer (forged or altered)",
    );
    // Garbage is not a token.
    let err = sb.fails("", &["--instance", "lab-a", "token", "inspect", "lmt1_!!!"]);
    assert!(err.contains("lmt1_"), "{err}");
    // A huge argument is quoted by a short prefix, not echoed whole.
    let huge = format!("lmt1_{}", "A".repeat(20_000));
    for args in [
        ["token", "inspect", huge.as_str()],
        ["revoke", huge.as_str(), "--reason=x"],
    ] {
        let mut all = vec!["--instance", "lab-a"];
        all.extend_from_slice(&args);
        let err = refused(sb.run("", &all), "(20005 characters)");
        assert!(err.len() < 1_000, "{} bytes: {err}", err.len());
    }
    // Bad expiry input.
    let err = sb.fails(
        "",
        &[
            "--instance",
            "lab-a",
            "grant",
            "--to",
            &b,
            "--role",
            "read",
            "--scope",
            "instance",
            "--expires",
            "soon",
        ],
    );
    assert!(err.contains("30d"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_node_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    let key = sb.path().join("lab/.labmesh/node.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let me = peer_id(&sb, "lab");
    let err = sb.fails(
        "lab",
        &[
            "grant", "--to", &me, "--role", "read", "--scope", "instance",
        ],
    );
    assert!(err.contains("chmod 600"), "{err}");
    // The key itself never appears in any output.
    let pem = std::fs::read_to_string(&key).unwrap();
    let secret_line = pem.lines().nth(1).unwrap();
    let all = format!("{}{}", sb.ok("lab", &["id"]), err);
    assert!(!all.contains(secret_line));
}

#[test]
fn identity_line_errors_name_the_line_not_the_node_key() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    for (line, why) in [
        ("garbage", "invalid identity line"),
        (
            "labmesh-identity:v1:lab-b:12D3KooWnot",
            "not a libp2p PeerId",
        ),
        (
            "labmesh-identity:v9:lab-b:x",
            "version `v9` is not supported",
        ),
    ] {
        let err = refused(sb.run("lab", &["id", "import", line]), why);
        assert!(!err.contains("node key"), "{err}");
        assert!(err.contains("labmesh id export"), "{err}");
    }
    let err = refused(
        sb.run("lab", &["id", "export", "--name", "no spaces"]),
        "invalid identity name",
    );
    assert!(!err.contains("node key"), "{err}");
}
