//! A small binary container for radar's own files (models, feature-state
//! checkpoints): magic bytes, a format version, a kind, a length-prefixed
//! payload and a CRC32C of everything before it.
//!
//! ```text
//! magic (8) | format version u16 | kind u16 | payload length u64 | payload | CRC32C u32
//! ```
//! All integers little-endian. Opening validates the envelope before the
//! payload is touched, and [`Reader`] bounds-checks every read, so a
//! truncated, corrupted or foreign file is an error, never a panic.

use thiserror::Error;

const HEADER_LEN: usize = 8 + 2 + 2 + 8;
const TRAILER_LEN: usize = 4;

#[derive(Debug, Error, PartialEq)]
pub enum DecodeError {
    #[error("not a {expected} file (its first bytes are not `{magic}`)")]
    WrongMagic {
        expected: &'static str,
        magic: String,
    },
    #[error("file is truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("format version {found} is not supported (this radar reads version {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("unknown kind {0}")]
    UnknownKind(u16),
    #[error("expected a {expected} payload, the file holds a {found} payload")]
    WrongKind {
        expected: &'static str,
        found: &'static str,
    },
    #[error("file has {0} unexpected trailing bytes")]
    TrailingBytes(usize),
    #[error("file is corrupted: checksum {stored:#010x} stored, {computed:#010x} computed")]
    Checksum { stored: u32, computed: u32 },
    #[error("payload is invalid: {0}")]
    Invalid(String),
}

/// The envelope's identity: what file this is and which version of it.
#[derive(Debug, Clone, Copy)]
pub struct Envelope {
    pub magic: [u8; 8],
    pub what: &'static str,
    pub version: u16,
}

impl Envelope {
    /// Wraps `payload`.
    pub fn seal(&self, kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TRAILER_LEN);
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(payload);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Checks the envelope; returns the kind and the payload.
    pub fn open<'a>(&self, bytes: &'a [u8]) -> Result<(u16, &'a [u8]), DecodeError> {
        if bytes.len() < self.magic.len() || bytes[..self.magic.len()] != self.magic {
            return Err(DecodeError::WrongMagic {
                expected: self.what,
                magic: String::from_utf8_lossy(&self.magic).into_owned(),
            });
        }
        if bytes.len() < HEADER_LEN + TRAILER_LEN {
            return Err(DecodeError::Truncated {
                needed: HEADER_LEN + TRAILER_LEN,
                available: bytes.len(),
            });
        }
        let mut header = Reader::new(&bytes[self.magic.len()..HEADER_LEN]);
        let version = header.u16()?;
        let kind = header.u16()?;
        let payload_len = header.u64()?;
        let needed = usize::try_from(payload_len)
            .ok()
            .and_then(|n| n.checked_add(HEADER_LEN + TRAILER_LEN))
            .ok_or_else(|| {
                DecodeError::Invalid(format!("payload length {payload_len} is impossible"))
            })?;
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
        let mut crc = [0u8; 4];
        crc.copy_from_slice(&bytes[needed - TRAILER_LEN..needed]);
        let stored = u32::from_le_bytes(crc);
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(DecodeError::Checksum { stored, computed });
        }
        // Checked after the checksum: a flipped bit there is corruption, not
        // a file from the future.
        if version != self.version {
            return Err(DecodeError::UnsupportedVersion {
                found: version,
                supported: self.version,
            });
        }
        Ok((kind, &body[HEADER_LEN..]))
    }
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
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
    /// A length prefix, then each value's little-endian bytes.
    fn seq<T: Copy, const N: usize>(&mut self, vs: &[T], to_le: fn(T) -> [u8; N]) {
        self.u64(vs.len() as u64);
        self.buf.reserve(vs.len() * N);
        for &v in vs {
            self.buf.extend_from_slice(&to_le(v));
        }
    }
    pub fn u32s(&mut self, vs: &[u32]) {
        self.seq(vs, u32::to_le_bytes);
    }
    pub fn u64s(&mut self, vs: &[u64]) {
        self.seq(vs, u64::to_le_bytes);
    }
    pub fn f64s(&mut self, vs: &[f64]) {
        self.seq(vs, f64::to_le_bytes);
    }
    pub fn f32s(&mut self, vs: &[f32]) {
        self.seq(vs, f32::to_le_bytes);
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
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A length prefix for `elem`-byte items, checked against what is left.
    fn count(&mut self, elem: usize) -> Result<usize, DecodeError> {
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

    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count(1)?;
        self.take(n)
    }

    /// What [`Writer`]'s sequences wrote: a checked length prefix, then
    /// `N` little-endian bytes per value.
    fn seq<T, const N: usize>(&mut self, from_le: fn([u8; N]) -> T) -> Result<Vec<T>, DecodeError> {
        let n = self.count(N)?;
        let (values, _) = self.take(n * N)?.as_chunks::<N>();
        Ok(values.iter().map(|&b| from_le(b)).collect())
    }

    pub fn u32s(&mut self) -> Result<Vec<u32>, DecodeError> {
        self.seq(u32::from_le_bytes)
    }

    pub fn u64s(&mut self) -> Result<Vec<u64>, DecodeError> {
        self.seq(u64::from_le_bytes)
    }

    pub fn f64s(&mut self) -> Result<Vec<f64>, DecodeError> {
        self.seq(f64::from_le_bytes)
    }

    pub fn f32s(&mut self) -> Result<Vec<f32>, DecodeError> {
        self.seq(f32::from_le_bytes)
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
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

    const ENV: Envelope = Envelope {
        magic: *b"RADARTST",
        what: "test",
        version: 1,
    };

    #[test]
    fn seal_then_open_returns_kind_and_payload() {
        let file = ENV.seal(3, b"hello");
        assert_eq!(ENV.open(&file).unwrap(), (3, &b"hello"[..]));
    }

    #[test]
    fn foreign_truncated_and_corrupted_files_are_errors() {
        let file = ENV.seal(1, b"payload bytes");
        assert!(matches!(
            ENV.open(b"PK\x03\x04zip"),
            Err(DecodeError::WrongMagic { .. })
        ));
        assert!(matches!(
            ENV.open(&file[..file.len() - 1]),
            Err(DecodeError::Truncated { .. })
        ));
        let mut extra = file.clone();
        extra.push(0);
        assert_eq!(ENV.open(&extra).unwrap_err(), DecodeError::TrailingBytes(1));
        let mut flipped = file.clone();
        flipped[HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(
            ENV.open(&flipped),
            Err(DecodeError::Checksum { .. })
        ));
    }

    #[test]
    fn a_newer_version_is_named_as_such() {
        let newer = Envelope { version: 9, ..ENV };
        let file = newer.seal(1, b"x");
        assert_eq!(
            ENV.open(&file).unwrap_err(),
            DecodeError::UnsupportedVersion {
                found: 9,
                supported: 1
            }
        );
    }

    #[test]
    fn reader_round_trips_and_rejects_impossible_lengths() {
        let mut w = Writer::new();
        w.u8(7);
        w.i64(-5);
        w.u32s(&[1, 2]);
        w.u64s(&[u64::MAX]);
        w.bytes(b"abc");
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.u32s().unwrap(), vec![1, 2]);
        assert_eq!(r.u64s().unwrap(), vec![u64::MAX]);
        assert_eq!(r.bytes().unwrap(), b"abc");
        r.finish().unwrap();

        let mut w = Writer::new();
        w.u64(u64::MAX / 2);
        let bytes = w.into_bytes();
        assert!(matches!(
            Reader::new(&bytes).u32s(),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
