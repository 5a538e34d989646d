//! Saving, deduplication, versions, lookups and their errors.

use labmesh::{ArtifactKind, Error, ListOptions, SaveOptions, SaveStatus};

use crate::{Lab, objects};

#[test]
fn save_registers_content_under_its_hash() {
    let lab = Lab::new();
    let path = lab.write("data/plate1.csv", "well,od\nA1,0.5\n");
    let saved = lab
        .instance
        .save(
            &path,
            &SaveOptions {
                description: Some("plate 1".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(saved.status, SaveStatus::Created);
    let a = &saved.artifact;
    assert_eq!(
        a.key.as_deref(),
        Some("data/plate1.csv"),
        "key defaults to the path inside the instance"
    );
    assert_eq!(a.suffix, ".csv");
    assert_eq!(a.size, 15);
    assert_eq!(a.hash, labmesh::ContentHash::of(b"well,od\nA1,0.5\n"));
    assert_eq!(a.created_by, "ada");
    assert_eq!(a.origin, lab.instance.peer_id());
    assert!(a.is_latest);
    assert_eq!(a.uid.len(), 20);
    // The object is stored once, read-only, at its content address.
    let objs = objects(&lab.storage_root());
    assert_eq!(objs.len(), 1);
    assert!(objs[0].ends_with(format!("{}.csv", a.hash)));
    assert!(
        std::fs::metadata(&objs[0])
            .unwrap()
            .permissions()
            .readonly()
    );
    assert_eq!(std::fs::read(&objs[0]).unwrap(), b"well,od\nA1,0.5\n");
    // Found by uid, uid prefix and key.
    for q in [a.uid.as_str(), &a.uid[..6], "data/plate1.csv"] {
        assert_eq!(lab.instance.get(q).unwrap().uid, a.uid, "lookup by {q}");
    }
}

#[test]
fn same_content_returns_the_existing_record_and_new_content_is_a_version() {
    let lab = Lab::new();
    let path = lab.write("plate.csv", "v1");
    let first = lab.instance.save(&path, &SaveOptions::default()).unwrap();
    let again = lab.instance.save(&path, &SaveOptions::default()).unwrap();
    assert_eq!(again.status, SaveStatus::Existing);
    assert_eq!(again.artifact.uid, first.artifact.uid);
    assert!(
        again.notices[0].contains("unchanged"),
        "{:?}",
        again.notices
    );

    // Same content under another key: still the existing record, with a notice.
    let copy = lab.write("copy.csv", "v1");
    let dup = lab.instance.save(&copy, &SaveOptions::default()).unwrap();
    assert_eq!(dup.artifact.uid, first.artifact.uid);
    assert!(
        dup.notices[0].contains("already saved as"),
        "{:?}",
        dup.notices
    );

    let path = lab.write("plate.csv", "v2");
    let second = lab.instance.save(&path, &SaveOptions::default()).unwrap();
    assert_eq!(
        second.status,
        SaveStatus::NewVersion {
            previous: first.artifact.uid.clone()
        }
    );
    assert_eq!(
        second.artifact.stem(),
        first.artifact.stem(),
        "versions share the stem"
    );
    assert_eq!(
        second.artifact.revises.as_deref(),
        Some(first.artifact.uid.as_str())
    );
    let versions = lab.instance.versions("plate.csv").unwrap();
    assert_eq!(
        versions.iter().map(|v| v.is_latest).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(
        lab.instance.get("plate.csv").unwrap().uid,
        second.artifact.uid,
        "the key names the latest"
    );
    let listed = lab.instance.list(&ListOptions::default()).unwrap();
    assert_eq!(listed.len(), 1, "ls shows one row per family");
    let all = lab
        .instance
        .list(&ListOptions {
            all_versions: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2);
}

#[test]
fn revises_makes_a_version_under_another_file_name() {
    let lab = Lab::new();
    let a = lab
        .instance
        .save(lab.write("a/plate.csv", "1"), &SaveOptions::default())
        .unwrap();
    let b = lab
        .instance
        .save(
            lab.write("incoming/plate-final.csv", "2"),
            &SaveOptions {
                revises: Some(a.artifact.uid.clone()),
                version: Some("1.0".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        b.status,
        SaveStatus::NewVersion {
            previous: a.artifact.uid.clone()
        }
    );
    assert_eq!(
        b.artifact.key.as_deref(),
        Some("a/plate.csv"),
        "a revision keeps the family's key"
    );
    assert_eq!(b.artifact.version.as_deref(), Some("1.0"));
    assert!(!lab.instance.get(&a.artifact.uid).unwrap().is_latest);
}

#[test]
fn bad_inputs_fail_clearly_and_write_nothing() {
    let lab = Lab::new();
    let missing = lab.root().join("nope.csv");
    let err = lab
        .instance
        .save(&missing, &SaveOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::PathNotFound { .. }), "{err}");

    let file = lab.write("plate1.parquet", "PAR1");
    let err = lab
        .instance
        .save(
            &file,
            &SaveOptions {
                key: Some("raw/plate1.csv".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("raw/plate1.parquet"),
        "suggests the fix: {err}"
    );
    for bad in ["/abs.parquet", "a/../b.parquet", "a//b.parquet"] {
        let err = lab
            .instance
            .save(
                &file,
                &SaveOptions {
                    key: Some(bad.into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{bad}: {err}");
    }
    let err = lab.instance.get("zzzzzzzz").unwrap_err();
    assert!(matches!(err, Error::ArtifactNotFound { .. }), "{err}");
    assert!(
        objects(&lab.storage_root()).is_empty(),
        "nothing was stored"
    );
    assert!(
        lab.instance
            .list(&ListOptions::default())
            .unwrap()
            .is_empty()
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = lab.write("secret.csv", "x");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        // Root can read anything; the check only means something for other users.
        if std::fs::read(&secret).is_err() {
            let err = lab
                .instance
                .save(&secret, &SaveOptions::default())
                .unwrap_err();
            assert!(err.to_string().contains("secret.csv"), "{err}");
        }
    }
}

#[test]
fn typo_in_a_key_gets_did_you_mean() {
    let lab = Lab::new();
    lab.instance
        .save(
            lab.write("raw/plate1.parquet", "a"),
            &SaveOptions::default(),
        )
        .unwrap();
    let err = lab.instance.get("raw/plate1.parqet").unwrap_err();
    assert!(
        err.to_string()
            .contains("did you mean \"raw/plate1.parquet\""),
        "{err}"
    );

    // A new key a typo away from an existing one warns but saves.
    let saved = lab
        .instance
        .save(
            lab.write("tmp/x.parquet", "b"),
            &SaveOptions {
                key: Some("raw/plate1.parquett".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        saved.to_string().contains("ends in"),
        "suffix differs, so it is refused: {saved}"
    );
    let saved = lab
        .instance
        .save(
            lab.write("tmp/y.parquet", "c"),
            &SaveOptions {
                key: Some("raw/Plate1.parquet".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        saved.notices.iter().any(|n| n.contains("did you mean")),
        "{:?}",
        saved.notices
    );
    // Series members are not typos.
    let saved = lab
        .instance
        .save(
            lab.write("raw/plate2.parquet", "d"),
            &SaveOptions::default(),
        )
        .unwrap();
    assert!(saved.notices.is_empty(), "{:?}", saved.notices);
}

#[test]
fn an_ambiguous_uid_prefix_lists_the_candidates() {
    let lab = Lab::new();
    let mut uids = Vec::new();
    for i in 0..300 {
        let s = lab
            .instance
            .save(
                lab.write(&format!("f{i}.txt"), format!("{i}")),
                &SaveOptions::default(),
            )
            .unwrap();
        uids.push(s.artifact.uid);
    }
    // With 300 random uids, some pair shares its first character: find it.
    uids.sort();
    let pair = uids
        .windows(2)
        .find(|w| w[0][..1] == w[1][..1])
        .expect("a shared first char");
    let prefix = &pair[0][..1];
    // Prefixes shorter than 4 characters are treated as keys.
    assert!(matches!(
        lab.instance.get(prefix),
        Err(Error::ArtifactNotFound { .. })
    ));
    // Build a 4-character ambiguous prefix by renaming two rows' uids on disk.
    let db = rusqlite::Connection::open(lab.root().join(".labmesh/instance.db")).unwrap();
    db.execute(
        "UPDATE artifact SET uid = 'AAAA' || substr(uid, 5) WHERE uid IN (?1, ?2)",
        [&pair[0], &pair[1]],
    )
    .unwrap();
    let err = lab.instance.get("AAAA").unwrap_err();
    match &err {
        Error::AmbiguousUid { candidates, .. } => assert_eq!(candidates.len(), 2, "{err}"),
        other => panic!("expected ambiguity, got {other}"),
    }
}

#[test]
fn batches_save_in_one_transaction_and_deduplicate_within_the_batch() {
    let lab = Lab::new();
    let mut paths = Vec::new();
    for i in 0..50 {
        paths.push(lab.write(&format!("batch/f{i:02}.txt"), format!("content {}", i % 40)));
    }
    let saved = lab
        .instance
        .save_many(&paths, &SaveOptions::default())
        .unwrap();
    assert_eq!(saved.len(), 50);
    let created = saved
        .iter()
        .filter(|s| s.status == SaveStatus::Created)
        .count();
    assert_eq!(created, 40, "10 files repeat earlier content");
    assert_eq!(objects(&lab.storage_root()).len(), 40);
    assert_eq!(saved[45].artifact.uid, saved[5].artifact.uid);
    // Again: everything exists.
    let again = lab
        .instance
        .save_many(&paths, &SaveOptions::default())
        .unwrap();
    assert!(again.iter().all(|s| s.status == SaveStatus::Existing));

    // One bad path fails the whole batch before anything is written.
    let mut bad = vec![lab.write("batch2/new.txt", "brand new")];
    bad.push(lab.root().join("batch2/missing.txt"));
    assert!(
        lab.instance
            .save_many(&bad, &SaveOptions::default())
            .is_err()
    );
    assert_eq!(
        objects(&lab.storage_root()).len(),
        40,
        "nothing of the failed batch was stored"
    );
    assert!(lab.instance.get("batch2/new.txt").is_err());
}

#[test]
fn large_files_are_streamed_and_verified() {
    let lab = Lab::new();
    // Above the in-memory threshold: exercises the one-pass copy+hash path.
    let data: Vec<u8> = (0..(9 << 20))
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let path = lab.write("big/matrix.bin", &data);
    let saved = lab.instance.save(&path, &SaveOptions::default()).unwrap();
    assert_eq!(saved.artifact.hash, labmesh::ContentHash::of(&data));
    assert_eq!(saved.artifact.kind, ArtifactKind::File);
    let cached = lab.instance.cache("big/matrix.bin").unwrap();
    assert_eq!(std::fs::read(&cached.path).unwrap(), data);
    // Same size, same content: the dedup path hashes first and copies nothing.
    let again = lab.instance.save(&path, &SaveOptions::default()).unwrap();
    assert_eq!(again.status, SaveStatus::Existing);
    // Same size, different content: hashed first, then stored as a new version.
    let mut other = data.clone();
    other[123] ^= 0xff;
    let path = lab.write("big/matrix.bin", &other);
    let v2 = lab.instance.save(&path, &SaveOptions::default()).unwrap();
    assert!(matches!(v2.status, SaveStatus::NewVersion { .. }));
    assert_eq!(objects(&lab.storage_root()).len(), 2);
}
