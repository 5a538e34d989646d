//! Collection grants end to end: a collection scope names its version
//! family, so a grant on v1 covers what v2 adds; a delegation from a
//! collection to one of its artifacts is valid at every node of the chain.

use labmesh_tests::Sandbox;

use super::{labs, peer_id, refused, verify};

fn save(sb: &Sandbox, file: &str) -> String {
    sb.write(&format!("lab-a/{file}"), format!("{file}\n"));
    sb.json("lab-a", &["save", file])["artifact"]["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn add_to_collection(sb: &Sandbox, artifact: &str) -> String {
    sb.json(
        "lab-a",
        &["collection", "add", "plates", "--artifact", artifact],
    )["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn grant(sb: &Sandbox, lab: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--instance", lab, "grant", "--role", "read"];
    args.extend_from_slice(extra);
    sb.json("", &args)
}

#[test]
fn a_collection_grant_names_the_family_and_covers_later_versions() {
    let sb = Sandbox::new();
    labs(&sb, &["lab-a", "lab-b", "lab-c"]);
    let c = peer_id(&sb, "lab-c");
    let plate1 = save(&sb, "plate1.csv");
    let v1 = add_to_collection(&sb, &plate1);
    let stem = &v1[..16];

    // By key, by a full version uid, by a uid prefix: always the stem.
    for named in ["plates", v1.as_str(), &v1[..6]] {
        let scope = format!("collection:{named}");
        let granted = grant(&sb, "lab-a", &["--to", "lab-b", "--scope", &scope]);
        assert_eq!(granted["scope"], format!("collection:{stem}"), "{named}");
    }
    for missing in ["collection:NoSuchCollection", "collection:my-study"] {
        refused(
            sb.run(
                "",
                &[
                    "--instance",
                    "lab-a",
                    "grant",
                    "--to",
                    "lab-b",
                    "--role",
                    "read",
                    "--scope",
                    missing,
                ],
            ),
            "no collection",
        );
    }
    let token = grant(
        &sb,
        "lab-a",
        &["--to", "lab-b", "--scope", "collection:plates"],
    )["token"]
        .as_str()
        .unwrap()
        .to_string();
    sb.ok("", &["--instance", "lab-b", "token", "add", &token]);

    // v2 adds plate2 after the grant was made.
    let plate2 = save(&sb, "plate2.csv");
    let v2 = add_to_collection(&sb, &plate2);
    assert_eq!(&v2[..16], stem, "same family");
    assert_ne!(v2, v1);
    let outside = save(&sb, "other.csv");

    // lab-b, which has none of lab-a's records, narrows to one artifact.
    let delegate = |artifact: &str| {
        let scope = format!("artifact:{artifact}");
        grant(
            &sb,
            "lab-b",
            &["--from-token", &token, "--to", "lab-c", "--scope", &scope],
        )["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let child = delegate(&plate2);
    let kept = sb.ok("", &["--instance", "lab-c", "token", "add", &child]);
    assert!(kept.contains("lab-a (12D3KooW"), "{kept}");

    // Valid at every node of the chain, each saying what it checked.
    for lab in ["lab-b", "lab-c"] {
        let shown = sb.json("", &["--instance", lab, "token", "inspect", &child]);
        assert_eq!(shown["state"], "valid", "{lab}: {shown}");
        let checked = shown["checked"].as_str().unwrap();
        assert!(
            checked.contains(&format!(
                "membership of artifact {plate2} in collection {stem} is checked by the issuing node"
            )),
            "{lab}: {checked}"
        );
        let tokens = sb.json("", &["--instance", lab, "tokens"]);
        let row = tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["token"] == child.as_str())
            .unwrap();
        assert_eq!(row["state"], "valid", "{lab}: {row}");
        let table = sb.ok("", &["--instance", lab, "tokens"]);
        assert!(
            table.contains("membership checked by the issuing node"),
            "{lab}: {table}"
        );
    }
    let shown = sb.json("", &["--instance", "lab-a", "token", "inspect", &child]);
    assert_eq!(shown["state"], "valid", "{shown}");
    assert!(
        shown["checked"].as_str().unwrap().contains("confirmed"),
        "{shown}"
    );
    // The serving node confirms the membership (in v2, granted on v1).
    let resource = format!("artifact:{plate2}");
    let out = verify(&sb, "lab-a", &child, &c, "read", &resource);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        verify(
            &sb,
            "lab-a",
            &token,
            &peer_id(&sb, "lab-b"),
            "read",
            &format!("collection:{v2}")
        )
        .status
        .success(),
        "a version's uid names its family"
    );

    // An artifact outside the collection: lab-b cannot tell, lab-a refuses.
    let stray = delegate(&outside);
    let shown = sb.json("", &["--instance", "lab-b", "token", "inspect", &stray]);
    assert_eq!(shown["state"], "valid");
    let shown = sb.json("", &["--instance", "lab-a", "token", "inspect", &stray]);
    assert_eq!(shown["state"], "invalid");
    assert!(
        shown["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("does not cover artifact:{outside}")),
        "{shown}"
    );
    refused(
        verify(
            &sb,
            "lab-a",
            &stray,
            &c,
            "read",
            &format!("artifact:{outside}"),
        ),
        "widens its scope",
    );
}
