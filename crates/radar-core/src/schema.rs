//! Stream declarations: what an event of a stream looks like, how it is
//! validated, and which features are computed from it.
//!
//! Declared in `radar.toml` under `[streams.<name>]`; every option has a
//! default documented in README's configuration reference, and unknown keys
//! are rejected by name. [`StreamConfig::build`] checks a declaration once
//! and turns it into a [`StreamSchema`], which the decoder and the feature
//! engine trust without re-checking.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The `[streams]` part of `radar.toml`.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StreamsFile {
    #[serde(default)]
    pub streams: BTreeMap<String, StreamConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// Strings are RFC 3339; numbers are epoch seconds below 10^11,
    /// milliseconds below 10^14, microseconds above.
    #[default]
    Auto,
    Rfc3339,
    EpochSeconds,
    EpochMillis,
    EpochMicros,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Float,
    Int,
    Bool,
    /// A string compared by equality (merchant category, device id...).
    /// `string` is accepted as a synonym.
    #[serde(alias = "string")]
    Category,
}

impl FieldType {
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::Category => "category",
        }
    }

    fn is_numeric(self) -> bool {
        !matches!(self, FieldType::Category)
    }
}

/// One declared field of an event.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldConfig {
    #[serde(rename = "type")]
    pub ty: FieldType,
    /// Events without the field are dead letters. Default: true, except for
    /// labels.
    pub required: Option<bool>,
    /// Value used when an optional numeric field is absent (required for
    /// optional numeric fields that feed features).
    pub default: Option<f64>,
    /// Inclusive bounds for numeric fields.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The only values a category field may take.
    pub allowed: Option<Vec<String>>,
    /// A label (ground truth): captured, never used as a feature, never
    /// required.
    #[serde(default)]
    pub label: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Raw,
    Log1p,
    HourOfDay,
    DayOfWeek,
    Count,
    EwmaMean,
    EwmaStd,
    Zscore,
    TimeSinceLast,
    Distance,
    Speed,
    Novelty,
    Frequency,
    HourFrequency,
    Lag,
    Window,
    BaselineRatio,
    Age,
    Distinct,
    Rarity,
    LabelRate,
}

impl FeatureKind {
    pub fn name(self) -> &'static str {
        match self {
            FeatureKind::Raw => "raw",
            FeatureKind::Log1p => "log1p",
            FeatureKind::HourOfDay => "hour_of_day",
            FeatureKind::DayOfWeek => "day_of_week",
            FeatureKind::Count => "count",
            FeatureKind::EwmaMean => "ewma_mean",
            FeatureKind::EwmaStd => "ewma_std",
            FeatureKind::Zscore => "zscore",
            FeatureKind::TimeSinceLast => "time_since_last",
            FeatureKind::Distance => "distance",
            FeatureKind::Speed => "speed",
            FeatureKind::Novelty => "novelty",
            FeatureKind::Frequency => "frequency",
            FeatureKind::HourFrequency => "hour_frequency",
            FeatureKind::Lag => "lag",
            FeatureKind::Window => "window",
            FeatureKind::BaselineRatio => "baseline_ratio",
            FeatureKind::Age => "age",
            FeatureKind::Distinct => "distinct",
            FeatureKind::Rarity => "rarity",
            FeatureKind::LabelRate => "label_rate",
        }
    }

    /// The options (besides `kind` and `name`) this kind takes.
    fn options(self) -> &'static [&'static str] {
        match self {
            FeatureKind::Raw | FeatureKind::Log1p => &["field"],
            FeatureKind::HourOfDay | FeatureKind::DayOfWeek => &[],
            FeatureKind::HourFrequency => &["surprise", "key"],
            FeatureKind::Count => &["window_seconds", "key"],
            FeatureKind::EwmaMean | FeatureKind::EwmaStd => &["field", "alpha", "log1p", "key"],
            FeatureKind::Zscore => &["field", "alpha", "log1p", "min_events", "key"],
            FeatureKind::TimeSinceLast => &["cap_seconds", "key"],
            FeatureKind::Distance | FeatureKind::Speed => &["lat", "lon", "key"],
            FeatureKind::Novelty => &["field", "max_categories", "key"],
            FeatureKind::Frequency => &["field", "max_categories", "surprise", "key"],
            FeatureKind::Lag => &["field", "k", "key"],
            FeatureKind::Window => &["field", "windows", "aggregates", "log1p", "key"],
            FeatureKind::BaselineRatio => &[
                "field",
                "window_seconds",
                "baseline_seconds",
                "log1p",
                "min_events",
                "key",
            ],
            FeatureKind::Age => &["cap_seconds", "key"],
            FeatureKind::Distinct => &["field", "window_seconds", "max_categories", "key"],
            FeatureKind::Rarity => &["field"],
            FeatureKind::LabelRate => &["window_seconds", "key"],
        }
    }
}

/// One declared feature. Which options apply depends on `kind`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    pub kind: FeatureKind,
    /// Column name; default `<kind>_<field>` (or `<kind>`).
    pub name: Option<String>,
    pub field: Option<String>,
    pub window_seconds: Option<u64>,
    /// Weight of the newest value in an exponentially weighted mean, (0, 1].
    pub alpha: Option<f64>,
    /// Apply log1p to the value before the EWMA / z-score.
    pub log1p: Option<bool>,
    /// Events of an entity before its z-score is computed (0 until then).
    pub min_events: Option<u32>,
    pub cap_seconds: Option<u64>,
    pub lat: Option<String>,
    pub lon: Option<String>,
    pub max_categories: Option<usize>,
    pub k: Option<usize>,
    /// Frequencies as surprise, −ln((count + ½) / (events + 1)): rare
    /// values stretch out, common ones bunch near 0.
    pub surprise: Option<bool>,
    /// `window`: the windows in seconds, all computed at once.
    pub windows: Option<Vec<u64>>,
    /// `window`: what each window reports (`sum`, `mean`, `max`, `count`).
    pub aggregates: Option<Vec<Aggregate>>,
    /// `baseline_ratio`: the long-run window the recent one is compared
    /// with.
    pub baseline_seconds: Option<u64>,
    /// Whose history the feature follows: a field (merchant, terminal,
    /// device, IP) instead of the stream's entity. Each key has its own
    /// bounded state.
    pub key: Option<String>,
}

/// What a `window` feature reports of each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Sum,
    Mean,
    Max,
    Count,
}

impl Aggregate {
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Sum => "sum",
            Aggregate::Mean => "mean",
            Aggregate::Max => "max",
            Aggregate::Count => "count",
        }
    }
}

/// A duration as a column suffix: `90s`, `10m`, `1h`, `7d`.
pub fn duration_suffix(seconds: u64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// One stream's declaration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Field holding event time. Without it, events take their ingest time.
    pub timestamp: Option<String>,
    #[serde(default)]
    pub timestamp_format: TimestampFormat,
    /// Field identifying the entity (card, user, device, series) whose
    /// history per-entity features follow. Without it, all events share one
    /// history.
    pub entity: Option<String>,
    /// Field holding a unique event id; without it radar assigns one.
    pub id: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, FieldConfig>,
    #[serde(default)]
    pub features: Vec<FeatureConfig>,
    /// Larger events are dead letters. Default 65536.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Entities whose state is kept; the least recently seen is evicted
    /// beyond this. Default 1,000,000.
    #[serde(default = "default_max_entities")]
    pub max_entities: usize,
    /// An entity unseen for longer (in event time) starts afresh.
    pub entity_ttl_seconds: Option<u64>,
    /// Timestamps kept per entity for windowed counts (counts saturate at
    /// this). Default 8.
    #[serde(default = "default_history")]
    pub history: usize,
    /// Event times before this (RFC 3339) are refused (`bad_timestamp`).
    /// Default 1970-01-01T00:00:00Z.
    pub event_time_min: Option<String>,
    /// Event times at or after this (RFC 3339) are refused: an absurd date
    /// would land in a lake partition no reader lists, and would freeze its
    /// entity's clock. Default 2100-01-01T00:00:00Z.
    pub event_time_max: Option<String>,
    /// What scores the stream; default: the registry's champion.
    #[serde(default)]
    pub detector: DetectorConfig,
    /// How the served model's drift is watched.
    #[serde(default)]
    pub drift: DriftOptions,
    /// How a challenger is shadowed, canaried, promoted or rolled back.
    #[serde(default)]
    pub rollout: RolloutOptions,
    /// When a candidate is retrained by itself (none of it: never).
    #[serde(default)]
    pub retrain: RetrainPolicy,
}

/// `[streams.<name>.retrain]`: what starts a retrain (any of them), and on
/// what.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainPolicy {
    /// On a schedule: hours between retrains.
    pub every_hours: Option<f64>,
    /// When a drift window drifts.
    #[serde(default)]
    pub on_drift: bool,
    /// When this many labels arrived since the last retrain.
    pub new_labels: Option<u64>,
    /// Train on the last this-many days of event time (default: all the
    /// lake holds).
    pub window_days: Option<f64>,
    /// No two retrains closer than this (default 60).
    pub min_interval_minutes: Option<f64>,
}

impl RetrainPolicy {
    /// Whether anything starts a retrain.
    pub fn is_enabled(&self) -> bool {
        self.every_hours.is_some() || self.on_drift || self.new_labels.is_some()
    }

    pub fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: Option<f64>| match v {
            Some(x) if !(x > 0.0 && x.is_finite()) => {
                Err(format!("retrain.{name} must be a positive number, got {x}"))
            }
            _ => Ok(()),
        };
        positive("every_hours", self.every_hours)?;
        positive("window_days", self.window_days)?;
        match self.min_interval_minutes {
            Some(x) if !(x >= 0.0 && x.is_finite()) => Err(format!(
                "retrain.min_interval_minutes must be at least 0, got {x}"
            )),
            _ => Ok(()),
        }?;
        if self.new_labels == Some(0) {
            return Err("retrain.new_labels must be at least 1".into());
        }
        Ok(())
    }
}

/// `[streams.<name>.rollout]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutOptions {
    /// Events the challenger scores beside the champion without deciding.
    pub shadow_events: u64,
    /// Events after that during which it decides for a share of entities.
    pub canary_events: u64,
    /// Share of entities (by hash) the canary decides, in (0, 1).
    pub canary_share: f64,
    /// Alert rates further apart than this factor (either way) reject a
    /// challenger or roll back a promotion.
    pub max_alert_rate_ratio: f64,
    /// Events a newly promoted champion is watched for.
    pub watch_events: u64,
}

impl Default for RolloutOptions {
    fn default() -> Self {
        RolloutOptions {
            shadow_events: 5000,
            canary_events: 5000,
            canary_share: 0.1,
            max_alert_rate_ratio: 3.0,
            watch_events: 5000,
        }
    }
}

impl RolloutOptions {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.canary_share > 0.0 && self.canary_share < 1.0) {
            return Err(format!(
                "rollout.canary_share must be in (0, 1), got {}",
                self.canary_share
            ));
        }
        if self.max_alert_rate_ratio.is_nan() || self.max_alert_rate_ratio <= 1.0 {
            return Err(format!(
                "rollout.max_alert_rate_ratio must be above 1, got {}",
                self.max_alert_rate_ratio
            ));
        }
        if self.shadow_events == 0 || self.watch_events == 0 {
            return Err("rollout.shadow_events and rollout.watch_events must be at least 1".into());
        }
        Ok(())
    }
}

/// `[streams.<name>.drift]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftOptions {
    /// Events per window.
    pub window_events: usize,
    /// When set, a window closes once its events span this many seconds
    /// of event time instead (at least `window_events / 10` of them): a
    /// window of a day holds every hour, so features with a daily rhythm
    /// do not look drifted because a short window saw only part of it.
    pub window_seconds: Option<f64>,
    /// Normed Wasserstein distance at which a feature drifts.
    pub wasserstein: f64,
    /// Share of drifted features at which the window drifts.
    pub drifted_share: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            window_events: 1000,
            window_seconds: None,
            wasserstein: 0.1,
            drifted_share: 0.5,
        }
    }
}

impl DriftOptions {
    pub fn validate(&self) -> Result<(), String> {
        if self.window_events < 10 {
            return Err(format!(
                "drift.window_events must be at least 10, got {}",
                self.window_events
            ));
        }
        if let Some(s) = self.window_seconds
            && !(s > 0.0 && s.is_finite())
        {
            return Err(format!(
                "drift.window_seconds must be a positive number, got {s}"
            ));
        }
        if !(self.wasserstein > 0.0 && self.wasserstein.is_finite()) {
            return Err(format!(
                "drift.wasserstein must be a positive number, got {}",
                self.wasserstein
            ));
        }
        if !(self.drifted_share > 0.0 && self.drifted_share <= 1.0) {
            return Err(format!(
                "drift.drifted_share must be in (0, 1], got {}",
                self.drifted_share
            ));
        }
        Ok(())
    }
}

/// Which scored events an online detector learns from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LearnMode {
    /// Every event: follows drift (the default, as River and AWS do).
    #[default]
    All,
    /// Only events it did not flag (score at or under the threshold, the
    /// same rule that raises alerts above it), so a burst of anomalies is
    /// not learned as normal; but a lasting shift stays flagged, and is
    /// never learned.
    Unflagged,
    Never,
}

/// How a stream's detector reaches the scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Serve {
    /// Trained by `radar train` on the lake, registered, and served from
    /// the registry's `champion` alias (hot-swapped on promotion).
    Registry,
    /// Learning in the scorer as events flow, its state in the scorer's
    /// checkpoint.
    Online,
}

/// A number or `auto` (Isolation Forest's `max_samples`, `contamination`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NumberOrAuto {
    Number(f64),
    Text(String),
}

/// Isolation Forest's options (scikit-learn's names and defaults).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IsolationForestOptions {
    pub n_estimators: Option<usize>,
    /// `auto`, a row count, or a fraction.
    pub max_samples: Option<NumberOrAuto>,
    /// A feature count or a fraction.
    pub max_features: Option<f64>,
    /// `auto` or the expected anomaly share in (0, 0.5].
    pub contamination: Option<NumberOrAuto>,
    pub bootstrap: Option<bool>,
}

/// Half-Space Trees' options (River's names and defaults).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HalfSpaceTreesOptions {
    pub n_trees: Option<usize>,
    pub height: Option<usize>,
    pub window_size: Option<usize>,
    /// `[low, high]` per feature column; all columns or none (then learned
    /// from the first window).
    pub limits: Option<BTreeMap<String, [f64; 2]>>,
}

/// Random Cut Forest's options (AWS's names and defaults).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCutForestOptions {
    pub num_trees: Option<usize>,
    pub sample_size: Option<usize>,
    pub shingle_size: Option<usize>,
    pub time_decay: Option<f64>,
}

/// The joint-tail detectors' options (ECOD, COPOD).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JointTailOptions {
    /// Sorted training values kept per feature (default 65,536).
    pub max_knots: Option<usize>,
}

/// Extended Isolation Forest's options (Hariri et al.'s names).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendedIsolationForestOptions {
    /// Default 100.
    pub n_trees: Option<usize>,
    /// Rows per tree (default 256).
    pub sample_size: Option<usize>,
    /// Features a split combines, minus one (default: all of them; 0 is
    /// the classic forest's axis-parallel cut).
    pub extension_level: Option<usize>,
    /// `auto` or the expected anomaly share in (0, 0.5].
    pub contamination: Option<NumberOrAuto>,
}

/// A rank-averaging ensemble's members, each a batch kind with its
/// options: `members = [{ kind = "isolation_forest" }, { kind = "ecod" }]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleOptions {
    pub members: Vec<DetectorKind>,
}

/// The detector kinds, each with its own options.
///
/// Adding a kind: its module in `radar-detect` (behind the `Detector`
/// trait, with a model file `radar_detect::load` reads), a variant and an
/// options struct here, and its line in `radar_pipeline::detectors::build`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorKind {
    /// Also spelled `champion` (declarations written before other kinds
    /// could be registered).
    #[serde(alias = "champion")]
    IsolationForest(IsolationForestOptions),
    HalfSpaceTrees(HalfSpaceTreesOptions),
    RandomCutForest(RandomCutForestOptions),
    /// Empirical cumulative distribution outlier detection: per-feature
    /// tail probabilities summed (Li et al., 2022).
    Ecod(JointTailOptions),
    /// Copula-based outlier detection (Li et al., 2020).
    Copod(JointTailOptions),
    /// Isolation by random hyperplanes (Hariri et al., 2021).
    ExtendedIsolationForest(ExtendedIsolationForestOptions),
    /// Batch detectors as one: the mean of each one's rank of the row
    /// among its training scores.
    Ensemble(EnsembleOptions),
}

impl DetectorKind {
    pub fn name(&self) -> &'static str {
        match self {
            DetectorKind::IsolationForest(_) => "isolation_forest",
            DetectorKind::HalfSpaceTrees(_) => "half_space_trees",
            DetectorKind::RandomCutForest(_) => "random_cut_forest",
            DetectorKind::Ecod(_) => "ecod",
            DetectorKind::Copod(_) => "copod",
            DetectorKind::ExtendedIsolationForest(_) => "extended_isolation_forest",
            DetectorKind::Ensemble(_) => "ensemble",
        }
    }

    /// How the registry's model names abbreviate the kind.
    pub fn short_name(&self) -> &'static str {
        match self {
            DetectorKind::IsolationForest(_) => "iforest",
            DetectorKind::HalfSpaceTrees(_) => "hst",
            DetectorKind::RandomCutForest(_) => "rcf",
            DetectorKind::Ecod(_) => "ecod",
            DetectorKind::Copod(_) => "copod",
            DetectorKind::ExtendedIsolationForest(_) => "eif",
            DetectorKind::Ensemble(_) => "ensemble",
        }
    }

    /// Served from the registry unless declared otherwise: batch kinds
    /// are; online kinds learn in the scorer.
    pub fn default_serve(&self) -> Serve {
        match self {
            DetectorKind::IsolationForest(_)
            | DetectorKind::Ecod(_)
            | DetectorKind::Copod(_)
            | DetectorKind::ExtendedIsolationForest(_)
            | DetectorKind::Ensemble(_) => Serve::Registry,
            DetectorKind::HalfSpaceTrees(_) | DetectorKind::RandomCutForest(_) => Serve::Online,
        }
    }

    /// Every kind's option names (for naming an option given to the wrong
    /// kind).
    const OPTIONS: [(&'static str, &'static [&'static str]); 7] = [
        (
            "isolation_forest",
            &[
                "n_estimators",
                "max_samples",
                "max_features",
                "contamination",
                "bootstrap",
            ],
        ),
        (
            "half_space_trees",
            &["n_trees", "height", "window_size", "limits"],
        ),
        (
            "random_cut_forest",
            &["num_trees", "sample_size", "shingle_size", "time_decay"],
        ),
        ("ecod", &["max_knots"]),
        ("copod", &["max_knots"]),
        (
            "extended_isolation_forest",
            &["n_trees", "sample_size", "extension_level", "contamination"],
        ),
        ("ensemble", &["members"]),
    ];
}

impl Default for DetectorKind {
    fn default() -> Self {
        DetectorKind::IsolationForest(IsolationForestOptions::default())
    }
}

/// `[streams.<name>.detector]`: which detector scores the stream, how it
/// is served, and the options of its kind (options of the other kinds are
/// refused by name).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct DetectorConfig {
    pub kind: DetectorKind,
    /// Default: the kind's ([`DetectorKind::default_serve`]).
    pub serve: Option<Serve>,
    /// The registry's model name for this stream's detector. Default
    /// `<stream>-<kind short name>` (`transactions-iforest`).
    pub model: Option<String>,
    /// Online: alert when the score, standardised against the stream's
    /// own score history and squashed into [0, 1), exceeds this. Default
    /// 0.9: 4 standard deviations above the usual (log) score.
    pub threshold: Option<f64>,
    /// Online: which events it learns from.
    pub learn: Option<LearnMode>,
    /// Online: events before any alert (the score history's warm-up).
    /// Default 500.
    pub warmup: Option<u64>,
    pub seed: Option<u64>,
}

/// The options every kind shares, read before the kind's own.
#[derive(Deserialize, Default)]
struct Shared {
    serve: Option<Serve>,
    model: Option<String>,
    threshold: Option<f64>,
    learn: Option<LearnMode>,
    warmup: Option<u64>,
    seed: Option<u64>,
}

impl<'de> Deserialize<'de> for DetectorConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let mut shared = serde_json::Map::new();
        for key in ["serve", "model", "threshold", "learn", "warmup", "seed"] {
            if let Some(v) = table.remove(key) {
                shared.insert(key.to_owned(), v);
            }
        }
        let shared: Shared =
            serde_json::from_value(serde_json::Value::Object(shared)).map_err(D::Error::custom)?;
        let kind_name = match table.get("kind") {
            None => {
                table.insert("kind".into(), "isolation_forest".into());
                "isolation_forest".to_owned()
            }
            Some(serde_json::Value::String(k)) if k == "champion" => "isolation_forest".to_owned(),
            Some(serde_json::Value::String(k)) => k.clone(),
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "detector `kind` must be a string, got {other}"
                )));
            }
        };
        // An option of another kind is named as such, not as unknown.
        if let Some((_, own)) = DetectorKind::OPTIONS.iter().find(|(k, _)| *k == kind_name) {
            for key in table.keys().filter(|k| *k != "kind") {
                if own.contains(&key.as_str()) {
                    continue;
                }
                if let Some((other, _)) = DetectorKind::OPTIONS
                    .iter()
                    .find(|(_, opts)| opts.contains(&key.as_str()))
                {
                    return Err(D::Error::custom(format!(
                        "detector option `{key}` does not apply to {kind_name} (it is {other}'s)"
                    )));
                }
            }
        }
        let kind: DetectorKind =
            serde_json::from_value(serde_json::Value::Object(table)).map_err(D::Error::custom)?;
        Ok(DetectorConfig {
            kind,
            serve: shared.serve,
            model: shared.model,
            threshold: shared.threshold,
            learn: shared.learn,
            warmup: shared.warmup,
            seed: shared.seed,
        })
    }
}

impl DetectorConfig {
    pub fn serve(&self) -> Serve {
        self.serve.unwrap_or_else(|| self.kind.default_serve())
    }

    /// The registry's model name for `stream`'s detector.
    pub fn model_name(&self, stream: &str) -> String {
        self.model
            .clone()
            .unwrap_or_else(|| format!("{stream}-{}", self.kind.short_name()))
    }

    fn check(&self, columns: &[String]) -> Result<(), String> {
        if self.serve() == Serve::Registry {
            // A registered model decides with the threshold fitted at
            // training and learns nothing while served.
            for (name, set) in [
                ("threshold", self.threshold.is_some()),
                ("learn", self.learn.is_some()),
                ("warmup", self.warmup.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "detector option `{name}` does not apply to the champion (a model served from the registry); it applies to serve = \"online\""
                    ));
                }
            }
        }
        if let Some(m) = &self.model
            && (m.is_empty()
                || !m
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(format!(
                "detector model name `{m}`: use letters, digits, `-`, `_`, `.`"
            ));
        }
        if let Some(t) = self.threshold
            && !(t > 0.0 && t < 1.0)
        {
            return Err(format!("detector threshold must be in (0, 1), got {t}"));
        }
        if let DetectorKind::HalfSpaceTrees(HalfSpaceTreesOptions {
            limits: Some(limits),
            ..
        }) = &self.kind
        {
            for c in columns {
                match limits.get(c) {
                    None => return Err(format!("detector limits: no range for column `{c}`")),
                    Some([lo, hi]) if !(lo.is_finite() && hi.is_finite() && lo < hi) => {
                        return Err(format!(
                            "detector limits: column `{c}` has [{lo}, {hi}]; need finite low < high"
                        ));
                    }
                    Some(_) => {}
                }
            }
            if let Some(extra) = limits.keys().find(|k| !columns.contains(k)) {
                return Err(format!(
                    "detector limits: `{extra}` is not a feature column"
                ));
            }
        }
        if let DetectorKind::IsolationForest(o) = &self.kind {
            for (name, v) in [
                ("max_samples", &o.max_samples),
                ("contamination", &o.contamination),
            ] {
                if let Some(NumberOrAuto::Text(t)) = v
                    && t != "auto"
                {
                    return Err(format!(
                        "detector option `{name}`: expected `auto` or a number, got `{t}`"
                    ));
                }
            }
        }
        Ok(())
    }
}

fn default_max_event_bytes() -> usize {
    65_536
}
fn default_max_entities() -> usize {
    1_000_000
}
fn default_history() -> usize {
    8
}

pub const DEFAULT_ALPHA: f64 = 0.1;
pub const DEFAULT_MIN_EVENTS: u32 = 3;
pub const DEFAULT_CAP_SECONDS: u64 = 7 * 86_400;
pub const DEFAULT_MAX_CATEGORIES: usize = 8;
/// Virtual category field: the event's hour of day (UTC), for novelty and
/// frequency features.
pub const HOUR_FIELD: &str = "@hour";

#[derive(Debug, Error, PartialEq)]
pub enum SchemaError {
    #[error("stream `{stream}`: {message}")]
    Invalid { stream: String, message: String },
}

/// A validated field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub required: bool,
    pub default: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub allowed: Option<HashSet<String>>,
    pub label: bool,
}

/// Where a category feature reads its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CategorySource {
    Field(usize),
    Hour,
}

/// A validated feature with field references resolved to indices.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    Raw {
        field: usize,
    },
    Log1p {
        field: usize,
    },
    HourOfDay,
    DayOfWeek,
    Count {
        window_seconds: u64,
    },
    EwmaMean {
        field: usize,
        alpha: f64,
        log1p: bool,
    },
    EwmaStd {
        field: usize,
        alpha: f64,
        log1p: bool,
    },
    Zscore {
        field: usize,
        alpha: f64,
        log1p: bool,
        min_events: u32,
    },
    TimeSinceLast {
        cap_seconds: u64,
    },
    Distance {
        lat: usize,
        lon: usize,
    },
    Speed {
        lat: usize,
        lon: usize,
    },
    Novelty {
        source: CategorySource,
        max_categories: usize,
    },
    Frequency {
        source: CategorySource,
        max_categories: usize,
        surprise: bool,
    },
    HourFrequency {
        surprise: bool,
    },
    Lag {
        field: usize,
        k: usize,
    },
    /// Exponentially decayed aggregates over several windows: an event
    /// Δt ago weighs e^{−Δt/W}. Without a field, each event counts 1.
    Window {
        field: Option<usize>,
        log1p: bool,
        windows: Vec<u64>,
        aggregates: Vec<Aggregate>,
    },
    /// ln of the recent rate (decayed over `window_seconds`, this event
    /// included) over the long-run rate (over `baseline_seconds`, earlier
    /// events only).
    BaselineRatio {
        field: Option<usize>,
        log1p: bool,
        window_seconds: u64,
        baseline_seconds: u64,
        min_events: u32,
    },
    /// Seconds since the key was first seen.
    Age {
        cap_seconds: u64,
    },
    /// Distinct values of a category in the last `window_seconds`, this
    /// event's included (saturating at `max_categories`).
    Distinct {
        source: CategorySource,
        window_seconds: u64,
        max_categories: usize,
    },
    /// How rare the value is across the whole stream: −ln((count + ½) /
    /// (events + 1)) from a fixed-size count sketch of earlier events.
    Rarity {
        source: CategorySource,
    },
    /// The key's known-fraud rate: fraud labels known before the event
    /// (decayed from when each became known, over `window_seconds`) over
    /// the key's events (decayed alike) + 1. Labels are fed with
    /// [`crate::features::FeatureEngine::apply_label`]; without labels the
    /// feature is 0.
    LabelRate {
        window_seconds: u64,
    },
}

impl Feature {
    /// Columns this feature produces.
    pub fn width(&self) -> usize {
        match self {
            Feature::HourOfDay | Feature::DayOfWeek => 2,
            Feature::Lag { k, .. } => *k,
            Feature::Window {
                windows,
                aggregates,
                ..
            } => windows.len() * aggregates.len(),
            _ => 1,
        }
    }

    /// Whether the feature reads or keeps per-key state (only those take a
    /// `key`).
    pub fn is_keyed(&self) -> bool {
        !matches!(
            self,
            Feature::Raw { .. }
                | Feature::Log1p { .. }
                | Feature::HourOfDay
                | Feature::DayOfWeek
                | Feature::Rarity { .. }
        )
    }
}

/// A validated stream declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSchema {
    pub name: String,
    pub timestamp: Option<String>,
    pub timestamp_format: TimestampFormat,
    pub entity: Option<String>,
    pub id: Option<String>,
    pub fields: Vec<Field>,
    pub features: Vec<Feature>,
    /// Per feature: the field whose value keys its state, or None for the
    /// stream's entity.
    pub feature_keys: Vec<Option<usize>>,
    pub detector: DetectorConfig,
    pub drift: DriftOptions,
    pub rollout: RolloutOptions,
    pub retrain: RetrainPolicy,
    /// Column names, one per feature column.
    pub columns: Vec<String>,
    pub max_event_bytes: usize,
    pub max_entities: usize,
    pub entity_ttl_seconds: Option<u64>,
    pub history: usize,
    /// Accepted event times, UTC µs: `[min, max)`.
    pub event_time_bounds: (i64, i64),
}

/// The default accepted event times: 1970-01-01 to 2100-01-01 (UTC µs).
pub const DEFAULT_EVENT_TIME_BOUNDS: (i64, i64) = (0, 4_102_444_800_000_000);

impl StreamSchema {
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Indices of the label fields.
    pub fn labels(&self) -> impl Iterator<Item = usize> + '_ {
        self.fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.label)
            .map(|(i, _)| i)
    }
}

/// Parses a TOML document holding only `[streams.*]` tables; errors carry
/// the line and name the offending key.
pub fn parse_streams(toml_text: &str) -> Result<BTreeMap<String, StreamConfig>, String> {
    toml::from_str::<StreamsFile>(toml_text)
        .map(|f| f.streams)
        .map_err(|e| e.to_string())
}

impl StreamConfig {
    /// Validates the declaration.
    pub fn build(&self, name: &str) -> Result<StreamSchema, SchemaError> {
        let err = |message: String| SchemaError::Invalid {
            stream: name.to_owned(),
            message,
        };
        if self.max_event_bytes == 0 {
            return Err(err("max_event_bytes must be at least 1".into()));
        }
        if self.max_entities == 0 || self.max_entities > (u32::MAX / 2) as usize {
            return Err(err(format!(
                "max_entities must be between 1 and {}, got {}",
                u32::MAX / 2,
                self.max_entities
            )));
        }
        if self.history == 0 || self.history > 255 {
            return Err(err(format!(
                "history must be between 1 and 255, got {}",
                self.history
            )));
        }
        let mut fields = Vec::new();
        for (fname, f) in &self.fields {
            let is_special = [&self.timestamp, &self.entity, &self.id]
                .iter()
                .any(|s| s.as_deref() == Some(fname.as_str()));
            if is_special {
                return Err(err(format!(
                    "field `{fname}` is the stream's timestamp, entity or id; declare it only there"
                )));
            }
            let required = f.required.unwrap_or(!f.label);
            if f.label && required {
                return Err(err(format!("label field `{fname}` cannot be required")));
            }
            if (f.min.is_some() || f.max.is_some() || f.default.is_some()) && !f.ty.is_numeric() {
                return Err(err(format!(
                    "field `{fname}` is a category: min, max and default apply to numbers"
                )));
            }
            if f.allowed.is_some() && f.ty != FieldType::Category {
                return Err(err(format!(
                    "field `{fname}`: `allowed` applies to category fields"
                )));
            }
            if let (Some(lo), Some(hi)) = (f.min, f.max)
                && lo > hi
            {
                return Err(err(format!("field `{fname}`: min {lo} is above max {hi}")));
            }
            for v in [f.min, f.max, f.default].into_iter().flatten() {
                if !v.is_finite() {
                    return Err(err(format!(
                        "field `{fname}`: bounds and default must be finite"
                    )));
                }
            }
            fields.push(Field {
                name: fname.clone(),
                ty: f.ty,
                required,
                default: f.default,
                min: f.min,
                max: f.max,
                allowed: f.allowed.as_ref().map(|a| a.iter().cloned().collect()),
                label: f.label,
            });
        }
        let mut features = Vec::new();
        let mut feature_keys = Vec::new();
        let mut columns: Vec<String> = Vec::new();
        for (i, fc) in self.features.iter().enumerate() {
            let what = format!(
                "feature {} ({})",
                i + 1,
                fc.name.as_deref().unwrap_or(fc.kind.name())
            );
            let ferr = |message: String| err(format!("{what}: {message}"));
            // Options that do not apply to this kind.
            let given: [(&str, bool); 15] = [
                ("windows", fc.windows.is_some()),
                ("aggregates", fc.aggregates.is_some()),
                ("baseline_seconds", fc.baseline_seconds.is_some()),
                ("key", fc.key.is_some()),
                ("surprise", fc.surprise.is_some()),
                ("field", fc.field.is_some()),
                ("window_seconds", fc.window_seconds.is_some()),
                ("alpha", fc.alpha.is_some()),
                ("log1p", fc.log1p.is_some()),
                ("min_events", fc.min_events.is_some()),
                ("cap_seconds", fc.cap_seconds.is_some()),
                ("lat", fc.lat.is_some()),
                ("lon", fc.lon.is_some()),
                ("max_categories", fc.max_categories.is_some()),
                ("k", fc.k.is_some()),
            ];
            for (opt, present) in given {
                if present && !fc.kind.options().contains(&opt) {
                    return Err(ferr(format!(
                        "option `{opt}` does not apply to kind `{}` (it takes: {})",
                        fc.kind.name(),
                        if fc.kind.options().is_empty() {
                            "no options".to_string()
                        } else {
                            fc.kind.options().join(", ")
                        }
                    )));
                }
            }
            let numeric = |opt: &str, name: &Option<String>| -> Result<usize, SchemaError> {
                let name = name
                    .as_deref()
                    .ok_or_else(|| ferr(format!("kind `{}` needs `{opt}`", fc.kind.name())))?;
                let idx = fields.iter().position(|f| f.name == name).ok_or_else(|| {
                    ferr(format!(
                        "`{opt}` names field `{name}`, which is not declared"
                    ))
                })?;
                let f = &fields[idx];
                if f.label {
                    return Err(ferr(format!(
                        "field `{name}` is a label and cannot feed a feature"
                    )));
                }
                if !f.ty.is_numeric() {
                    return Err(ferr(format!(
                        "field `{name}` is a {}; this feature needs a number",
                        f.ty.name()
                    )));
                }
                if !f.required && f.default.is_none() {
                    return Err(ferr(format!(
                        "field `{name}` is optional without a `default`; give it one so the feature always has a value"
                    )));
                }
                Ok(idx)
            };
            let category = |name: &Option<String>| -> Result<CategorySource, SchemaError> {
                let name = name
                    .as_deref()
                    .ok_or_else(|| ferr(format!("kind `{}` needs `field`", fc.kind.name())))?;
                if name == HOUR_FIELD {
                    return Ok(CategorySource::Hour);
                }
                let idx = fields.iter().position(|f| f.name == name).ok_or_else(|| {
                    ferr(format!("`field` names `{name}`, which is not declared"))
                })?;
                if fields[idx].label {
                    return Err(ferr(format!(
                        "field `{name}` is a label and cannot feed a feature"
                    )));
                }
                if fields[idx].ty == FieldType::Float {
                    return Err(ferr(format!(
                        "field `{name}` is a float; novelty and frequency need a category, int or bool"
                    )));
                }
                Ok(CategorySource::Field(idx))
            };
            // A numeric field, or none (each event counts 1).
            let amount = |name: &Option<String>| -> Result<Option<usize>, SchemaError> {
                match name {
                    None => Ok(None),
                    Some(_) => numeric("field", name).map(Some),
                }
            };
            let positive = |opt: &str, v: Option<u64>| -> Result<u64, SchemaError> {
                match v {
                    Some(w) if w > 0 => Ok(w),
                    _ => Err(ferr(format!(
                        "kind `{}` needs `{opt}` of at least 1 second",
                        fc.kind.name()
                    ))),
                }
            };
            let alpha = fc.alpha.unwrap_or(DEFAULT_ALPHA);
            if !(alpha > 0.0 && alpha <= 1.0) {
                return Err(ferr(format!("alpha must be in (0, 1], got {alpha}")));
            }
            let max_categories = fc.max_categories.unwrap_or(DEFAULT_MAX_CATEGORIES);
            if max_categories == 0 || max_categories > 64 {
                return Err(ferr(format!(
                    "max_categories must be between 1 and 64, got {max_categories}"
                )));
            }
            let feature = match fc.kind {
                FeatureKind::Raw => Feature::Raw {
                    field: numeric("field", &fc.field)?,
                },
                FeatureKind::Log1p => Feature::Log1p {
                    field: numeric("field", &fc.field)?,
                },
                FeatureKind::HourOfDay => Feature::HourOfDay,
                FeatureKind::DayOfWeek => Feature::DayOfWeek,
                FeatureKind::HourFrequency => Feature::HourFrequency {
                    surprise: fc.surprise.unwrap_or(false),
                },
                FeatureKind::Count => match fc.window_seconds {
                    Some(w) if w > 0 => Feature::Count { window_seconds: w },
                    _ => {
                        return Err(ferr(
                            "kind `count` needs `window_seconds` of at least 1".into(),
                        ));
                    }
                },
                FeatureKind::EwmaMean => Feature::EwmaMean {
                    field: numeric("field", &fc.field)?,
                    alpha,
                    log1p: fc.log1p.unwrap_or(false),
                },
                FeatureKind::EwmaStd => Feature::EwmaStd {
                    field: numeric("field", &fc.field)?,
                    alpha,
                    log1p: fc.log1p.unwrap_or(false),
                },
                FeatureKind::Zscore => Feature::Zscore {
                    field: numeric("field", &fc.field)?,
                    alpha,
                    log1p: fc.log1p.unwrap_or(false),
                    min_events: fc.min_events.unwrap_or(DEFAULT_MIN_EVENTS),
                },
                FeatureKind::TimeSinceLast => Feature::TimeSinceLast {
                    cap_seconds: fc.cap_seconds.unwrap_or(DEFAULT_CAP_SECONDS).max(1),
                },
                FeatureKind::Distance => Feature::Distance {
                    lat: numeric("lat", &fc.lat)?,
                    lon: numeric("lon", &fc.lon)?,
                },
                FeatureKind::Speed => Feature::Speed {
                    lat: numeric("lat", &fc.lat)?,
                    lon: numeric("lon", &fc.lon)?,
                },
                FeatureKind::Novelty => Feature::Novelty {
                    source: category(&fc.field)?,
                    max_categories,
                },
                FeatureKind::Frequency => Feature::Frequency {
                    source: category(&fc.field)?,
                    max_categories,
                    surprise: fc.surprise.unwrap_or(false),
                },
                FeatureKind::Lag => match fc.k {
                    Some(k) if (1..=64).contains(&k) => Feature::Lag {
                        field: numeric("field", &fc.field)?,
                        k,
                    },
                    _ => return Err(ferr("kind `lag` needs `k` between 1 and 64".into())),
                },
                FeatureKind::Window => {
                    let windows = fc.windows.clone().unwrap_or_default();
                    if windows.is_empty() || windows.len() > 8 || windows.contains(&0) {
                        return Err(ferr(
                            "kind `window` needs `windows`: 1 to 8 durations in seconds, each at least 1"
                                .into(),
                        ));
                    }
                    let aggregates = fc.aggregates.clone().unwrap_or(vec![Aggregate::Sum]);
                    if aggregates.is_empty() {
                        return Err(ferr("`aggregates` lists none".into()));
                    }
                    if fc.field.is_none() && aggregates.iter().any(|a| *a != Aggregate::Count) {
                        return Err(ferr(
                            "without a `field` a window can only `count` events".into(),
                        ));
                    }
                    Feature::Window {
                        field: amount(&fc.field)?,
                        log1p: fc.log1p.unwrap_or(false),
                        windows,
                        aggregates,
                    }
                }
                FeatureKind::BaselineRatio => {
                    let window_seconds = positive("window_seconds", fc.window_seconds)?;
                    let baseline_seconds = positive("baseline_seconds", fc.baseline_seconds)?;
                    if baseline_seconds <= window_seconds {
                        return Err(ferr(format!(
                            "`baseline_seconds` ({baseline_seconds}) must be longer than `window_seconds` ({window_seconds})"
                        )));
                    }
                    Feature::BaselineRatio {
                        field: amount(&fc.field)?,
                        log1p: fc.log1p.unwrap_or(false),
                        window_seconds,
                        baseline_seconds,
                        min_events: fc.min_events.unwrap_or(DEFAULT_MIN_EVENTS),
                    }
                }
                FeatureKind::Age => Feature::Age {
                    cap_seconds: fc.cap_seconds.unwrap_or(u32::MAX as u64).max(1),
                },
                FeatureKind::Distinct => Feature::Distinct {
                    source: category(&fc.field)?,
                    window_seconds: positive("window_seconds", fc.window_seconds)?,
                    max_categories,
                },
                FeatureKind::Rarity => Feature::Rarity {
                    source: category(&fc.field)?,
                },
                FeatureKind::LabelRate => Feature::LabelRate {
                    window_seconds: positive("window_seconds", fc.window_seconds)?,
                },
            };
            let key = match &fc.key {
                None => None,
                Some(k) if Some(k) == self.entity.as_ref() => None,
                Some(k) => {
                    let idx = fields.iter().position(|f| &f.name == k).ok_or_else(|| {
                        ferr(format!("`key` names field `{k}`, which is not declared"))
                    })?;
                    let f = &fields[idx];
                    if f.label || f.ty == FieldType::Float {
                        return Err(ferr(format!(
                            "`key` field `{k}` must be a category, int or bool (not a float or a label)"
                        )));
                    }
                    Some(idx)
                }
            };
            let base = fc
                .name
                .clone()
                .unwrap_or_else(|| match (&fc.field, &fc.key) {
                    (Some(f), _) => format!("{}_{}", fc.kind.name(), f.trim_start_matches('@')),
                    // A label rate has no field: its key tells columns apart.
                    (None, Some(k)) if fc.kind == FeatureKind::LabelRate => {
                        format!("{}_{k}", fc.kind.name())
                    }
                    (None, _) => fc.kind.name().to_owned(),
                });
            let names: Vec<String> = match &feature {
                Feature::HourOfDay | Feature::DayOfWeek => {
                    vec![format!("{base}_sin"), format!("{base}_cos")]
                }
                Feature::Lag { k, .. } => (1..=*k).map(|j| format!("{base}_{j}")).collect(),
                Feature::Window {
                    windows,
                    aggregates,
                    ..
                } => windows
                    .iter()
                    .flat_map(|w| {
                        aggregates
                            .iter()
                            .map(|a| format!("{base}_{}_{}", a.name(), duration_suffix(*w)))
                            .collect::<Vec<_>>()
                    })
                    .collect(),
                _ => vec![base],
            };
            for n in names {
                if columns.contains(&n) {
                    return Err(ferr(format!(
                        "column `{n}` is produced twice; give the feature a distinct `name`"
                    )));
                }
                columns.push(n);
            }
            features.push(feature);
            feature_keys.push(key);
        }
        self.detector.check(&columns).map_err(err)?;
        let bound = |key: &str, v: &Option<String>, default: i64| -> Result<i64, SchemaError> {
            match v {
                None => Ok(default),
                Some(t) => crate::time::parse_rfc3339(t).map_err(|e| err(format!("`{key}`: {e}"))),
            }
        };
        let event_time_bounds = (
            bound(
                "event_time_min",
                &self.event_time_min,
                DEFAULT_EVENT_TIME_BOUNDS.0,
            )?,
            bound(
                "event_time_max",
                &self.event_time_max,
                DEFAULT_EVENT_TIME_BOUNDS.1,
            )?,
        );
        if event_time_bounds.0 >= event_time_bounds.1 {
            return Err(err(
                "`event_time_min` must be before `event_time_max`".to_owned()
            ));
        }
        self.drift.validate().map_err(err)?;
        self.rollout.validate().map_err(err)?;
        self.retrain.validate().map_err(err)?;
        Ok(StreamSchema {
            name: name.to_owned(),
            timestamp: self.timestamp.clone(),
            timestamp_format: self.timestamp_format,
            entity: self.entity.clone(),
            id: self.id.clone(),
            fields,
            features,
            feature_keys,
            columns,
            max_event_bytes: self.max_event_bytes,
            max_entities: self.max_entities,
            entity_ttl_seconds: self.entity_ttl_seconds,
            history: self.history,
            event_time_bounds,
            detector: self.detector.clone(),
            drift: self.drift.clone(),
            rollout: self.rollout.clone(),
            retrain: self.retrain.clone(),
        })
    }
}

#[cfg(test)]
mod tests;
