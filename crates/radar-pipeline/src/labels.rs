//! Labels in the pipeline: reading label files (JSON lines or CSV, the
//! fields of [`radar_core::labels::Label`]), and the point-in-time rule
//! every consumer of labels follows — as of time T, an event's label is the
//! latest one known at T (its `known_at` ≤ T); later labels do not exist
//! yet. Training, evaluation and label-derived features all ask
//! [`LabelBook::as_of`].

use std::collections::HashMap;
use std::path::Path;

use radar_core::labels::Label;

use crate::error::{PipelineError, Result};
use crate::events::{Body, EventFile};

/// Reads every label of `path`; a bad line is an error naming its line and
/// field.
pub fn read_file(path: &Path, default_source: &str, now: i64) -> Result<Vec<Label>> {
    let mut file = EventFile::open(path)?;
    let header = file.header().to_vec();
    let mut out = Vec::new();
    while let Some(event) = file.next_event()? {
        let label = match &event.body {
            Body::Json(bytes) => serde_json::from_slice::<serde_json::Value>(bytes)
                .map_err(|e| format!("not JSON: {e}"))
                .and_then(|v| {
                    Label::from_json(&v, default_source, now).map_err(|e| e.to_string())
                }),
            Body::Cells { cells, .. } => {
                Label::from_cells(&header, cells, default_source, now).map_err(|e| e.to_string())
            }
        };
        out.push(label.map_err(|e| {
            PipelineError::input(format!("`{}`, line {}: {e}", path.display(), event.line))
        })?);
    }
    Ok(out)
}

/// Every label of a stream, by event, in the order they became known.
#[derive(Debug, Clone, Default)]
pub struct LabelBook {
    by_event: HashMap<String, Vec<Label>>,
}

impl LabelBook {
    pub fn new(labels: impl IntoIterator<Item = Label>) -> LabelBook {
        let mut by_event: HashMap<String, Vec<Label>> = HashMap::new();
        for l in labels {
            by_event.entry(l.event_id.clone()).or_default().push(l);
        }
        for v in by_event.values_mut() {
            // Stable: labels known at the same instant keep their order.
            v.sort_by_key(|l| l.known_at);
        }
        LabelBook { by_event }
    }

    pub fn len(&self) -> usize {
        self.by_event.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_event.is_empty()
    }

    /// The label of `event_id` as known at `at`: the latest known then.
    pub fn as_of(&self, event_id: &str, at: i64) -> Option<&Label> {
        self.by_event
            .get(event_id)?
            .iter()
            .take_while(|l| l.known_at <= at)
            .last()
    }

    /// Whether `event_id` was known to be fraud at `at`.
    pub fn fraud_as_of(&self, event_id: &str, at: i64) -> bool {
        self.as_of(event_id, at).is_some_and(|l| l.fraud)
    }

    /// Event ids with at least one label.
    pub fn event_ids(&self) -> impl Iterator<Item = &str> {
        self.by_event.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: &str, fraud: bool, known_at: i64) -> Label {
        Label {
            event_id: id.into(),
            fraud,
            kind: None,
            source: "test".into(),
            known_at,
            author: None,
        }
    }

    #[test]
    fn as_of_sees_only_labels_known_by_then() {
        let book = LabelBook::new([
            label("a", true, 300),
            label("a", false, 100),
            label("b", true, 500),
        ]);
        assert!(book.as_of("a", 50).is_none());
        assert!(!book.fraud_as_of("a", 100), "first said genuine");
        assert!(book.fraud_as_of("a", 300), "then a chargeback");
        assert!(!book.fraud_as_of("b", 499));
        assert!(book.fraud_as_of("b", 500));
        assert!(!book.fraud_as_of("c", i64::MAX));
        assert_eq!(book.len(), 3);
    }
}
