//! The model file container: a versioned, checksummed envelope around a
//! detector's payload.
//!
//! ```text
//! magic "RADARMDL" (8) | format version u16 | kind u16 | payload length u64
//! | payload | CRC32C u32 of everything before it
//! ```
//! All integers little-endian. Decoding validates the envelope before the
//! payload is touched, and payload readers bounds-check every read, so a
//! truncated, corrupted or foreign file is an error, never a panic.

use thiserror::Error;

pub const MAGIC: [u8; 8] = *b"RADARMDL";
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 2 + 8;
const TRAILER_LEN: usize = 4;

/// What a model file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum ModelKind {
    IsolationForest = 1,
}

impl ModelKind {
    fn from_u16(v: u16) -> Option<Self> {
        match v {
            1 => Some(ModelKind::IsolationForest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::IsolationForest => "isolation_forest",
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum DecodeError {
    #[error("not a radar model file (expected magic bytes `RADARMDL`)")]
    NotAModel,
    #[error("model file is truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("model format version {found} is not supported (this radar reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("unknown model kind {0}")]
    UnknownKind(u16),
    #[error("expected a {expected} model, the file holds a {found} model")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error("model file has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
    #[error("model file is corrupted: checksum {stored:#010x} stored, {computed:#010x} computed")]
    Checksum { stored: u32, computed: u32 },
    #[error("model payload is invalid: {0}")]
    Invalid(String),
}

/// Wraps a payload into a model file.
pub fn seal(kind: ModelKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(kind as u16).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks a model file and returns its kind and payload.
pub fn open(bytes: &[u8]) -> Result<(ModelKind, &[u8]), DecodeError> {
    if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
        return Err(DecodeError::NotAModel);
    }
    if bytes.len() < HEADER_LEN + TRAILER_LEN {
        return Err(DecodeError::Truncated {
            needed: HEADER_LEN + TRAILER_LEN,
            available: bytes.len(),
        });
    }
    let mut header = Reader::new(&bytes[MAGIC.len()..HEADER_LEN]);
    let version = header.u16()?;
    let kind = header.u16()?;
    let payload_len = header.u64()?;
    let needed = (payload_len as usize)
        .checked_add(HEADER_LEN + TRAILER_LEN)
        .filter(|_| payload_len <= usize::MAX as u64)
        .ok_or(DecodeError::Invalid(format!(
            "payload length {payload_len} is impossible"
        )))?;
    if bytes.len() < needed {
        return Err(DecodeError::Truncated {
            needed,
            available: bytes.len(),
        });
    }
    if bytes.len() > needed {
        return Err(DecodeError::TrailingBytes(bytes.len() - needed));
    }
    let body = &bytes[..needed - TRAILER_LEN];
    let stored = u32::from_le_bytes([
        bytes[needed - 4],
        bytes[needed - 3],
        bytes[needed - 2],
        bytes[needed - 1],
    ]);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    // Version and kind are checked after the checksum: a flipped bit there is
    // corruption, not a file from the future.
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let kind = ModelKind::from_u16(kind).ok_or(DecodeError::UnknownKind(kind))?;
    Ok((kind, &body[HEADER_LEN..]))
}

/// Little-endian payload writer.
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32s(&mut self, vs: &[u32]) {
        self.u64(vs.len() as u64);
        for v in vs {
            self.u32(*v);
        }
    }
    pub fn f32s(&mut self, vs: &[f32]) {
        self.u64(vs.len() as u64);
        for v in vs {
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Bounds-checked little-endian payload reader.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.buf.len())
            .ok_or(DecodeError::Truncated {
                needed: self.pos.saturating_add(n),
                available: self.buf.len(),
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn len_prefix(&mut self, elem: usize) -> Result<usize, DecodeError> {
        let n = self.u64()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(elem as u64) > remaining {
            return Err(DecodeError::Truncated {
                needed: self
                    .pos
                    .saturating_add(n.saturating_mul(elem as u64) as usize),
                available: self.buf.len(),
            });
        }
        Ok(n as usize)
    }

    pub fn u32s(&mut self) -> Result<Vec<u32>, DecodeError> {
        let n = self.len_prefix(4)?;
        let bytes = self.take(n * 4)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    pub fn f32s(&mut self) -> Result<Vec<f32>, DecodeError> {
        let n = self.len_prefix(4)?;
        let bytes = self.take(n * 4)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.pos {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_returns_the_payload() {
        let file = seal(ModelKind::IsolationForest, b"hello");
        let (kind, payload) = open(&file).unwrap();
        assert_eq!(kind, ModelKind::IsolationForest);
        assert_eq!(payload, b"hello");
    }

    #[test]
    fn foreign_truncated_and_corrupted_files_are_errors() {
        let file = seal(ModelKind::IsolationForest, b"payload bytes");
        assert_eq!(
            open(b"PK\x03\x04zipfile").unwrap_err(),
            DecodeError::NotAModel
        );
        assert!(matches!(
            open(&file[..file.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut extra = file.clone();
        extra.push(0);
        assert_eq!(open(&extra).unwrap_err(), DecodeError::TrailingBytes(1));
        let mut flipped = file.clone();
        flipped[HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(open(&flipped), Err(DecodeError::Checksum { .. })));
    }

    #[test]
    fn a_newer_version_is_named_as_such() {
        let mut file = seal(ModelKind::IsolationForest, b"x");
        file[8] = 9; // version 9
        let body_len = file.len() - 4;
        let crc = crc32c::crc32c(&file[..body_len]);
        file[body_len..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            open(&file).unwrap_err(),
            DecodeError::UnsupportedVersion {
                found: 9,
                supported: FORMAT_VERSION
            }
        );
    }

    #[test]
    fn reader_rejects_lengths_beyond_the_buffer() {
        let mut w = Writer::new();
        w.u64(u64::MAX / 2);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert!(matches!(r.u32s(), Err(DecodeError::Truncated { .. })));
    }
}
