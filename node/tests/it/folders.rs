//! Folders: one artifact per folder, identified by its manifest.

use labmesh::{ArtifactKind, Error, SaveOptions, SaveStatus};

use crate::{Lab, objects, tamper};

fn make_run(lab: &Lab, dir: &str) -> std::path::PathBuf {
    lab.write(&format!("{dir}/counts.csv"), "gene,count\nA,1\n");
    lab.write(&format!("{dir}/meta/sample.json"), "{\"id\": 42}");
    lab.write(&format!("{dir}/meta/copy.json"), "{\"id\": 42}");
    lab.root().join(dir)
}

#[test]
fn a_folder_is_one_artifact_with_a_manifest_hash() {
    let lab = Lab::new();
    let dir = make_run(&lab, "data/run42.zarr");
    let saved = lab.instance.save(&dir, &SaveOptions::default()).unwrap();
    let a = &saved.artifact;
    assert_eq!(a.kind, ArtifactKind::Folder);
    assert_eq!(a.key.as_deref(), Some("data/run42.zarr"));
    assert_eq!(a.suffix, ".zarr");
    assert_eq!(a.n_files, Some(3));
    let entries = lab.instance.folder_entries(a).unwrap();
    let paths: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["counts.csv", "meta/copy.json", "meta/sample.json"]);
    // Two equal files are stored once; plus the manifest.
    assert_eq!(objects(&lab.storage_root()).len(), 3);
    let manifest = std::fs::read_to_string(lab.storage_root().join(format!(
        "objects/{}/{}.manifest",
        &a.hash.to_hex()[..2],
        a.hash
    )))
    .unwrap();
    assert_eq!(
        labmesh::ContentHash::of(manifest.as_bytes()),
        a.hash,
        "the folder's hash is its manifest's"
    );

    // Same tree elsewhere: the existing artifact. A changed file: a new version.
    let again = lab.instance.save(&dir, &SaveOptions::default()).unwrap();
    assert_eq!(again.status, SaveStatus::Existing);
    lab.write("data/run42.zarr/counts.csv", "gene,count\nA,2\n");
    let v2 = lab.instance.save(&dir, &SaveOptions::default()).unwrap();
    assert!(matches!(v2.status, SaveStatus::NewVersion { .. }));
    assert_eq!(
        objects(&lab.storage_root()).len(),
        5,
        "unchanged files are not stored again"
    );
}

#[test]
fn cache_materializes_a_verified_folder() {
    let lab = Lab::new();
    let dir = make_run(&lab, "run7");
    let saved = lab.instance.save(&dir, &SaveOptions::default()).unwrap();
    let cached = lab.instance.cache(&saved.artifact.uid).unwrap();
    assert_eq!(
        std::fs::read_to_string(cached.path.join("meta/sample.json")).unwrap(),
        "{\"id\": 42}"
    );
    assert_eq!(
        std::fs::read_to_string(cached.path.join("counts.csv")).unwrap(),
        "gene,count\nA,1\n"
    );
    // Second call: same path, nothing re-done.
    assert_eq!(
        lab.instance.cache(&saved.artifact.uid).unwrap().path,
        cached.path
    );
    // Tampering with a materialized file (a hard link to the object) is caught.
    tamper(&cached.path.join("counts.csv"), b"gene,count\nA,999\n");
    let err = lab.instance.cache(&saved.artifact.uid).unwrap_err();
    assert!(matches!(err, Error::Corrupted { .. }), "{err}");
}

#[test]
fn empty_folders_and_folder_links_are_refused() {
    let lab = Lab::new();
    let empty = lab.root().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = lab
        .instance
        .save(&empty, &SaveOptions::default())
        .unwrap_err();
    assert!(err.to_string().contains("no files"), "{err}");
    #[cfg(unix)]
    {
        let dir = make_run(&lab, "linked");
        std::os::unix::fs::symlink(lab.root().join("empty"), dir.join("loop")).unwrap();
        let err = lab
            .instance
            .save(&dir, &SaveOptions::default())
            .unwrap_err();
        assert!(err.to_string().contains("link to a folder"), "{err}");
    }
    assert!(objects(&lab.storage_root()).is_empty());
}

#[test]
fn a_member_changed_during_a_folder_save_is_refused_and_nothing_is_committed() {
    let mut lab = Lab::new();
    let dir = make_run(&lab, "busy");
    let member = lab.write("busy/frames.bin", vec![9u8; 2 << 20]);
    lab.instance
        .set_progress(std::sync::Arc::new(crate::artifacts::Recorder {
            on_start: Some((
                "storing".into(),
                Box::new(move || crate::artifacts::rewrite_in_place(&member)),
            )),
            ..Default::default()
        }));
    let err = lab
        .instance
        .save(&dir, &SaveOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::ChangedWhileSaving { .. }), "{err}");
    assert!(err.to_string().contains("frames.bin"), "{err}");
    crate::artifacts::assert_nothing_committed(&lab);
}

#[test]
fn a_materialized_folder_that_no_longer_matches_is_rebuilt() {
    let lab = Lab::new();
    let dir = make_run(&lab, "run9");
    let saved = lab.instance.save(&dir, &SaveOptions::default()).unwrap();
    let cached = lab.instance.cache(&saved.artifact.uid).unwrap().path;

    // A file added to the cache copy: it is not part of the artifact.
    std::fs::write(cached.join("extra.txt"), "not in the artifact").unwrap();
    std::fs::create_dir_all(cached.join("meta/new")).unwrap();
    let again = lab.instance.cache(&saved.artifact.uid).unwrap().path;
    assert_eq!(again, cached);
    assert!(!cached.join("extra.txt").exists(), "rebuilt without it");
    assert!(!cached.join("meta/new").exists());

    // A member deleted from the cache copy: put back, not an error.
    std::fs::remove_file(cached.join("meta/sample.json")).unwrap();
    let again = lab.instance.cache(&saved.artifact.uid).unwrap().path;
    assert_eq!(
        std::fs::read_to_string(again.join("meta/sample.json")).unwrap(),
        "{\"id\": 42}"
    );
    let mut files: Vec<String> = Vec::new();
    let mut stack = vec![again.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path().strip_prefix(&again).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    assert_eq!(files, ["counts.csv", "meta/copy.json", "meta/sample.json"]);
}
