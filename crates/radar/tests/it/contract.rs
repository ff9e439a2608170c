//! The API against its own contract: schemathesis (PyPI, found through
//! RADAR_SCHEMATHESIS, installed by `scripts/services.sh`) reads the
//! document a live `radar up` serves at /openapi.json and fuzzes every
//! operation with an admin key: no 5xx, and every answer's status,
//! content type, headers and body as the document says.

use crate::harness::{self, Place};
use radar_core::synth::transactions::TransactionSpec;

#[test]
fn schemathesis_finds_no_server_error_and_no_departure_from_the_document() {
    let Ok(st) = std::env::var("RADAR_SCHEMATHESIS") else {
        if std::env::var_os("RADAR_SKIP_SCHEMATHESIS").is_some() {
            eprintln!("the API contract was NOT checked (RADAR_SKIP_SCHEMATHESIS set)");
            return;
        }
        panic!(
            "set RADAR_SCHEMATHESIS to schemathesis' `st` (scripts/test installs it), or RADAR_SKIP_SCHEMATHESIS=1"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let place = Place::in_dir(dir.path());
    let _live = place.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 300,
            days: 12.0,
            seed: 8,
            ..TransactionSpec::default()
        },
    );
    let key = place.create_key("admin", "schemathesis");
    let client = harness::client();
    let port = harness::free_port();
    let child = place.up(port, &[], None);
    harness::wait_ready(&client, port);
    let report = dir.path().join("schemathesis");
    let out = std::process::Command::new(&st)
        .args([
            "--config-file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml"),
        ])
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(["--max-examples", "40", "--seed", "7"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .env("NO_COLOR", "1")
        // Its cache of findings goes in the test's directory, not the
        // crate's.
        .current_dir(dir.path())
        .output()
        .expect("schemathesis runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    harness::stop(child, None);
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
}
