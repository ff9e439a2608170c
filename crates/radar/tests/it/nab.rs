//! `radar eval nab` on a small corpus in NAB's layout, and its errors.

use std::fmt::Write as _;
use std::path::Path;

use crate::{radar, stderr};

/// Two series of a noisy daily cycle, one with a level jump inside its window.
fn write_corpus(dir: &Path) {
    let cat = dir.join("data/synthetic");
    std::fs::create_dir_all(&cat).unwrap();
    for (name, jump) in [("calm.csv", false), ("jump.csv", true)] {
        let mut text = String::from("timestamp,value\n");
        for i in 0..2_000u32 {
            let (day, minute) = (1 + i / 288, (i % 288) * 5);
            let wobble = ((i * 7_919) % 101) as f64 / 101.0;
            let mut v =
                50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + 3.0 * wobble;
            if jump && (1_500..1_520).contains(&i) {
                v += 80.0;
            }
            writeln!(
                text,
                "2015-01-{day:02} {:02}:{:02}:00,{v:.3}",
                minute / 60,
                minute % 60
            )
            .unwrap();
        }
        std::fs::write(cat.join(name), text).unwrap();
    }
    std::fs::write(
        dir.join("windows.json"),
        r#"{"synthetic/calm.csv": [],
            "synthetic/jump.csv": [["2015-01-06 05:00:00.000000", "2015-01-06 11:00:00.000000"]]}"#,
    )
    .unwrap();
}

#[test]
fn scores_a_corpus_and_writes_nab_results() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let data = dir.path().join("data");
    let labels = dir.path().join("windows.json");
    let out_dir = dir.path().join("results");
    let out = radar(&[
        "eval",
        "nab",
        "--data",
        data.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--detector",
        "rcf,hst,iforest",
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = report.as_array().unwrap();
    assert_eq!(results.len(), 3);
    for r in results {
        let profiles = r["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), 3);
        for p in profiles {
            let score = p["score"].as_f64().unwrap();
            assert!((-1000.0..=100.0).contains(&score), "{r}");
        }
    }
    // The jump is obvious: RCF finds it, with no false positive needed.
    let rcf = &results[0]["profiles"][0];
    assert_eq!(rcf["true_positives"], 1, "{rcf}");
    assert!(rcf["score"].as_f64().unwrap() > 50.0, "{rcf}");

    let file = out_dir.join("rcf/synthetic/rcf_jump.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,value,anomaly_score,label"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2_000);
    assert_eq!(rows[0][0], "2015-01-01 00:00:00");
    // Window rows are labelled 1, the rest 0; scores lie in [0, 1].
    let labelled: Vec<usize> = (0..rows.len()).filter(|&i| rows[i][3] == "1").collect();
    assert_eq!(labelled.first(), Some(&(5 * 288 + 60)));
    assert_eq!(labelled.len(), 73);
    assert!(
        rows.iter()
            .all(|r| (0.0..=1.0).contains(&r[2].parse::<f64>().unwrap()))
    );
    assert!(out_dir.join("hst/synthetic/hst_calm.csv").is_file());
    assert!(out_dir.join("iforest/synthetic/iforest_calm.csv").is_file());
}

#[test]
fn bad_corpora_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let data = dir.path().join("data");
    let run = |labels: &str| {
        let path = dir.path().join("labels.json");
        std::fs::write(&path, labels).unwrap();
        let out = radar(&[
            "eval",
            "nab",
            "--data",
            data.to_str().unwrap(),
            "--labels",
            path.to_str().unwrap(),
            "--detector",
            "rcf",
        ]);
        assert!(!out.status.success());
        stderr(&out)
    };
    let not_windows = run("[1, 2]");
    assert!(
        not_windows.contains("not a NAB windows file"),
        "{not_windows}"
    );
    let missing = run(r#"{"synthetic/nope.csv": []}"#);
    assert!(missing.contains("synthetic/nope.csv"), "{missing}");
    let bad_time = run(r#"{"synthetic/jump.csv": [["yesterday", "2015-01-06 11:00:00"]]}"#);
    assert!(bad_time.contains("yesterday"), "{bad_time}");
    let out = radar(&[
        "eval",
        "nab",
        "--data",
        "x",
        "--labels",
        "y",
        "--detector",
        "svm",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("svm"));
}

/// The bug: a real metric series whose timestamps step back once (as
/// production exports do) made `radar eval nab` refuse the whole series.
/// Late points are now processed by the streaming rule (at the series'
/// latest time) and counted.
#[test]
fn regression_a_series_stepping_back_once_was_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_corpus(dir.path());
    let path = dir.path().join("data/synthetic/jump.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    // Two rows swapped: the second steps back five minutes.
    lines.swap(1_001, 1_002);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = radar(&[
        "eval",
        "nab",
        "--data",
        dir.path().join("data").to_str().unwrap(),
        "--labels",
        dir.path().join("windows.json").to_str().unwrap(),
        "--detector",
        "rcf",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rows whose time stepped back: 1"),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report[0]["profiles"][0]["true_positives"], 1, "{report}");
}
