//! The registry verbs at their edges, as a user meets them: a real parquet
//! file, many values, missing cells, misspelt types, filters too deep or
//! too long, collection versions, plans.

use labmesh_tests::Sandbox;

fn parquet() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/pbmc68k_reduced_obs.parquet");
    assert!(
        path.exists(),
        "{} is missing: the shared test data must be present",
        path.display()
    );
    path
}

fn lab() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("", &["init", "lab"]);
    sb.ok("lab", &["label", "add", "liver", "--type", "tissue"]);
    sb.ok("lab", &["label", "add", "kidney", "--type", "tissue"]);
    sb
}

#[test]
fn a_parquet_column_is_imported_and_validated() {
    let sb = lab();
    let file = parquet();
    let file = file.to_str().unwrap();
    let out = sb.ok(
        "lab",
        &[
            "label",
            "import",
            file,
            "--column",
            "bulk_labels",
            "--type",
            "cell_type",
        ],
    );
    assert!(
        out.starts_with("added 10 label(s) (700 values read"),
        "{out}"
    );
    let out = sb.run(
        "lab",
        &[
            "validate",
            "label:cell_type",
            "--file",
            file,
            "--column",
            "bulk_labels",
        ],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("all 700 value(s) are valid"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().count() <= 2 && stderr.contains("700 valid value(s) not shown"),
        "above 200 values only the rows needing attention are shown:\n{stdout}\n{stderr}"
    );
    let all = sb.ok(
        "lab",
        &[
            "validate",
            "label:cell_type",
            "--file",
            file,
            "--column",
            "bulk_labels",
            "--all",
        ],
    );
    assert_eq!(
        all.lines().count(),
        701,
        "a header and every value with --all"
    );
    let hits = sb.json("lab", &["search", "label", "cd14 monocyte"]);
    assert!(
        hits[0]["name"].as_str().unwrap().starts_with("CD14+ Mono"),
        "{hits}"
    );
}

#[test]
fn many_values_missing_cells_and_a_bom_are_reported_apart() {
    let sb = lab();
    let mut csv = String::from("\u{feff}tissue,n\n");
    for n in 0..300 {
        csv.push_str(if n == 7 { "lvier" } else { "liver" });
        csv.push_str(&format!(",{n}\n"));
    }
    csv.push_str(",300\n");
    sb.write("lab/samples.csv", csv);
    let args = [
        "validate",
        "label:tissue",
        "--file",
        "samples.csv",
        "--column",
        "tissue",
    ];
    let out = sb.run("lab", &args);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("lvier") && !stdout.contains("liver "),
        "{stdout}"
    );
    assert!(stdout.contains("missing"), "{stdout}");
    assert!(
        stderr.contains("299 valid value(s) not shown") && stderr.contains("--all"),
        "{stderr}"
    );
    assert!(stderr.contains("1 value(s) are missing"), "{stderr}");
    assert!(
        stderr.contains("1 of 300 value(s) are not valid"),
        "{stderr}"
    );
    let inspected = sb.json(
        "lab",
        &[
            "inspect",
            "label:tissue",
            "--file",
            "samples.csv",
            "--column",
            "tissue",
        ],
    );
    assert_eq!(inspected[7]["verdict"]["suggestion"], "liver");
    assert_eq!(inspected[300]["verdict"]["status"], "missing");
}

#[test]
fn a_misspelt_type_is_an_error_not_an_empty_vocabulary() {
    let sb = lab();
    let err = sb.fails("lab", &["validate", "label:tisue", "liver"]);
    assert!(err.contains("did you mean label:tissue?"), "{err}");
    let err = sb.fails("lab", &["inspect", "feature", "temperature"]);
    assert!(err.contains("no features"), "{err}");
}

#[test]
fn filters_too_deep_or_too_long_fail_cleanly() {
    let sb = lab();
    sb.write("lab/a.txt", "a");
    sb.ok("lab", &["save", "a.txt"]);
    let deep = format!("{}key = 'a.txt'{}", "(".repeat(2000), ")".repeat(2000));
    let out = sb.run("lab", &["filter", "artifact", &deep]);
    assert_eq!(out.status.code(), Some(1), "an error, not a crash");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("levels deep") && err.len() < 500, "{err}");
    let terms: Vec<String> = (0..1000).map(|n| format!("size != {n}")).collect();
    let err = sb.fails("lab", &["filter", "artifact", &terms.join(" and ")]);
    assert!(
        err.contains("more than 200 comparisons") && err.len() < 500,
        "{err}"
    );
    // As long as one argument may be (128 KiB); the library test goes past
    // SQLite's limit on bound parameters.
    let mut keys: Vec<String> = (0..12_000).map(|n| format!("'k{n}'")).collect();
    keys.push("'a.txt'".into());
    let found = sb.json(
        "lab",
        &[
            "filter",
            "artifact",
            &format!("key in ({})", keys.join(",")),
        ],
    );
    assert_eq!(found.as_array().unwrap().len(), 1);
    let plan = sb.ok("lab", &["filter", "artifact", "key = 'a.txt'", "--explain"]);
    assert!(plan.contains("USING INDEX"), "{plan}");
}

#[test]
fn collections_change_as_versions_and_schemas_list() {
    let sb = lab();
    for f in ["a.txt", "b.txt", "c.txt"] {
        sb.write(&format!("lab/{f}"), f);
        sb.ok("lab", &["save", f]);
    }
    sb.ok(
        "lab",
        &[
            "collection",
            "add",
            "my-study",
            "--artifact",
            "a.txt",
            "--artifact",
            "b.txt",
        ],
    );
    let err = sb.fails(
        "lab",
        &["collection", "add", "my-stduy", "--artifact", "c.txt"],
    );
    assert!(err.contains("did you mean \"my-study\""), "{err}");
    sb.ok(
        "lab",
        &["collection", "add", "my-study", "--artifact", "c.txt"],
    );
    sb.ok(
        "lab",
        &[
            "collection",
            "reorder",
            "my-study",
            "--artifact",
            "c.txt",
            "--artifact",
            "a.txt",
            "--artifact",
            "b.txt",
        ],
    );
    let v = sb.json(
        "lab",
        &["collection", "remove", "my-study", "--artifact", "a.txt"],
    );
    assert_eq!(v["n_artifacts"], 2);
    let versions = sb.json("lab", &["collection", "versions", "my-study"]);
    let counts: Vec<u64> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["n_artifacts"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [2, 3, 3, 2]);
    let shown = sb.json("lab", &["collection", "show", "my-study"]);
    assert_eq!(shown["artifacts"][0]["key"], "c.txt");

    sb.ok(
        "lab",
        &["feature", "add", "tissue", "--dtype", "cat[label:tissue]"],
    );
    sb.ok(
        "lab",
        &[
            "schema",
            "add",
            "panel",
            "--feature",
            "tissue",
            "-d",
            "the QC panel",
        ],
    );
    let schemas = sb.json("lab", &["schema", "ls"]);
    assert_eq!(schemas[0]["name"], "panel");
    assert_eq!(
        sb.json("lab", &["search", "schema", "qc"])[0]["name"],
        "panel"
    );
}
