//! validate / inspect: what they check values against, and values that
//! are missing rather than invalid.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use labmesh::search::vocabulary::{FieldSpec, Verdict};
use parquet::arrow::ArrowWriter;

use super::plates;
use crate::Lab;

#[test]
fn a_misspelt_or_unknown_type_is_an_error_with_the_closest() {
    let lab = plates();
    let err = lab
        .instance
        .vocabulary(&FieldSpec::Label {
            type_: Some("tisue".into()),
        })
        .err()
        .expect("an unknown type is an error")
        .to_string();
    assert!(
        err.contains("no label has type \"tisue\"; did you mean label:tissue?"),
        "{err}"
    );
    assert!(err.contains("types: tissue"), "{err}");
    let empty = Lab::new();
    let err = empty
        .instance
        .vocabulary(&FieldSpec::Feature)
        .err()
        .expect("an empty registry is an error")
        .to_string();
    assert!(
        err.contains("no features") && err.contains("feature add"),
        "{err}"
    );
}

#[test]
fn empty_cells_and_nulls_are_missing_not_invalid() {
    let lab = plates();
    let vocab = lab
        .instance
        .vocabulary(&FieldSpec::Label {
            type_: Some("tissue".into()),
        })
        .unwrap();
    let csv = lab.write("s.csv", "\u{feff}tissue,n\nliver,1\n,2\n  ,3\nlung,4\n");
    let column = labmesh::tabular::read_column(&csv, "tissue").unwrap();
    assert_eq!(
        column.len(),
        4,
        "the BOM is not part of the first column's name"
    );
    let verdicts = vocab.inspect_all(column.iter().map(|v| v.as_deref().unwrap_or("")));
    assert_eq!(verdicts[0], Verdict::Valid);
    assert_eq!(verdicts[1], Verdict::Missing);
    assert_eq!(verdicts[2], Verdict::Missing);
    assert!(matches!(verdicts[3], Verdict::Invalid { .. }));

    // Parquet nulls, in a file written by arrow.
    let path = lab.root().join("s.parquet");
    let cells: ArrayRef = Arc::new(StringArray::from(vec![Some("kidney"), None, Some("LIVER")]));
    let batch = RecordBatch::try_from_iter([("tissue", cells)]).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let column = labmesh::tabular::read_column(&path, "tissue").unwrap();
    assert_eq!(
        column,
        [Some("kidney".to_string()), None, Some("LIVER".into())]
    );
    let verdicts = vocab.inspect_all(column.iter().map(|v| v.as_deref().unwrap_or("")));
    assert_eq!(verdicts[1], Verdict::Missing);
    assert_eq!(verdicts[2].standard(), Some("liver"));
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
    assert!(
        parquet.exists(),
        "{} is missing: the shared test data must be present",
        parquet.display()
    );
    {
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
