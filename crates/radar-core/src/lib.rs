//! radar's pure core: data types shared by every layer, the deterministic
//! random number generator, and synthetic data. No I/O, no async.

pub mod matrix;
pub mod rng;
pub mod synth;
pub mod tabular;

pub use matrix::{Matrix, MatrixError, MatrixView};
pub use rng::Rng;
