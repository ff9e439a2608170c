use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{radar, stderr};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

#[test]
fn generate_is_deterministic_json_lines() {
    let args = [
        "generate",
        "--cardholders",
        "50",
        "--days",
        "3",
        "--seed",
        "3",
    ];
    let a = radar(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    let b = radar(&args);
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() > 50, "{} events", lines.len());
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["card_id"].as_str().unwrap().starts_with("card-"));
    }
    let limited = radar(&[
        "generate",
        "--cardholders",
        "50",
        "--days",
        "3",
        "--events",
        "7",
    ]);
    assert_eq!(String::from_utf8_lossy(&limited.stdout).lines().count(), 7);
    let bad = radar(&["generate", "--fraud-rate", "2"]);
    assert!(
        stderr(&bad).contains("--fraud-rate must be in [0, 0.5]"),
        "{}",
        stderr(&bad)
    );
    let bad = radar(&["generate", "--start", "soon"]);
    assert!(stderr(&bad).contains("--start"), "{}", stderr(&bad));
}

#[test]
fn generate_paces_output_with_rate() {
    let t0 = std::time::Instant::now();
    let out = radar(&[
        "generate",
        "--cardholders",
        "50",
        "--events",
        "30",
        "--rate",
        "100",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 30);
    // 30 events at 100/s cannot take less than 0.29 s.
    assert!(t0.elapsed().as_secs_f64() >= 0.29, "{:?}", t0.elapsed());
}

#[test]
fn features_backfill_writes_rows_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let out = radar(&[
        "generate",
        "--cardholders",
        "100",
        "--days",
        "5",
        "--out",
        events.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut text = fs::read_to_string(&events).unwrap();
    let good = text.lines().count();
    text.push_str("not json\n{\"event_id\":\"x\",\"ts\":\"2026-01-02T00:00:00Z\",\"card_id\":\"c\",\"amount\":-5,\"merchant_category\":\"fuel\",\"lat\":1,\"lon\":1,\"device\":\"d\"}\n");
    fs::write(&events, text).unwrap();

    let csv = dir.path().join("features.csv");
    let dead = dir.path().join("dead.jsonl");
    let out = radar(&[
        "features",
        "--config",
        example("transactions.toml").to_str().unwrap(),
        "--input",
        events.to_str().unwrap(),
        "--output",
        csv.to_str().unwrap(),
        "--dead-letters",
        dead.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 dead letters (1 not_json, 1 out_of_range)"),
        "{}",
        stderr(&out)
    );
    let rows = fs::read_to_string(&csv).unwrap();
    let mut lines = rows.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("event_id,ts,card_id,log_amount,hour_sin"),
        "{header}"
    );
    assert!(header.ends_with("new_device,label,label_kind"), "{header}");
    assert_eq!(lines.count(), good);
    let dead: Vec<Value> = fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0]["reason"], "not_json");
    assert_eq!(dead[1]["field"], "amount");
    assert_eq!(dead[1]["line"], good + 2);

    let out = radar(&[
        "features",
        "--config",
        example("transactions.toml").to_str().unwrap(),
        "--stream",
        "nope",
        "--input",
        events.to_str().unwrap(),
        "--output",
        csv.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("stream `nope` is not declared"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn stream_eval_reports_recall_per_kind_and_beats_raw_features() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let out = radar(&[
        "generate",
        "--cardholders",
        "3000",
        "--days",
        "20",
        "--out",
        events.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let eval = |config: &str| -> Value {
        let out = radar(&[
            "eval",
            "--config",
            example(config).to_str().unwrap(),
            "--data",
            events.to_str().unwrap(),
            "--contamination",
            "0.01",
            "--min-history",
            "5",
            "--seeds",
            "2",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let declared = eval("transactions.toml");
    let raw = eval("transactions-raw.toml");
    let kinds = declared["recall_by_kind"].as_object().unwrap();
    for kind in [
        "amount_spike",
        "card_testing",
        "impossible_travel",
        "unusual_hour",
        "new_category_device",
        "subtle",
    ] {
        assert!(kinds.contains_key(kind), "{kind} missing from {kinds:?}");
    }
    let ap = |v: &Value| v["average_precision"]["mean"].as_f64().unwrap();
    assert!(
        ap(&declared) > ap(&raw) + 0.1,
        "declared {} vs raw {}",
        ap(&declared),
        ap(&raw)
    );
    assert!(
        kinds["impossible_travel"]["recall"]["mean"]
            .as_f64()
            .unwrap()
            > 0.5
    );
    // The harness evaluates the declared detector, whatever its kind; the
    // forest's flags are refused for another kind.
    let ecod = dir.path().join("ecod.toml");
    let text = std::fs::read_to_string(example("transactions.toml")).unwrap();
    std::fs::write(
        &ecod,
        text.replace(
            "[streams.transactions.fields]",
            "[streams.transactions.detector]\nkind = \"ecod\"\n\n[streams.transactions.fields]",
        ),
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "eval",
            "--config",
            ecod.to_str().unwrap(),
            "--data",
            events.to_str().unwrap(),
            "--seeds",
            "1",
            "--json",
        ];
        a.extend(extra);
        radar(&a)
    };
    let out = args(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["detector"].as_str().unwrap().starts_with("ecod"));
    assert!(ap(&report) > 0.2, "ecod average precision {}", ap(&report));
    let out = args(&["--n-estimators", "50"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the detector is ecod"),
        "{}",
        stderr(&out)
    );
    // A rank-averaging ensemble of an extended forest and ECOD is one
    // declared detector like any other.
    std::fs::write(
        &ecod,
        text.replace(
            "[streams.transactions.fields]",
            "[streams.transactions.detector]\nkind = \"ensemble\"\nmembers = [{ kind = \"extended_isolation_forest\", n_trees = 50 }, { kind = \"ecod\" }]\n\n[streams.transactions.fields]",
        ),
    )
    .unwrap();
    let out = args(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["detector"].as_str().unwrap().starts_with("ensemble"));
    assert!(
        ap(&report) > 0.2,
        "ensemble average precision {}",
        ap(&report)
    );
}
