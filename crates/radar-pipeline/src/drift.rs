//! Drift monitoring of the served model: the scorer hands every scored
//! batch to a [`DriftMonitor`], which keeps the current window (a number of
//! events) of features and scores and, when it is full, compares it with
//! the model bundle's reference profile (feature and score percentiles of its
//! training rows): PSI and normed Wasserstein per feature and for the
//! score, the share of drifted features, the alert rate against the rate
//! the reference expects. Finished windows are kept (the latest
//! [`HISTORY`]) for the API and `radar monitor`, and set `/metrics` gauges.
//!
//! Evidently's defaults are the reference: a feature drifts when its normed
//! Wasserstein distance reaches 0.1; the window drifts when at least half
//! the features do. A window restarts when the served model changes.

use std::collections::VecDeque;

use radar_core::MatrixView;
pub use radar_core::schema::DriftOptions;
use radar_core::time::{format_rfc3339, now_micros};
use radar_detect::drift::{drift, share_above};
use radar_registry::Reference;
use serde::Serialize;

/// Finished windows kept.
pub const HISTORY: usize = 200;

/// One column's drift in a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnDrift {
    pub column: String,
    pub psi: f64,
    pub wasserstein: f64,
    pub drifted: bool,
}

/// A finished window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftWindow {
    pub model: String,
    pub version: i64,
    pub ended_at: String,
    pub events: usize,
    pub features: Vec<ColumnDrift>,
    pub score: Option<ColumnDrift>,
    pub drifted_share: f64,
    pub drift: bool,
    pub alert_rate: f64,
    /// Share of the reference's scores above the threshold.
    pub expected_alert_rate: f64,
}

impl DriftWindow {
    /// Alert rate over the expected one (1 when both are 0).
    pub fn alert_rate_ratio(&self) -> f64 {
        if self.expected_alert_rate > 0.0 {
            self.alert_rate / self.expected_alert_rate
        } else if self.alert_rate > 0.0 {
            f64::INFINITY
        } else {
            1.0
        }
    }
}

/// The window being filled and the windows finished.
#[derive(Debug, Default)]
pub struct DriftMonitor {
    options: DriftOptions,
    model: Option<(String, i64)>,
    /// One vector per feature column, then the score.
    columns: Vec<Vec<f64>>,
    events: usize,
    alerts: usize,
    /// Event time of the window's first event.
    first_time: Option<i64>,
    history: VecDeque<DriftWindow>,
    /// Windows finished since the monitor started (the history keeps the
    /// last [`HISTORY`]).
    finished: u64,
}

impl DriftMonitor {
    pub fn new(options: DriftOptions) -> DriftMonitor {
        DriftMonitor {
            options,
            ..DriftMonitor::default()
        }
    }

    /// Adds a scored batch of model `(name, version)` whose bundle has
    /// `reference` and `threshold`, its rows' event `times` (µs; empty
    /// when unknown, and then windows close by count only); returns the
    /// windows it finished (a batch larger than a window finishes several).
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        model: (&str, i64),
        columns: &[String],
        reference: &Reference,
        threshold: f64,
        rows: MatrixView<'_>,
        scores: &[f64],
        times: &[i64],
    ) -> Vec<DriftWindow> {
        if self
            .model
            .as_ref()
            .is_none_or(|(n, v)| n != model.0 || *v != model.1)
            || self.columns.len() != rows.cols() + 1
        {
            self.model = Some((model.0.to_owned(), model.1));
            self.columns = vec![Vec::new(); rows.cols() + 1];
            self.events = 0;
            self.alerts = 0;
            self.first_time = None;
        }
        let by_time = self.options.window_seconds.map(|s| (s * 1e6) as i64);
        let mut finished = Vec::new();
        for (i, &score) in scores.iter().enumerate().take(rows.rows()) {
            for (c, &v) in rows.row(i).iter().enumerate() {
                self.columns[c].push(v);
            }
            self.columns[rows.cols()].push(score);
            self.events += 1;
            self.alerts += (score > threshold) as usize;
            let time = times.get(i).copied();
            let first = *self.first_time.get_or_insert(time.unwrap_or(i64::MIN));
            let full = match (by_time, time) {
                (Some(span), Some(t)) if first != i64::MIN => {
                    t - first >= span && self.events >= (self.options.window_events / 10).max(10)
                }
                _ => self.events >= self.options.window_events,
            };
            if full {
                let w = self.finish(columns, reference, threshold);
                self.history.push_back(w.clone());
                self.finished += 1;
                if self.history.len() > HISTORY {
                    self.history.pop_front();
                }
                finished.push(w);
            }
        }
        finished
    }

    fn finish(&mut self, names: &[String], reference: &Reference, threshold: f64) -> DriftWindow {
        let column = |name: &str, q: Option<&Vec<f64>>, values: &[f64]| {
            let d = drift(q.map_or(&[][..], Vec::as_slice), values)?;
            Some(ColumnDrift {
                column: name.to_owned(),
                psi: d.psi,
                wasserstein: d.wasserstein,
                drifted: d.wasserstein >= self.options.wasserstein,
            })
        };
        let features: Vec<ColumnDrift> = names
            .iter()
            .enumerate()
            .filter_map(|(c, name)| {
                column(name, reference.feature_quantiles.get(c), &self.columns[c])
            })
            .collect();
        let score = column(
            "score",
            Some(&reference.score_quantiles),
            &self.columns[names.len().min(self.columns.len() - 1)],
        );
        let drifted = features.iter().filter(|f| f.drifted).count();
        let drifted_share = drifted as f64 / features.len().max(1) as f64;
        let (model, version) = self.model.clone().unwrap_or_default();
        let window = DriftWindow {
            model,
            version,
            ended_at: format_rfc3339(now_micros()),
            events: self.events,
            drift: !features.is_empty() && drifted_share >= self.options.drifted_share,
            features,
            score,
            drifted_share,
            alert_rate: self.alerts as f64 / self.events.max(1) as f64,
            expected_alert_rate: share_above(&reference.score_quantiles, threshold),
        };
        self.columns.iter_mut().for_each(Vec::clear);
        self.events = 0;
        self.alerts = 0;
        self.first_time = None;
        window
    }

    /// Finished windows, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &DriftWindow> {
        self.history.iter()
    }

    /// The windows finished after the first `seen` (as many as the
    /// history still holds), oldest first.
    pub fn since(&self, seen: u64) -> impl Iterator<Item = &DriftWindow> {
        let new = self
            .finished
            .saturating_sub(seen)
            .min(self.history.len() as u64);
        self.history.iter().skip(self.history.len() - new as usize)
    }

    /// Windows finished since the monitor started.
    pub fn finished(&self) -> u64 {
        self.finished
    }

    pub fn latest(&self) -> Option<&DriftWindow> {
        self.history.back()
    }

    /// Events in the window being filled.
    pub fn pending(&self) -> usize {
        self.events
    }

    pub fn options(&self) -> &DriftOptions {
        &self.options
    }
}

#[cfg(test)]
mod tests {
    use radar_core::{Matrix, Rng};

    use super::*;

    fn sample(n: usize, shift: f64, seed: u64) -> (Matrix, Vec<f64>) {
        let mut rng = Rng::seed_from_u64(seed);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| vec![rng.normal() + shift, rng.normal()])
            .collect();
        let scores = rows.iter().map(|r| r[0].abs() / 4.0).collect();
        (Matrix::from_rows(&rows).unwrap(), scores)
    }

    /// A monitor of 1,000-event windows over two columns, with the
    /// reference of `n` unshifted training rows.
    fn monitor(n: usize) -> (DriftMonitor, Reference, Vec<String>) {
        let (train, train_scores) = sample(n, 0.0, 1);
        let m = DriftMonitor::new(DriftOptions {
            window_events: 1000,
            ..DriftOptions::default()
        });
        (
            m,
            Reference::of(train.view(), &train_scores),
            vec!["a".to_owned(), "b".to_owned()],
        )
    }

    /// Regression: a scored batch larger than a window (the scorer takes
    /// up to 5,000 events at once) finished several windows but reported
    /// only the last, so `/metrics` and the stored record missed the rest.
    #[test]
    fn regression_a_batch_of_several_windows_reported_only_the_last() {
        let (mut m, reference, columns) = monitor(5_000);
        let (batch, scores) = sample(5_500, 0.0, 2);
        let finished = m.observe(
            ("m", 1),
            &columns,
            &reference,
            0.5,
            batch.view(),
            &scores,
            &[],
        );
        assert_eq!(finished.len(), 5);
        assert_eq!(m.pending(), 500);
    }

    #[test]
    fn a_shifted_feature_drifts_in_its_window_and_a_new_model_restarts_it() {
        let (mut m, reference, columns) = monitor(20_000);
        let (same, same_scores) = sample(1000, 0.0, 2);
        let w = m
            .observe(
                ("m", 1),
                &columns,
                &reference,
                0.5,
                same.view(),
                &same_scores,
                &[],
            )
            .pop()
            .expect("a full window");
        assert!(!w.drift && w.features.iter().all(|f| !f.drifted), "{w:?}");
        assert!((w.alert_rate_ratio() - 1.0).abs() < 0.6, "{w:?}");
        let (moved, moved_scores) = sample(1000, 1.5, 3);
        let w = m
            .observe(
                ("m", 1),
                &columns,
                &reference,
                0.5,
                moved.view(),
                &moved_scores,
                &[],
            )
            .pop()
            .unwrap();
        assert!(w.features[0].drifted && !w.features[1].drifted, "{w:?}");
        assert!(w.drift, "half the features drifted: {w:?}");
        assert!(w.alert_rate_ratio() > 2.0, "{w:?}");
        assert_eq!(m.history().count(), 2);
        // Half a window, then a new version: the window starts again.
        let (half, half_scores) = sample(500, 0.0, 4);
        assert!(
            m.observe(
                ("m", 1),
                &columns,
                &reference,
                0.5,
                half.view(),
                &half_scores,
                &[]
            )
            .is_empty()
        );
        assert_eq!(m.pending(), 500);
        assert!(
            m.observe(
                ("m", 2),
                &columns,
                &reference,
                0.5,
                half.view(),
                &half_scores,
                &[]
            )
            .is_empty()
        );
        assert_eq!(m.pending(), 500);
    }

    #[test]
    fn a_window_by_time_spans_its_event_time_whatever_the_count() {
        let (_, reference, columns) = monitor(5_000);
        let mut m = DriftMonitor::new(DriftOptions {
            window_events: 1000,
            window_seconds: Some(3600.0),
            ..DriftOptions::default()
        });
        // 3,000 events a second apart: the first window closes at the
        // hour (3,601 events), not at 1,000.
        let (batch, scores) = sample(4000, 0.0, 2);
        let times: Vec<i64> = (0..4000).map(|i| i * 1_000_000).collect();
        let finished = m.observe(
            ("m", 1),
            &columns,
            &reference,
            0.5,
            batch.view(),
            &scores,
            &times,
        );
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0].events, 3601);
        assert_eq!(m.pending(), 399);
    }
}
