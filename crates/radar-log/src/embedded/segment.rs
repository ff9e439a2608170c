//! Segment files: records framed with length and CRC32C.
//!
//! ```text
//! u32 body length | u32 CRC32C of body | body
//! body = u64 offset | i64 timestamp | u32 key length (u32::MAX: no key) | key
//!        | u32 value length | value | u16 header count
//!        | (u16 name length | name | u32 value length | value)*
//! ```

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::{LogError, Record, Stored};

pub(crate) const FRAME: usize = 8;
/// A record larger than this is refused (and a length above it on disk is
/// corruption, not a record).
pub(crate) const MAX_RECORD: usize = 64 << 20;
/// Every this many records a segment keeps (offset, position) in memory.
const INDEX_EVERY: u64 = 64;

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Appends one framed record to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, offset: u64, r: &Record) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME]);
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&r.timestamp.to_le_bytes());
    match &r.key {
        Some(k) => {
            buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
            buf.extend_from_slice(k);
        }
        None => buf.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
    buf.extend_from_slice(&(r.value.len() as u32).to_le_bytes());
    buf.extend_from_slice(&r.value);
    buf.extend_from_slice(&(r.headers.len() as u16).to_le_bytes());
    for (name, value) in &r.headers {
        buf.extend_from_slice(&(name.len() as u16).to_le_bytes());
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
        buf.extend_from_slice(value);
    }
    let body_len = buf.len() - start - FRAME;
    let crc = crc32c::crc32c(&buf[start + FRAME..]);
    buf[start..start + 4].copy_from_slice(&(body_len as u32).to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The size a record takes framed.
pub(crate) fn framed_len(r: &Record) -> usize {
    FRAME
        + 8
        + 8
        + 4
        + r.key.as_ref().map_or(0, |k| k.len())
        + 4
        + r.value.len()
        + 2
        + r.headers
            .iter()
            .map(|(n, v)| 2 + n.len() + 4 + v.len())
            .sum::<usize>()
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
    }
}

/// Decodes a checked body (the bytes `body` of `buf`) into (offset,
/// record); key and value share `buf`.
fn decode_body(buf: &Bytes, body: std::ops::Range<usize>) -> Option<(u64, Record)> {
    let base = body.start;
    let mut c = Cursor {
        b: &buf[body],
        at: 0,
    };
    let offset = c.u64()?;
    let timestamp = c.u64()? as i64;
    let key = match c.u32()? {
        u32::MAX => None,
        n => {
            let at = c.at;
            c.take(n as usize)?;
            Some(buf.slice(base + at..base + c.at))
        }
    };
    let n = c.u32()? as usize;
    let at = c.at;
    c.take(n)?;
    let value = buf.slice(base + at..base + c.at);
    let count = c.u16()?;
    let mut headers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let n = c.u16()? as usize;
        let name = String::from_utf8(c.take(n)?.to_vec()).ok()?;
        let n = c.u32()? as usize;
        headers.push((name, c.take(n)?.to_vec()));
    }
    (c.at == c.b.len()).then_some((
        offset,
        Record {
            key,
            value,
            timestamp,
            headers,
        },
    ))
}

/// What a frame at a position holds.
pub(crate) enum Frame {
    Record {
        offset: u64,
        record: Record,
        len: usize,
    },
    /// Not enough bytes for the frame: a tail cut short.
    Short,
    /// A complete frame whose body fails its checksum or does not parse.
    Bad(String),
}

/// Parses the frame at `at` in `buf`.
pub(crate) fn parse_frame(buf: &Bytes, at: usize) -> Frame {
    let b = &buf[at.min(buf.len())..];
    if b.len() < FRAME {
        return Frame::Short;
    }
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let crc = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if len > MAX_RECORD {
        return Frame::Bad(format!("length {len} is impossible"));
    }
    let Some(body) = b.get(FRAME..FRAME + len) else {
        return Frame::Short;
    };
    if crc32c::crc32c(body) != crc {
        return Frame::Bad("checksum mismatch".into());
    }
    match decode_body(buf, at + FRAME..at + FRAME + len) {
        Some((offset, record)) => Frame::Record {
            offset,
            record,
            len: FRAME + len,
        },
        None => Frame::Bad("malformed record body".into()),
    }
}

/// One segment file: records with offsets from `base` on.
#[derive(Debug)]
pub(crate) struct Segment {
    pub base: u64,
    pub path: PathBuf,
    pub file: File,
    /// Bytes of whole records in the file.
    pub len: u64,
    /// Offset the next record in this segment would get.
    pub next: u64,
    pub max_timestamp: i64,
    /// Sparse (offset, position) index.
    pub index: Vec<(u64, u64)>,
    /// A failed write may have left bytes past `len` that could not be cut
    /// yet; they are cut before the next write lands after them.
    pub torn: bool,
}

pub(crate) fn segment_name(base: u64) -> String {
    format!("{base:020}.log")
}

impl Segment {
    pub fn create(dir: &Path, base: u64) -> Result<Segment, LogError> {
        let path = dir.join(segment_name(base));
        let file = File::options()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        sync_dir(dir)?;
        Ok(Segment {
            base,
            path,
            file,
            len: 0,
            next: base,
            max_timestamp: i64::MIN,
            index: Vec::new(),
            torn: false,
        })
    }

    /// Opens and checks a segment. A cut-short or unreadable tail is
    /// truncated when `is_last` (a write the crash interrupted, never
    /// acknowledged) and is corruption otherwise, as is a bad record with
    /// good ones after it.
    pub fn open(path: PathBuf, base: u64, is_last: bool) -> Result<Segment, LogError> {
        let file = File::options()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let bytes = Bytes::from(std::fs::read(&path).map_err(io(&path))?);
        let mut seg = Segment {
            base,
            path,
            file,
            len: 0,
            next: base,
            max_timestamp: i64::MIN,
            index: Vec::new(),
            torn: false,
        };
        let mut pos = 0usize;
        while pos < bytes.len() {
            match parse_frame(&bytes, pos) {
                Frame::Record {
                    offset,
                    record,
                    len,
                } => {
                    if offset != seg.next {
                        return Err(seg.corrupt(
                            pos as u64,
                            format!("offset {offset} where {} was expected", seg.next),
                        ));
                    }
                    seg.note(offset, pos as u64, record.timestamp);
                    pos += len;
                    seg.len = pos as u64;
                }
                Frame::Short if is_last => break,
                Frame::Bad(detail) if is_last && !valid_record_follows(&bytes, pos, seg.next) => {
                    let _ = detail;
                    break;
                }
                Frame::Short => {
                    return Err(
                        seg.corrupt(pos as u64, "record cut short in a sealed segment".into())
                    );
                }
                Frame::Bad(detail) => return Err(seg.corrupt(pos as u64, detail)),
            }
        }
        if (seg.len as usize) < bytes.len() {
            // Torn tail: the crash interrupted a write that was never
            // acknowledged.
            seg.file.set_len(seg.len).map_err(io(&seg.path))?;
            seg.file.sync_all().map_err(io(&seg.path))?;
        }
        Ok(seg)
    }

    fn corrupt(&self, position: u64, detail: String) -> LogError {
        LogError::Corrupt {
            path: self.path.display().to_string(),
            position,
            detail,
        }
    }

    /// Writes `records`, already framed in `buf` with offsets from
    /// `self.next` on, at the end of the segment. All or nothing: when the
    /// write fails (a full disk), the segment is cut back to its whole
    /// records and its offsets do not move, so a later write never lands
    /// behind a torn frame that the next open would truncate along with it.
    pub fn append(&mut self, buf: &[u8], records: &[&Record]) -> Result<(), LogError> {
        self.cut_torn_tail()?;
        if let Err(e) = (&self.file).write_all(buf) {
            self.torn = true;
            // Truncating frees space, so it succeeds where the write did
            // not; if it fails too, the next write retries it first.
            let _ = self.cut_torn_tail();
            return Err(io(&self.path)(e));
        }
        let mut pos = self.len;
        for r in records {
            self.note(self.next, pos, r.timestamp);
            pos += framed_len(r) as u64;
        }
        debug_assert_eq!(pos - self.len, buf.len() as u64);
        self.len = pos;
        Ok(())
    }

    fn cut_torn_tail(&mut self) -> Result<(), LogError> {
        if self.torn {
            self.file.set_len(self.len).map_err(io(&self.path))?;
            self.torn = false;
        }
        Ok(())
    }

    /// Forgets the records from `offset` on, which end at byte `len`: an
    /// `fsync` failed, so what it should have covered cannot be trusted.
    pub fn roll_back(&mut self, offset: u64, len: u64) -> Result<(), LogError> {
        debug_assert!(offset >= self.base && offset <= self.next && len <= self.len);
        self.len = len;
        self.next = offset;
        self.index.retain(|&(o, _)| o < offset);
        self.torn = true;
        self.cut_torn_tail()?;
        self.file.sync_all().map_err(io(&self.path))
    }

    /// Records that a record with `offset` sits at `pos`.
    pub fn note(&mut self, offset: u64, pos: u64, timestamp: i64) {
        if (offset - self.base).is_multiple_of(INDEX_EVERY) {
            self.index.push((offset, pos));
        }
        self.next = offset + 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Up to `max` records from `offset`, not past `end` (exclusive).
    pub fn read(
        &self,
        partition: u32,
        offset: u64,
        end: u64,
        max: usize,
        out: &mut Vec<Stored>,
    ) -> Result<(), LogError> {
        let i = self.index.partition_point(|&(o, _)| o <= offset);
        let (mut at, mut pos) = if i == 0 {
            (self.base, 0)
        } else {
            self.index[i - 1]
        };
        // Below glibc's mmap threshold, so chunks recycle heap memory instead
        // of faulting in fresh pages.
        let mut chunk = 64usize << 10;
        while out.len() < max && at < end && pos < self.len {
            let mut raw = vec![0u8; chunk.min((self.len - pos) as usize)];
            self.file
                .read_exact_at(&mut raw, pos)
                .map_err(io(&self.path))?;
            let buf = Bytes::from(raw);
            let mut used = 0;
            while out.len() < max && at < end {
                match parse_frame(&buf, used) {
                    Frame::Record {
                        offset: o,
                        record,
                        len,
                    } => {
                        if o != at {
                            return Err(self.corrupt(
                                pos + used as u64,
                                format!("offset {o} where {at} was expected"),
                            ));
                        }
                        if o >= offset {
                            out.push(Stored {
                                partition,
                                offset: o,
                                record,
                            });
                        }
                        used += len;
                        at += 1;
                    }
                    Frame::Short => break,
                    Frame::Bad(detail) => return Err(self.corrupt(pos + used as u64, detail)),
                }
            }
            if used == 0 {
                // One record larger than the chunk: read it whole next time.
                let head = &buf[..buf.len().min(4)];
                if head.len() < 4 || buf.len() as u64 >= self.len - pos {
                    return Err(self.corrupt(pos, "record runs past the segment's end".into()));
                }
                chunk = FRAME + u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                continue;
            }
            pos += used as u64;
        }
        Ok(())
    }
}

/// Whether a valid record with offset `expected` or later starts after the
/// bad frame at `pos` (which would make the bad frame mid-file corruption
/// rather than a torn tail).
fn valid_record_follows(bytes: &Bytes, pos: usize, expected: u64) -> bool {
    if bytes.len() < pos + FRAME {
        return false;
    }
    let len =
        u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
    let next = pos + FRAME + len.min(MAX_RECORD);
    if next < bytes.len()
        && let Frame::Record { offset, .. } = parse_frame(bytes, next)
    {
        return offset > expected;
    }
    false
}

/// Makes a directory's entries (new or renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
