//! Filters and searches are index look-ups: SQLite's own query plans
//! (`EXPLAIN QUERY PLAN`) show no full scan of a registry, a link table
//! or the search index.

use labmesh::SaveOptions;
use labmesh::query::FilterOptions;
use labmesh::search::Registry;

use super::feature;
use crate::Lab;

/// Plan steps that read a whole table or index: "SCAN t", "SCAN a USING
/// INDEX …". Scanning a constant row, a sub-query's own rows, a JSON list
/// or an FTS match is not reading a registry.
fn full_scans(plans: &[String]) -> Vec<String> {
    plans
        .iter()
        .flat_map(|p| p.lines())
        .map(str::trim)
        .filter(|step| step.starts_with("SCAN "))
        .filter(|step| {
            !(step.starts_with("SCAN CONSTANT ROW")
                || step.starts_with("SCAN (subquery")
                || step.contains("json_each")
                || step.contains("VIRTUAL TABLE"))
        })
        .map(str::to_string)
        .collect()
}

fn instance() -> Lab {
    let lab = Lab::new();
    let i = &lab.instance;
    feature(&lab, "temperature", "float");
    feature(&lab, "tissue", "cat[label:tissue]");
    let paths: Vec<_> = (0..600)
        .map(|n| lab.write(&format!("raw/plate{n:04}.csv"), format!("{n}")))
        .collect();
    i.save_many(&paths, &SaveOptions::default()).unwrap();
    let labels: Vec<(String, Option<String>)> = (0..3000)
        .map(|n| (format!("hepatocyte marker {n}"), Some("tissue".into())))
        .collect();
    i.add_labels_bulk(&labels).unwrap();
    for n in 0..20 {
        i.annotate(
            &format!("raw/plate{n:04}.csv"),
            &[],
            &[
                ("temperature".into(), format!("{}", 30 + n)),
                ("tissue".into(), format!("hepatocyte marker {n}")),
            ],
        )
        .unwrap();
    }
    i.connection().execute_batch("ANALYZE").unwrap();
    lab
}

#[test]
fn filters_and_searches_do_not_scan_the_big_tables() {
    let lab = instance();
    let i = &lab.instance;
    let opts = FilterOptions::default();
    let uid = i.get("raw/plate0007.csv").unwrap().uid;
    for filter in [
        "key = 'raw/plate0007.csv'".to_string(),
        format!("uid = '{uid}'"),
        "key ^= 'raw/plate000'".into(),
        "labels.name = 'hepatocyte marker 7'".into(),
        "tissue = 'hepatocyte marker 7'".into(),
        "temperature >= 35 and temperature < 36".into(),
        "labels.name = 'hepatocyte marker 7' and labels.name = 'hepatocyte marker 8'".into(),
    ] {
        let plan = i.filter_plan(Registry::Artifact, &filter, &opts).unwrap();
        assert!(
            full_scans(&plan).is_empty(),
            "{filter}: {}",
            plan.join("\n")
        );
    }
    for query in [
        "hepatocyte",
        "hepatocyte marker 7",
        "hepato",
        "hepatocite",
        "epatocyt",
        "marker hep",
    ] {
        let plans = i.search_plan(Registry::Label, query, 20).unwrap();
        assert!(!plans.is_empty());
        let scans = full_scans(&plans);
        assert!(scans.is_empty(), "{query}: {scans:?}\n{}", plans.join("\n"));
    }
    let plans = i.search_plan(Registry::Artifact, "plate0007", 20).unwrap();
    assert!(full_scans(&plans).is_empty(), "{}", plans.join("\n"));
}
