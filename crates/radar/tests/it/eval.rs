use std::fs;

use serde_json::Value;

use crate::{radar, stderr};

#[test]
fn eval_on_synthetic_data_finds_the_anomalies() {
    let out = radar(&["eval", "--synthetic", "--seeds", "2", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rows"], 20_000);
    assert_eq!(report["features"], 8);
    assert_eq!(report["seeds"], serde_json::json!([0, 1]));
    let auc = report["roc_auc"]["mean"].as_f64().unwrap();
    assert!(auc > 0.9, "ROC-AUC {auc}");
    assert!(report["score_rows_per_second"]["mean"].as_f64().unwrap() > 0.0);
}

#[test]
fn eval_reads_generated_gzip_and_plain_files_alike() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("data.csv");
    let out = radar(&[
        "generate",
        "--kind",
        "tabular",
        "--out",
        csv.to_str().unwrap(),
        "--rows",
        "3000",
        "--features",
        "4",
        "--anomaly-rate",
        "0.05",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let gz = dir.path().join("data.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &fs::read(&csv).unwrap()).unwrap();
    fs::write(&gz, enc.finish().unwrap()).unwrap();

    let run = |path: &std::path::Path| {
        let out = radar(&[
            "eval",
            "--data",
            path.to_str().unwrap(),
            "--seeds",
            "1",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["roc_auc"]["mean"].as_f64().unwrap()
    };
    let plain = run(&csv);
    assert_eq!(plain, run(&gz));
    assert!(plain > 0.85, "{plain}");

    let table = radar(&["eval", "--data", csv.to_str().unwrap(), "--seeds", "1"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("ROC-AUC"), "{text}");
    assert!(text.contains("3000 rows × 4 features"), "{text}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let out = radar(&["eval", "--data", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot open data file"),
        "{}",
        stderr(&out)
    );

    let bad = dir.path().join("bad.csv");
    fs::write(&bad, "a,b,label\n1,2,0\n3,oops,1\n").unwrap();
    let out = radar(&["eval", "--data", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("line 3, column `b`: expected a number, found `oops`"),
        "{}",
        stderr(&out)
    );

    let out = radar(&["eval", "--data", bad.to_str().unwrap(), "--label", "y"]);
    assert!(
        stderr(&out).contains("label column `y` not found"),
        "{}",
        stderr(&out)
    );

    let good = dir.path().join("good.csv");
    fs::write(&good, "a,label\n1,0\n2,1\n3,0\n").unwrap();
    let out = radar(&[
        "eval",
        "--data",
        good.to_str().unwrap(),
        "--contamination",
        "0.9",
    ]);
    assert!(
        stderr(&out).contains("invalid parameter `contamination`"),
        "{}",
        stderr(&out)
    );
    let out = radar(&[
        "eval",
        "--data",
        good.to_str().unwrap(),
        "--max-samples",
        "lots",
    ]);
    assert!(stderr(&out).contains("--max-samples"), "{}", stderr(&out));

    let one_class = dir.path().join("one.csv");
    fs::write(&one_class, "a,label\n1,0\n2,0\n").unwrap();
    let out = radar(&["eval", "--data", one_class.to_str().unwrap()]);
    assert!(stderr(&out).contains("both classes"), "{}", stderr(&out));
}
