pub mod eval;
pub mod eval_stream;
pub mod features;
pub mod generate;
pub mod ops;
