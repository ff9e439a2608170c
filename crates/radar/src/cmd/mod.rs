pub mod eval;
pub mod generate;
