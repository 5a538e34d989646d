//! Collections: typo guards on keys; removing and reordering members as
//! new versions; the list of versions; schemas listed.

use super::{filter, plates};
use crate::Lab;

fn with_study() -> Lab {
    let lab = plates();
    lab.instance
        .add_collection("my-study", &["raw/plate1.parquet".into()], None, false)
        .unwrap();
    lab
}

#[test]
fn collection_keys_are_guarded_against_typos_and_case() {
    let lab = with_study();
    let i = &lab.instance;
    for near in ["my-stduy", "My-Study", "my-studyy"] {
        let err = i
            .add_collection(near, &["raw/plate2.parquet".into()], None, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("did you mean \"my-study\"") && err.contains("--force"),
            "{near}: {err}"
        );
    }
    assert_eq!(i.collections().unwrap().len(), 1, "nothing was created");
    // A series member is not a typo; --force creates a near one anyway.
    i.add_collection("my-study2", &["raw/plate2.parquet".into()], None, false)
        .unwrap();
    let forced = i
        .add_collection("My-Study", &["raw/plate2.parquet".into()], None, true)
        .unwrap();
    assert!(forced.created);
}

#[test]
fn members_are_removed_and_reordered_as_new_versions() {
    let lab = with_study();
    let i = &lab.instance;
    let v2 = i
        .add_collection(
            "my-study",
            &["raw/plate2.parquet".into(), "proc/plate3.parquet".into()],
            None,
            false,
        )
        .unwrap()
        .record;
    let v3 = i
        .reorder_collection(
            "my-study",
            &[
                "proc/plate3.parquet".into(),
                "raw/plate1.parquet".into(),
                "raw/plate2.parquet".into(),
            ],
        )
        .unwrap();
    assert!(v3.created);
    assert_eq!(v3.record.revises.as_deref(), Some(v2.uid.as_str()));
    let keys = |c: &labmesh::registry::collection::Collection| -> Vec<String> {
        i.collection_members(c)
            .unwrap()
            .into_iter()
            .map(|a| a.key.unwrap())
            .collect()
    };
    assert_eq!(
        keys(&v3.record),
        [
            "proc/plate3.parquet",
            "raw/plate1.parquet",
            "raw/plate2.parquet"
        ]
    );
    assert_ne!(v3.record.hash, v2.hash, "the order is part of the hash");
    let v4 = i
        .remove_from_collection("my-study", &["raw/plate1.parquet".into()])
        .unwrap()
        .record;
    assert_eq!(keys(&v4), ["proc/plate3.parquet", "raw/plate2.parquet"]);
    assert_eq!(v4.n_artifacts, 2);
    assert_eq!(i.collection("my-study").unwrap().uid, v4.uid, "latest");

    let versions = i.collection_versions("my-study").unwrap();
    let counts: Vec<u64> = versions.iter().map(|c| c.n_artifacts).collect();
    assert_eq!(counts, [1, 3, 3, 2], "oldest first");
    assert_eq!(versions.iter().filter(|c| c.is_latest).count(), 1);
    assert!(versions[3].is_latest);

    for (result, why) in [
        (
            i.remove_from_collection("my-study", &["raw/plate1.parquet".into()]),
            "is not in collection",
        ),
        (
            i.reorder_collection("my-study", &["raw/plate2.parquet".into()]),
            "missing:",
        ),
        (
            i.remove_from_collection(
                "my-study",
                &["raw/plate2.parquet".into(), "proc/plate3.parquet".into()],
            ),
            "empty",
        ),
        (
            i.remove_from_collection("no-such", &["raw/plate2.parquet".into()]),
            "no collection",
        ),
    ] {
        let err = result.unwrap_err().to_string();
        assert!(err.contains(why), "{why}: {err}");
    }
    assert_eq!(
        i.collection_versions("my-study").unwrap().len(),
        4,
        "refused whole"
    );
}

#[test]
fn schemas_are_listed_by_name() {
    let lab = plates();
    let i = &lab.instance;
    i.add_schema("tissue-only", &["tissue".into()], false, None, false)
        .unwrap();
    i.add_schema("qc", &["temperature".into()], true, Some("qc"), false)
        .unwrap();
    let names: Vec<String> = i.schemas().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["qc", "tissue-only"]);
}

#[test]
fn schemas_and_collections_deduplicate_and_version() {
    let lab = plates();
    let s1 = lab
        .instance
        .add_schema(
            "plate-schema",
            &["tissue".into(), "temperature".into()],
            false,
            None,
            false,
        )
        .unwrap();
    assert!(s1.created);
    let s2 = lab
        .instance
        .add_schema(
            "other",
            &["temp".into(), "tissue".into()],
            false,
            None,
            false,
        )
        .unwrap();
    assert!(!s2.created, "same unordered set, even through a synonym");
    assert_eq!(s2.record.uid, s1.record.uid);
    let s3 = lab
        .instance
        .add_schema(
            "ordered",
            &["temperature".into(), "tissue".into()],
            true,
            None,
            false,
        )
        .unwrap();
    assert!(s3.created, "ordered sets differ from unordered ones");
    let err = lab
        .instance
        .add_schema("x", &["nope".into()], false, None, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no feature \"nope\""), "{err}");

    let c1 = lab
        .instance
        .add_collection(
            "study",
            &["raw/plate1.parquet".into(), "raw/plate2.parquet".into()],
            Some("pilot"),
            false,
        )
        .unwrap();
    assert_eq!(c1.record.n_artifacts, 2);
    let c2 = lab
        .instance
        .add_collection("study", &["proc/plate3.parquet".into()], None, false)
        .unwrap();
    assert_eq!(c2.record.n_artifacts, 3);
    assert_eq!(
        &c2.record.uid[..16],
        &c1.record.uid[..16],
        "versions share the stem"
    );
    assert_eq!(c2.record.revises.as_deref(), Some(c1.record.uid.as_str()));
    assert_eq!(c2.record.description.as_deref(), Some("pilot"));
    let again = lab
        .instance
        .add_collection("study", &["raw/plate1.parquet".into()], None, false)
        .unwrap();
    assert!(!again.created, "nothing new: the same version");
    assert_eq!(lab.instance.collection("study").unwrap().uid, c2.record.uid);
    let members: Vec<String> = lab
        .instance
        .collection_members(&c2.record)
        .unwrap()
        .into_iter()
        .map(|a| a.key.unwrap())
        .collect();
    assert_eq!(
        members,
        [
            "raw/plate1.parquet",
            "raw/plate2.parquet",
            "proc/plate3.parquet"
        ]
    );
    assert_eq!(filter(&lab.instance, "collections.key = study").len(), 3);
    let err = lab
        .instance
        .delete("raw/plate1.parquet", true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("member of collection study"), "{err}");
    assert!(
        lab.instance.get("raw/plate1.parquet").is_ok(),
        "refused whole"
    );
}
