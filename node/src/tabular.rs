//! Reading one column of a CSV/TSV or parquet file as text, for
//! validate/inspect/standardize and bulk label imports. Empty cells and
//! nulls are `None`: missing, which is not the same as an invalid value.

use std::fs::File;
use std::path::Path;

use arrow_array::{Array, StringArray};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{Error, Result};

/// The values of `column` (`None` for nulls/empty cells), in row order.
pub fn read_column(path: &Path, column: &str) -> Result<Vec<Option<String>>> {
    let name = path.to_string_lossy().to_lowercase();
    if name.ends_with(".parquet") || name.ends_with(".pq") {
        read_parquet(path, column)
    } else {
        read_delimited(
            path,
            column,
            if name.ends_with(".tsv") || name.ends_with(".tab") {
                b'\t'
            } else {
                b','
            },
        )
    }
}

fn no_column(path: &Path, column: &str, available: &[String]) -> Error {
    let hint = crate::similar::closest(column, available.iter().map(String::as_str))
        .map(|c| format!("; did you mean {c:?}?"))
        .unwrap_or_default();
    Error::InvalidArgument(format!(
        "{} has no column {column:?}{hint} (columns: {})",
        path.display(),
        available.join(", ")
    ))
}

fn read_delimited(path: &Path, column: &str, delimiter: u8) -> Result<Vec<Option<String>>> {
    let file = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(file);
    let bad =
        |e: csv::Error| Error::InvalidArgument(format!("{} is not valid CSV: {e}", path.display()));
    // Spreadsheet exports often start with a UTF-8 byte-order mark, which
    // would otherwise be part of the first column's name.
    let headers: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            };
            h.trim().to_string()
        })
        .collect();
    let index = headers
        .iter()
        .position(|h| h == column.trim())
        .ok_or_else(|| no_column(path, column, &headers))?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(bad)?;
        out.push(
            record
                .get(index)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string),
        );
    }
    Ok(out)
}

fn read_parquet(path: &Path, column: &str) -> Result<Vec<Option<String>>> {
    let file = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    let bad = |e: &dyn std::fmt::Display| {
        Error::InvalidArgument(format!(
            "{} is not a readable parquet file: {e}",
            path.display()
        ))
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(&e))?;
    let schema = builder.schema().clone();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let index = names
        .iter()
        .position(|n| n == column)
        .ok_or_else(|| no_column(path, column, &names))?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let reader = builder.with_projection(mask).build().map_err(|e| bad(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        // Any type (dictionary-encoded categoricals, numbers) as text.
        let text = arrow_cast::cast(batch.column(0), &DataType::Utf8).map_err(|e| bad(&e))?;
        let strings = text.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
            Error::InvalidArgument(format!("column {column:?} cannot be read as text"))
        })?;
        for i in 0..strings.len() {
            out.push((!strings.is_null(i)).then(|| strings.value(i).to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_first_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("excel.csv");
        std::fs::write(&path, "\u{feff}tissue,n\nliver,1\n,2\n").unwrap();
        assert_eq!(
            read_column(&path, "tissue").unwrap(),
            vec![Some("liver".to_string()), None],
            "the empty cell is missing"
        );
    }
}
