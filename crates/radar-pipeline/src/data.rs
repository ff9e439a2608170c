//! Opening data files (gunzipped when they start with gzip's magic bytes)
//! and reading labelled tabular files.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use radar_core::tabular::{self, LabelledTable};

use crate::error::{PipelineError, Result};

/// Opens `path`, gunzipping when the file starts with the gzip magic bytes.
pub fn open(path: &Path) -> Result<Box<dyn Read>> {
    let shown = format!("cannot open data file `{}`", path.display());
    let mut file = File::open(path).map_err(PipelineError::io(&shown))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(PipelineError::io(&shown))?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let chained = head.chain(file);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(chained)))
    } else {
        Ok(Box::new(chained))
    }
}

/// Reads a CSV table from `path`; `label` names the 0/1 label column.
pub fn read_table(path: &Path, label: Option<&str>) -> Result<LabelledTable> {
    let reader = BufReader::with_capacity(1 << 16, open(path)?);
    tabular::read_csv(reader, label)
        .map_err(|e| PipelineError::input(format!("in `{}`: {e}", path.display())))
}
