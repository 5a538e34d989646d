//! Delegation chains end to end: revoking a middle block, revoking away
//! from the root, and forged tokens offered to `token add`.

use labmesh_crypto::token::{Block, BlockId};
use labmesh_crypto::{NodeKey, Token};
use labmesh_tests::Sandbox;

use super::{labs, peer_id, refused, verify};

/// `labmesh --json --instance <lab> grant [--from-token parent] --to … --role … --scope …`,
/// returning the token text.
fn grant(sb: &Sandbox, lab: &str, parent: Option<&str>, to: &str, role: &str) -> String {
    let mut args = vec!["--instance", lab, "grant"];
    if let Some(parent) = parent {
        args.extend(["--from-token", parent]);
    }
    args.extend(["--to", to, "--role", role, "--scope", "instance"]);
    sb.json("", &args)["token"].as_str().unwrap().to_string()
}

fn id_of(token: &str) -> String {
    token.parse::<Token>().unwrap().id().to_string()
}

#[test]
fn revoking_a_middle_block_cuts_every_token_below_it_and_nothing_above() {
    let sb = Sandbox::new();
    labs(&sb, &["lab-a", "lab-b", "lab-c", "lab-d"]);
    let (b, c, d) = (
        peer_id(&sb, "lab-b"),
        peer_id(&sb, "lab-c"),
        peer_id(&sb, "lab-d"),
    );
    // lab-a -> lab-b -> lab-c -> lab-d: block 0, 1, 2.
    let to_b = grant(&sb, "lab-a", None, "lab-b", "write");
    sb.ok("", &["--instance", "lab-b", "token", "add", &to_b]);
    let to_c = grant(&sb, "lab-b", Some(&to_b), "lab-c", "read");
    sb.ok("", &["--instance", "lab-c", "token", "add", &to_c]);
    let to_d = grant(&sb, "lab-c", Some(&to_c), "lab-d", "read");
    let inspected = sb.json("", &["--instance", "lab-a", "token", "inspect", &to_d]);
    assert_eq!(inspected["blocks"][1]["id"], id_of(&to_c).as_str());
    for (token, holder) in [(&to_b, &b), (&to_c, &c), (&to_d, &d)] {
        let out = verify(&sb, "lab-a", token, holder, "read", "instance");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The serving node revokes block 1 (lab-b's grant to lab-c), given as
    // a bare block id.
    let said = sb.ok("", &["--instance", "lab-a", "revoke", &id_of(&to_c)]);
    assert!(
        said.contains(&format!("revoked {}", id_of(&to_c))),
        "{said}"
    );
    let why = format!("block 1 (id {}) has been revoked", id_of(&to_c));
    refused(verify(&sb, "lab-a", &to_c, &c, "read", "instance"), &why);
    refused(verify(&sb, "lab-a", &to_d, &d, "read", "instance"), &why);
    // Above the revoked block nothing changes.
    let out = verify(&sb, "lab-a", &to_b, &b, "read", "instance");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspected = sb.json("", &["--instance", "lab-a", "token", "inspect", &to_d]);
    assert_eq!(inspected["state"], "revoked");
}

#[test]
fn a_revocation_away_from_the_root_says_where_it_takes_effect() {
    let sb = Sandbox::new();
    labs(&sb, &["lab-a", "lab-b", "lab-c"]);
    let c = peer_id(&sb, "lab-c");
    let to_b = grant(&sb, "lab-a", None, "lab-b", "write");
    sb.ok("", &["--instance", "lab-b", "token", "add", &to_b]);
    let to_c = grant(&sb, "lab-b", Some(&to_b), "lab-c", "read");

    let said = sb.ok("", &["--instance", "lab-b", "revoke", &id_of(&to_c)[..12]]);
    assert!(
        said.contains("here: this node refuses it, and every token delegated from it"),
        "{said}"
    );
    let a = peer_id(&sb, "lab-a");
    assert!(
        said.contains(&format!(
            "at lab-a ({a}), which serves the data: only once it has synced with this node"
        )),
        "{said}"
    );
    // Both halves are true: lab-b refuses it now; lab-a, not yet synced,
    // still accepts it.
    let tokens = sb.json("", &["--instance", "lab-b", "tokens"]);
    let row = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["token_id"] == id_of(&to_c).as_str())
        .unwrap();
    assert_eq!(row["state"], "revoked", "{row}");
    let out = verify(&sb, "lab-a", &to_c, &c, "read", "instance");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = sb.json("", &["--instance", "lab-b", "revoke", &to_c]);
    assert_eq!(json["already"], true);
    assert_eq!(json["issuer"], a.as_str());
    assert_eq!(json["issued_here"], false);
}

#[test]
fn token_add_refuses_forged_tokens_with_the_reason() {
    let sb = Sandbox::new();
    labs(&sb, &["lab-a", "lab-b"]);
    // A real grant, then the same block re-signed by a random key: it still
    // claims lab-a as its issuer.
    let real: Token = grant(&sb, "lab-a", None, "lab-b", "read").parse().unwrap();
    let mut body = real.blocks()[0].body().clone();
    body.role = labmesh_crypto::Role::Admin;
    let forger = NodeKey::generate();
    let forged = Token::from_blocks(vec![Block::sign(body, &forger)]).unwrap();
    assert_eq!(forged.root_issuer(), real.root_issuer());
    let err = refused(
        sb.run(
            "",
            &["--instance", "lab-b", "token", "add", &forged.to_text()],
        ),
        "block 0: signature does not verify against its issuer (forged or altered)",
    );
    assert!(err.contains("not keeping token"), "{err}");
    let tokens = sb.json("", &["--instance", "lab-b", "tokens"]);
    assert_eq!(
        tokens.as_array().unwrap().len(),
        0,
        "nothing kept: {tokens}"
    );

    // A delegated block whose parent link is wrong.
    let b_key = NodeKey::load_file(sb.path().join("lab-b/.labmesh/node.key")).unwrap();
    let mut child = real.blocks()[0].body().clone();
    child.issuer = b_key.public_key();
    child.parent = BlockId::from_bytes([9; 32]);
    let mut blocks = real.blocks().to_vec();
    blocks.push(Block::sign(child, &b_key));
    let broken = Token::from_blocks(blocks).unwrap();
    refused(
        sb.run(
            "",
            &["--instance", "lab-b", "token", "add", &broken.to_text()],
        ),
        "broken chain",
    );

    // The real one is kept, named by its issuer.
    let kept = sb.ok(
        "",
        &["--instance", "lab-b", "token", "add", &real.to_text()],
    );
    assert!(
        kept.contains("read on instance from lab-a (12D3KooW"),
        "{kept}"
    );
}
