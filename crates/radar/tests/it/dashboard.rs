//! The dashboard in a real browser: Debian's chromium driven by npm's
//! playwright-core (`tests/browser/dashboard.cjs`; `scripts/services.sh`
//! installs both and exports RADAR_CHROMIUM and RADAR_NODE_MODULES)
//! against a live `radar up` with a trained champion and an admin key.
//! Screenshots of every page are kept in the test's output directory
//! (`$CARGO_TARGET_DIR/dashboard-screenshots`).

use crate::harness::{self, Place};
use radar_core::synth::transactions::TransactionSpec;

#[test]
fn the_dashboard_shows_alerts_takes_verdicts_and_scores_csv_in_a_browser() {
    let (Ok(chromium), Ok(modules)) = (
        std::env::var("RADAR_CHROMIUM"),
        std::env::var("RADAR_NODE_MODULES"),
    ) else {
        if std::env::var_os("RADAR_SKIP_BROWSER").is_some() {
            eprintln!("the dashboard was NOT checked in a browser (RADAR_SKIP_BROWSER set)");
            return;
        }
        panic!(
            "set RADAR_CHROMIUM and RADAR_NODE_MODULES (scripts/services.sh installs chromium and playwright-core), or RADAR_SKIP_BROWSER=1"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let place = Place::in_dir(dir.path());
    let _live = place.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 300,
            days: 12.0,
            seed: 9,
            fraud_rate: 0.03,
            ..TransactionSpec::default()
        },
    );
    // A second version beside the champion, for promote and rollback.
    place.run(&["train", "--max-samples", "128"]);
    let key = place.create_key("admin", "browser");
    // A store of 100,000 alerts (older than any live one), so the pages'
    // first paint is measured against a full store and the feed must
    // page through it.
    {
        let store =
            radar_pipeline::sinks::AlertStore::open(dir.path().join("data").join("alerts.db"))
                .unwrap();
        let old: Vec<radar_pipeline::sinks::Alert> = (0..100_000i64)
            .map(|i| radar_pipeline::sinks::Alert {
                event_id: format!("old-{i}"),
                position: format!("transactions/9/{i}"),
                stream: "transactions".into(),
                entity: Some(format!("card-old-{}", i % 5000)),
                score: 0.61 + (i % 97) as f64 / 1000.0,
                threshold: 0.6,
                model: "transactions-iforest".into(),
                model_version: 1,
                event_time: radar_core::time::format_rfc3339(1_600_000_000_000_000 + i * 1_000_000),
                event_time_us: 1_600_000_000_000_000 + i * 1_000_000,
                decided_at_us: 1_600_000_000_000_000 + i * 1_000_000,
                latency_ms: 1.0,
                contributions: vec![],
            })
            .collect();
        use radar_pipeline::sinks::AlertSink;
        for chunk in old.chunks(10_000) {
            store.deliver(chunk).unwrap();
        }
    }
    let client = harness::client();
    let port = harness::free_port();
    let child = place.up(port, &[], None);
    harness::wait_ready(&client, port);
    harness::wait_caught_up(&client, port, 4);
    let shots = std::path::PathBuf::from(
        std::env::var("CARGO_TARGET_DIR")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../target").into()),
    )
    .join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/dashboard.cjs"
        ))
        .arg(format!("http://127.0.0.1:{port}"))
        .arg(&key)
        .arg(&shots)
        .arg(&chromium)
        .env("NODE_PATH", &modules)
        .output()
        .expect("node runs");
    harness::stop(child, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\nscreenshots in {}", shots.display());
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    // The figure is recorded in BENCHMARKS.md; here only that each page
    // painted at all.
    for page in ["overview", "alerts", "explore", "try", "models"] {
        assert!(
            summary["first_paint_ms"][page].as_f64().is_some(),
            "{page} never painted"
        );
    }
    assert_eq!(summary["csv_rows"], 3);
    assert_eq!(
        summary["holdout_pr_points"], 1,
        "no precision-recall curve drawn"
    );
    assert_eq!(summary["champion_moves"].as_array().map(Vec::len), Some(3));
    for page in ["overview", "alerts", "explore", "try", "models"] {
        assert!(
            shots.join(format!("{page}.png")).is_file(),
            "no screenshot of {page}"
        );
    }
}
