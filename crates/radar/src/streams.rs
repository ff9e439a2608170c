//! Loading stream declarations and reading event files (JSON lines or CSV)
//! through the decoder.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result, bail};
use radar_core::decode::{DeadLetter, Decoder, Record};
use radar_core::schema::{self, StreamConfig, StreamSchema};

use crate::data;

/// Reads the `[streams]` of a config file.
pub fn load_streams(path: &Path) -> Result<BTreeMap<String, StreamConfig>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config `{}`", path.display()))?;
    schema::parse_streams(&text).map_err(|e| anyhow::anyhow!("in `{}`: {e}", path.display()))
}

/// The validated declaration of `stream` in `path`; with no name, the only
/// stream declared.
pub fn load_schema(path: &Path, stream: Option<&str>) -> Result<StreamSchema> {
    let streams = load_streams(path)?;
    let (name, config) = match stream {
        Some(name) => match streams.get(name) {
            Some(c) => (name.to_owned(), c.clone()),
            None => bail!(
                "stream `{name}` is not declared in `{}` (declared: {})",
                path.display(),
                streams.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        },
        None if streams.len() == 1 => streams.into_iter().next().context("one stream")?,
        None => bail!(
            "`{}` declares {} streams; name one with --stream",
            path.display(),
            streams.len()
        ),
    };
    Ok(config.build(&name)?)
}

/// What reading an event file gave.
pub struct EventFile {
    pub records: Vec<Record>,
    pub dead_letters: Vec<(usize, DeadLetter)>,
}

/// Reads JSON lines (one object per line) or CSV with a header (when the
/// first non-blank character is not `{`). Line numbers are 1-based.
/// Events without a timestamp field take their line number as a time in
/// microseconds, which keeps file order.
pub fn read_events(path: &Path, decoder: &mut Decoder) -> Result<EventFile> {
    let mut reader = BufReader::with_capacity(1 << 20, data::open(path)?);
    let is_json = {
        let buf = reader.fill_buf()?;
        buf.iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|&b| b == b'{')
    };
    let mut out = EventFile {
        records: Vec::new(),
        dead_letters: Vec::new(),
    };
    let mut line = Vec::new();
    let mut header: Vec<String> = Vec::new();
    let mut line_no = 0usize;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        line_no += 1;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let result = if is_json {
            decoder.decode_json(&line, line_no as i64)
        } else if header.is_empty() {
            header = csv_cells(&line);
            continue;
        } else {
            let cells = csv_cells(&line);
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            let names: Vec<&str> = header.iter().map(String::as_str).collect();
            decoder.decode_cells(&names, &cells, &line, line_no as i64)
        };
        match result {
            Ok(r) => out.records.push(r),
            Err(dl) => out.dead_letters.push((line_no, dl)),
        }
    }
    Ok(out)
}

/// The cells of a CSV line (header or row): split on commas, trimmed,
/// surrounding quotes removed. Quoted commas are not supported.
pub fn csv_cells(line: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(line)
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_owned())
        .collect()
}

/// A one-line summary of dead letters by reason, for stderr.
pub fn dead_letter_summary(dead: &[(usize, DeadLetter)]) -> String {
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, dl) in dead {
        *by.entry(dl.reason.code()).or_default() += 1;
    }
    let parts: Vec<String> = by.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let first = dead
        .first()
        .map(|(line, dl)| format!("; first at line {line}: {}", dl.reason))
        .unwrap_or_default();
    format!("{} dead letters ({}){first}", dead.len(), parts.join(", "))
}
