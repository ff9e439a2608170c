//! The `radar` command: wiring of radar's crates into one binary.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod data;
pub mod nab;
pub mod params;
pub mod streams;
