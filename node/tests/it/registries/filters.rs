//! The filter language's semantics on relations and features, its limits,
//! literals, and what bound values protect.

use labmesh::SaveOptions;
use labmesh::query::{Expr, FilterOptions, Found, field};
use labmesh::registry::label::LabelSpec;
use labmesh::search::Registry;

use super::{feature, filter, label};
use crate::Lab;

/// a: liver + organ, CD4 + CD8; b: liver, CD4; c: nothing.
fn three() -> Lab {
    let lab = Lab::new();
    label(&lab, "liver", "tissue");
    label(&lab, "organ", "tissue");
    feature(&lab, "markers", "list[str]");
    for key in ["a.txt", "b.txt", "c.txt"] {
        lab.instance
            .save(lab.write(key, key), &SaveOptions::default())
            .unwrap();
    }
    let i = &lab.instance;
    i.annotate(
        "a.txt",
        &["liver".into(), "organ".into()],
        &[("markers".into(), "CD4,CD8".into())],
    )
    .unwrap();
    i.annotate(
        "b.txt",
        &["liver".into()],
        &[("markers".into(), "CD4".into())],
    )
    .unwrap();
    lab
}

#[test]
fn two_conditions_on_one_relation_or_list_feature_can_both_hold() {
    let lab = three();
    let i = &lab.instance;
    assert_eq!(
        filter(i, "labels.name = liver and labels.name = organ"),
        ["a.txt"],
        "the artifact with both labels"
    );
    assert_eq!(filter(i, "markers = CD4 and markers = CD8"), ["a.txt"]);
    assert_eq!(
        filter(i, "labels.name = liver and labels.type = tissue"),
        ["a.txt", "b.txt"]
    );
    assert_eq!(
        filter(i, "labels.name = organ or markers = CD4"),
        ["a.txt", "b.txt"]
    );
}

#[test]
fn not_equal_on_a_relation_or_feature_means_none_equal() {
    let lab = three();
    let i = &lab.instance;
    assert_eq!(
        filter(i, "labels.name != organ"),
        ["b.txt", "c.txt"],
        "a has organ (and liver): it is not 'a label other than organ'"
    );
    assert_eq!(filter(i, "labels.name != liver"), ["c.txt"]);
    assert_eq!(filter(i, "markers != CD8"), ["b.txt", "c.txt"]);
    assert_eq!(
        filter(i, "labels.name not in (organ, kidney)"),
        ["b.txt", "c.txt"]
    );
    assert_eq!(filter(i, "labels.name != null"), ["a.txt", "b.txt"]);
    assert_eq!(filter(i, "labels.name = null"), ["c.txt"]);
    assert_eq!(
        filter(i, "not labels.name = organ"),
        filter(i, "labels.name != organ")
    );
}

#[test]
fn deep_or_huge_filters_get_clear_errors_not_crashes() {
    let lab = three();
    let i = &lab.instance;
    let opts = FilterOptions::default();
    let error = |expr: &str| {
        i.filter(Registry::Artifact, expr, &opts)
            .unwrap_err()
            .to_string()
    };
    let parens = format!("{}key = 'a.txt'{}", "(".repeat(2000), ")".repeat(2000));
    assert!(error(&parens).contains("more than 64 levels deep"));
    let nots = format!("{}key = 'a.txt'", "not ".repeat(30_000));
    assert!(error(&nots).contains("more than 64 levels deep"));
    let terms: Vec<String> = (0..1000).map(|n| format!("size != {n}")).collect();
    let err = error(&terms.join(" and "));
    assert!(
        err.contains("more than 200 comparisons") && err.contains("in ("),
        "{err}"
    );
    // 200 comparisons are fine, on relations too.
    let terms: Vec<String> = (0..200).map(|n| format!("labels.name != x{n}")).collect();
    assert_eq!(filter(i, &terms.join(" and ")).len(), 3);
    // A list longer than SQLite's limit on bound parameters.
    let mut keys: Vec<String> = (0..40_000).map(|n| format!("'k{n}'")).collect();
    keys.push("'b.txt'".into());
    assert_eq!(
        filter(i, &format!("key in ({})", keys.join(", "))),
        ["b.txt"]
    );
    // Built expressions are held to the same limits.
    let mut deep: Expr = field("key").eq("a.txt");
    for _ in 0..10_000 {
        deep = deep.not();
    }
    let err = i
        .filter_expr(Registry::Artifact, &deep, &opts)
        .unwrap_err()
        .to_string();
    assert!(err.contains("levels deep"), "{err}");
    std::mem::forget(deep); // dropping 10,000 nested boxes recurses too
}

#[test]
fn ints_above_2_pow_53_are_stored_and_compared_exactly() {
    let lab = three();
    let i = &lab.instance;
    feature(&lab, "reads", "int");
    i.annotate("a.txt", &[], &[("reads".into(), "9007199254740993".into())])
        .unwrap();
    i.annotate("b.txt", &[], &[("reads".into(), "9007199254740992".into())])
        .unwrap();
    let a = i.annotations("a.txt").unwrap();
    assert!(
        a.features
            .contains(&("reads".into(), vec!["9007199254740993".into()])),
        "{a:?}"
    );
    assert_eq!(filter(i, "reads = 9007199254740993"), ["a.txt"]);
    assert_eq!(filter(i, "reads > 9007199254740992"), ["a.txt"]);
    assert_eq!(filter(i, "reads < 9007199254740993"), ["b.txt"]);
    assert_eq!(filter(i, "reads in (9007199254740993, 1)"), ["a.txt"]);
}

#[test]
fn time_fields_take_years_months_days_and_timestamps() {
    let lab = three();
    let i = &lab.instance;
    let now = labmesh::time::rfc3339(labmesh::time::now_ms());
    let (year, month, day) = (&now[..4], &now[..7], &now[..10]);
    assert_eq!(
        filter(i, "created_at > 2000").len(),
        3,
        "a year, not epoch ms"
    );
    assert!(filter(i, &format!("created_at > {year}")).is_empty());
    assert_eq!(filter(i, &format!("created_at = {year}")).len(), 3);
    assert_eq!(
        filter(i, &format!("created_at = {day}")).len(),
        3,
        "during today"
    );
    assert_eq!(filter(i, &format!("created_at <= {day}")).len(), 3);
    assert!(filter(i, &format!("created_at > {day}")).is_empty());
    assert_eq!(filter(i, &format!("created_at = {month}")).len(), 3);
    assert_eq!(filter(i, "created_at >= 2000-01-01T00:00:00Z").len(), 3);
    let err = i
        .filter(
            Registry::Artifact,
            "created_at > 1700000000000",
            &FilterOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("write a year (2026)"), "{err}");
}

#[test]
fn wrong_literals_are_shown_as_written() {
    let lab = three();
    let i = &lab.instance;
    feature(&lab, "flag", "bool");
    i.annotate("a.txt", &[], &[("flag".into(), "true".into())])
        .unwrap();
    assert_eq!(
        filter(i, "flag = 1"),
        ["a.txt"],
        "1 and 0 are booleans, as in annotate"
    );
    assert_eq!(filter(i, "flag = true"), ["a.txt"]);
    let err = i
        .filter(Registry::Artifact, "flag = 2", &FilterOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(err, "2 is not true or false (comparing with =)");
    let err = i
        .filter(
            Registry::Artifact,
            "size > 'big'",
            &FilterOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert_eq!(err, "\"big\" is not a number (comparing with >)");
}

#[test]
fn injected_sql_is_matched_as_a_value_and_breaks_nothing() {
    let lab = three();
    let i = &lab.instance;
    let evil = "'); DROP TABLE artifact; --";
    i.add_label(&LabelSpec {
        name: evil.into(),
        force: true,
        ..Default::default()
    })
    .unwrap();
    i.annotate("c.txt", &[evil.to_string()], &[]).unwrap();
    assert_eq!(
        filter(
            i,
            &format!("labels.name = \"{}\"", evil.replace('"', "\\\""))
        ),
        ["c.txt"],
        "the literal was compared as a value"
    );
    assert!(filter(i, r#"key = "x' OR 1=1 --""#).is_empty());
    assert!(filter(i, r#"key = "a.txt' OR '1'='1""#).is_empty());
    let db = rusqlite::Connection::open(lab.root().join(".labmesh/instance.db")).unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM artifact", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3, "the artifact table is still there, whole");
    assert_eq!(filter(i, "key ^= ''").len(), 3);
}

#[test]
fn broad_and_narrow_filters_return_the_same_rows_whatever_the_plan() {
    let lab = Lab::new();
    feature(&lab, "temperature", "float");
    let paths: Vec<_> = (0..2300)
        .map(|i| lab.write(&format!("many/f{i:04}.txt"), format!("{i}")))
        .collect();
    lab.instance
        .save_many(&paths, &SaveOptions::default())
        .unwrap();
    // Values straight into the table: 0..99 by artifact id.
    let db = rusqlite::Connection::open(lab.root().join(".labmesh/instance.db")).unwrap();
    db.execute(
        "INSERT INTO artifact_feature_value (artifact_id, feature_id, position, value_num)
         SELECT id, (SELECT id FROM feature WHERE name = 'temperature'), 0, id % 100 FROM artifact",
        [],
    )
    .unwrap();
    let expect = |lo: i64, hi: i64| -> Vec<String> {
        let mut keys: Vec<(i64, String)> = db
            .prepare("SELECT id, key FROM artifact WHERE id % 100 >= ?1 AND id % 100 < ?2")
            .unwrap()
            .query_map([lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        keys.sort();
        keys.into_iter().rev().map(|k| k.1).collect()
    };
    let opts = FilterOptions {
        limit: 5000,
        ..Default::default()
    };
    for (lo, hi) in [(10, 90), (5, 6)] {
        // Broad (80%: filters the newest-first scan) and narrow (1%: drives by rowid).
        let Found::Artifacts(found) = lab
            .instance
            .filter(
                Registry::Artifact,
                &format!("temperature >= {lo} and temperature < {hi}"),
                &opts,
            )
            .unwrap()
        else {
            panic!()
        };
        let got: Vec<String> = found.into_iter().map(|a| a.key.unwrap()).collect();
        assert_eq!(got, expect(lo, hi), "range [{lo}, {hi}), newest first");
    }
}
