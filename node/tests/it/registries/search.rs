//! Search: live records only in every tier, several words intersected
//! without caps, accents, two-edit typos, descriptions.

use labmesh::SaveOptions;
use labmesh::registry::feature::FeatureSpec;
use labmesh::registry::label::LabelSpec;
use labmesh::search::{Registry, Tier};

use crate::Lab;

fn names(hits: &[labmesh::search::SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn old_versions_do_not_crowd_out_search_results() {
    let lab = Lab::new();
    let i = &lab.instance;
    for n in 0..21 {
        i.save(
            lab.write("plate.csv", format!("v{n}")),
            &SaveOptions::default(),
        )
        .unwrap();
    }
    i.save(lab.write("platelet.csv", "p"), &SaveOptions::default())
        .unwrap();
    i.save(lab.write("plates/old.csv", "o"), &SaveOptions::default())
        .unwrap();
    i.delete("plates/old.csv", false).unwrap();
    let hits = i.search(Registry::Artifact, "plate", 20).unwrap();
    assert_eq!(
        names(&hits),
        ["plate.csv", "platelet.csv"],
        "one hit per live family, the trashed one left out: {hits:?}"
    );
    assert_eq!(hits[0].tier, Tier::Word);
    assert_eq!(hits[1].tier, Tier::Prefix);
}

#[test]
fn several_words_are_intersected_without_caps() {
    let lab = Lab::new();
    let i = &lab.instance;
    let mut labels: Vec<(String, Option<String>)> = Vec::new();
    for n in 0..1200 {
        labels.push((format!("cell x{n}"), None));
        labels.push((format!("alpha y{n}"), None));
    }
    labels.push(("alpha cell".into(), None));
    labels.push(("alphabet cellar".into(), None));
    i.add_labels_bulk(&labels).unwrap();
    let hits = i.search(Registry::Label, "cell alpha", 5).unwrap();
    assert_eq!(hits[0].name, "alpha cell", "{hits:?}");
    assert_eq!(hits[0].tier, Tier::Word);
    // The last word typed is the unfinished one, whatever the alphabet says.
    let hits = i.search(Registry::Label, "cell alph", 5).unwrap();
    let ranked: Vec<(&str, Tier)> = hits.iter().map(|h| (h.name.as_str(), h.tier)).collect();
    assert_eq!(
        ranked,
        [
            ("alpha cell", Tier::Prefix),
            ("alphabet cellar", Tier::Contains)
        ]
    );
    let hits = i.search(Registry::Label, "alpha ce", 5).unwrap();
    assert_eq!(names(&hits), ["alpha cell"], "{hits:?}");
    // Every word must match: a typo in one of them is still found.
    let hits = i.search(Registry::Label, "alhpa cell", 5).unwrap();
    assert_eq!(hits[0].name, "alpha cell", "{hits:?}");
    assert_eq!((hits[0].tier, hits[0].distance), (Tier::Fuzzy, 1));
}

#[test]
fn accents_are_folded() {
    let lab = Lab::new();
    let i = &lab.instance;
    for name in ["Épithélium", "naïve T cell"] {
        i.add_label(&LabelSpec {
            name: name.into(),
            ..Default::default()
        })
        .unwrap();
    }
    assert_eq!(
        i.search(Registry::Label, "epithelium", 5).unwrap()[0].name,
        "Épithélium"
    );
    assert_eq!(
        i.search(Registry::Label, "EPITHÉLIUM", 5).unwrap()[0].name,
        "Épithélium"
    );
    assert_eq!(
        i.search(Registry::Label, "naive t", 5).unwrap()[0].name,
        "naïve T cell"
    );
}

#[test]
fn long_words_tolerate_two_edits_short_ones_one() {
    let lab = Lab::new();
    let i = &lab.instance;
    for name in ["hepatocyte", "liver"] {
        i.add_label(&LabelSpec {
            name: name.into(),
            ..Default::default()
        })
        .unwrap();
    }
    let hits = i.search(Registry::Label, "heptaocite", 5).unwrap();
    assert_eq!(names(&hits), ["hepatocyte"], "a swap and a wrong letter");
    assert_eq!((hits[0].tier, hits[0].distance), (Tier::Fuzzy, 2));
    assert_eq!(
        i.search(Registry::Label, "hepatocite", 5).unwrap()[0].distance,
        1
    );
    assert!(
        i.search(Registry::Label, "lvr", 5).unwrap().is_empty(),
        "two edits in a short word is another word"
    );
}

#[test]
fn descriptions_of_labels_features_and_schemas_are_searched() {
    let lab = Lab::new();
    let i = &lab.instance;
    i.add_label(&LabelSpec {
        name: "CL:0000182".into(),
        type_: Some("cell_type".into()),
        description: Some("Hepatocyte, the main cell of the liver".into()),
        ..Default::default()
    })
    .unwrap();
    i.add_feature(&FeatureSpec {
        name: "temp".into(),
        dtype: "float".into(),
        description: Some("incubator temperature".into()),
        ..Default::default()
    })
    .unwrap();
    i.add_schema(
        "qc",
        &["temp".into()],
        false,
        Some("quality control panel"),
        false,
    )
    .unwrap();
    let hit = &i.search(Registry::Label, "hepatocyte", 5).unwrap()[0];
    assert_eq!((hit.name.as_str(), hit.tier), ("CL:0000182", Tier::Word));
    assert_eq!(
        i.search(Registry::Feature, "incubator", 5).unwrap()[0].name,
        "temp"
    );
    assert_eq!(
        i.search(Registry::Schema, "quality", 5).unwrap()[0].name,
        "qc"
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
