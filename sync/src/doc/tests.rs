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
    assert_eq!(added.len(), 1);
    assert_eq!((added[0].actor, added[0].ms), (*key(2).as_bytes(), 99));
    assert!(b.has_change(&added[0].hash));
    assert_eq!(b.authors().len(), 2);
}

#[test]
fn merge_reports_only_what_was_new() {
    let (mut a, mut b) = pair();
    let mut same = b.clone();
    assert!(!a.merge(&mut same).unwrap(), "nothing new");
    b.edit(&key(2), at(20), &[Edit::set("size", FieldValue::Int(2))])
        .unwrap();
    assert!(a.merge(&mut b).unwrap());
    assert!(!a.merge(&mut b).unwrap(), "idempotent");
}

fn text(doc: &RecordDoc, field: &str) -> Option<String> {
    match doc.get(field) {
        Some(FieldValue::Text(t)) => Some(t),
        _ => None,
    }
}

#[test]
fn updating_a_text_splices_only_the_difference_so_concurrent_updates_interleave() {
    let (mut a, _) = pair();
    a.edit(
        &key(1),
        at(11),
        &[Edit::update_text("description", "plate one, first run")],
    )
    .unwrap();
    assert_eq!(
        text(&a, "description").as_deref(),
        Some("plate one, first run")
    );
    let mut b = RecordDoc::load(&a.save()).unwrap();
    // Node 1 rewrites the start, node 2 the end, concurrently.
    a.edit(
        &key(1),
        at(12),
        &[Edit::update_text("description", "Plate 1, first run")],
    )
    .unwrap();
    b.edit(
        &key(2),
        at(12),
        &[Edit::update_text("description", "plate one, second run")],
    )
    .unwrap();
    sync_both(&mut a, &mut b);
    assert_eq!(
        text(&a, "description").as_deref(),
        Some("Plate 1, second run")
    );
    assert!(a.conflicts().is_empty(), "{:?}", a.conflicts());
    // The same text again is no change at all.
    let same = a
        .edit(
            &key(1),
            at(13),
            &[Edit::update_text("description", "Plate 1, second run")],
        )
        .unwrap();
    assert_eq!(same, None);
    // A scalar field becomes a text.
    a.edit(&key(1), at(14), &[Edit::update_text("key", "now text")])
        .unwrap();
    assert_eq!(text(&a, "key").as_deref(), Some("now text"));
}

#[test]
fn a_conflict_on_the_tombstone_is_resolved_by_a_later_delete_or_restore() {
    let (mut a, mut b) = pair();
    a.edit(&key(1), at(21), &[Edit::Tombstone]).unwrap();
    b.edit(&key(2), at(21), &[Edit::Restore]).unwrap();
    sync_both(&mut a, &mut b);
    assert_eq!(a.view().conflicted, vec![DELETED.to_string()]);
    // The node writes the winner's value again to resolve: still a change.
    let winner = a.is_deleted();
    let mut c = a.clone();
    assert!(
        c.edit(&key(1), at(22), &[Edit::resolve_deleted(winner)])
            .unwrap()
            .is_some()
    );
    assert!(c.view().conflicted.is_empty());
    assert_eq!(
        Edit::resolve(DELETED, FieldValue::Bool(false)),
        Edit::Restore,
        "resolve(\"$deleted\", false) is a restore"
    );
    b.edit(
        &key(2),
        at(22),
        &[Edit::resolve(DELETED, FieldValue::Bool(false))],
    )
    .unwrap();
    sync_both(&mut a, &mut b);
    assert!(a.view().conflicted.is_empty());
    assert!(!a.is_deleted());
    // Any other value for `$deleted` is refused, with the reason.
    let err = a
        .edit(
            &key(1),
            at(23),
            &[Edit::resolve(DELETED, FieldValue::Int(1))],
        )
        .unwrap_err();
    assert!(matches!(err, DocError::InvalidField { .. }), "{err}");
}

#[test]
fn a_document_rebuilt_without_a_change_drops_its_dependents_too() {
    let (mut a, mut b) = pair();
    // Node 2's change, then node 1's change made after seeing it.
    let bad = b
        .edit_hashed(&key(2), at(30), &[Edit::set("kind", s("x"))])
        .unwrap()
        .unwrap();
    a.merge(&mut b.clone()).unwrap();
    let dependent = a
        .edit_hashed(&key(1), at(31), &[Edit::set("size", FieldValue::Int(5))])
        .unwrap()
        .unwrap();
    let independent = b
        .edit_hashed(&key(2), at(29), &[Edit::set("note", s("early"))])
        .unwrap();
    assert!(independent.is_some());
    let bad_ms = 30;
    let invalid = a.invalid_changes(|c| !(c.actor == *key(2).as_bytes() && c.ms >= bad_ms));
    let hashes: Vec<[u8; 32]> = invalid.iter().map(|i| i.change.hash).collect();
    assert_eq!(hashes, vec![bad.hash, dependent.hash]);
    assert!(invalid[0].direct && !invalid[1].direct);
    let drop = hashes.into_iter().collect();
    let rebuilt = a.without(&drop).unwrap();
    assert_eq!(rebuilt.get("kind"), None);
    assert_eq!(rebuilt.get("size"), Some(FieldValue::Int(1)));
    assert!(!rebuilt.has_change(&bad.hash));
    // Node 1's next change reuses the dropped change's sequence number: a
    // replica still holding the dropped change waits instead of failing.
    let mut rebuilt = rebuilt;
    let next = rebuilt
        .edit(&key(1), at(32), &[Edit::set("size", FieldValue::Int(6))])
        .unwrap()
        .unwrap();
    let mut holder = a.clone();
    assert_eq!(
        holder.apply_change(&key(1), &next),
        Err(DocError::SeqReused)
    );
    let mut other = rebuilt.clone();
    assert_eq!(holder.merge(&mut other), Err(DocError::SeqReused));
    assert_eq!(holder.heads(), a.heads(), "a refused merge changes nothing");
}

#[test]
fn missing_dependencies_are_named_and_orphan_changes_do_not_load() {
    let (mut a, _) = pair();
    let first = a
        .edit(&key(1), at(40), &[Edit::set("kind", s("x"))])
        .unwrap()
        .unwrap();
    let second = a
        .edit(&key(1), at(41), &[Edit::set("kind", s("y"))])
        .unwrap()
        .unwrap();
    let (_, base) = pair();
    let missing = base.missing_deps(&second).unwrap();
    assert_eq!(missing, vec![RecordDoc::change_hash(&first).unwrap()]);
    // A saved document followed by a change whose dependency is absent:
    // automerge would park it and apply it later, unchecked.
    let mut bytes = RecordDoc::load(&base.clone().save()).unwrap().save();
    bytes.extend_from_slice(&second);
    assert!(matches!(
        RecordDoc::load(&bytes),
        Err(DocError::MissingDeps { .. })
    ));
}

#[test]
fn saved_documents_hold_their_actor_ids_uncompressed() {
    // `Engine::revalidate` skips documents that do not contain an origin's
    // 32 bytes; that relies on this.
    let (mut a, mut b) = pair();
    b.edit(&key(2), at(50), &[Edit::set("kind", s("x"))])
        .unwrap();
    a.merge(&mut b).unwrap();
    for _ in 0..50 {
        a.edit(
            &key(1),
            at(51),
            &[Edit::update_text("description", "x".repeat(2000))],
        )
        .unwrap();
    }
    let bytes = a.save();
    for k in [key(1), key(2)] {
        assert!(bytes.windows(32).any(|w| w == k.as_bytes().as_slice()));
    }
}
