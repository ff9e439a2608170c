//! The last hour of a stream's figures, sampled from its metrics every
//! few seconds and kept in memory: what the dashboard's sparklines draw
//! the moment it opens. Rates are per second over each sampling interval;
//! the decision p99 is the interval's (from the latency histogram's bucket
//! counts), at the resolution of its buckets.

use std::collections::VecDeque;
use std::time::Instant;

use crate::metrics::Metrics;

/// One interval's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sample {
    /// The interval's end (UTC µs).
    pub at_us: i64,
    pub events_per_second: f64,
    pub scored_per_second: f64,
    pub alerts_per_second: f64,
    /// Alerts per scored event (null when nothing was scored).
    pub alert_rate: Option<f64>,
    /// The interval's decision-latency p99 in ms (a bucket's upper bound;
    /// null when nothing was decided).
    pub decision_p99_ms: Option<f64>,
    /// Events not yet scored, over all partitions.
    pub lag: u64,
}

struct Reading {
    at: Instant,
    events: u64,
    scored: u64,
    alerts: u64,
    latency: Vec<u64>,
}

/// A ring of samples (an hour at the default interval).
pub struct History {
    capacity: usize,
    samples: VecDeque<Sample>,
    last: Option<Reading>,
}

/// Seconds between samples, and samples kept (an hour).
pub const INTERVAL_SECONDS: u64 = 5;
pub const CAPACITY: usize = 720;

impl Default for History {
    fn default() -> Self {
        History {
            capacity: CAPACITY,
            samples: VecDeque::with_capacity(CAPACITY),
            last: None,
        }
    }
}

impl History {
    /// Reads `metrics` now; from the second reading on, adds the interval's
    /// sample.
    pub fn sample(&mut self, metrics: &Metrics, now_us: i64) {
        let reading = Reading {
            at: Instant::now(),
            events: metrics.events_in.get(),
            scored: metrics.scored_total.get(),
            alerts: metrics.alerts_total.get(),
            latency: metrics.decision_latency.counts(),
        };
        if let Some(last) = &self.last {
            let seconds = reading.at.duration_since(last.at).as_secs_f64().max(1e-3);
            let scored = reading.scored.saturating_sub(last.scored);
            let alerts = reading.alerts.saturating_sub(last.alerts);
            let latency: Vec<u64> = reading
                .latency
                .iter()
                .zip(&last.latency)
                .map(|(n, b)| n.saturating_sub(*b))
                .collect();
            if self.samples.len() == self.capacity {
                self.samples.pop_front();
            }
            self.samples.push_back(Sample {
                at_us: now_us,
                events_per_second: reading.events.saturating_sub(last.events) as f64 / seconds,
                scored_per_second: scored as f64 / seconds,
                alerts_per_second: alerts as f64 / seconds,
                alert_rate: (scored > 0).then(|| alerts as f64 / scored as f64),
                decision_p99_ms: crate::metrics::quantile_of(&latency, 0.99)
                    .map(|s| if s.is_finite() { s * 1000.0 } else { f64::MAX }),
                lag: metrics.lag_total(),
            });
        }
        self.last = Some(reading);
    }

    /// Every sample, oldest first.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_rates_over_the_interval_and_the_ring_is_bounded() {
        let m = Metrics::new("tx");
        let mut h = History {
            capacity: 2,
            ..History::default()
        };
        h.sample(&m, 0);
        assert!(h.samples().is_empty(), "one reading is no interval");
        m.events_in.inc_by(100);
        m.scored_total.inc_by(50);
        m.alerts_total.inc_by(5);
        m.decision_latency.observe_micros(1500);
        m.set_lag(&[(0, 7), (1, 3)]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        h.sample(&m, 1);
        let s = &h.samples()[0];
        assert!(s.events_per_second > 0.0);
        assert_eq!(s.alert_rate, Some(0.1));
        assert_eq!(s.decision_p99_ms, Some(2.0));
        assert_eq!(s.lag, 10);
        h.sample(&m, 2);
        h.sample(&m, 3);
        let at: Vec<i64> = h.samples().iter().map(|s| s.at_us).collect();
        assert_eq!(at, [2, 3]);
        assert_eq!(h.samples()[1].alert_rate, None, "nothing scored then");
    }
}
