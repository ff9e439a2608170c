//! Decoding and validating raw events against a stream's declaration.
//!
//! A raw event becomes either a typed [`Record`] or a [`DeadLetter`] that
//! keeps the raw bytes and a [`Reason`] naming the field and the problem.
//! Nothing is dropped silently: [`DecodeStats`] counts every outcome.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::schema::{FieldType, StreamSchema, TimestampFormat};
use crate::time::{MICROS_PER_SECOND, parse_rfc3339};

/// A typed field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Missing,
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(Box<str>),
}

impl Value {
    /// The value as a number (bool as 0/1); None for missing or strings.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            Value::Bool(b) => Some(*b as u8 as f64),
            Value::Missing | Value::Str(_) => None,
        }
    }
}

/// A decoded, validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The event id from the source, when the stream declares one.
    pub id: Option<Box<str>>,
    /// Event time, UTC microseconds.
    pub ts: i64,
    pub entity: Option<Box<str>>,
    /// One value per declared field, in the schema's field order.
    pub values: Vec<Value>,
}

impl Record {
    /// The record as a JSON object that decodes back to it (timestamps as
    /// RFC 3339 with microseconds).
    pub fn to_json(&self, schema: &StreamSchema) -> String {
        let mut m = serde_json::Map::new();
        if let Some(t) = &schema.timestamp {
            m.insert(t.clone(), crate::time::format_rfc3339(self.ts).into());
        }
        if let (Some(e), Some(v)) = (&schema.entity, &self.entity) {
            m.insert(e.clone(), v.to_string().into());
        }
        if let (Some(i), Some(v)) = (&schema.id, &self.id) {
            m.insert(i.clone(), v.to_string().into());
        }
        for (f, v) in schema.fields.iter().zip(&self.values) {
            let json = match v {
                Value::Missing => continue,
                Value::Float(x) => {
                    serde_json::Number::from_f64(*x).map_or(serde_json::Value::Null, Into::into)
                }
                Value::Int(x) => (*x).into(),
                Value::Bool(b) => (*b).into(),
                Value::Str(s) => s.to_string().into(),
            };
            m.insert(f.name.clone(), json);
        }
        serde_json::Value::Object(m).to_string()
    }
}

/// Why an event was refused. Each names the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    TooLarge {
        size: usize,
        limit: usize,
    },
    NotJson {
        detail: String,
    },
    NotAnObject {
        found: String,
    },
    Missing {
        field: String,
    },
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    BadTimestamp {
        field: String,
        detail: String,
    },
    OutOfRange {
        field: String,
        value: f64,
        min: Option<f64>,
        max: Option<f64>,
    },
    NotAllowed {
        field: String,
        value: String,
    },
    Duplicate {
        field: String,
    },
}

impl Reason {
    /// Stable machine-readable codes, one per variant (metrics labels).
    pub const CODES: [&'static str; 9] = [
        "too_large",
        "not_json",
        "not_an_object",
        "missing",
        "wrong_type",
        "bad_timestamp",
        "out_of_range",
        "not_allowed",
        "duplicate",
    ];

    fn index(&self) -> usize {
        match self {
            Reason::TooLarge { .. } => 0,
            Reason::NotJson { .. } => 1,
            Reason::NotAnObject { .. } => 2,
            Reason::Missing { .. } => 3,
            Reason::WrongType { .. } => 4,
            Reason::BadTimestamp { .. } => 5,
            Reason::OutOfRange { .. } => 6,
            Reason::NotAllowed { .. } => 7,
            Reason::Duplicate { .. } => 8,
        }
    }

    pub fn code(&self) -> &'static str {
        Self::CODES[self.index()]
    }

    /// The field the problem is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Reason::Missing { field }
            | Reason::WrongType { field, .. }
            | Reason::BadTimestamp { field, .. }
            | Reason::OutOfRange { field, .. }
            | Reason::NotAllowed { field, .. }
            | Reason::Duplicate { field } => Some(field),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::TooLarge { size, limit } => {
                write!(f, "event is {size} bytes, over the {limit}-byte limit")
            }
            Reason::NotJson { detail } => write!(f, "not JSON: {detail}"),
            Reason::NotAnObject { found } => write!(f, "expected a JSON object, found {found}"),
            Reason::Missing { field } => write!(f, "field `{field}` is missing"),
            Reason::WrongType {
                field,
                expected,
                found,
            } => {
                write!(f, "field `{field}`: expected {expected}, found {found}")
            }
            Reason::BadTimestamp { field, detail } => write!(f, "field `{field}`: {detail}"),
            Reason::OutOfRange {
                field,
                value,
                min,
                max,
            } => {
                write!(f, "field `{field}`: {value} is out of range")?;
                match (min, max) {
                    (Some(lo), Some(hi)) => write!(f, " [{lo}, {hi}]"),
                    (Some(lo), None) => write!(f, " (minimum {lo})"),
                    (None, Some(hi)) => write!(f, " (maximum {hi})"),
                    (None, None) => Ok(()),
                }
            }
            Reason::NotAllowed { field, value } => {
                write!(f, "field `{field}`: `{value}` is not an allowed value")
            }
            Reason::Duplicate { field } => write!(f, "field `{field}` appears twice"),
        }
    }
}

/// A refused event: its raw bytes and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub raw: Vec<u8>,
    pub reason: Reason,
}

/// Outcome counters of a decoder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DecodeStats {
    pub decoded: u64,
    /// Dead letters by [`Reason::CODES`] index.
    pub dead_letters: [u64; Reason::CODES.len()],
}

impl DecodeStats {
    pub fn dead_letter_count(&self, code: &str) -> u64 {
        Reason::CODES
            .iter()
            .position(|c| *c == code)
            .map_or(0, |i| self.dead_letters[i])
    }

    pub fn total_dead_letters(&self) -> u64 {
        self.dead_letters.iter().sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Field(usize),
    Timestamp,
    Entity,
    Id,
}

/// A JSON scalar as read from the wire, before it is typed.
#[derive(Debug, Clone, PartialEq)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    Nested(&'static str),
}

impl Scalar<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Nested(what) => what,
        }
    }
}

/// Decodes events of one stream and counts outcomes. Cloning is cheap
/// (the schema and field table are shared), so a server clones one per
/// request and a scorer one per thread.
#[derive(Debug, Clone)]
pub struct Decoder {
    schema: std::sync::Arc<StreamSchema>,
    slots: std::sync::Arc<[(Box<str>, Slot)]>,
    stats: DecodeStats,
}

impl Decoder {
    pub fn new(schema: StreamSchema) -> Self {
        let mut slots: Vec<(Box<str>, Slot)> = schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone().into_boxed_str(), Slot::Field(i)))
            .collect();
        if let Some(t) = &schema.timestamp {
            slots.push((t.clone().into(), Slot::Timestamp));
        }
        if let Some(e) = &schema.entity {
            slots.push((e.clone().into(), Slot::Entity));
        }
        if let Some(i) = &schema.id {
            slots.push((i.clone().into(), Slot::Id));
        }
        Decoder {
            schema: std::sync::Arc::new(schema),
            slots: slots.into(),
            stats: DecodeStats::default(),
        }
    }

    pub fn schema(&self) -> &StreamSchema {
        &self.schema
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    fn slot(&self, key: &str) -> Option<Slot> {
        self.slots
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, s)| *s)
    }

    fn count<T>(&mut self, result: Result<T, Reason>, raw: &[u8]) -> Result<T, DeadLetter> {
        match result {
            Ok(v) => {
                self.stats.decoded += 1;
                Ok(v)
            }
            Err(reason) => {
                self.stats.dead_letters[reason.index()] += 1;
                Err(DeadLetter {
                    raw: raw.to_vec(),
                    reason,
                })
            }
        }
    }

    /// Decodes one JSON object. `ingest_time` (UTC µs) is the event time of
    /// streams that declare no timestamp field.
    pub fn decode_json(&mut self, raw: &[u8], ingest_time: i64) -> Result<Record, DeadLetter> {
        let result = self.decode_json_inner(raw, ingest_time);
        self.count(result, raw)
    }

    fn decode_json_inner(&self, raw: &[u8], ingest_time: i64) -> Result<Record, Reason> {
        if raw.len() > self.schema.max_event_bytes {
            return Err(Reason::TooLarge {
                size: raw.len(),
                limit: self.schema.max_event_bytes,
            });
        }
        let mut de = serde_json::Deserializer::from_slice(raw);
        let mut seen = Seen::new(self.slots.len(), self.schema.fields.len());
        let visitor = EventVisitor {
            decoder: self,
            seen: &mut seen,
        };
        let parsed = de.deserialize_map(visitor).and_then(|()| de.end());
        if let Err(e) = parsed {
            return Err(match e.classify() {
                serde_json::error::Category::Data => Reason::NotAnObject {
                    found: describe_json_value(raw),
                },
                _ => Reason::NotJson {
                    detail: e.to_string(),
                },
            });
        }
        self.finish(seen, ingest_time)
    }

    /// Decodes one CSV row: `header[i]` names the column of `cells[i]`;
    /// empty cells are missing values. `raw` is kept for a dead letter.
    pub fn decode_cells(
        &mut self,
        header: &[&str],
        cells: &[&str],
        raw: &[u8],
        ingest_time: i64,
    ) -> Result<Record, DeadLetter> {
        let result = self.decode_cells_inner(header, cells, ingest_time);
        self.count(result, raw)
    }

    fn decode_cells_inner(
        &self,
        header: &[&str],
        cells: &[&str],
        ingest_time: i64,
    ) -> Result<Record, Reason> {
        let mut seen = Seen::new(self.slots.len(), self.schema.fields.len());
        for (name, cell) in header.iter().zip(cells) {
            let Some(slot) = self.slot(name) else {
                continue;
            };
            let numeric = match slot {
                Slot::Field(i) => self.schema.fields[i].ty != FieldType::Category,
                Slot::Timestamp => true,
                Slot::Entity | Slot::Id => false,
            };
            let scalar = if cell.is_empty() {
                Scalar::Null
            } else if numeric {
                if let Ok(v) = cell.parse::<i64>() {
                    Scalar::I64(v)
                } else if let Ok(v) = cell.parse::<f64>() {
                    Scalar::F64(v)
                } else if *cell == "true" || *cell == "false" {
                    Scalar::Bool(*cell == "true")
                } else {
                    Scalar::Str(Cow::Owned((*cell).to_owned()))
                }
            } else {
                Scalar::Str(Cow::Owned((*cell).to_owned()))
            };
            seen.put(slot, scalar, &self.slot_name(slot));
        }
        self.finish(seen, ingest_time)
    }

    fn slot_name(&self, slot: Slot) -> String {
        match slot {
            Slot::Field(i) => self.schema.fields[i].name.clone(),
            Slot::Timestamp => self.schema.timestamp.clone().unwrap_or_default(),
            Slot::Entity => self.schema.entity.clone().unwrap_or_default(),
            Slot::Id => self.schema.id.clone().unwrap_or_default(),
        }
    }

    fn finish(&self, seen: Seen<'_>, ingest_time: i64) -> Result<Record, Reason> {
        if let Some(field) = seen.duplicate {
            return Err(Reason::Duplicate { field });
        }
        let ts = match &self.schema.timestamp {
            None => ingest_time,
            Some(name) => match &seen.timestamp {
                None | Some(Scalar::Null) => {
                    return Err(Reason::Missing {
                        field: name.clone(),
                    });
                }
                Some(s) => timestamp(s, self.schema.timestamp_format)
                    .and_then(|ts| {
                        let (lo, hi) = self.schema.event_time_bounds;
                        if (lo..hi).contains(&ts) {
                            Ok(ts)
                        } else {
                            Err(format!(
                                "event time {} is outside the stream's accepted times [{}, {}) (event_time_min, event_time_max)",
                                crate::time::format_rfc3339(ts),
                                crate::time::format_rfc3339(lo),
                                crate::time::format_rfc3339(hi)
                            ))
                        }
                    })
                    .map_err(|detail| Reason::BadTimestamp {
                        field: name.clone(),
                        detail,
                    })?,
            },
        };
        let key =
            |name: &Option<String>, s: &Option<Scalar<'_>>| -> Result<Option<Box<str>>, Reason> {
                let Some(name) = name else { return Ok(None) };
                match s {
                    None | Some(Scalar::Null) => Err(Reason::Missing {
                        field: name.clone(),
                    }),
                    Some(Scalar::Str(v)) if !v.is_empty() => Ok(Some(v.as_ref().into())),
                    Some(Scalar::I64(v)) => Ok(Some(v.to_string().into())),
                    Some(Scalar::U64(v)) => Ok(Some(v.to_string().into())),
                    Some(Scalar::F64(v)) if integral(*v).is_some() => {
                        Ok(integral(*v).map(|d| d.into()))
                    }
                    Some(Scalar::Str(_)) => Err(Reason::WrongType {
                        field: name.clone(),
                        expected: "a non-empty string or an integer",
                        found: "an empty string",
                    }),
                    Some(other) => Err(Reason::WrongType {
                        field: name.clone(),
                        expected: "a string or an integer",
                        found: other.kind(),
                    }),
                }
            };
        let entity = key(&self.schema.entity, &seen.entity)?;
        let id = key(&self.schema.id, &seen.id)?;
        let mut values = Vec::with_capacity(self.schema.fields.len());
        for (field, scalar) in self.schema.fields.iter().zip(seen.values) {
            let value = match scalar {
                None | Some(Scalar::Null) => {
                    if field.required {
                        return Err(Reason::Missing {
                            field: field.name.clone(),
                        });
                    }
                    Value::Missing
                }
                Some(s) => typed(field.ty, s).map_err(|(expected, found)| Reason::WrongType {
                    field: field.name.clone(),
                    expected,
                    found,
                })?,
            };
            if let Some(v) = value.as_f64() {
                let low = field.min.is_some_and(|m| v < m);
                let high = field.max.is_some_and(|m| v > m);
                if low || high {
                    return Err(Reason::OutOfRange {
                        field: field.name.clone(),
                        value: v,
                        min: field.min,
                        max: field.max,
                    });
                }
            }
            if let (Some(allowed), Value::Str(s)) = (&field.allowed, &value)
                && !allowed.contains(&**s)
            {
                return Err(Reason::NotAllowed {
                    field: field.name.clone(),
                    value: s.to_string(),
                });
            }
            values.push(value);
        }
        Ok(Record {
            id,
            ts,
            entity,
            values,
        })
    }
}

/// What one event held for each slot, while it is read.
struct Seen<'a> {
    values: Vec<Option<Scalar<'a>>>,
    timestamp: Option<Scalar<'a>>,
    entity: Option<Scalar<'a>>,
    id: Option<Scalar<'a>>,
    duplicate: Option<String>,
}

impl<'a> Seen<'a> {
    fn new(_slots: usize, fields: usize) -> Self {
        Seen {
            values: vec![None; fields],
            timestamp: None,
            entity: None,
            id: None,
            duplicate: None,
        }
    }

    fn put(&mut self, slot: Slot, scalar: Scalar<'a>, name: &str) {
        let place = match slot {
            Slot::Field(i) => &mut self.values[i],
            Slot::Timestamp => &mut self.timestamp,
            Slot::Entity => &mut self.entity,
            Slot::Id => &mut self.id,
        };
        if place.is_some() && self.duplicate.is_none() {
            self.duplicate = Some(name.to_owned());
        }
        *place = Some(scalar);
    }
}

/// Types a wire scalar as a declared field; on failure returns (expected,
/// found).
/// An integral number written with a fraction or exponent (`12.0`,
/// `1e3`), as the digits of the integer it is, when it is one that fits
/// an i64 or a u64: JSON does not tell `12` from `12.0`, so neither may a
/// key or a category.
fn integral(v: f64) -> Option<String> {
    if v.fract() != 0.0 || !v.is_finite() {
        return None;
    }
    // Strict bounds: the f64 next to i64::MIN or u64::MAX may stand for
    // an integer beyond them.
    if v > i64::MIN as f64 && v < i64::MAX as f64 {
        Some((v as i64).to_string())
    } else if v >= 0.0 && v < u64::MAX as f64 {
        Some((v as u64).to_string())
    } else {
        None
    }
}

fn typed(ty: FieldType, s: Scalar<'_>) -> Result<Value, (&'static str, &'static str)> {
    let found = s.kind();
    match (ty, s) {
        (FieldType::Float, Scalar::F64(v)) if v.is_finite() => Ok(Value::Float(v)),
        (FieldType::Float, Scalar::F64(_)) => Err(("a finite number", "NaN or infinity")),
        (FieldType::Float, Scalar::I64(v)) => Ok(Value::Float(v as f64)),
        (FieldType::Float, Scalar::U64(v)) => Ok(Value::Float(v as f64)),
        (FieldType::Float, _) => Err(("a number", found)),
        (FieldType::Int, Scalar::I64(v)) => Ok(Value::Int(v)),
        (FieldType::Int, Scalar::U64(v)) if v <= i64::MAX as u64 => Ok(Value::Int(v as i64)),
        (FieldType::Int, Scalar::F64(v)) if v.fract() == 0.0 && v.abs() < 9.0e15 => {
            Ok(Value::Int(v as i64))
        }
        (FieldType::Int, Scalar::F64(_) | Scalar::U64(_)) => {
            Err(("an integer", "a number that is not one"))
        }
        (FieldType::Int, _) => Err(("an integer", found)),
        (FieldType::Bool, Scalar::Bool(b)) => Ok(Value::Bool(b)),
        (FieldType::Bool, Scalar::I64(v @ (0 | 1))) => Ok(Value::Bool(v == 1)),
        (FieldType::Bool, _) => Err(("a boolean (or 0/1)", found)),
        (FieldType::Category, Scalar::Str(v)) => Ok(Value::Str(v.as_ref().into())),
        (FieldType::Category, Scalar::I64(v)) => Ok(Value::Str(v.to_string().into())),
        (FieldType::Category, Scalar::U64(v)) => Ok(Value::Str(v.to_string().into())),
        (FieldType::Category, Scalar::F64(v)) if integral(v).is_some() => {
            Ok(Value::Str(integral(v).unwrap_or_default().into()))
        }
        (FieldType::Category, _) => Err(("a string", found)),
    }
}

fn timestamp(s: &Scalar<'_>, format: TimestampFormat) -> Result<i64, String> {
    let from_number = |v: f64, unit: i64| -> Result<i64, String> {
        let micros = v * unit as f64;
        if !micros.is_finite() || micros.abs() > 9.0e18 {
            return Err(format!("timestamp {v} is out of range"));
        }
        Ok(micros.round() as i64)
    };
    let number = match s {
        Scalar::I64(v) => Some(*v as f64),
        Scalar::U64(v) => Some(*v as f64),
        Scalar::F64(v) => Some(*v),
        _ => None,
    };
    match (format, number, s) {
        (TimestampFormat::Rfc3339 | TimestampFormat::Auto, None, Scalar::Str(text)) => {
            parse_rfc3339(text)
        }
        (TimestampFormat::Rfc3339, Some(_), _) => {
            Err("expected an RFC 3339 string, found a number".into())
        }
        (TimestampFormat::EpochSeconds, Some(v), _) => from_number(v, MICROS_PER_SECOND),
        (TimestampFormat::EpochMillis, Some(v), _) => from_number(v, 1000),
        (TimestampFormat::EpochMicros, Some(v), _) => from_number(v, 1),
        (TimestampFormat::Auto, Some(v), _) => {
            let unit = if v.abs() < 1e11 {
                MICROS_PER_SECOND
            } else if v.abs() < 1e14 {
                1000
            } else {
                1
            };
            from_number(v, unit)
        }
        (_, None, other) => Err(format!("expected a timestamp, found {}", other.kind())),
    }
}

/// A short description of what a JSON document holds at the top level.
fn describe_json_value(raw: &[u8]) -> String {
    match raw.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => "an array".into(),
        Some(b'"') => "a string".into(),
        Some(b't' | b'f') => "a boolean".into(),
        Some(b'n') => "null".into(),
        Some(b'-' | b'0'..=b'9') => "a number".into(),
        _ => "something else".into(),
    }
}

struct EventVisitor<'s, 'a> {
    decoder: &'s Decoder,
    seen: &'s mut Seen<'a>,
}

impl<'de, 's> Visitor<'de> for EventVisitor<'s, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.decoder.slot(&key) {
                Some(slot) => {
                    let scalar = map.next_value_seed(ScalarSeed)?;
                    self.seen.put(slot, scalar, &key);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V)
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(match i64::try_from(v) {
            Ok(v) => Scalar::I64(v),
            Err(_) => Scalar::U64(v),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested("an object"))
    }
}

#[cfg(test)]
mod tests;
