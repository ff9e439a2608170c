//! Detector scores made comparable across streams: each score is
//! standardised against the running mean and deviation of the same
//! stream's earlier (log) scores and squashed into [0, 1]. Raw scales
//! differ from stream to stream (a CoDisp of 20 is ordinary on a noisy
//! series and alarming on a smooth one); after this, one threshold means
//! "this many deviations above what this stream usually scores".

/// Online standardisation of one stream's scores.
#[derive(Debug, Clone)]
pub struct ScoreNormaliser {
    /// Scores seen before any output (0 until then).
    pub warmup: u64,
    /// Weight of a new score in the running statistics once warm.
    pub alpha: f64,
    mean: f64,
    var: f64,
    n: u64,
}

impl ScoreNormaliser {
    pub fn new(warmup: u64, alpha: f64) -> Self {
        ScoreNormaliser {
            warmup,
            alpha,
            mean: 0.0,
            var: 0.0,
            n: 0,
        }
    }

    /// The normalised score of `raw` (0 for non-positive raw scores and
    /// during warm-up), then `raw` joins the statistics.
    pub fn next(&mut self, raw: f64) -> f64 {
        if raw.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return 0.0;
        }
        let s = raw.ln();
        self.n += 1;
        let out = if self.n > self.warmup {
            let z = (s - self.mean) / self.var.sqrt().max(1e-6);
            0.5 + 0.5 * z / (1.0 + z.abs())
        } else {
            0.0
        };
        let a = if self.n <= self.warmup.max(1) {
            1.0 / self.n as f64
        } else {
            self.alpha
        };
        let diff = s - self.mean;
        self.mean += a * diff;
        self.var = (1.0 - a) * (self.var + a * diff * diff);
        out
    }
}

/// Normalises a whole stream of scores in order.
pub fn normalise(raw: &[f64], warmup: u64, alpha: f64) -> Vec<f64> {
    let mut n = ScoreNormaliser::new(warmup, alpha);
    raw.iter().map(|&r| n.next(r)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_in_warmup_then_a_spike_stands_out_whatever_the_scale() {
        for scale in [0.01, 1.0, 500.0] {
            let raw: Vec<f64> = (0..400)
                .map(|i| scale * (1.0 + 0.1 * ((i * 7919) % 13) as f64 / 13.0))
                .chain([scale * 10.0])
                .collect();
            let out = normalise(&raw, 100, 0.01);
            assert!(out[..100].iter().all(|&v| v == 0.0));
            let spike = out[400];
            let typical = out[300];
            assert!(
                spike > 0.9 && typical < 0.8,
                "scale {scale}: {spike} vs {typical}"
            );
            assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn non_positive_and_nan_scores_are_zero() {
        let mut n = ScoreNormaliser::new(0, 0.1);
        assert_eq!(n.next(0.0), 0.0);
        assert_eq!(n.next(-1.0), 0.0);
        assert_eq!(n.next(f64::NAN), 0.0);
    }
}
