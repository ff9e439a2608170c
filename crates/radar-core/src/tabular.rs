//! Labelled tabular data sets in CSV: a header line, numeric cells, and an
//! optional 0/1 label column (the ODDS layout). Parsing is strict: every
//! cell problem is reported with its line and column name.

use std::io::{BufRead, Write};

use thiserror::Error;

use crate::matrix::Matrix;

#[derive(Debug, Error)]
pub enum TabularError {
    #[error("reading the data failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the data is empty: expected a header line")]
    MissingHeader,
    #[error("label column `{label}` not found; the header has: {available}")]
    MissingLabel { label: String, available: String },
    #[error("the header names column `{0}` twice")]
    DuplicateColumn(String),
    #[error("no feature columns: the header has only the label column")]
    NoFeatures,
    #[error("line {line}: expected {expected} cells as in the header, found {found}")]
    CellCount {
        line: usize,
        expected: usize,
        found: usize,
    },
    #[error("line {line}, column `{column}`: {problem}")]
    Cell {
        line: usize,
        column: String,
        problem: String,
    },
    #[error("the data has a header but no rows")]
    NoRows,
}

/// Feature columns (row-major) and, when a label column was named, one
/// boolean label per row (true = anomaly).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledTable {
    pub feature_names: Vec<String>,
    pub features: Matrix,
    pub labels: Option<Vec<bool>>,
}

fn split_cells(line: &str) -> impl Iterator<Item = &str> {
    line.split(',').map(|c| {
        let c = c.trim();
        c.strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .unwrap_or(c)
    })
}

/// Reads a CSV table. `label` names the label column, whose cells must be 0
/// or 1; every other column is a numeric, finite feature.
pub fn read_csv(reader: impl BufRead, label: Option<&str>) -> Result<LabelledTable, TabularError> {
    let mut lines = reader.lines();
    let header = loop {
        match lines.next() {
            None => return Err(TabularError::MissingHeader),
            Some(line) => {
                let line = line?;
                if !line.trim().is_empty() {
                    break line;
                }
            }
        }
    };
    let header = header.trim_start_matches('\u{feff}');
    let names: Vec<String> = split_cells(header).map(str::to_owned).collect();
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(TabularError::DuplicateColumn(name.clone()));
        }
    }
    let label_index = match label {
        None => None,
        Some(label) => match names.iter().position(|n| n == label) {
            Some(i) => Some(i),
            None => {
                return Err(TabularError::MissingLabel {
                    label: label.to_owned(),
                    available: names.join(", "),
                });
            }
        },
    };
    let feature_names: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != label_index)
        .map(|(_, n)| n.clone())
        .collect();
    if feature_names.is_empty() {
        return Err(TabularError::NoFeatures);
    }
    let mut data = Vec::new();
    let mut labels = label_index.map(|_| Vec::new());
    let mut row = Vec::with_capacity(feature_names.len());
    for (i, line) in lines.enumerate() {
        let line = line?;
        let line_no = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        row.clear();
        let mut found = 0;
        for (c, cell) in split_cells(&line).enumerate() {
            found += 1;
            if c >= names.len() {
                continue;
            }
            let cell_error = |problem: String| TabularError::Cell {
                line: line_no,
                column: names[c].clone(),
                problem,
            };
            if Some(c) == label_index {
                let is_anomaly = match cell {
                    "0" | "0.0" | "false" => false,
                    "1" | "1.0" | "true" => true,
                    other => {
                        return Err(cell_error(format!(
                            "expected a label 0 or 1, found `{other}`"
                        )));
                    }
                };
                if let Some(labels) = labels.as_mut() {
                    labels.push(is_anomaly);
                }
                continue;
            }
            if cell.is_empty() {
                return Err(cell_error("empty cell, expected a number".into()));
            }
            let value: f64 = cell
                .parse()
                .map_err(|_| cell_error(format!("expected a number, found `{cell}`")))?;
            if !value.is_finite() {
                return Err(cell_error(format!(
                    "expected a finite number, found `{cell}`"
                )));
            }
            row.push(value);
        }
        if found != names.len() {
            return Err(TabularError::CellCount {
                line: line_no,
                expected: names.len(),
                found,
            });
        }
        data.extend_from_slice(&row);
    }
    if data.is_empty() {
        return Err(TabularError::NoRows);
    }
    let features =
        Matrix::new(data, feature_names.len()).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(LabelledTable {
        feature_names,
        features,
        labels,
    })
}

/// Writes a table in the layout [`read_csv`] reads, label column last.
pub fn write_csv(table: &LabelledTable, label: &str, mut out: impl Write) -> std::io::Result<()> {
    let mut header = table.feature_names.join(",");
    if table.labels.is_some() {
        header.push(',');
        header.push_str(label);
    }
    writeln!(out, "{header}")?;
    let mut line = String::new();
    for r in 0..table.features.rows() {
        line.clear();
        for (c, v) in table.features.row(r).iter().enumerate() {
            if c > 0 {
                line.push(',');
            }
            // `{}` on f64 prints the shortest string that round-trips.
            line.push_str(&v.to_string());
        }
        if let Some(labels) = &table.labels {
            line.push_str(if labels[r] { ",1" } else { ",0" });
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, label: Option<&str>) -> Result<LabelledTable, TabularError> {
        read_csv(text.as_bytes(), label)
    }

    #[test]
    fn reads_features_and_labels() {
        let t = parse("a,b,label\n1,2.5,0\n-3,4e2,1\n", Some("label")).unwrap();
        assert_eq!(t.feature_names, vec!["a", "b"]);
        assert_eq!(t.features.data(), &[1.0, 2.5, -3.0, 400.0]);
        assert_eq!(t.labels, Some(vec![false, true]));
    }

    #[test]
    fn label_column_may_sit_anywhere() {
        let t = parse("y,a\n1,5\n", Some("y")).unwrap();
        assert_eq!(t.feature_names, vec!["a"]);
        assert_eq!(t.labels, Some(vec![true]));
    }

    #[test]
    fn missing_label_names_the_available_columns() {
        let err = parse("a,b\n1,2\n", Some("label")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label column `label` not found; the header has: a, b"
        );
    }

    #[test]
    fn non_numeric_cell_names_line_and_column() {
        let err = parse("a,b,label\n1,2,0\n1,x,0\n", Some("label")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3, column `b`: expected a number, found `x`"
        );
        let err = parse("a,label\nnan,0\n", Some("label")).unwrap_err();
        assert!(err.to_string().contains("finite"), "{err}");
        let err = parse("a,label\n1,2\n", Some("label")).unwrap_err();
        assert!(err.to_string().contains("label 0 or 1"), "{err}");
        let err = parse("a,label\n,0\n", Some("label")).unwrap_err();
        assert!(err.to_string().contains("empty cell"), "{err}");
    }

    #[test]
    fn wrong_cell_count_and_empty_inputs_are_errors() {
        let err = parse("a,b\n1\n", None).unwrap_err();
        assert!(matches!(
            err,
            TabularError::CellCount {
                line: 2,
                expected: 2,
                found: 1
            }
        ));
        assert!(matches!(parse("", None), Err(TabularError::MissingHeader)));
        assert!(matches!(parse("a,b\n", None), Err(TabularError::NoRows)));
        assert!(matches!(
            parse("label\n1\n", Some("label")),
            Err(TabularError::NoFeatures)
        ));
        assert!(matches!(
            parse("a,a\n1,2\n", None),
            Err(TabularError::DuplicateColumn(_))
        ));
    }

    #[test]
    fn write_then_read_round_trips_exactly() {
        let t = parse(
            "f0,f1,label\n0.1,1e-300,0\n123456789.123,-0.3333333333333333,1\n",
            Some("label"),
        )
        .unwrap();
        let mut buf = Vec::new();
        write_csv(&t, "label", &mut buf).unwrap();
        let back = read_csv(buf.as_slice(), Some("label")).unwrap();
        assert_eq!(back, t);
    }
}
