//! The registries issue's CLI tour: labels, features, annotations, schemas,
//! collections, filter, search, validate, inspect, standardize. Files,
//! big inputs and bad input through the CLI are in `registries/edges.rs`.

mod edges;

use labmesh_tests::Sandbox;

#[test]
fn the_registries_tour() {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    let run = |args: &[&str]| sb.ok("lab", args);
    let json = |args: &[&str]| sb.json("lab", args);

    let liver = json(&[
        "label",
        "add",
        "liver",
        "--type",
        "tissue",
        "--synonyms",
        "hepar",
    ]);
    assert_eq!(liver["created"], true);
    let again = json(&["label", "add", "liver", "--type", "tissue"]);
    assert_eq!(
        (again["created"].as_bool(), again["uid"].as_str()),
        (Some(false), liver["uid"].as_str())
    );
    let err = sb.fails("lab", &["label", "add", "Liver "]);
    assert!(
        err.contains("did you mean \"liver\"") && err.contains("--force"),
        "{err}"
    );
    run(&["label", "add", "kidney", "--type", "tissue"]);
    run(&[
        "feature",
        "add",
        "temperature",
        "--dtype",
        "float",
        "--unit",
        "C",
        "--synonyms",
        "temp",
    ]);
    run(&["feature", "add", "tissue", "--dtype", "cat[label:tissue]"]);

    sb.write("lab/raw/plate1.parquet", "x".repeat(2000));
    sb.write("lab/raw/plate2.parquet", "y".repeat(10));
    let a = json(&["save", "raw/plate1.parquet"])["artifact"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let b = json(&["save", "raw/plate2.parquet"])["artifact"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let ann = json(&[
        "annotate",
        &a,
        "--label",
        "liver",
        "--feature",
        "temperature=37.5",
        "--feature",
        "tissue=liver",
    ]);
    assert_eq!(ann["labels"][0], "tissue:liver");
    let err = sb.fails("lab", &["annotate", &b, "--feature", "temperature=warm"]);
    assert!(err.contains("is not a number"), "{err}");
    run(&[
        "annotate",
        &b,
        "--feature",
        "temp=20",
        "--feature",
        "tissue=kidney",
    ]);

    let schema = json(&[
        "schema",
        "add",
        "plate-schema",
        "--feature",
        "tissue",
        "--feature",
        "temperature",
    ]);
    assert_eq!(schema["created"], true);
    let again = json(&[
        "schema",
        "add",
        "same-set",
        "--feature",
        "temperature",
        "--feature",
        "tissue",
    ]);
    assert_eq!(again["created"], false, "hash-deduplicated");
    let c = json(&["collection", "add", "my-study", "--artifact", &a]);
    let c2 = json(&["collection", "add", "my-study", "--artifact", &b]);
    assert_eq!(c2["n_artifacts"], 2);
    assert_eq!(c2["revises"], c["uid"]);

    let found = json(&[
        "filter",
        "artifact",
        r#"key ^= "raw/" and size > 1000 and labels.name = "liver" and temperature >= 37"#,
        "--order",
        "-created_at",
        "--limit",
        "20",
    ]);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["uid"], a.as_str());
    let csv = run(&["filter", "artifact", "collections.key = my-study", "--csv"]);
    assert_eq!(csv.lines().count(), 3, "header and two rows:\n{csv}");
    assert!(csv.starts_with("uid,key,size,created,description"));
    let err = sb.fails("lab", &["filter", "artifact", "sise > 3"]);
    assert!(err.contains("did you mean \"size\""), "{err}");

    let hits = json(&["search", "label", "livr"]);
    assert_eq!(hits[0]["name"], "liver");
    assert_eq!(hits[0]["tier"], "fuzzy");
    assert_eq!(json(&["search", "label", "lvier"])[0]["name"], "liver");

    let out = sb.run(
        "lab",
        &["validate", "label:tissue", "liver", "kidnee", "LIVER"],
    );
    assert!(!out.status.success(), "invalid values fail the command");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kidnee  no") && text.contains("liver   yes"),
        "{text}"
    );
    let inspected = json(&[
        "inspect",
        "label:tissue",
        "liver",
        "kidnee",
        "LIVER",
        "hepar",
    ]);
    assert_eq!(inspected[1]["verdict"]["suggestion"], "kidney");
    assert_eq!(inspected[2]["verdict"]["status"], "case");
    assert_eq!(inspected[3]["verdict"]["standard"], "liver");
    assert_eq!(
        run(&["standardize", "label:tissue", "LIVER", "hepar"]),
        "liver\nliver\n"
    );

    sb.write("lab/samples.csv", "sample,tissue\ns1,liver\ns2,kidney\n");
    run(&[
        "validate",
        "label:tissue",
        "--file",
        "samples.csv",
        "--column",
        "tissue",
    ]);
    let err = sb.fails(
        "lab",
        &[
            "validate",
            "label:tissue",
            "--file",
            "samples.csv",
            "--column",
            "tisue",
        ],
    );
    assert!(err.contains("did you mean \"tissue\""), "{err}");
}
