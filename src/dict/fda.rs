//! Reading the FDA NDC directory files `product.txt` and `package.txt`.
//! (Being written: see the helper's task.)

use super::{Package, Product};

/// Why a directory file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FdaError {
    /// A required column is missing from the header line.
    #[error("{file}: the header has no column {column}")]
    MissingColumn {
        file: &'static str,
        column: &'static str,
    },
}

/// A row that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub file: &'static str,
    pub line: usize,
    pub detail: String,
}

/// Reads `product.txt` (Windows-1252, tab-separated, CRLF).
pub fn read_products(_bytes: &[u8]) -> Result<(Vec<Product>, Vec<RowProblem>), FdaError> {
    Ok((Vec::new(), Vec::new()))
}

/// Reads `package.txt` (Windows-1252, tab-separated, CRLF).
pub fn read_packages(_bytes: &[u8]) -> Result<(Vec<Package>, Vec<RowProblem>), FdaError> {
    Ok((Vec::new(), Vec::new()))
}
