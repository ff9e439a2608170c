//! The one reader of event files: JSON lines (one object per line) or CSV
//! with a header (RFC 4180: quoted fields, commas and quotes inside
//! quotes), either optionally gzipped. `ingest`, `eval`, `features` and
//! `eval nab` all read through it, so radar reads back the CSV it writes.
//!
//! Line numbers are 1-based and name where an event starts in the file
//! (a quoted CSV field may span lines).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use radar_core::decode::{DeadLetter, Decoder, Record};
use radar_core::schema::{self, StreamConfig, StreamSchema};

use crate::error::{PipelineError, Result};

/// One event of a file, not yet decoded.
#[derive(Debug, Clone)]
pub struct RawEvent {
    /// Where it starts (1-based).
    pub line: u64,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    /// The line's bytes.
    Json(Vec<u8>),
    /// The row's cells, and the row written back as CSV (for dead letters).
    Cells { cells: Vec<String>, raw: Vec<u8> },
}

impl RawEvent {
    /// Decodes with `decoder`; `header` is the file's CSV header.
    pub fn decode(
        &self,
        decoder: &mut Decoder,
        header: &[String],
        ingest_time: i64,
    ) -> std::result::Result<Record, DeadLetter> {
        match &self.body {
            Body::Json(bytes) => decoder.decode_json(bytes, ingest_time),
            Body::Cells { cells, raw } => {
                let names: Vec<&str> = header.iter().map(String::as_str).collect();
                let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
                decoder.decode_cells(&names, &cells, raw, ingest_time)
            }
        }
    }
}

enum Source {
    Json,
    Csv { header: Vec<String> },
}

/// An open event file.
pub struct EventFile {
    reader: BufReader<Box<dyn Read>>,
    source: Source,
    path: String,
    /// Physical lines read so far.
    line: u64,
    buf: Vec<u8>,
}

/// The cells of one CSV record (RFC 4180), `text` holding it whole.
fn csv_record(text: &[u8]) -> Result<Vec<String>, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    let mut row = csv::StringRecord::new();
    reader.read_record(&mut row)?;
    Ok(row.iter().map(str::to_owned).collect())
}

impl EventFile {
    /// Opens `path`: JSON lines when the first non-blank character is `{`,
    /// else CSV whose first record is the header.
    pub fn open(path: &Path) -> Result<EventFile> {
        let mut reader = BufReader::with_capacity(1 << 20, crate::data::open(path)?);
        let shown = path.display().to_string();
        let is_json = {
            let buf = reader.fill_buf().map_err(PipelineError::io(&shown))?;
            buf.iter()
                .find(|b| !b.is_ascii_whitespace())
                .is_none_or(|&b| b == b'{')
        };
        let mut file = EventFile {
            reader,
            source: Source::Json,
            path: shown,
            line: 0,
            buf: Vec::new(),
        };
        if !is_json {
            let header = match file.next_record(true)? {
                Some((_, text)) => csv_record(&text)
                    .map_err(|e| {
                        PipelineError::input(format!("`{}`: the CSV header: {e}", file.path))
                    })?
                    .into_iter()
                    .map(|h| h.trim_start_matches('\u{feff}').to_owned())
                    .collect(),
                None => Vec::new(),
            };
            file.source = Source::Csv { header };
        }
        Ok(file)
    }

    /// The CSV header (empty for JSON lines).
    pub fn header(&self) -> &[String] {
        match &self.source {
            Source::Csv { header } => header,
            Source::Json => &[],
        }
    }

    /// The next non-blank record's first line and bytes (without its line
    /// end). A CSV record continues over lines while a quote is open.
    fn next_record(&mut self, csv: bool) -> Result<Option<(u64, Vec<u8>)>> {
        let mut record: Vec<u8> = Vec::new();
        let mut first = 0;
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(PipelineError::io(&self.path))?;
            if n == 0 {
                return Ok((!record.is_empty()).then_some((first, record)));
            }
            self.line += 1;
            if record.is_empty() {
                while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                    self.buf.pop();
                }
                if self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                first = self.line;
                record.extend_from_slice(&self.buf);
            } else {
                // Inside a quoted field: its line break is part of it.
                record.push(b'\n');
                while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                    self.buf.pop();
                }
                record.extend_from_slice(&self.buf);
            }
            let open_quote = record.iter().filter(|&&b| b == b'"').count() % 2 == 1;
            if !(csv && open_quote) {
                return Ok(Some((first, record)));
            }
        }
    }

    /// The next event, skipping blank lines; `None` at the end.
    pub fn next_event(&mut self) -> Result<Option<RawEvent>> {
        let csv = matches!(self.source, Source::Csv { .. });
        let Some((line, bytes)) = self.next_record(csv)? else {
            return Ok(None);
        };
        let body = match self.source {
            Source::Json => Body::Json(bytes),
            Source::Csv { .. } => {
                let cells = csv_record(&bytes).map_err(|e| {
                    PipelineError::input(format!("`{}`, line {line}: {e}", self.path))
                })?;
                Body::Cells { cells, raw: bytes }
            }
        };
        Ok(Some(RawEvent { line, body }))
    }
}

/// What reading a whole event file gave.
pub struct Decoded {
    pub records: Vec<Record>,
    /// (line, why) of every event that did not decode.
    pub dead_letters: Vec<(u64, DeadLetter)>,
}

/// Reads and decodes every event of `path`. Events without a timestamp
/// field take their line number as a time in microseconds, which keeps
/// file order.
pub fn read_all(path: &Path, decoder: &mut Decoder) -> Result<Decoded> {
    let mut file = EventFile::open(path)?;
    let header = file.header().to_vec();
    let mut out = Decoded {
        records: Vec::new(),
        dead_letters: Vec::new(),
    };
    while let Some(event) = file.next_event()? {
        match event.decode(decoder, &header, event.line as i64) {
            Ok(r) => out.records.push(r),
            Err(dl) => out.dead_letters.push((event.line, dl)),
        }
    }
    Ok(out)
}

/// A one-line summary of dead letters by reason, for people.
pub fn dead_letter_summary(dead: &[(u64, DeadLetter)]) -> String {
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

/// Reads the `[streams]` of a declaration file.
pub fn load_streams(path: &Path) -> Result<BTreeMap<String, StreamConfig>> {
    let text = std::fs::read_to_string(path).map_err(PipelineError::io(format!(
        "cannot read config `{}`",
        path.display()
    )))?;
    schema::parse_streams(&text)
        .map_err(|e| PipelineError::input(format!("in `{}`: {e}", path.display())))
}

/// The validated declaration of `stream` in `path`; with no name, the only
/// stream declared.
pub fn load_schema(path: &Path, stream: Option<&str>) -> Result<StreamSchema> {
    let streams = load_streams(path)?;
    let (name, config) = match stream {
        Some(name) => match streams.get(name) {
            Some(c) => (name.to_owned(), c.clone()),
            None => {
                return Err(PipelineError::NotFound(format!(
                    "stream `{name}` is not declared in `{}` (declared: {})",
                    path.display(),
                    streams.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        },
        None if streams.len() == 1 => streams
            .into_iter()
            .next()
            .ok_or_else(|| PipelineError::Internal("one stream".into()))?,
        None => {
            return Err(PipelineError::input(format!(
                "`{}` declares {} streams; name one with --stream",
                path.display(),
                streams.len()
            )));
        }
    };
    Ok(config.build(&name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    fn all(text: &str) -> (Vec<String>, Vec<RawEvent>) {
        let f = file(text);
        let mut e = EventFile::open(f.path()).unwrap();
        let header = e.header().to_vec();
        let mut out = Vec::new();
        while let Some(ev) = e.next_event().unwrap() {
            out.push(ev);
        }
        (header, out)
    }

    #[test]
    fn csv_reads_quoted_fields_with_commas_quotes_and_newlines() {
        let (header, events) =
            all("id,note,amount\n1,\"a, b\",2.5\n\n2,\"say \"\"hi\"\"\",3\n3,\"two\nlines\",4\n");
        assert_eq!(header, ["id", "note", "amount"]);
        let cells: Vec<Vec<String>> = events
            .iter()
            .map(|e| match &e.body {
                Body::Cells { cells, .. } => cells.clone(),
                Body::Json(_) => panic!("csv"),
            })
            .collect();
        assert_eq!(cells[0], ["1", "a, b", "2.5"]);
        assert_eq!(cells[1], ["2", "say \"hi\"", "3"]);
        assert_eq!(cells[2], ["3", "two\nlines", "4"]);
        let lines: Vec<u64> = events.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 4, 5]);
        // The raw row is the row as written.
        let Body::Cells { raw, .. } = &events[0].body else {
            panic!()
        };
        assert_eq!(raw, b"1,\"a, b\",2.5");
    }

    #[test]
    fn json_lines_skip_blank_lines_and_keep_line_numbers() {
        // An escaped quote is one quote: JSON lines never continue.
        let (header, events) = all("{\"a\":\"say \\\"hi\"}\n\n  \n{\"a\":2}\r\n");
        assert!(header.is_empty());
        assert_eq!(
            events.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 4]
        );
        let Body::Json(b) = &events[1].body else {
            panic!()
        };
        assert_eq!(b, b"{\"a\":2}");
    }

    #[test]
    fn a_broken_csv_row_names_its_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, b"a,b\n1,2\n\n3,\xff\xfe\n").unwrap();
        let mut e = EventFile::open(f.path()).unwrap();
        assert_eq!(e.next_event().unwrap().unwrap().line, 2);
        let err = e.next_event().unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
    }
}
