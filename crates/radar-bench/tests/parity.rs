//! Isolation Forest ROC-AUC parity with scikit-learn on the small and medium
//! benchmark data sets (the large ones run in the benchmark, not in CI).

use std::path::Path;
use std::process::Command;

#[test]
fn iforest_auc_is_at_parity_with_scikit_learn_on_small_and_medium_sets() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = std::env::var_os("RADAR_DATASETS").is_some()
        || manifest
            .ancestors()
            .any(|d| d.join("shared/datasets/tabular").is_dir());
    if !found {
        if std::env::var_os("RADAR_ALLOW_MISSING_DATASETS").is_some() {
            eprintln!(
                "benchmark data sets not found: parity NOT checked (RADAR_ALLOW_MISSING_DATASETS set)"
            );
            return;
        }
        panic!(
            "benchmark data sets not found: set RADAR_DATASETS (or RADAR_ALLOW_MISSING_DATASETS=1 to skip)"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_radar-bench"))
        .current_dir(manifest)
        .args([
            "iforest-parity",
            "--sets",
            "small,medium",
            "--check",
            "--multiseed",
        ])
        .arg(manifest.join("../../bench/sklearn_multiseed_50.json"))
        .output()
        .expect("radar-bench runs");
    let table = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    // Every small and medium set with a baseline was evaluated.
    assert_eq!(rows.len(), 17, "{table}");
}
