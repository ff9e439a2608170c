//! Any detector end to end: a model trained under any name and of any
//! kind goes through the registry and is served by `radar up`, which
//! serves exactly the model named.

use std::time::Duration;

use radar_core::synth::transactions::TransactionSpec;

use crate::harness::{self, Place};

#[test]
fn radar_up_serves_the_model_radar_train_registered_of_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place {
        config: harness::transactions_config(),
        data_dir: Some(dir.path().join("data").to_str().unwrap().to_owned()),
    };
    let mut live = place.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 300,
            days: 30.0,
            seed: 21,
            ..TransactionSpec::default()
        },
    );
    let client = harness::client();
    for (kind, model) in [
        ("isolation_forest", "custom"),
        ("half_space_trees", "custom-hst"),
        ("random_cut_forest", "custom-rcf"),
    ] {
        place.run(&["train", "--promote", "--model", model, "--detector", kind]);
        let port = harness::free_port();
        let log = dir.path().join(format!("up-{model}.log"));
        let child = place.up(port, &["--model", model], Some(&log));
        harness::wait_ready(&client, port);
        let (status, ready) = harness::get_json(&client, port, "/readyz");
        assert_eq!(status, 200, "{ready}");
        assert_eq!(ready["model"], model, "{ready}");
        assert_eq!(ready["model_version"], 1, "{ready}");
        let (body, _) = harness::batch(&mut live, 3);
        let r = client
            .post(format!(
                "http://127.0.0.1:{port}/v1/streams/transactions/score"
            ))
            .header("content-type", "application/x-ndjson")
            .body(body)
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap();
        let scored: serde_json::Value = r.json().unwrap();
        assert_eq!(scored["model"], model, "{scored}");
        for result in scored["results"].as_array().unwrap() {
            assert!(result["score"].as_f64().unwrap().is_finite(), "{scored}");
            assert!(!result["contributions"].as_array().unwrap().is_empty());
        }
        harness::stop(child, Some(&log));
    }
    // The default name is still `<stream>-iforest`, untouched by the others.
    let registry = place.load().open_registry().unwrap();
    assert_eq!(
        registry.alias("transactions-iforest", "champion").unwrap(),
        Some(1)
    );
    assert_eq!(registry.alias("custom-rcf", "champion").unwrap(), Some(1));
    let kinds: Vec<String> = registry
        .versions()
        .unwrap()
        .iter()
        .map(|v| v.name.clone())
        .collect();
    for name in ["custom", "custom-hst", "custom-rcf", "transactions-iforest"] {
        assert!(kinds.iter().any(|k| k == name), "{kinds:?}");
    }
}

#[test]
fn a_bad_contamination_fails_before_the_lake_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // No data at all: the spec must fail first, naming the option.
    let out = crate::radar(&[
        "train",
        "--contamination",
        "0.9",
        "--config",
        &harness::transactions_config(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = crate::stderr(&out);
    assert!(err.contains("contamination"), "{err}");
    assert!(!err.contains("lake holds"), "{err}");
}
