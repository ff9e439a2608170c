//! Profiling aid: Random Cut Forest score + update over the values of CSV
//! files (`timestamp,value`), default parameters. Prints rows/s.
//! `cargo run --release -p radar-detect --example rcf_loop -- FILE...`

use std::time::Instant;

use radar_detect::{RandomCutForest, RcfParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut series = Vec::new();
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path)?;
        let values: Vec<f64> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.rsplit(',').next()?.trim().parse().ok())
            .collect();
        series.push(values);
    }
    let rows: usize = series.iter().map(Vec::len).sum();
    let start = Instant::now();
    let mut checksum = 0.0;
    for values in &series {
        let mut f = RandomCutForest::new(RcfParams {
            random_seed: 1,
            ..RcfParams::default()
        })?;
        for &v in values {
            checksum += f.score_and_update(&[v])?;
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "{rows} rows in {s:.2} s: {:.0} rows/s (checksum {checksum:.6})",
        rows as f64 / s
    );
    Ok(())
}
