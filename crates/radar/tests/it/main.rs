//! End-to-end tests of the `radar` binary. One test binary (modules below)
//! so it links once.

mod capture;
mod demo;
mod eval;
mod faults;
mod harness;
mod nab;
mod proxy;
mod streams;
mod up;

use std::process::{Command, Output};

pub fn radar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_radar"))
        .args(args)
        .output()
        .expect("the radar binary runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
