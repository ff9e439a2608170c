//! Dense row-major feature matrices: what feature engines produce and
//! detectors consume.
//!
//! Every value of a matrix is finite: constructors check it once, where data
//! enters, and report the first offending row and column. Detectors can then
//! trust their input without scanning it again.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum MatrixError {
    #[error("matrix data has {len} values, which is not a multiple of {cols} columns")]
    RaggedData { len: usize, cols: usize },
    #[error("a matrix needs at least one column")]
    NoColumns,
    #[error(
        "row {row}, column {column}: value {value} is not finite (NaN and infinity are not valid features)"
    )]
    NonFinite {
        row: usize,
        column: usize,
        value: f64,
    },
    #[error("row {row} has {got} values, expected {expected}")]
    RowLength {
        row: usize,
        expected: usize,
        got: usize,
    },
}

fn check_finite(data: &[f64], cols: usize, first_row: usize) -> Result<(), MatrixError> {
    // Chunked so the common all-finite case vectorises.
    const CHUNK: usize = 256;
    for (c, chunk) in data.chunks(CHUNK).enumerate() {
        if !chunk.iter().fold(true, |ok, v| ok & v.is_finite()) {
            let i = c * CHUNK + chunk.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(MatrixError::NonFinite {
                row: first_row + i / cols,
                column: i % cols,
                value: data[i],
            });
        }
    }
    Ok(())
}

/// A borrowed row-major matrix of finite `f64`.
#[derive(Debug, Clone, Copy)]
pub struct MatrixView<'a> {
    data: &'a [f64],
    rows: usize,
    cols: usize,
}

impl<'a> MatrixView<'a> {
    pub fn new(data: &'a [f64], cols: usize) -> Result<Self, MatrixError> {
        if cols == 0 {
            return Err(MatrixError::NoColumns);
        }
        if !data.len().is_multiple_of(cols) {
            return Err(MatrixError::RaggedData {
                len: data.len(),
                cols,
            });
        }
        check_finite(data, cols, 0)?;
        Ok(MatrixView {
            data,
            rows: data.len() / cols,
            cols,
        })
    }

    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }

    #[inline]
    pub fn cols(&self) -> usize {
        self.cols
    }

    #[inline]
    pub fn data(&self) -> &'a [f64] {
        self.data
    }

    #[inline]
    pub fn row(&self, i: usize) -> &'a [f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Rows `start..end` as a view.
    pub fn slice_rows(&self, start: usize, end: usize) -> MatrixView<'a> {
        MatrixView {
            data: &self.data[start * self.cols..end * self.cols],
            rows: end - start,
            cols: self.cols,
        }
    }
}

/// An owned row-major matrix of finite `f64`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    data: Vec<f64>,
    cols: usize,
}

impl Matrix {
    pub fn new(data: Vec<f64>, cols: usize) -> Result<Self, MatrixError> {
        MatrixView::new(&data, cols)?;
        Ok(Matrix { data, cols })
    }

    pub fn with_columns(cols: usize) -> Result<Self, MatrixError> {
        if cols == 0 {
            return Err(MatrixError::NoColumns);
        }
        Ok(Matrix {
            data: Vec::new(),
            cols,
        })
    }

    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, MatrixError> {
        let cols = rows.first().map_or(0, Vec::len);
        let mut m = Matrix::with_columns(cols)?;
        for row in rows {
            m.push_row(row)?;
        }
        Ok(m)
    }

    pub fn push_row(&mut self, row: &[f64]) -> Result<(), MatrixError> {
        if row.len() != self.cols {
            return Err(MatrixError::RowLength {
                row: self.rows(),
                expected: self.cols,
                got: row.len(),
            });
        }
        check_finite(row, self.cols, self.rows())?;
        self.data.extend_from_slice(row);
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.cols).unwrap_or(0)
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn data(&self) -> &[f64] {
        &self.data
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn view(&self) -> MatrixView<'_> {
        MatrixView {
            data: &self.data,
            rows: self.rows(),
            cols: self.cols,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_index_rows() {
        let m = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]).unwrap();
        let v = m.view();
        assert_eq!(v.rows(), 3);
        assert_eq!(v.row(1), &[3.0, 4.0]);
        assert_eq!(v.slice_rows(1, 3).row(1), &[5.0, 6.0]);
    }

    #[test]
    fn non_finite_values_are_rejected_with_their_place() {
        let mut data = vec![0.5; 3 * 1000];
        data[3 * 700 + 2] = f64::NAN;
        data[3 * 900] = f64::INFINITY;
        let err = MatrixView::new(&data, 3).unwrap_err();
        assert!(matches!(
            err,
            MatrixError::NonFinite {
                row: 700,
                column: 2,
                ..
            }
        ));
        let mut m = Matrix::with_columns(2).unwrap();
        m.push_row(&[1.0, 2.0]).unwrap();
        let err = m.push_row(&[f64::NEG_INFINITY, 2.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "row 1, column 0: value -inf is not finite (NaN and infinity are not valid features)"
        );
        assert_eq!(m.rows(), 1);
    }

    #[test]
    fn ragged_data_and_rows_are_rejected() {
        assert_eq!(
            MatrixView::new(&[1.0, 2.0, 3.0], 2).unwrap_err(),
            MatrixError::RaggedData { len: 3, cols: 2 }
        );
        assert_eq!(MatrixView::new(&[], 0).unwrap_err(), MatrixError::NoColumns);
        let err = Matrix::from_rows(&[vec![1.0, 2.0], vec![3.0]]).unwrap_err();
        assert_eq!(
            err,
            MatrixError::RowLength {
                row: 1,
                expected: 2,
                got: 1
            }
        );
    }
}
