//! Dense row-major feature matrices: what feature engines produce and
//! detectors consume.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum MatrixError {
    #[error("matrix data has {len} values, which is not a multiple of {cols} columns")]
    RaggedData { len: usize, cols: usize },
    #[error("a matrix needs at least one column")]
    NoColumns,
    #[error("row {row} has {got} values, expected {expected}")]
    RowLength {
        row: usize,
        expected: usize,
        got: usize,
    },
}

/// A borrowed row-major matrix of `f64`.
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

/// An owned row-major matrix of `f64`.
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
