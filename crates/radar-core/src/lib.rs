//! radar's pure core: the types every layer shares (matrices, stream
//! declarations, records, dead letters), the feature engine, the seeded RNG
//! and synthetic data. No I/O beyond parsing what it is given, no async.

pub mod backoff;
pub mod binary;
pub mod decode;
pub mod error;
pub mod features;
pub mod hash;
pub mod health;
pub mod labels;
pub mod matrix;
pub mod rng;
pub mod schema;
pub mod synth;
pub mod tabular;
pub mod time;

pub use matrix::{Matrix, MatrixError, MatrixView};
pub use rng::Rng;
