//! Model (de)serialization inside the checksummed container of
//! [`crate::codec`]. Decoding validates every structural invariant the
//! scoring kernels rely on, so a file that passes cannot make them panic.

use super::{
    Contamination, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples, Trees,
    layout::Layout,
};
use crate::codec::{self, DecodeError, ModelKind, Reader, Writer};
use crate::error::DetectError;

fn invalid(msg: impl Into<String>) -> DecodeError {
    DecodeError::Invalid(msg.into())
}

impl IsolationForest {
    /// Serializes the model into radar's versioned, checksummed format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        let p = &self.params;
        w.u64(p.n_estimators as u64);
        match p.max_samples {
            MaxSamples::Auto => {
                w.u8(0);
                w.u64(0);
            }
            MaxSamples::Count(k) => {
                w.u8(1);
                w.u64(k as u64);
            }
            MaxSamples::Fraction(f) => {
                w.u8(2);
                w.f64(f);
            }
        }
        match p.max_features {
            MaxFeatures::Count(k) => {
                w.u8(1);
                w.u64(k as u64);
            }
            MaxFeatures::Fraction(f) => {
                w.u8(2);
                w.f64(f);
            }
        }
        w.u8(p.bootstrap as u8);
        match p.contamination {
            Contamination::Auto => {
                w.u8(0);
                w.f64(0.0);
            }
            Contamination::Fraction(c) => {
                w.u8(1);
                w.f64(c);
            }
        }
        w.u64(self.seed());
        w.u64(self.max_samples as u64);
        w.u64(self.max_features as u64);
        w.u64(self.n_features as u64);
        w.f64(self.threshold);
        w.u32s(&self.trees.tree_start);
        w.u32s(&self.trees.feature);
        w.f32s(&self.trees.threshold);
        w.u32s(&self.trees.right);
        w.u32s(&self.trees.n_samples);
        codec::seal(ModelKind::IsolationForest, &w.into_bytes())
    }

    /// Reads a model written by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DetectError> {
        let (kind, payload) = codec::open(bytes)?;
        if kind != ModelKind::IsolationForest {
            return Err(DecodeError::WrongKind {
                expected: ModelKind::IsolationForest.name(),
                found: kind.name(),
            }
            .into());
        }
        Ok(decode(payload)?)
    }
}

fn decode(payload: &[u8]) -> Result<IsolationForest, DecodeError> {
    let mut r = Reader::new(payload);
    let n_estimators = r.u64()? as usize;
    let max_samples = match (r.u8()?, r.u64()?) {
        (0, _) => MaxSamples::Auto,
        (1, k) => MaxSamples::Count(k as usize),
        (2, bits) => MaxSamples::Fraction(f64::from_bits(bits)),
        (tag, _) => return Err(invalid(format!("max_samples tag {tag}"))),
    };
    let max_features = match (r.u8()?, r.u64()?) {
        (1, k) => MaxFeatures::Count(k as usize),
        (2, bits) => MaxFeatures::Fraction(f64::from_bits(bits)),
        (tag, _) => return Err(invalid(format!("max_features tag {tag}"))),
    };
    let bootstrap = match r.u8()? {
        0 => false,
        1 => true,
        b => return Err(invalid(format!("bootstrap flag {b}"))),
    };
    let contamination = match (r.u8()?, r.f64()?) {
        (0, _) => Contamination::Auto,
        (1, c) => Contamination::Fraction(c),
        (tag, _) => return Err(invalid(format!("contamination tag {tag}"))),
    };
    let seed = r.u64()?;
    let max_samples_used = r.u64()? as usize;
    let max_features_used = r.u64()? as usize;
    let n_features = r.u64()? as usize;
    let threshold = r.f64()?;
    let trees = Trees {
        tree_start: r.u32s()?,
        feature: r.u32s()?,
        threshold: r.f32s()?,
        right: r.u32s()?,
        n_samples: r.u32s()?,
    };
    r.finish()?;
    if n_features == 0 || n_features >= 1 << 26 {
        return Err(invalid(format!("{n_features} features")));
    }
    if !threshold.is_finite() {
        return Err(invalid("threshold is not finite"));
    }
    if max_samples_used == 0 {
        return Err(invalid("max_samples of 0"));
    }
    validate_trees(&trees, n_features, n_estimators)?;
    let layout = Layout::compile(&trees);
    Ok(IsolationForest {
        params: IsolationForestParams {
            n_estimators,
            max_samples,
            max_features,
            bootstrap,
            contamination,
            random_state: Some(seed),
        },
        max_samples: max_samples_used,
        max_features: max_features_used,
        n_features,
        threshold,
        trees,
        layout,
    })
}

/// Checks that every tree is a well-formed preorder binary tree over valid
/// features, with a bounded depth.
fn validate_trees(
    trees: &Trees,
    n_features: usize,
    n_estimators: usize,
) -> Result<(), DecodeError> {
    let n = trees.feature.len();
    if trees.threshold.len() != n || trees.right.len() != n || trees.n_samples.len() != n {
        return Err(invalid("node arrays differ in length"));
    }
    let starts = &trees.tree_start;
    if starts.len() != n_estimators + 1
        || starts.first() != Some(&0)
        || starts.last() != Some(&(n as u32))
    {
        return Err(invalid("tree offsets do not match the node count"));
    }
    if n_estimators == 0 {
        return Err(invalid("no trees"));
    }
    for t in 0..n_estimators {
        let (lo, hi) = (starts[t] as usize, starts[t + 1] as usize);
        if lo >= hi {
            return Err(invalid(format!("tree {t} is empty")));
        }
        // Walk the tree; a node must be visited exactly once and the walk
        // must cover the tree's range exactly.
        let mut visited = 0usize;
        let mut expected_next = lo;
        let mut stack = vec![(lo, 0u32)];
        while let Some((i, depth)) = stack.pop() {
            if i != expected_next || i >= hi {
                return Err(invalid(format!("tree {t} is not in preorder")));
            }
            expected_next += 1;
            visited += 1;
            if depth > 63 {
                return Err(invalid(format!("tree {t} is deeper than 63")));
            }
            if trees.n_samples[i] == 0 {
                return Err(invalid(format!("tree {t} node {i} holds no samples")));
            }
            let right = trees.right[i] as usize;
            if right == 0 {
                continue;
            }
            if right <= i + 1 || right >= hi {
                return Err(invalid(format!(
                    "tree {t} node {i} has child {right} out of range"
                )));
            }
            if trees.feature[i] as usize >= n_features {
                return Err(invalid(format!(
                    "tree {t} splits on feature {} of {n_features}",
                    trees.feature[i]
                )));
            }
            if trees.threshold[i].is_nan() {
                return Err(invalid(format!("tree {t} node {i} has a NaN threshold")));
            }
            stack.push((right, depth + 1));
            stack.push((i + 1, depth + 1));
        }
        if visited != hi - lo {
            return Err(invalid(format!("tree {t} has unreachable nodes")));
        }
    }
    Ok(())
}
