//! The registry exported to a real MLflow tracking server (`mlflow
//! server` from PyPI, started by scripts/test, found through
//! RADAR_MLFLOW_URL), and read back through MLflow's own REST API: runs
//! with params, metrics and the radar run id; registered versions; the
//! champion and challenger aliases. A second export duplicates nothing; an
//! alias radar drops is dropped there too.

use std::time::{Duration, Instant};

use radar_pipeline::retrain::{self, GateOptions};
use radar_pipeline::train::{self, TrainSpec};
use serde_json::{Value, json};

use crate::labels::{DECLARATION, record, stream};

fn server() -> Option<String> {
    let Ok(url) = std::env::var("RADAR_MLFLOW_URL") else {
        if std::env::var_os("RADAR_SKIP_MLFLOW").is_some() {
            eprintln!("no MLflow server: the export was NOT checked (RADAR_SKIP_MLFLOW set)");
            return None;
        }
        panic!("set RADAR_MLFLOW_URL (scripts/test starts mlflow server), or RADAR_SKIP_MLFLOW=1");
    };
    // The server takes a while to come up.
    let start = Instant::now();
    loop {
        let ready =
            reqwest::blocking::get(format!("{url}/health")).is_ok_and(|r| r.status().is_success());
        if ready {
            return Some(url);
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "MLflow at {url} did not become healthy"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn api(url: &str, method: &str, path: &str, body: Value) -> Value {
    let client = reqwest::blocking::Client::new();
    let full = format!("{url}/api/2.0/mlflow/{path}");
    let resp = match method {
        "GET" => {
            let params: Vec<(String, String)> = body
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            client.get(reqwest::Url::parse_with_params(&full, &params).unwrap())
        }
        _ => client.post(&full).json(&body),
    }
    .send()
    .unwrap();
    let status = resp.status();
    let v: Value = resp.json().unwrap();
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

#[test]
fn runs_versions_and_aliases_read_back_through_mlflow() {
    let Some(url) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (config, labels) = stream(dir.path(), DECLARATION);
    record(&config, &labels);
    let schema = config.stream(None).unwrap();
    // A model name of its own: the server is shared by the whole suite.
    let model = format!("mlflow-it-{}", std::process::id());
    let mut spec = TrainSpec::for_stream(&schema);
    spec.model = model.clone();
    spec.holdout = 0.2;
    spec.gbdt.n_trees = 20;
    let gate = GateOptions::default();
    let first = retrain::retrain(&config, &spec, &gate, &train::quiet).unwrap();
    let second = retrain::retrain(&config, &spec, &gate, &train::quiet).unwrap();
    assert_eq!(
        (first.alias.as_deref(), second.alias.as_deref()),
        (Some("champion"), Some("challenger"))
    );
    let registry = config.open_registry().unwrap();

    let exported = radar_pipeline::mlflow::export(&registry, &url).unwrap();
    assert_eq!(exported.versions_created, 2, "{exported:?}");
    let runs = registry.runs(100).unwrap();

    // Runs: found by their radar id, with params, metrics and status.
    let experiment = api(
        &url,
        "GET",
        "experiments/get-by-name",
        json!({"experiment_name": runs[0].experiment}),
    );
    let experiment_id = experiment["experiment"]["experiment_id"].as_str().unwrap();
    for run in &runs {
        let found = api(
            &url,
            "POST",
            "runs/search",
            json!({"experiment_ids": [experiment_id], "filter": format!("tags.`radar.run_id` = '{}'", run.id)}),
        );
        let runs_found = found["runs"].as_array().unwrap();
        assert_eq!(runs_found.len(), 1, "{}", run.id);
        let data = &runs_found[0]["data"];
        assert!(
            data["params"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["key"] == "stream" && p["value"] == "transactions"),
            "{data}"
        );
        assert!(!data["metrics"].as_array().unwrap().is_empty(), "{data}");
        assert_eq!(runs_found[0]["info"]["status"], "FINISHED");
    }

    // Versions and aliases.
    let model_doc = api(&url, "GET", "registered-models/get", json!({"name": model}));
    let aliases: Vec<(String, String)> = model_doc["registered_model"]["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["alias"].as_str().unwrap().to_owned(),
                a["version"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        aliases.contains(&("champion".into(), "1".into())),
        "{aliases:?}"
    );
    assert!(
        aliases.contains(&("challenger".into(), "2".into())),
        "{aliases:?}"
    );

    // Again: nothing doubles. Then radar promotes and drops the
    // challenger; MLflow follows.
    let again = radar_pipeline::mlflow::export(&registry, &url).unwrap();
    assert_eq!(
        (again.runs_created, again.versions_created),
        (0, 0),
        "{again:?}"
    );
    registry
        .set_alias(&model, "champion", second.candidate.version, "test")
        .unwrap();
    registry.remove_alias(&model, "challenger").unwrap();
    let moved = radar_pipeline::mlflow::export(&registry, &url).unwrap();
    assert_eq!(moved.aliases_removed, 1, "{moved:?}");
    let model_doc = api(&url, "GET", "registered-models/get", json!({"name": model}));
    let aliases = model_doc["registered_model"]["aliases"].as_array().unwrap();
    assert_eq!(aliases.len(), 1, "{model_doc}");
    assert_eq!(aliases[0]["alias"], "champion");
    assert_eq!(aliases[0]["version"], "2");
}
