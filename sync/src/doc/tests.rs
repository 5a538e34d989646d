use labmesh_crypto::NodeKey;

use super::*;

fn key(n: u8) -> PublicKey {
    NodeKey::from_secret_bytes(&[n; 32]).public_key()
}

fn at(ms: u64) -> Hlc {
    Hlc {
        ms,
        logical: 0,
        node: 0,
    }
}

fn s(v: &str) -> FieldValue {
    FieldValue::Str(v.into())
}

/// Two replicas of one record, created by node 1 and copied to node 2.
fn pair() -> (RecordDoc, RecordDoc) {
    let fields = [
        ("key".to_string(), s("raw/a.csv")),
        ("size".to_string(), FieldValue::Int(1)),
    ];
    let (mut a, _) = RecordDoc::create(&key(1), at(10), fields).unwrap();
    let b = RecordDoc::load(&a.save()).unwrap();
    (a, b)
}

fn sync_both(a: &mut RecordDoc, b: &mut RecordDoc) {
    let mut b2 = b.clone();
    a.merge(&mut b2).unwrap();
    let mut a2 = a.clone();
    b.merge(&mut a2).unwrap();
    assert_eq!(a.heads(), b.heads());
}

#[test]
fn create_reads_back_fields_and_creation_time() {
    let (a, _) = pair();
    assert_eq!(a.get("key"), Some(s("raw/a.csv")));
    assert_eq!(a.created(), Some(at(10)));
    assert!(!a.is_deleted());
    assert_eq!(a.fields().len(), 2, "reserved fields are not user fields");
}

#[test]
fn concurrent_writes_to_different_fields_both_survive() {
    let (mut a, mut b) = pair();
    a.edit(&key(1), at(20), &[Edit::set("key", s("raw/b.csv"))])
        .unwrap();
    b.edit(&key(2), at(21), &[Edit::set("size", FieldValue::Int(9))])
        .unwrap();
    sync_both(&mut a, &mut b);
    assert_eq!(a.get("key"), Some(s("raw/b.csv")));
    assert_eq!(a.get("size"), Some(FieldValue::Int(9)));
    assert!(a.conflicts().is_empty());
}

#[test]
fn concurrent_writes_to_one_field_conflict_with_the_same_winner_everywhere() {
    let (mut a, mut b) = pair();
    a.edit(&key(1), at(20), &[Edit::set("key", s("from-1"))])
        .unwrap();
    b.edit(&key(2), at(20), &[Edit::set("key", s("from-2"))])
        .unwrap();
    sync_both(&mut a, &mut b);
    let conflicts = a.conflicts();
    assert_eq!(conflicts, b.conflicts());
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].values, vec![s("from-1"), s("from-2")]);
    assert_eq!(a.get("key"), b.get("key"));
    assert_eq!(a.view().conflicted, vec!["key".to_string()]);

    // Resolving writes a value that supersedes both.
    a.edit(&key(1), at(30), &[Edit::resolve("key", s("agreed"))])
        .unwrap();
    sync_both(&mut a, &mut b);
    assert!(b.conflicts().is_empty());
    assert_eq!(b.get("key"), Some(s("agreed")));
}

#[test]
fn concurrent_text_splices_interleave() {
    let (mut a, _) = pair();
    a.edit(
        &key(1),
        at(11),
        &[Edit::set(
            "description",
            FieldValue::Text("plate one".into()),
        )],
    )
    .unwrap();
    let mut b = RecordDoc::load(&a.save()).unwrap();
    let splice = |pos, insert: &str| Edit::Splice {
        field: "description".into(),
        pos,
        delete: 0,
        insert: insert.into(),
    };
    a.edit(&key(1), at(20), &[splice(0, "big ")]).unwrap();
    b.edit(&key(2), at(20), &[splice(9, ", run 2")]).unwrap();
    sync_both(&mut a, &mut b);
    assert_eq!(
        a.get("description"),
        Some(FieldValue::Text("big plate one, run 2".into()))
    );
    // Positions past the end are clamped, never an error.
    a.edit(&key(1), at(30), &[splice(10_000, "!")]).unwrap();
    assert_eq!(
        a.get("description"),
        Some(FieldValue::Text("big plate one, run 2!".into()))
    );
    let err = a.edit(
        &key(1),
        at(31),
        &[Edit::Splice {
            field: "key".into(),
            pos: 0,
            delete: 0,
            insert: "x".into(),
        }],
    );
    assert_eq!(
        err,
        Err(DocError::NotText {
            field: "key".into()
        })
    );
}

#[test]
fn a_concurrent_edit_and_delete_leave_the_record_deleted_with_the_edit_kept() {
    let (mut a, mut b) = pair();
    a.edit(&key(1), at(20), &[Edit::Tombstone]).unwrap();
    b.edit(&key(2), at(20), &[Edit::set("size", FieldValue::Int(5))])
        .unwrap();
    sync_both(&mut a, &mut b);
    assert!(a.is_deleted() && b.is_deleted());
    assert_eq!(a.get("size"), Some(FieldValue::Int(5)));
    a.edit(&key(1), at(30), &[Edit::Restore]).unwrap();
    assert!(!a.is_deleted());
}

#[test]
fn changes_apply_only_from_their_own_actor_and_after_their_deps() {
    let (mut a, mut b) = pair();
    let c1 = a
        .edit(&key(1), at(20), &[Edit::set("size", FieldValue::Int(2))])
        .unwrap()
        .unwrap();
    let c2 = a
        .edit(&key(1), at(21), &[Edit::set("size", FieldValue::Int(3))])
        .unwrap()
        .unwrap();
    assert!(matches!(
        b.apply_change(&key(2), &c1),
        Err(DocError::WrongActor { .. })
    ));
    assert_eq!(
        b.apply_change(&key(1), &c2),
        Err(DocError::MissingDeps { missing: 1 })
    );
    assert_eq!(b.apply_change(&key(1), &c1), Ok(true));
    assert_eq!(
        b.apply_change(&key(1), &c1),
        Ok(false),
        "duplicates are no-ops"
    );
    assert_eq!(b.apply_change(&key(1), &c2), Ok(true));
    assert_eq!(a.heads(), b.heads());
    assert!(b.apply_change(&key(1), b"garbage").is_err());
}

#[test]
fn incremental_saves_append_to_a_loadable_document() {
    let (mut a, _) = pair();
    let mut bytes = a.save();
    a.edit(&key(1), at(20), &[Edit::set("size", FieldValue::Int(2))])
        .unwrap();
    bytes.extend(a.save_incremental());
    a.edit(&key(1), at(21), &[Edit::Delete("key".into())])
        .unwrap();
    bytes.extend(a.save_incremental());
    let b = RecordDoc::load(&bytes).unwrap();
    assert_eq!(b.heads(), a.heads());
    assert_eq!(b.get("key"), None);
    assert_eq!(b.get("size"), Some(FieldValue::Int(2)));
}

#[test]
fn reserved_and_oversized_field_names_are_refused() {
    let (mut a, _) = pair();
    for name in ["$deleted", "", &"x".repeat(65)] {
        let err = a.edit(&key(1), at(20), &[Edit::set(name, FieldValue::Null)]);
        assert!(matches!(err, Err(DocError::InvalidField { .. })), "{name}");
    }
}

#[test]
fn merged_changes_name_their_authors() {
    let (a, mut b) = pair();
    b.edit(&key(2), at(99), &[Edit::set("size", FieldValue::Int(2))])
        .unwrap();
    let added = a.authors_added(&b);
    assert_eq!(
        added,
        vec![Authorship {
            actor: *key(2).as_bytes(),
            ms: 99
        }]
    );
    assert_eq!(b.authors().len(), 2);
}
