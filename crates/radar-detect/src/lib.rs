//! Detectors, explanations and evaluation metrics. Pure computation: no I/O,
//! no async; parallelism through rayon.

pub mod codec;
pub mod detector;
pub mod drift;
pub mod eif;
pub mod ensemble;
mod error;
pub mod gbdt;
pub mod hst;
pub mod iforest;
pub mod metrics;
pub mod nab;
pub mod normal;
pub mod rcf;
pub mod tail;

pub use detector::{Detector, LearnPolicy, load};
pub use eif::{EifParams, ExtendedIsolationForest};
pub use ensemble::RankEnsemble;
pub use error::DetectError;
pub use gbdt::{Gbdt, GbdtParams};
pub use hst::{HalfSpaceTrees, HstParams};
pub use iforest::{Contamination, IsolationForest, IsolationForestParams, MaxFeatures, MaxSamples};
pub use rcf::{AnomalyGrader, RandomCutForest, RcfParams};
pub use tail::{JointTail, JointTailParams, TailRule};
