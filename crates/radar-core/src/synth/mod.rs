//! Synthetic labelled data, so radar can show what it does on a machine that
//! has no data yet.

pub mod transactions;

use crate::matrix::Matrix;
use crate::rng::Rng;
use crate::tabular::LabelledTable;

/// Options of the synthetic tabular data set.
#[derive(Debug, Clone)]
pub struct TabularSpec {
    pub rows: usize,
    pub features: usize,
    /// Share of rows that are anomalies, in [0, 0.5].
    pub anomaly_rate: f64,
    pub seed: u64,
}

impl Default for TabularSpec {
    fn default() -> Self {
        TabularSpec {
            rows: 20_000,
            features: 8,
            anomaly_rate: 0.02,
            seed: 0,
        }
    }
}

/// Normal rows come from three correlated Gaussian clusters. Anomalies are of
/// three kinds, in equal parts: scattered points far from every cluster, one
/// feature pushed to an extreme (the others normal), and points between
/// clusters that break the correlation structure.
pub fn tabular(spec: &TabularSpec) -> LabelledTable {
    let d = spec.features.max(1);
    let mut rng = Rng::seed_from_u64(spec.seed);
    let clusters: Vec<(Vec<f64>, Vec<f64>)> = (0..3)
        .map(|_| {
            let centre: Vec<f64> = (0..d).map(|_| rng.next_f64() * 20.0 - 10.0).collect();
            let scale: Vec<f64> = (0..d).map(|_| 0.5 + rng.next_f64() * 1.5).collect();
            (centre, scale)
        })
        .collect();
    let anomaly_rate = spec.anomaly_rate.clamp(0.0, 0.5);
    let mut data = Vec::with_capacity(spec.rows * d);
    let mut labels = Vec::with_capacity(spec.rows);
    let mut row = vec![0.0; d];
    for _ in 0..spec.rows {
        let (centre, scale) = &clusters[rng.below(3) as usize];
        // A shared latent factor correlates the features within a cluster.
        let latent = rng.normal();
        for j in 0..d {
            row[j] = centre[j] + scale[j] * (0.7 * latent + 0.5 * rng.normal());
        }
        let is_anomaly = rng.next_f64() < anomaly_rate;
        if is_anomaly {
            match rng.below(3) {
                0 => {
                    for v in row.iter_mut() {
                        *v = rng.next_f64() * 50.0 - 25.0;
                    }
                }
                1 => {
                    let j = rng.below(d as u64) as usize;
                    let sign = if rng.next_f64() < 0.5 { -1.0 } else { 1.0 };
                    row[j] = centre[j] + sign * scale[j] * (6.0 + 4.0 * rng.next_f64());
                }
                _ => {
                    // Independent noise at three times the scale: no shared factor.
                    for j in 0..d {
                        row[j] = centre[j] + 3.0 * scale[j] * rng.normal();
                    }
                }
            }
        }
        data.extend_from_slice(&row);
        labels.push(is_anomaly);
    }
    LabelledTable {
        feature_names: (0..d).map(|j| format!("f{j}")).collect(),
        features: Matrix::new(data, d).unwrap_or_default(),
        labels: Some(labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_deterministic_and_shaped_as_asked() {
        let spec = TabularSpec {
            rows: 5000,
            features: 5,
            anomaly_rate: 0.05,
            seed: 9,
        };
        let a = tabular(&spec);
        let b = tabular(&spec);
        assert_eq!(a, b);
        assert_eq!(a.features.rows(), 5000);
        assert_eq!(a.features.cols(), 5);
        let labels = a.labels.as_ref().unwrap();
        let rate = labels.iter().filter(|&&l| l).count() as f64 / 5000.0;
        assert!((0.035..0.065).contains(&rate), "anomaly rate {rate}");
        assert!(a.features.data().iter().all(|v| v.is_finite()));
        let c = tabular(&TabularSpec { seed: 10, ..spec });
        assert_ne!(a, c);
    }
}
