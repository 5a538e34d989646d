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
}

#[test]
fn an_unreadable_file_fails_clearly_and_writes_nothing() {
    let lab = Lab::new();
    // A file whose every read fails, for root too: reading a process's
    // memory at address 0 is an I/O error.
    #[cfg(target_os = "linux")]
    {
        let unreadable = std::path::Path::new("/proc/self/mem");
        let err = lab
            .instance
            .save(unreadable, &SaveOptions::default())
            .unwrap_err();
        assert!(
            matches!(err, Error::Io { .. }) && err.to_string().contains("/proc/self/mem"),
            "names the file: {err}"
        );
    }
    // What non-root users hit: no permission to read.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = lab.write("secret.csv", "x");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(&secret).is_err() {
            let err = lab
                .instance
                .save(&secret, &SaveOptions::default())
                .unwrap_err();
            assert!(err.to_string().contains("secret.csv"), "{err}");
        }
    }
    // Something that is neither a file nor a folder.
    #[cfg(unix)]
    {
        let fifo = lab.root().join("pipe.csv");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; creates a FIFO in our temp dir.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = lab
            .instance
            .save(&fifo, &SaveOptions::default())
            .unwrap_err();
        assert!(matches!(err, Error::UnsupportedFileType { .. }), "{err}");
    }
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

#[test]
fn two_files_that_would_share_a_key_in_one_call_are_refused() {
    let lab = Lab::new();
    // Outside the instance, the key is the file name: both are "results.csv".
    let outside = lab.dir.path().join("x");
    for (sub, content) in [("a", "1"), ("b", "2")] {
        std::fs::create_dir_all(outside.join(sub)).unwrap();
        std::fs::write(outside.join(sub).join("results.csv"), content).unwrap();
    }
    let paths = [outside.join("a/results.csv"), outside.join("b/results.csv")];
    let err = lab
        .instance
        .save_many(&paths, &SaveOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a/results.csv") && err.contains("b/results.csv") && err.contains("--key"),
        "{err}"
    );
    assert!(
        objects(&lab.storage_root()).is_empty(),
        "nothing was stored"
    );
    // The same path twice is one file, not a collision.
    let twice = [paths[0].clone(), paths[0].clone()];
    let saved = lab
        .instance
        .save_many(&twice, &SaveOptions::default())
        .unwrap();
    assert_eq!(saved[0].artifact.uid, saved[1].artifact.uid);
}

#[test]
fn a_file_cannot_be_a_version_of_a_folder() {
    let lab = Lab::new();
    lab.write("run/a.txt", "a");
    let folder = lab
        .instance
        .save(lab.root().join("run"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let err = lab
        .instance
        .save(
            lab.write("summary.txt", "s"),
            &SaveOptions {
                revises: Some(folder.uid.clone()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("is a file, but") && err.to_string().contains("is a folder"),
        "{err}"
    );
    assert_eq!(lab.instance.versions(&folder.uid).unwrap().len(), 1);
}

#[test]
fn resaving_known_content_says_what_it_did_not_apply() {
    let lab = Lab::new();
    let path = lab.write("p.csv", "same");
    let first = lab
        .instance
        .save(&path, &SaveOptions::default())
        .unwrap()
        .artifact;
    let again = lab
        .instance
        .save(
            &path,
            &SaveOptions {
                key: Some("other/p.csv".into()),
                description: Some("new words".into()),
                version: Some("2.0".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(again.status, SaveStatus::Existing);
    let notes = again.notices.join("\n");
    assert!(
        notes.contains("nothing was saved under \"other/p.csv\""),
        "{notes}"
    );
    assert!(
        notes.contains("description was not changed") && notes.contains("labmesh edit"),
        "{notes}"
    );
    assert!(
        notes.contains("version tag \"2.0\" was not applied"),
        "{notes}"
    );
    assert_eq!(lab.instance.get(&first.uid).unwrap().description, None);

    // Content that is only in the trash: said so, with the way back.
    lab.instance.delete(&first.uid, false).unwrap();
    let trashed = lab.instance.save(&path, &SaveOptions::default()).unwrap();
    assert_eq!(trashed.status, SaveStatus::Existing);
    assert!(
        trashed.notices[0].contains("in the trash")
            && trashed.notices[0].contains(&format!("labmesh restore {}", first.uid)),
        "{:?}",
        trashed.notices
    );
}

#[test]
fn labmesh_own_files_are_never_saved() {
    let lab = Lab::new();
    let dot = lab.root().join(".labmesh");
    for path in [dot.clone(), dot.join("node.key"), dot.join("config.toml")] {
        let err = lab
            .instance
            .save(&path, &SaveOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("private key"), "{}: {err}", path.display());
    }
    let err = lab
        .instance
        .save(lab.root(), &SaveOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("instance's own directory"), "{err}");
    #[cfg(unix)]
    {
        // Not through a link either, alone or inside a folder.
        let link = lab.root().join("key.pem");
        std::os::unix::fs::symlink(dot.join("node.key"), &link).unwrap();
        assert!(lab.instance.save(&link, &SaveOptions::default()).is_err());
        lab.write("share/data.csv", "1");
        std::os::unix::fs::symlink(dot.join("node.key"), lab.root().join("share/key.pem")).unwrap();
        let err = lab
            .instance
            .save(lab.root().join("share"), &SaveOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");
        std::fs::remove_file(lab.root().join("share/key.pem")).unwrap();
    }
    // A folder holding another instance leaves that instance's .labmesh/ out.
    let other =
        labmesh::Instance::init(lab.root().join("share/nested"), &Default::default()).unwrap();
    drop(other);
    let saved = lab
        .instance
        .save(lab.root().join("share"), &SaveOptions::default())
        .unwrap();
    let files: Vec<String> = lab
        .instance
        .folder_entries(&saved.artifact)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(files, ["data.csv"], "no key, database or config inside");
    assert!(
        saved.notices.iter().any(|n| n.contains("left out")),
        "{:?}",
        saved.notices
    );
    let key = std::fs::read(lab.root().join("share/nested/.labmesh/node.key")).unwrap();
    for object in objects(&lab.storage_root()) {
        assert_ne!(std::fs::read(&object).unwrap(), key, "{}", object.display());
    }
}

#[test]
fn listings_leave_out_labmesh_own_artifacts_unless_asked() {
    let lab = Lab::new();
    lab.instance
        .save(lab.write("data.csv", "d"), &SaveOptions::default())
        .unwrap();
    // labmesh keeps run reports and transform sources under .labmesh/ keys.
    lab.instance
        .save(
            lab.write("report.txt", "captured output"),
            &SaveOptions {
                key: Some(".labmesh/runs/abc.txt".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let keys = |internal: bool| -> Vec<String> {
        lab.instance
            .list(&ListOptions {
                internal,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .filter_map(|a| a.key)
            .collect()
    };
    assert_eq!(keys(false), ["data.csv"]);
    assert_eq!(keys(true), [".labmesh/runs/abc.txt", "data.csv"]);
    assert!(
        lab.instance
            .get(".labmesh/runs/abc.txt")
            .unwrap()
            .is_internal()
    );
}

#[test]
fn the_latest_version_and_the_next_versions_predecessor_agree_on_ties() {
    let lab = Lab::new();
    let v1 = lab
        .instance
        .save(lab.write("t.csv", "1"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let v2 = lab
        .instance
        .save(lab.write("t.csv", "2"), &SaveOptions::default())
        .unwrap()
        .artifact;
    // Two versions created in the same millisecond (as replicas may see
    // them), the older one with the greater uid.
    let bumped = format!("{}zzzz", v1.stem());
    let db = rusqlite::Connection::open(lab.root().join(".labmesh/instance.db")).unwrap();
    db.execute(
        "UPDATE artifact SET uid = ?1, created_at = ?2 WHERE uid = ?3",
        rusqlite::params![bumped, v2.created_at, v1.uid],
    )
    .unwrap();
    // Trash and restore re-derive is_latest.
    lab.instance.delete(&v2.uid, false).unwrap();
    lab.instance.restore(&v2.uid).unwrap();
    let latest = lab.instance.get("t.csv").unwrap();
    assert_eq!(latest.uid, bumped, "ties go to the greater uid");
    let v3 = lab
        .instance
        .save(lab.write("t.csv", "3"), &SaveOptions::default())
        .unwrap()
        .artifact;
    assert_eq!(
        v3.revises.as_deref(),
        Some(bumped.as_str()),
        "the new version revises the latest"
    );
}

/// A `Progress` that records phases and runs `on_start` when a phase of
/// that label begins: a way to act at an exact moment inside a save.
#[derive(Default)]
pub struct Recorder {
    /// (label, total, sum of advances while it was the innermost phase).
    pub phases: std::sync::Mutex<Vec<(String, u64, u64)>>,
    pub open: std::sync::Mutex<Vec<usize>>,
    /// Advances reported while no phase was open.
    pub stray: std::sync::atomic::AtomicU64,
    #[allow(clippy::type_complexity)]
    pub on_start: Option<(String, Box<dyn Fn() + Send + Sync>)>,
}

impl labmesh::Progress for Recorder {
    fn start(&self, label: &str, total: u64) {
        let mut phases = self.phases.lock().unwrap();
        phases.push((label.to_string(), total, 0));
        self.open.lock().unwrap().push(phases.len() - 1);
        drop(phases);
        if let Some((when, f)) = &self.on_start
            && when == label
        {
            f();
        }
    }
    fn advance(&self, delta: u64) {
        match self.open.lock().unwrap().last() {
            Some(&i) => self.phases.lock().unwrap()[i].2 += delta,
            None => {
                self.stray
                    .fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    fn finish(&self) {
        self.open.lock().unwrap().pop();
    }
}

/// Rewrites a file in place with the same size and new bytes.
pub fn rewrite_in_place(path: &std::path::Path) {
    let mut bytes = std::fs::read(path).unwrap();
    for b in bytes.iter_mut().take(4096) {
        *b = b.wrapping_add(1);
    }
    std::fs::write(path, bytes).unwrap();
}

/// Nothing of a failed save is left: no row, no object, no staging file,
/// no verification record.
pub fn assert_nothing_committed(lab: &Lab) {
    assert!(
        lab.instance
            .list(&ListOptions::default())
            .unwrap()
            .is_empty(),
        "no row"
    );
    assert!(
        objects(&lab.storage_root()).is_empty(),
        "no object at an address"
    );
    let staging: Vec<_> = std::fs::read_dir(lab.storage_root().join(".tmp"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(staging.is_empty(), "no staging file: {staging:?}");
    let verified: i64 = lab
        .instance
        .connection()
        .query_row("SELECT count(*) FROM verified_file", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verified, 0, "nothing recorded as verified");
}

#[test]
fn a_file_changed_during_a_batch_save_is_refused_and_nothing_is_committed() {
    let mut lab = Lab::new();
    // Larger than a batch keeps in memory: hashed first, copied after.
    let big = lab.write("big.bin", vec![5u8; 3 << 20]);
    let small = lab.write("s.txt", "small");
    let target = big.clone();
    lab.instance.set_progress(std::sync::Arc::new(Recorder {
        on_start: Some((
            "storing".into(),
            Box::new(move || rewrite_in_place(&target)),
        )),
        ..Default::default()
    }));
    let err = lab
        .instance
        .save_many(&[big.clone(), small], &SaveOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::ChangedWhileSaving { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("big.bin") && msg.contains("save it again when it is no longer being written"),
        "{msg}"
    );
    assert_nothing_committed(&lab);
    // Once it is quiet, saving it works and hands out what is on disk.
    lab.instance
        .set_progress(std::sync::Arc::new(labmesh::NoProgress));
    let saved = lab.instance.save(&big, &SaveOptions::default()).unwrap();
    let cached = lab.instance.cache(&saved.artifact.uid).unwrap();
    assert_eq!(
        std::fs::read(cached.path).unwrap(),
        std::fs::read(&big).unwrap()
    );
}

#[test]
fn long_work_reports_progress_in_the_phases_it_started() {
    let mut lab = Lab::new();
    let recorder = std::sync::Arc::new(Recorder::default());
    lab.instance.set_progress(recorder.clone());
    lab.write("run/a.bin", vec![1u8; 300_000]);
    lab.write("run/b/c.bin", vec![2u8; 5_000]);
    lab.instance
        .save(lab.root().join("run"), &SaveOptions::default())
        .unwrap();
    let batch = [
        lab.write("x.bin", vec![3u8; 400_000]),
        lab.write("y.txt", "y"),
    ];
    lab.instance
        .save_many(&batch, &SaveOptions::default())
        .unwrap();
    lab.instance
        .save(
            lab.write("big.bin", vec![4u8; 5 << 20]),
            &SaveOptions::default(),
        )
        .unwrap();
    assert_eq!(
        recorder.stray.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "every advance falls in a started phase"
    );
    let phases = recorder.phases.lock().unwrap().clone();
    let labels: Vec<&str> = phases.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        labels,
        ["hashing", "storing", "hashing", "storing", "saving"],
        "{phases:?}"
    );
    for (label, total, done) in &phases {
        assert_eq!(done, total, "{label}: advances add up to the total");
    }
    assert_eq!(
        phases[1].1, 305_000,
        "the folder's bytes are counted while storing"
    );
    assert_eq!(phases[3].1, 400_001, "a batch counts bytes, not files");
}

#[test]
fn content_equal_to_a_labmesh_own_record_is_saved_as_the_users_own_artifact() {
    let lab = Lab::new();
    // Tracking a script stores its source as labmesh's own record.
    let script = lab.write("pipelines/step.sh", "echo step\n");
    let run = lab
        .instance
        .track(&labmesh::provenance::TrackOptions {
            source: Some(script),
            ..Default::default()
        })
        .unwrap();
    run.finish().unwrap();
    let own: Vec<labmesh::Artifact> = lab
        .instance
        .list(&labmesh::ListOptions {
            internal: true,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|a| a.key.as_deref().is_some_and(|k| k.starts_with(".labmesh/")))
        .collect();
    assert!(
        !own.is_empty(),
        "the source is stored as labmesh's own record"
    );
    // A user saves the same bytes: a user artifact, not the source record.
    let copy = lab.write("notes/step-copy.sh", "echo step\n");
    let saved = lab
        .instance
        .save(&copy, &labmesh::SaveOptions::default())
        .unwrap();
    assert_eq!(saved.artifact.key.as_deref(), Some("notes/step-copy.sh"));
    assert!(own.iter().all(|o| o.uid != saved.artifact.uid));
}
