//! Labels and features: one name, one record; names with ':'; categorical
//! values that are replaced; what re-adding a feature may and may not do.

use labmesh::SaveOptions;
use labmesh::registry::feature::FeatureSpec;
use labmesh::registry::label::LabelSpec;
use labmesh::search::vocabulary::{FieldSpec, Verdict};

use super::{feature, filter, label};
use crate::Lab;

fn kidney_with_synonym(lab: &Lab) {
    lab.instance
        .add_label(&LabelSpec {
            name: "kidney".into(),
            type_: Some("tissue".into()),
            synonyms: vec!["ren".into()],
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn a_label_name_cannot_be_another_labels_synonym() {
    let lab = Lab::new();
    kidney_with_synonym(&lab);
    let i = &lab.instance;
    for force in [false, true] {
        let err = i
            .add_label(&LabelSpec {
                name: "Ren".into(),
                type_: Some("tissue".into()),
                force,
                ..Default::default()
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already a synonym of label \"kidney\""),
            "force {force}: {err}"
        );
    }
    assert_eq!(i.label("tissue:ren").unwrap().name, "kidney");
    let vocab = i
        .vocabulary(&FieldSpec::Label {
            type_: Some("tissue".into()),
        })
        .unwrap();
    assert_eq!(vocab.judge("ren").standard(), Some("kidney"));
    // Another type may use the name: a name wins over a synonym, and
    // type:name picks either.
    i.add_label(&LabelSpec {
        name: "ren".into(),
        type_: Some("gene".into()),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(i.label("ren").unwrap().type_.as_deref(), Some("gene"));
    assert_eq!(i.label("tissue:ren").unwrap().name, "kidney");
    let err = i
        .add_label(&LabelSpec {
            name: "ren".into(),
            type_: Some("organ".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"ren\" (type gene)") && err.contains("--force"),
        "{err}"
    );
    i.add_label(&LabelSpec {
        name: "ren".into(),
        type_: Some("organ".into()),
        force: true,
        ..Default::default()
    })
    .unwrap();
    let err = i.label("ren").unwrap_err().to_string();
    assert!(
        err.contains("gene:ren") && err.contains("organ:ren") && err.contains("type:name"),
        "{err}"
    );
    // A bulk import refuses the clash whole.
    let err = i
        .add_labels_bulk(&[
            ("spleen".into(), Some("tissue".into())),
            ("ren".into(), Some("tissue".into())),
        ])
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(i.label("spleen").is_err(), "the import was refused whole");
}

#[test]
fn labels_whose_names_contain_a_colon_are_found() {
    let lab = Lab::new();
    let i = &lab.instance;
    let t_cell = label(&lab, "CL:0000084", "cell_type");
    label(&lab, "CL:0000236", "cell_type");
    let untyped = i
        .add_label(&LabelSpec {
            name: "UBERON:0002107".into(),
            ..Default::default()
        })
        .unwrap()
        .record;
    assert_eq!(i.label("CL:0000084").unwrap().uid, t_cell.uid);
    assert_eq!(i.label("cell_type:CL:0000084").unwrap().uid, t_cell.uid);
    assert_eq!(i.label("uberon:0002107").unwrap().uid, untyped.uid);
    feature(&lab, "cell_type", "cat[label:cell_type]");
    i.save(lab.write("cells.h5ad", "x"), &SaveOptions::default())
        .unwrap();
    i.annotate(
        "cells.h5ad",
        &[],
        &[("cell_type".into(), "CL:0000236".into())],
    )
    .unwrap();
    assert_eq!(
        i.annotations("cells.h5ad").unwrap().labels,
        ["cell_type:CL:0000236"]
    );
    assert_eq!(filter(i, "cell_type = 'CL:0000236'"), ["cells.h5ad"]);
    let err = i
        .add_label(&LabelSpec {
            name: "x".into(),
            type_: Some("a:b".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("contains ':'"), "{err}");
}

#[test]
fn replacing_a_categorical_value_unlinks_the_old_label() {
    let lab = Lab::new();
    let i = &lab.instance;
    for name in ["liver", "kidney", "organ"] {
        label(&lab, name, "tissue");
    }
    feature(&lab, "tissue", "cat[label:tissue]");
    feature(&lab, "origin", "cat[label:tissue]");
    i.save(lab.write("s.csv", "s"), &SaveOptions::default())
        .unwrap();
    i.annotate(
        "s.csv",
        &["organ".into()],
        &[
            ("tissue".into(), "liver".into()),
            ("origin".into(), "kidney".into()),
        ],
    )
    .unwrap();
    i.annotate("s.csv", &[], &[("tissue".into(), "organ".into())])
        .unwrap();
    i.annotate("s.csv", &[], &[("tissue".into(), "kidney".into())])
        .unwrap();
    assert_eq!(
        i.annotations("s.csv").unwrap().labels,
        ["tissue:kidney", "tissue:organ"],
        "liver went with its value; organ was also linked directly; kidney is origin's too"
    );
    assert!(filter(i, "labels.name = liver").is_empty());
    i.annotate("s.csv", &[], &[("origin".into(), "liver".into())])
        .unwrap();
    assert_eq!(
        i.annotations("s.csv").unwrap().labels,
        ["tissue:kidney", "tissue:liver", "tissue:organ"],
        "kidney stays: it is still the tissue value"
    );
}

#[test]
fn features_refuse_synonym_clashes_and_silent_changes() {
    let lab = Lab::new();
    let i = &lab.instance;
    let spec = |name: &str| FeatureSpec {
        name: name.into(),
        dtype: "float".into(),
        unit: Some("C".into()),
        synonyms: vec!["temp".into()],
        description: Some("incubator".into()),
        ..Default::default()
    };
    i.add_feature(&spec("temperature")).unwrap();
    let err = i
        .add_feature(&FeatureSpec {
            force: true,
            ..spec("temp")
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already a synonym of feature \"temperature\""),
        "{err}"
    );
    let err = i
        .add_feature(&FeatureSpec {
            name: "heat".into(),
            dtype: "float".into(),
            synonyms: vec!["Temperature".into()],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already names feature \"temperature\""),
        "{err}"
    );
    assert!(i.feature("heat").is_err(), "refused whole");

    let err = i
        .add_feature(&FeatureSpec {
            unit: Some("K".into()),
            ..spec("temperature")
        })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unit \"C\", not \"K\"") && err.contains("--unit"),
        "{err}"
    );
    let err = i
        .add_feature(&FeatureSpec {
            description: Some("room".into()),
            ..spec("temperature")
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("description \"incubator\""), "{err}");
    let again = i
        .add_feature(&FeatureSpec {
            synonyms: vec!["tmp".into()],
            ..spec("temperature")
        })
        .unwrap();
    assert!(!again.created);
    assert!(
        again
            .notices
            .iter()
            .any(|n| n.contains("added synonym(s) tmp"))
    );
    assert_eq!(again.record.synonyms, ["temp", "tmp"]);
    assert_eq!(i.feature("tmp").unwrap().name, "temperature");
}

#[test]
fn annotate_refuses_a_trashed_artifact_like_collections_do() {
    let lab = Lab::new();
    let i = &lab.instance;
    label(&lab, "liver", "tissue");
    i.save(lab.write("gone.csv", "g"), &SaveOptions::default())
        .unwrap();
    i.delete("gone.csv", false).unwrap();
    let err = i
        .annotate("gone.csv", &["liver".into()], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("in the trash") && err.contains("labmesh restore"),
        "{err}"
    );
    let err = i
        .add_collection("c", &["gone.csv".into()], None, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("in the trash"), "{err}");
    i.restore("gone.csv").unwrap();
    i.annotate("gone.csv", &["liver".into()], &[]).unwrap();
}

#[test]
fn verdicts_prefer_names_over_synonyms() {
    let lab = Lab::new();
    kidney_with_synonym(&lab);
    let vocab = lab
        .instance
        .vocabulary(&FieldSpec::Label { type_: None })
        .unwrap();
    assert_eq!(vocab.judge("kidney"), Verdict::Valid);
    assert_eq!(vocab.judge("REN").standard(), Some("kidney"));
}
