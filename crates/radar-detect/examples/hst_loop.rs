//! Profiling aid: Half-Space Trees score + update (25 trees, height 15,
//! window 250, limits [0, 1]) over a tabular CSV of numbers (header line;
//! a `label` column is dropped), min-max scaled, repeated `PASSES` times.
//! `cargo run --release -p radar-detect --example hst_loop -- FILE [PASSES]`

use std::time::Instant;

use radar_detect::{HalfSpaceTrees, HstParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: hst_loop FILE [PASSES]")?;
    let passes: usize = args.next().map_or(Ok(3), |p| p.parse())?;
    let text = std::fs::read_to_string(&path)?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty file")?.split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != "label")
        .collect();
    let mut rows: Vec<Vec<f64>> = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        rows.push(
            keep.iter()
                .map(|&i| cells[i].trim().parse())
                .collect::<Result<_, _>>()?,
        );
    }
    let d = keep.len();
    for k in 0..d {
        let lo = rows.iter().map(|r| r[k]).fold(f64::INFINITY, f64::min);
        let hi = rows.iter().map(|r| r[k]).fold(f64::NEG_INFINITY, f64::max);
        for r in &mut rows {
            r[k] = if hi > lo {
                (r[k] - lo) / (hi - lo)
            } else {
                0.0
            };
        }
    }
    let params = HstParams {
        limits: Some(vec![(0.0, 1.0); d]),
        ..HstParams::default()
    };
    let mut hst = HalfSpaceTrees::new(params, d)?;
    let start = Instant::now();
    let mut checksum = 0.0;
    for _ in 0..passes {
        for r in &rows {
            checksum += hst.score_and_update(r)?;
        }
    }
    let s = start.elapsed().as_secs_f64();
    let n = rows.len() * passes;
    println!(
        "{n} rows in {s:.2} s: {:.0} rows/s (checksum {checksum:.6})",
        n as f64 / s
    );
    Ok(())
}
