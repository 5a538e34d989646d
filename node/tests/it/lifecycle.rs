//! Trash, restore, permanent deletion, gc, and corrupted content.

use labmesh::{Error, GcOptions, ListOptions, SaveOptions};

use crate::{Lab, objects, tamper};

#[test]
fn trash_and_restore_move_is_latest() {
    let lab = Lab::new();
    let v1 = lab
        .instance
        .save(lab.write("p.csv", "1"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let v2 = lab
        .instance
        .save(lab.write("p.csv", "2"), &SaveOptions::default())
        .unwrap()
        .artifact;
    let deleted = lab.instance.delete(&v2.uid, false).unwrap();
    assert!(!deleted.permanent);
    assert!(
        lab.instance.get(&v1.uid).unwrap().is_latest,
        "the previous version becomes latest"
    );
    assert_eq!(lab.instance.get("p.csv").unwrap().uid, v1.uid);
    let trash = lab
        .instance
        .list(&ListOptions {
            trash: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(trash.iter().map(|a| &a.uid).collect::<Vec<_>>(), [&v2.uid]);
    assert_eq!(
        objects(&lab.storage_root()).len(),
        2,
        "trashing keeps the content"
    );

    let (restored, _) = lab.instance.restore(&v2.uid).unwrap();
    assert!(restored.is_latest);
    assert!(!lab.instance.get(&v1.uid).unwrap().is_latest);
    assert!(matches!(
        lab.instance.restore(&v2.uid),
        Err(Error::NotTrashed { .. })
    ));
}

#[test]
fn permanent_delete_removes_only_unshared_content() {
    let lab = Lab::new();
    let a = lab
        .instance
        .save(lab.write("a.txt", "shared"), &SaveOptions::default())
        .unwrap()
        .artifact;
    // A folder containing the same bytes shares the object.
    lab.write("f/inner.txt", "shared");
    lab.write("f/own.txt", "own");
    let folder = lab
        .instance
        .save(lab.root().join("f"), &SaveOptions::default())
        .unwrap()
        .artifact;
    assert_eq!(objects(&lab.storage_root()).len(), 3); // shared, own, manifest

    let d = lab.instance.delete(&a.uid, true).unwrap();
    assert_eq!(
        d.objects_removed, 0,
        "the folder still references the bytes"
    );
    assert!(lab.instance.get(&a.uid).is_err());
    lab.instance.cache(&folder.uid).unwrap();

    let d = lab.instance.delete(&folder.uid, true).unwrap();
    assert_eq!(d.objects_removed, 3);
    assert!(objects(&lab.storage_root()).is_empty());
    assert!(
        !lab.root()
            .join(".labmesh/cache/folders")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "materialized copy gone"
    );
}

#[test]
fn gc_removes_unreferenced_objects_and_staging_files_only() {
    let lab = Lab::new();
    let kept = lab
        .instance
        .save(lab.write("keep.txt", "keep"), &SaveOptions::default())
        .unwrap()
        .artifact;
    // Leftovers of crashed saves: an object with no row, a half-written staging file.
    let orphan = lab
        .storage_root()
        .join("objects/ab/ab".to_string() + &"0".repeat(62) + ".bin");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, "orphan").unwrap();
    std::fs::write(lab.storage_root().join(".tmp/x.partial"), "half").unwrap();

    let dry = lab.instance.gc(&GcOptions { dry_run: true }).unwrap();
    assert_eq!(
        (
            dry.unreferenced_objects,
            dry.staging_files,
            dry.kept_objects
        ),
        (1, 1, 1)
    );
    assert!(orphan.exists(), "a dry run removes nothing");

    let report = lab.instance.gc(&GcOptions::default()).unwrap();
    assert_eq!(
        (report.unreferenced_objects, report.unreferenced_bytes),
        (1, 6)
    );
    assert_eq!(report.staging_files, 1);
    assert!(!orphan.exists());
    assert!(!lab.storage_root().join(".tmp/x.partial").exists());
    assert_eq!(
        std::fs::read(lab.instance.cache(&kept.uid).unwrap().path).unwrap(),
        b"keep"
    );
    // Trashed artifacts still own their content.
    lab.instance.delete(&kept.uid, false).unwrap();
    assert_eq!(
        lab.instance
            .gc(&GcOptions::default())
            .unwrap()
            .unreferenced_objects,
        0
    );
}

#[test]
fn corrupted_content_is_caught_and_resaving_heals_it() {
    let lab = Lab::new();
    let path = lab.write("c.csv", "a,b\n1,2\n");
    let a = lab
        .instance
        .save(&path, &SaveOptions::default())
        .unwrap()
        .artifact;
    let object = lab.instance.cache(&a.uid).unwrap().path;
    // Same size, different bytes: only the hash can tell.
    tamper(&object, b"a,b\n1,3\n");
    let err = lab.instance.cache(&a.uid).unwrap_err();
    match &err {
        Error::Corrupted { expected, .. } => assert_eq!(expected, &a.hash.to_hex()),
        other => panic!("expected corruption, got {other}"),
    }
    assert!(err.to_string().contains("save the original file again"));
    // Saving the original again rewrites the object.
    lab.instance.save(&path, &SaveOptions::default()).unwrap();
    assert_eq!(
        std::fs::read(lab.instance.cache(&a.uid).unwrap().path).unwrap(),
        b"a,b\n1,2\n"
    );

    std::fs::remove_file(&object).unwrap();
    assert!(matches!(
        lab.instance.cache(&a.uid),
        Err(Error::ContentMissing { .. })
    ));
}
