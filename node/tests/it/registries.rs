//! Labels, features, annotations, schemas, collections, filters, search,
//! and validation — through the library, on a real SQLite instance.

use labmesh::query::{FilterOptions, Found, Value, field};
use labmesh::registry::feature::FeatureSpec;
use labmesh::registry::label::LabelSpec;
use labmesh::search::vocabulary::{FieldSpec, Verdict};
use labmesh::search::{Registry, Tier};
use labmesh::{Instance, SaveOptions};

use crate::Lab;

fn label(lab: &Lab, name: &str, type_: &str) -> labmesh::registry::label::Label {
    lab.instance
        .add_label(&LabelSpec {
            name: name.into(),
            type_: Some(type_.into()),
            ..Default::default()
        })
        .unwrap()
        .record
}

fn feature(lab: &Lab, name: &str, dtype: &str) {
    lab.instance
        .add_feature(&FeatureSpec {
            name: name.into(),
            dtype: dtype.into(),
            ..Default::default()
        })
        .unwrap();
}

fn keys(found: Found) -> Vec<String> {
    match found {
        Found::Artifacts(v) => {
            let mut k: Vec<String> = v.into_iter().map(|a| a.key.unwrap()).collect();
            k.sort();
            k
        }
        other => panic!("expected artifacts, got {other:?}"),
    }
}

fn filter(i: &Instance, expr: &str) -> Vec<String> {
    keys(
        i.filter(Registry::Artifact, expr, &FilterOptions::default())
            .unwrap(),
    )
}

/// Three plates annotated with tissue and temperature.
fn plates() -> Lab {
    let lab = Lab::new();
    label(&lab, "organ", "tissue");
    lab.instance
        .add_label(&LabelSpec {
            name: "liver".into(),
            type_: Some("tissue".into()),
            parents: vec!["organ".into()],
            synonyms: vec!["hepar".into()],
            ..Default::default()
        })
        .unwrap();
    label(&lab, "kidney", "tissue");
    lab.instance
        .add_feature(&FeatureSpec {
            name: "temperature".into(),
            dtype: "float".into(),
            unit: Some("C".into()),
            synonyms: vec!["temp".into()],
            ..Default::default()
        })
        .unwrap();
    feature(&lab, "tissue", "cat[label:tissue]");
    feature(&lab, "markers", "list[str]");
    for (key, content, tissue, t) in [
        ("raw/plate1.parquet", "x".repeat(2000), "liver", "37.5"),
        ("raw/plate2.parquet", "y".repeat(500), "kidney", "36.0"),
        ("proc/plate3.parquet", "z".repeat(3000), "hepar", "38"),
    ] {
        lab.instance
            .save(lab.write(key, content), &SaveOptions::default())
            .unwrap();
        lab.instance
            .annotate(
                key,
                &[],
                &[("tissue".into(), tissue.into()), ("temp".into(), t.into())],
            )
            .unwrap();
    }
    lab
}

#[test]
fn labels_refuse_duplicates_typos_and_cycles() {
    let lab = plates();
    let again = lab
        .instance
        .add_label(&LabelSpec {
            name: "liver".into(),
            type_: Some("tissue".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        !again.created,
        "an exact duplicate returns the existing label"
    );
    assert!(again.notices[0].contains("already exists"));

    let err = lab
        .instance
        .add_label(&LabelSpec {
            name: "Liver ".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("did you mean \"liver\" (type tissue)") && err.contains("--force"),
        "{err}"
    );
    let err = lab
        .instance
        .add_label(&LabelSpec {
            name: "kidny".into(),
            type_: Some("tissue".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean \"kidney\""), "{err}");
    let forced = lab
        .instance
        .add_label(&LabelSpec {
            name: "kidny".into(),
            type_: Some("tissue".into()),
            force: true,
            ..Default::default()
        })
        .unwrap();
    assert!(forced.created);

    // organ <- liver; making liver a parent of organ closes a cycle.
    let err = lab
        .instance
        .add_label(&LabelSpec {
            name: "organ".into(),
            type_: Some("tissue".into()),
            parents: vec!["liver".into()],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("cycle"), "{err}");
    assert!(
        lab.instance.label("organ").unwrap().parents.is_empty(),
        "the refused edge was not written"
    );
    assert_eq!(
        lab.instance.label("hepar").unwrap().name,
        "liver",
        "synonyms find their label"
    );
    let err = lab
        .instance
        .add_label(&LabelSpec {
            name: "lung".into(),
            type_: Some("tissue".into()),
            synonyms: vec!["liver".into()],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("already names label"), "{err}");
    // The whole call failed: no half-made "lung".
    assert!(lab.instance.label("tissue:lung").is_err());
}

#[test]
fn annotations_are_typed_and_all_or_nothing() {
    let lab = plates();
    let a = lab.instance.annotations("raw/plate1.parquet").unwrap();
    assert_eq!(
        a.labels,
        ["tissue:liver"],
        "a categorical value also labels the artifact"
    );
    assert_eq!(
        a.features,
        [
            ("temperature".to_string(), vec!["37.5".to_string()]),
            ("tissue".into(), vec!["liver".into()])
        ]
    );
    let bad: &[(&str, &str, &str)] = &[
        ("temperature", "warm", "is not a number"),
        ("tissue", "lung", "no label \"tissue:lung\""),
        ("tisue", "liver", "did you mean \"tissue\""),
    ];
    for (name, value, why) in bad {
        let err = lab
            .instance
            .annotate(
                "raw/plate2.parquet",
                &["organ".into()],
                &[
                    ("markers".into(), "CD4,CD8".into()),
                    (name.to_string(), value.to_string()),
                ],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{name}={value}: {err}");
        let now = lab.instance.annotations("raw/plate2.parquet").unwrap();
        assert!(
            !now.labels.contains(&"tissue:organ".to_string()),
            "nothing of the failed call was written"
        );
        assert!(now.features.iter().all(|(n, _)| n != "markers"));
    }
    lab.instance
        .annotate(
            "raw/plate2.parquet",
            &[],
            &[("markers".into(), "CD4, CD8".into())],
        )
        .unwrap();
    let now = lab.instance.annotations("raw/plate2.parquet").unwrap();
    assert!(
        now.features
            .contains(&("markers".into(), vec!["CD4".into(), "CD8".into()]))
    );
    // Setting a feature again replaces its value.
    lab.instance
        .annotate(
            "raw/plate2.parquet",
            &[],
            &[("temperature".into(), "35".into())],
        )
        .unwrap();
    assert!(
        lab.instance
            .annotations("raw/plate2.parquet")
            .unwrap()
            .features
            .contains(&("temperature".into(), vec!["35".into()]))
    );
}

#[test]
fn filters_compile_the_issue_example_and_relations() {
    let lab = plates();
    let i = &lab.instance;
    assert_eq!(
        filter(
            i,
            r#"key ^= "raw/" and size > 1000 and labels.name = "liver" and temperature >= 37"#
        ),
        ["raw/plate1.parquet"]
    );
    assert_eq!(
        filter(i, "tissue = liver"),
        ["proc/plate3.parquet", "raw/plate1.parquet"],
        "hepar was standardized"
    );
    assert_eq!(
        filter(i, "tissue = LIVER"),
        filter(i, "tissue = liver"),
        "label names compare case-insensitively"
    );
    assert_eq!(
        filter(i, "temperature < 37 or size < 1000"),
        ["raw/plate2.parquet"]
    );
    assert_eq!(filter(i, "not key ^= 'raw/'"), ["proc/plate3.parquet"]);
    assert_eq!(
        filter(i, "key in ('raw/plate2.parquet', 'nope')"),
        ["raw/plate2.parquet"]
    );
    assert_eq!(filter(i, "key ~ 'plate3'"), ["proc/plate3.parquet"]);
    assert_eq!(filter(i, "key $= '2.parquet'"), ["raw/plate2.parquet"]);
    assert_eq!(
        filter(i, "features.temperature >= 38"),
        ["proc/plate3.parquet"]
    );
    assert_eq!(
        filter(i, "markers is null").len(),
        3,
        "no artifact has markers yet"
    );
    assert_eq!(filter(i, "created_at >= 2000-01-01").len(), 3);
    assert!(filter(i, "created_at < 2000-01-01").is_empty());
    // Values are bound, never spliced into the SQL.
    assert!(filter(i, r#"key = "x' OR 1=1 --""#).is_empty());
    assert!(filter(i, r#"labels.name = "') OR 1=1 --""#).is_empty());

    let opts = FilterOptions {
        order: Some("-size".into()),
        limit: 2,
        all_versions: false,
    };
    let Found::Artifacts(v) = i.filter(Registry::Artifact, "size > 0", &opts).unwrap() else {
        panic!()
    };
    assert_eq!(
        v.iter().map(|a| a.size).collect::<Vec<_>>(),
        [3000, 2000],
        "ordered and limited"
    );

    // The typed builder produces the same query.
    let built = field("temperature")
        .ge(37.0)
        .and(field("key").starts_with("raw/"));
    assert_eq!(
        keys(
            i.filter_expr(Registry::Artifact, &built, &FilterOptions::default())
                .unwrap()
        ),
        ["raw/plate1.parquet"]
    );
    let built = field("key").is_in([Value::from("raw/plate1.parquet")]);
    assert_eq!(
        keys(
            i.filter_expr(Registry::Artifact, &built, &FilterOptions::default())
                .unwrap()
        )
        .len(),
        1
    );

    let Found::Labels(children) = i
        .filter(
            Registry::Label,
            "parents.name = organ",
            &FilterOptions::default(),
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        children.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
        ["liver"]
    );
}

#[test]
fn filter_errors_name_the_valid_fields() {
    let lab = plates();
    let err = lab
        .instance
        .filter(Registry::Artifact, "sizee > 3", &FilterOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean \"size\""), "{err}");
    assert!(
        err.contains("labels.name") && err.contains("features: markers, temperature, tissue"),
        "{err}"
    );
    let err = lab
        .instance
        .filter(
            Registry::Artifact,
            "temperatur > 3",
            &FilterOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean \"temperature\""), "{err}");
    for (expr, why) in [
        ("size ^= 'x'", "compares text"),
        ("size > big", "not a number"),
        ("created_at > yesterday", "date or timestamp"),
        ("labels.colour = x", "unknown field"),
    ] {
        let err = lab
            .instance
            .filter(Registry::Artifact, expr, &FilterOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{expr}: {err}");
    }
    let bad_order = FilterOptions {
        order: Some("-sise".into()),
        ..Default::default()
    };
    assert!(
        lab.instance
            .filter(Registry::Artifact, "size > 0", &bad_order)
            .unwrap_err()
            .to_string()
            .contains("cannot order by")
    );
}

#[test]
fn search_ranks_exact_synonym_word_prefix_contains_fuzzy() {
    let lab = Lab::new();
    for (name, syn) in [
        ("liver", Some("hepar")),
        ("liver sinusoid", None),
        ("liverwort", None),
        ("deliver", None),
        ("kidney", None),
    ] {
        lab.instance
            .add_label(&LabelSpec {
                name: name.into(),
                synonyms: syn.map(|s| vec![s.to_string()]).unwrap_or_default(),
                force: true,
                ..Default::default()
            })
            .unwrap();
    }
    let hits = lab.instance.search(Registry::Label, "liver", 10).unwrap();
    let ranked: Vec<(&str, Tier)> = hits.iter().map(|h| (h.name.as_str(), h.tier)).collect();
    assert_eq!(
        ranked,
        [
            ("liver", Tier::Exact),
            ("liver sinusoid", Tier::Word),
            ("liverwort", Tier::Prefix),
            ("deliver", Tier::Contains)
        ]
    );
    assert_eq!(
        lab.instance.search(Registry::Label, "HEPAR", 5).unwrap()[0].tier,
        Tier::Synonym
    );
    for typo in ["livr", "lvier", "livre", "kidnye"] {
        let hits = lab.instance.search(Registry::Label, typo, 5).unwrap();
        assert!(!hits.is_empty(), "{typo} finds something");
        assert_eq!(hits[0].tier, Tier::Fuzzy, "{typo}");
        assert!(
            ["liver", "kidney"].contains(&hits[0].name.as_str()),
            "{typo}: {hits:?}"
        );
    }
    assert!(
        lab.instance
            .search(Registry::Label, "zebrafish", 5)
            .unwrap()
            .is_empty()
    );
    // Artifacts are searchable by key and description.
    lab.instance
        .save(
            lab.write("raw/liver_rnaseq.h5ad", "x"),
            &SaveOptions {
                description: Some("hepatocyte atlas".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        lab.instance
            .search(Registry::Artifact, "hepatocyte", 5)
            .unwrap()[0]
            .tier,
        Tier::Word
    );
    assert_eq!(
        lab.instance
            .search(Registry::Artifact, "rnaseq", 5)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn validate_inspect_standardize_values_and_file_columns() {
    let lab = plates();
    let vocab = lab
        .instance
        .vocabulary(&FieldSpec::Label {
            type_: Some("tissue".into()),
        })
        .unwrap();
    let verdicts = vocab.inspect_all(["liver", "kidnee", "LIVER", "hepar"]);
    assert_eq!(verdicts[0], Verdict::Valid);
    assert_eq!(
        verdicts[1],
        Verdict::Invalid {
            suggestion: Some("kidney".into())
        }
    );
    assert_eq!(verdicts[2].standard(), Some("liver"));
    assert_eq!(
        verdicts[3],
        Verdict::Synonym {
            standard: "liver".into()
        }
    );

    let csv = lab.write(
        "samples.csv",
        "sample,tissue\ns1,liver\ns2,Kidney\ns3,spleen\n",
    );
    let column = labmesh::tabular::read_column(&csv, "tissue").unwrap();
    let got: Vec<Verdict> = vocab.inspect_all(column.iter().map(|v| v.as_deref().unwrap_or("")));
    assert_eq!(got[0], Verdict::Valid);
    assert_eq!(got[1].standard(), Some("kidney"));
    assert!(matches!(got[2], Verdict::Invalid { .. }));
    let err = labmesh::tabular::read_column(&csv, "tisue")
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean \"tissue\""), "{err}");

    // A real parquet file (pandas/pyarrow, dictionary-encoded categoricals).
    let parquet = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/pbmc68k_reduced_obs.parquet");
    if parquet.exists() {
        let cells = labmesh::tabular::read_column(&parquet, "bulk_labels").unwrap();
        assert_eq!(cells.len(), 700);
        let names: Vec<(String, Option<String>)> = cells
            .iter()
            .flatten()
            .map(|c| (c.clone(), Some("cell_type".into())))
            .collect();
        assert_eq!(
            lab.instance.add_labels_bulk(&names).unwrap(),
            10,
            "10 distinct cell types"
        );
        let vocab = lab
            .instance
            .vocabulary(&FieldSpec::Label {
                type_: Some("cell_type".into()),
            })
            .unwrap();
        assert!(cells.iter().flatten().all(|c| vocab.judge(c).is_valid()));
    }
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
        )
        .unwrap();
    assert_eq!(c1.record.n_artifacts, 2);
    let c2 = lab
        .instance
        .add_collection("study", &["proc/plate3.parquet".into()], None)
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
        .add_collection("study", &["raw/plate1.parquet".into()], None)
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
