//! Detector scores made comparable across streams: each score is
//! standardised against the running mean and deviation of the same
//! stream's earlier (log) scores and squashed into [0, 1]. Raw scales
//! differ from stream to stream (a CoDisp of 20 is ordinary on a noisy
//! series and alarming on a smooth one); after this, one threshold means
//! "this many deviations above what this stream usually scores".

/// P(Z > z) for a standard normal Z, with relative error below 2e-7
/// (the Chebyshev-fitted complementary error function of Press et al.,
/// Numerical Recipes §6.2); 0.5 at 0, tending to 0 and 1 at the ends.
pub fn upper_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    0.5 * if x >= 0.0 { erfc } else { 2.0 - erfc }
}

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

    /// Whether warm-up is over (scores are no longer held at 0).
    pub fn is_warm(&self) -> bool {
        self.n >= self.warmup
    }

    /// What [`next`](Self::next) would return, without learning `raw`.
    pub fn peek(&self, raw: f64) -> f64 {
        if raw.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) || self.n < self.warmup {
            return 0.0;
        }
        let z = (raw.ln() - self.mean) / self.var.sqrt().max(1e-6);
        0.5 + 0.5 * z / (1.0 + z.abs())
    }

    /// The normalised score of `raw` (0 for non-positive raw scores and
    /// during warm-up), then `raw` joins the statistics.
    pub fn next(&mut self, raw: f64) -> f64 {
        let out = self.peek(raw);
        if raw.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return out;
        }
        let s = raw.ln();
        self.n += 1;
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

impl ScoreNormaliser {
    /// The running statistics, for checkpoints.
    pub fn write(&self, w: &mut crate::codec::Writer) {
        w.u64(self.warmup);
        w.f64(self.alpha);
        w.f64(self.mean);
        w.f64(self.var);
        w.u64(self.n);
    }

    pub fn read(r: &mut crate::codec::Reader) -> Result<Self, crate::codec::DecodeError> {
        let n = ScoreNormaliser {
            warmup: r.u64()?,
            alpha: r.f64()?,
            mean: r.f64()?,
            var: r.f64()?,
            n: r.u64()?,
        };
        if !(n.alpha > 0.0
            && n.alpha <= 1.0
            && n.mean.is_finite()
            && n.var.is_finite()
            && n.var >= 0.0)
        {
            return Err(crate::codec::DecodeError::Invalid(
                "score statistics out of range".into(),
            ));
        }
        Ok(n)
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
    fn upper_tail_matches_known_normal_probabilities() {
        // (z, P(Z > z)) from the standard normal table.
        for (z, p) in [
            (0.0, 0.5),
            (1.0, 0.158_655_253_9),
            (1.96, 0.024_997_895_1),
            (-1.0, 0.841_344_746_1),
            (3.0, 0.001_349_898_0),
            (6.0, 9.865_876_45e-10),
        ] {
            let got = upper_tail(z);
            assert!((got - p).abs() / p < 2e-6, "z {z}: {got} vs {p}");
        }
        assert_eq!(upper_tail(f64::INFINITY), 0.0);
        assert!(upper_tail(40.0) >= 0.0);
    }

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
    fn peek_is_next_without_learning_and_state_round_trips() {
        let mut a = ScoreNormaliser::new(5, 0.05);
        for i in 1..50 {
            a.next(1.0 + (i % 7) as f64);
        }
        let mut w = crate::codec::Writer::new();
        a.write(&mut w);
        let bytes = w.into_bytes();
        let mut b = ScoreNormaliser::read(&mut crate::codec::Reader::new(&bytes)).unwrap();
        for raw in [0.5, 3.0, 40.0] {
            let peeked = a.peek(raw);
            assert_eq!(peeked, a.next(raw));
            assert_eq!(peeked, b.next(raw));
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
