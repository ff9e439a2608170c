//! Command-line forms of detector parameters.

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
}
