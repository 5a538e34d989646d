//! Labels, features, annotations, schemas, collections, filters, search,
//! and validation — through the library, on a real SQLite instance.
//! The tour of each is here; the fixed pitfalls are in the submodules.

mod collections;
mod filters;
mod labels;
mod plans;
mod search;
mod values;

use labmesh::query::{FilterOptions, Found, Value, field};
use labmesh::registry::feature::FeatureSpec;
use labmesh::registry::label::LabelSpec;
use labmesh::search::Registry;
use labmesh::{Instance, SaveOptions};

use crate::Lab;

pub(crate) fn label(lab: &Lab, name: &str, type_: &str) -> labmesh::registry::label::Label {
    lab.instance
        .add_label(&LabelSpec {
            name: name.into(),
            type_: Some(type_.into()),
            ..Default::default()
        })
        .unwrap()
        .record
}

pub(crate) fn feature(lab: &Lab, name: &str, dtype: &str) {
    lab.instance
        .add_feature(&FeatureSpec {
            name: name.into(),
            dtype: dtype.into(),
            ..Default::default()
        })
        .unwrap();
}

pub(crate) fn keys(found: Found) -> Vec<String> {
    match found {
        Found::Artifacts(v) => {
            let mut k: Vec<String> = v.into_iter().map(|a| a.key.unwrap()).collect();
            k.sort();
            k
        }
        other => panic!("expected artifacts, got {other:?}"),
    }
}

pub(crate) fn filter(i: &Instance, expr: &str) -> Vec<String> {
    keys(
        i.filter(Registry::Artifact, expr, &FilterOptions::default())
            .unwrap(),
    )
}

/// Three plates annotated with tissue and temperature.
pub(crate) fn plates() -> Lab {
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
    let err = lab
        .instance
        .filter(Registry::Artifact, "size > 0", &bad_order)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot order by \"sise\"; did you mean \"size\"?"),
        "{err}"
    );
}
