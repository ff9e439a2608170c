//! Labels: what people (and late chargebacks) say about events. A label
//! names an event by id, says whether it was fraud (an anomaly that
//! matters) and of which kind, who said so, and when that became known —
//! its `known_at` time, which decides which models may learn from it
//! (a model trained as of T sees only labels known at T).
//!
//! Labels are parsed from JSON objects or CSV cells with the same rules;
//! every error names the field.

use serde::{Deserialize, Serialize};

/// A verdict on one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    pub event_id: String,
    /// True: fraud (a true positive when it was alerted); false: genuine.
    pub fraud: bool,
    /// The kind of fraud, when known.
    pub kind: Option<String>,
    /// Who or what said so: `analyst`, `chargeback`, `import`, `api` …
    pub source: String,
    /// When it became known (UTC µs).
    pub known_at: i64,
    /// The person or system, when known.
    pub author: Option<String>,
}

/// A label that cannot be read, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct LabelError {
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: impl Into<String>) -> LabelError {
    LabelError {
        field,
        message: message.into(),
    }
}

/// Clock skew tolerated on `known_at`: a label cannot be known in the
/// future.
pub const FUTURE_TOLERANCE_MICROS: i64 = 5 * 60 * 1_000_000;

/// The verdict words accepted for `label`.
/// The words a verdict may be written with (any case, spaces around):
/// the first six say fraud, the rest genuine.
pub const VERDICTS: [&str; 13] = [
    "fraud",
    "true_positive",
    "true",
    "1",
    "yes",
    "anomaly",
    "legit",
    "genuine",
    "false_positive",
    "false",
    "0",
    "no",
    "normal",
];

fn verdict(text: &str) -> Option<bool> {
    let text = text.trim().to_ascii_lowercase();
    VERDICTS.iter().position(|v| *v == text).map(|i| i < 6)
}

fn text_field(name: &'static str, v: &serde_json::Value) -> Result<Option<String>, LabelError> {
    match v {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.trim().is_empty() => Ok(None),
        serde_json::Value::String(s) if s.chars().count() > 200 => {
            Err(err(name, "longer than 200 characters"))
        }
        serde_json::Value::String(s) => Ok(Some(s.trim().to_owned())),
        other => Err(err(name, format!("expected a string, found {other}"))),
    }
}

impl Label {
    /// Reads a JSON object: `event_id`, `label` (bool, 0/1, or `fraud` /
    /// `legit` / `true_positive` / `false_positive`), optional `kind`,
    /// `source` (default `default_source`), `known_at` (RFC 3339 or epoch
    /// seconds; default `now`), `author`. Unknown fields are errors.
    pub fn from_json(
        v: &serde_json::Value,
        default_source: &str,
        now: i64,
    ) -> Result<Label, LabelError> {
        let serde_json::Value::Object(m) = v else {
            return Err(err("label", "expected a JSON object"));
        };
        const KNOWN: [&str; 6] = ["event_id", "label", "kind", "source", "known_at", "author"];
        if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(LabelError {
                field: "label",
                message: format!("unknown field `{k}` (expected: {})", KNOWN.join(", ")),
            });
        }
        let null = serde_json::Value::Null;
        let get = |k: &str| m.get(k).unwrap_or(&null);
        let event_id = match get("event_id") {
            serde_json::Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => return Err(err("event_id", "is missing")),
            other => return Err(err("event_id", format!("expected a string, found {other}"))),
        };
        let fraud = match get("label") {
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::Number(n) if n.as_f64() == Some(1.0) => true,
            serde_json::Value::Number(n) if n.as_f64() == Some(0.0) => false,
            serde_json::Value::String(s) => verdict(s).ok_or_else(|| {
                err(
                    "label",
                    format!(
                        "`{s}` is not a verdict (fraud, legit, true_positive, false_positive, 1, 0)"
                    ),
                )
            })?,
            serde_json::Value::Null => return Err(err("label", "is missing")),
            other => return Err(err("label", format!("expected a verdict, found {other}"))),
        };
        let known_at = match get("known_at") {
            serde_json::Value::Null => now,
            serde_json::Value::String(s) => {
                crate::time::parse_rfc3339(s).map_err(|e| err("known_at", e))?
            }
            serde_json::Value::Number(n) => {
                let secs = n
                    .as_f64()
                    .filter(|s| s.is_finite() && s.abs() < 1e11)
                    .ok_or_else(|| {
                        err("known_at", format!("{n} is not a time in epoch seconds"))
                    })?;
                (secs * 1e6) as i64
            }
            other => return Err(err("known_at", format!("expected a time, found {other}"))),
        };
        Label::checked(
            event_id,
            fraud,
            text_field("kind", get("kind"))?,
            text_field("source", get("source"))?.unwrap_or_else(|| default_source.to_owned()),
            known_at,
            text_field("author", get("author"))?,
            now,
        )
    }

    /// Reads one CSV row by its header (the same fields as [`Self::from_json`]).
    pub fn from_cells(
        header: &[String],
        cells: &[String],
        default_source: &str,
        now: i64,
    ) -> Result<Label, LabelError> {
        let mut m = serde_json::Map::new();
        for (name, cell) in header.iter().zip(cells) {
            if !cell.is_empty() {
                m.insert(name.clone(), serde_json::Value::String(cell.clone()));
            }
        }
        Label::from_json(&serde_json::Value::Object(m), default_source, now)
    }

    fn checked(
        event_id: String,
        fraud: bool,
        kind: Option<String>,
        source: String,
        known_at: i64,
        author: Option<String>,
        now: i64,
    ) -> Result<Label, LabelError> {
        if event_id.chars().count() > 200 {
            return Err(err("event_id", "longer than 200 characters"));
        }
        if known_at > now + FUTURE_TOLERANCE_MICROS {
            return Err(err(
                "known_at",
                format!(
                    "{} is in the future (now is {}): a label cannot be known before it is given",
                    crate::time::format_rfc3339(known_at),
                    crate::time::format_rfc3339(now)
                ),
            ));
        }
        if kind.is_some() && !fraud {
            return Err(err("kind", "a kind of fraud was given for a genuine event"));
        }
        Ok(Label {
            event_id,
            fraud,
            kind,
            source,
            known_at,
            author,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000;

    fn parse(text: &str) -> Result<Label, LabelError> {
        Label::from_json(&serde_json::from_str(text).unwrap(), "api", NOW)
    }

    #[test]
    fn verdicts_and_defaults() {
        let l = parse(r#"{"event_id":"tx-1","label":"true_positive","kind":"card_testing","source":"analyst","known_at":"2026-01-02T00:00:00Z","author":"ana"}"#).unwrap();
        assert!(l.fraud);
        assert_eq!(l.kind.as_deref(), Some("card_testing"));
        assert_eq!(
            (l.source.as_str(), l.author.as_deref()),
            ("analyst", Some("ana"))
        );
        let l = parse(r#"{"event_id":"tx-2","label":0}"#).unwrap();
        assert!(!l.fraud);
        assert_eq!((l.source.as_str(), l.known_at), ("api", NOW));
        let l =
            parse(r#"{"event_id":"tx-3","label":"false_positive","known_at":1767225600}"#).unwrap();
        assert_eq!(l.known_at, 1_767_225_600_000_000);
        let l = Label::from_cells(
            &["event_id".into(), "label".into(), "kind".into()],
            &["tx-4".into(), "fraud".into(), String::new()],
            "import",
            NOW,
        )
        .unwrap();
        assert_eq!((l.fraud, l.kind, l.source.as_str()), (true, None, "import"));
    }

    #[test]
    fn every_error_names_its_field() {
        for (text, field, says) in [
            (r#"{"label":1}"#, "event_id", "missing"),
            (r#"{"event_id":"a"}"#, "label", "missing"),
            (
                r#"{"event_id":"a","label":"maybe"}"#,
                "label",
                "not a verdict",
            ),
            (
                r#"{"event_id":"a","label":7}"#,
                "label",
                "expected a verdict",
            ),
            (
                r#"{"event_id":"a","label":1,"known_at":"soon"}"#,
                "known_at",
                "",
            ),
            (
                r#"{"event_id":"a","label":1,"known_at":"2030-01-01T00:00:00Z"}"#,
                "known_at",
                "in the future",
            ),
            (
                r#"{"event_id":"a","label":0,"kind":"subtle"}"#,
                "kind",
                "genuine",
            ),
            (
                r#"{"event_id":"a","label":1,"colour":"red"}"#,
                "label",
                "unknown field `colour`",
            ),
            (
                r#"{"event_id":"a","label":1,"source":5}"#,
                "source",
                "expected a string",
            ),
            ("[1]", "label", "object"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.field, field, "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {e}");
        }
    }
}
