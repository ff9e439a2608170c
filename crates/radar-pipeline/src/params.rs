//! Command-line forms of detector parameters, and how they override a
//! declaration's.

use radar_core::schema::{DetectorConfig, DetectorKind, NumberOrAuto};
use radar_detect::{Contamination, MaxFeatures, MaxSamples};

use crate::error::{PipelineError, Result};

/// `auto`, an integer count, or a fraction such as `0.5`.
pub fn max_samples(s: &str) -> Result<MaxSamples> {
    if s == "auto" {
        return Ok(MaxSamples::Auto);
    }
    if let Ok(k) = s.parse::<usize>() {
        return Ok(MaxSamples::Count(k));
    }
    match s.parse::<f64>() {
        Ok(f) => Ok(MaxSamples::Fraction(f)),
        Err(_) => Err(PipelineError::input(format!(
            "expected `auto`, a row count or a fraction, found `{s}`"
        ))),
    }
}

/// An integer count or a fraction such as `1.0`.
pub fn max_features(s: &str) -> Result<MaxFeatures> {
    if let Ok(k) = s.parse::<usize>() {
        return Ok(MaxFeatures::Count(k));
    }
    match s.parse::<f64>() {
        Ok(f) => Ok(MaxFeatures::Fraction(f)),
        Err(_) => Err(PipelineError::input(format!(
            "expected a feature count or a fraction, found `{s}`"
        ))),
    }
}

/// `auto` or a fraction in (0, 0.5].
pub fn contamination(s: &str) -> Result<Contamination> {
    if s == "auto" {
        return Ok(Contamination::Auto);
    }
    match s.parse::<f64>() {
        Ok(f) => Ok(Contamination::Fraction(f)),
        Err(_) => Err(PipelineError::input(format!(
            "expected `auto` or a fraction in (0, 0.5], found `{s}`"
        ))),
    }
}

/// Isolation Forest options given on a command line (None: not given).
#[derive(Debug, Clone, Default)]
pub struct ForestOverrides {
    pub n_estimators: Option<usize>,
    pub max_samples: Option<String>,
    pub max_features: Option<String>,
    pub contamination: Option<String>,
    pub bootstrap: bool,
}

fn number_or_auto(s: &str) -> NumberOrAuto {
    match s.parse::<f64>() {
        Ok(v) => NumberOrAuto::Number(v),
        Err(_) => NumberOrAuto::Text(s.to_owned()),
    }
}

impl ForestOverrides {
    fn any(&self) -> bool {
        self.n_estimators.is_some()
            || self.max_samples.is_some()
            || self.max_features.is_some()
            || self.contamination.is_some()
            || self.bootstrap
    }

    /// Writes the given options over `detector`'s; an error when it is not
    /// an Isolation Forest (the options would silently do nothing).
    pub fn apply(&self, detector: &mut DetectorConfig) -> Result<()> {
        let DetectorKind::IsolationForest(o) = &mut detector.kind else {
            if self.any() {
                return Err(PipelineError::input(format!(
                    "--n-estimators, --max-samples, --max-features, --contamination and --bootstrap apply to isolation_forest; the detector is {}",
                    detector.kind.name()
                )));
            }
            return Ok(());
        };
        if let Some(n) = self.n_estimators {
            o.n_estimators = Some(n);
        }
        if let Some(m) = &self.max_samples {
            max_samples(m)?;
            o.max_samples = Some(number_or_auto(m));
        }
        if let Some(f) = &self.max_features {
            o.max_features = Some(match max_features(f)? {
                MaxFeatures::Count(k) => k as f64,
                MaxFeatures::Fraction(f) => f,
            });
        }
        if let Some(c) = &self.contamination {
            contamination(c)?;
            o.contamination = Some(number_or_auto(c));
        }
        if self.bootstrap {
            o.bootstrap = Some(true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(max_samples("auto").unwrap(), MaxSamples::Auto);
        assert_eq!(max_samples("512").unwrap(), MaxSamples::Count(512));
        assert_eq!(max_samples("0.25").unwrap(), MaxSamples::Fraction(0.25));
        assert!(max_samples("many").is_err());
        assert_eq!(max_features("1.0").unwrap(), MaxFeatures::Fraction(1.0));
        assert_eq!(max_features("3").unwrap(), MaxFeatures::Count(3));
        assert_eq!(contamination("auto").unwrap(), Contamination::Auto);
        assert_eq!(contamination("0.1").unwrap(), Contamination::Fraction(0.1));
        assert!(contamination("lots").is_err());
    }

    #[test]
    fn overrides_replace_only_what_was_given_and_only_on_a_forest() {
        let mut d = DetectorConfig::default();
        let given = ForestOverrides {
            max_samples: Some("2048".into()),
            ..ForestOverrides::default()
        };
        given.apply(&mut d).unwrap();
        let DetectorKind::IsolationForest(o) = &d.kind else {
            panic!("kind changed")
        };
        assert_eq!(o.max_samples, Some(NumberOrAuto::Number(2048.0)));
        assert_eq!(o.n_estimators, None);
        let mut ecod: DetectorConfig = toml::from_str("kind = \"ecod\"").unwrap();
        ForestOverrides::default().apply(&mut ecod).unwrap();
        let err = given.apply(&mut ecod).unwrap_err().to_string();
        assert!(err.contains("the detector is ecod"), "{err}");
    }
}
