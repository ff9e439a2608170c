//! End-to-end tests of the `radar` binary. One test binary (modules below)
//! so it links once.

mod capture;
mod contract;
mod dashboard;
mod demo;
mod eval;
mod faults;
mod harness;
mod nab;
mod production;
mod proxy;
mod serving;
mod streams;
mod up;

use std::process::{Command, Output};

pub fn radar(args: &[&str]) -> Output {
    command()
        .args(args)
        .output()
        .expect("the radar binary runs")
}

/// The radar binary, configured only by its config file and flags: the
/// broker `scripts/test` exports for the log's own tests must not override
/// a test's `radar.toml`.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_radar"));
    c.env_remove("RADAR_KAFKA_BROKERS");
    c.env_remove("RADAR_METADATA_URL");
    c
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
