//! Export of the registry to an MLflow tracking server over its REST API
//! (Azure ML workspaces speak the same): runs with their params, metrics,
//! tags and dataset snapshot; registered models, their versions (sourced
//! from their runs) and aliases.
//!
//! Idempotent without a ledger: a run is found again by its
//! `radar.run_id` tag, a model version by its `radar.version` tag, and
//! aliases are set to what radar's registry says (aliases radar no longer
//! has are removed). So an export can run once (`radar export mlflow`) or
//! every few seconds from `radar up`, and a reset server is simply filled
//! again.

use std::collections::BTreeMap;

use radar_registry::{ModelVersion, Registry, Run};
use serde_json::{Value, json};

use crate::error::{PipelineError, Result};

/// MLflow's limits per `runs/log-batch` call.
const MAX_PARAMS: usize = 100;
const MAX_METRICS: usize = 1000;
/// Longest param value MLflow keeps.
const MAX_PARAM_VALUE: usize = 6000;

/// What one export did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Exported {
    pub runs_created: usize,
    pub runs_present: usize,
    pub versions_created: usize,
    pub versions_present: usize,
    /// Versions without a run: MLflow wants a run as their source.
    pub versions_skipped: usize,
    pub aliases_set: usize,
    pub aliases_removed: usize,
}

/// A client of one tracking server.
pub struct MlflowClient {
    base: String,
    http: reqwest::blocking::Client,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Io {
        path: what.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl MlflowClient {
    pub fn new(url: &str) -> Result<MlflowClient> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| PipelineError::input(format!("--url `{url}`: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PipelineError::input(format!(
                "--url `{url}`: expected an http(s) URL of an MLflow tracking server"
            )));
        }
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| unavailable("the MLflow client", e))?;
        Ok(MlflowClient {
            base: format!("{}/api/2.0/mlflow", url.trim_end_matches('/')),
            http,
        })
    }

    /// (status, body) of a call; transport failures are errors.
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let url = reqwest::Url::parse_with_params(&format!("{}/{path}", self.base), query)
            .map_err(|e| PipelineError::input(format!("MLflow {path}: {e}")))?;
        let mut req = self.http.request(method, url.clone());
        if let Some(b) = body {
            req = req.json(b);
        }
        // The path is said once, not again inside reqwest's message.
        let resp = req
            .send()
            .map_err(|e| unavailable(url.as_str(), e.without_url()))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .map_err(|e| unavailable(url.as_str(), e.without_url()))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// A call that must succeed.
    fn ok(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, value) = self.call(method, path, query, body)?;
        match status {
            200..=299 => Ok(value),
            // The server is busy or down: the next export may pass.
            500.. | 429 => Err(unavailable(
                &format!("MLflow {path}"),
                format!("answered {status}: {value}"),
            )),
            // It refused what radar sent: retrying the same request cannot
            // help, and the message says what it refused.
            _ => Err(PipelineError::Internal(format!(
                "MLflow {path} refused the request ({status}): {value}"
            ))),
        }
    }

    fn experiment_id(&self, name: &str) -> Result<String> {
        let (status, v) = self.call(
            reqwest::Method::GET,
            "experiments/get-by-name",
            &[("experiment_name", name)],
            None,
        )?;
        if status == 200
            && let Some(id) = v["experiment"]["experiment_id"].as_str()
        {
            return Ok(id.to_owned());
        }
        let v = self.ok(
            reqwest::Method::POST,
            "experiments/create",
            &[],
            Some(&json!({ "name": name })),
        )?;
        v["experiment_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| unavailable("MLflow experiments/create", format!("no id in {v}")))
    }

    /// The MLflow run holding radar run `run_id`, if exported before.
    fn find_run(&self, experiment: &str, run_id: &str) -> Result<Option<String>> {
        let v = self.ok(
            reqwest::Method::POST,
            "runs/search",
            &[],
            Some(&json!({
                "experiment_ids": [experiment],
                "filter": format!("tags.`radar.run_id` = '{run_id}'"),
                "max_results": 1,
            })),
        )?;
        Ok(v["runs"][0]["info"]["run_id"].as_str().map(str::to_owned))
    }

    fn export_run(&self, run: &Run, out: &mut Exported) -> Result<String> {
        let experiment = self.experiment_id(&run.experiment)?;
        if let Some(id) = self.find_run(&experiment, &run.id)? {
            out.runs_present += 1;
            return Ok(id);
        }
        let mut tags = vec![
            json!({"key": "radar.run_id", "value": run.id}),
            json!({"key": "radar.status", "value": run.status}),
            json!({"key": "radar.version", "value": run.radar_version}),
            json!({"key": "mlflow.runName", "value": run.id}),
        ];
        if let Some(s) = &run.dataset_snapshot {
            tags.push(json!({"key": "radar.dataset_snapshot", "value": s}));
        }
        if let Some(h) = &run.config_hash {
            tags.push(json!({"key": "radar.config_hash", "value": h}));
        }
        for (k, v) in flatten(&run.tags) {
            tags.push(json!({"key": k, "value": v}));
        }
        let created = self.ok(
            reqwest::Method::POST,
            "runs/create",
            &[],
            Some(&json!({
                "experiment_id": experiment,
                "start_time": run.started_at / 1000,
                "run_name": run.id,
                "tags": tags,
            })),
        )?;
        let id = created["run"]["info"]["run_id"]
            .as_str()
            .ok_or_else(|| unavailable("MLflow runs/create", format!("no run id in {created}")))?
            .to_owned();
        let time = run.ended_at.unwrap_or(run.started_at) / 1000;
        let params: Vec<Value> = flatten(&run.params)
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": truncate(&v, MAX_PARAM_VALUE)}))
            .collect();
        let metrics: Vec<Value> = numbers(&run.metrics)
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v, "timestamp": time, "step": 0}))
            .collect();
        for chunk in params.chunks(MAX_PARAMS) {
            self.ok(
                reqwest::Method::POST,
                "runs/log-batch",
                &[],
                Some(&json!({"run_id": id, "params": chunk})),
            )?;
        }
        for chunk in metrics.chunks(MAX_METRICS) {
            self.ok(
                reqwest::Method::POST,
                "runs/log-batch",
                &[],
                Some(&json!({"run_id": id, "metrics": chunk})),
            )?;
        }
        let status = match run.status.as_str() {
            "finished" => "FINISHED",
            "running" => "RUNNING",
            _ => "FAILED",
        };
        let mut update = json!({"run_id": id, "status": status});
        if let Some(end) = run.ended_at {
            update["end_time"] = json!(end / 1000);
        }
        self.ok(reqwest::Method::POST, "runs/update", &[], Some(&update))?;
        out.runs_created += 1;
        Ok(id)
    }

    /// radar version → MLflow version of a registered model's versions
    /// exported before.
    fn versions_of(&self, name: &str) -> Result<BTreeMap<i64, String>> {
        let filter = format!("name='{name}'");
        let v = self.ok(
            reqwest::Method::GET,
            "model-versions/search",
            &[("filter", &filter), ("max_results", "1000")],
            None,
        )?;
        let mut out = BTreeMap::new();
        for mv in v["model_versions"].as_array().into_iter().flatten() {
            let radar = mv["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["key"] == "radar.version")
                .and_then(|t| t["value"].as_str())
                .and_then(|s| s.parse::<i64>().ok());
            if let (Some(r), Some(m)) = (radar, mv["version"].as_str()) {
                out.insert(r, m.to_owned());
            }
        }
        Ok(out)
    }

    fn export_model(
        &self,
        name: &str,
        versions: &[&ModelVersion],
        runs: &BTreeMap<String, String>,
        out: &mut Exported,
    ) -> Result<()> {
        let (status, v) = self.call(
            reqwest::Method::POST,
            "registered-models/create",
            &[],
            Some(&json!({"name": name})),
        )?;
        if !(200..300).contains(&status) && v["error_code"] != "RESOURCE_ALREADY_EXISTS" {
            return Err(unavailable(
                "MLflow registered-models/create",
                format!("answered {status}: {v}"),
            ));
        }
        let mut known = self.versions_of(name)?;
        for mv in versions {
            if known.contains_key(&mv.version) {
                out.versions_present += 1;
                continue;
            }
            let Some(run) = mv.run_id.as_ref().and_then(|r| runs.get(r)) else {
                out.versions_skipped += 1;
                continue;
            };
            let created = self.ok(
                reqwest::Method::POST,
                "model-versions/create",
                &[],
                Some(&json!({
                    "name": name,
                    "source": format!("runs:/{run}/model"),
                    "run_id": run,
                    "description": format!("radar {name} v{}, artifact {} (sha256 {})", mv.version, mv.artifact, mv.sha256),
                    "tags": [
                        {"key": "radar.version", "value": mv.version.to_string()},
                        {"key": "radar.sha256", "value": mv.sha256},
                    ],
                })),
            )?;
            if let Some(v) = created["model_version"]["version"].as_str() {
                known.insert(mv.version, v.to_owned());
            }
            out.versions_created += 1;
        }
        // Aliases as radar has them now.
        let mut wanted: BTreeMap<&str, &str> = BTreeMap::new();
        for mv in versions {
            for alias in &mv.aliases {
                if let Some(v) = known.get(&mv.version) {
                    wanted.insert(alias, v);
                }
            }
        }
        for (alias, version) in &wanted {
            self.ok(
                reqwest::Method::POST,
                "registered-models/alias",
                &[],
                Some(&json!({"name": name, "alias": alias, "version": version})),
            )?;
            out.aliases_set += 1;
        }
        let model = self.ok(
            reqwest::Method::GET,
            "registered-models/get",
            &[("name", name)],
            None,
        )?;
        for a in model["registered_model"]["aliases"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(alias) = a["alias"].as_str()
                && !wanted.contains_key(alias)
            {
                self.ok(
                    reqwest::Method::DELETE,
                    "registered-models/alias",
                    &[],
                    Some(&json!({"name": name, "alias": alias})),
                )?;
                out.aliases_removed += 1;
            }
        }
        Ok(())
    }
}

/// Exports every run, model version and alias of `registry`.
pub fn export(registry: &Registry, url: &str) -> Result<Exported> {
    let client = MlflowClient::new(url)?;
    let mut out = Exported::default();
    let mut runs = BTreeMap::new();
    for run in registry.runs(usize::MAX)? {
        let id = client.export_run(&run, &mut out)?;
        runs.insert(run.id.clone(), id);
    }
    let versions = registry.versions()?;
    let mut by_model: BTreeMap<&str, Vec<&ModelVersion>> = BTreeMap::new();
    for v in &versions {
        by_model.entry(v.name.as_str()).or_default().push(v);
    }
    for (name, mut vs) in by_model {
        vs.sort_by_key(|v| v.version);
        client.export_model(name, &vs, &runs, &mut out)?;
    }
    Ok(out)
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Leaves of a JSON document as (dotted path, text); arrays by index.
fn flatten(v: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(&join(prefix, k), x, out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(&join(prefix, &i.to_string()), x, out);
                }
            }
            Value::Null => {}
            Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out.retain(|(k, _)| !k.is_empty());
    out
}

/// The finite numeric leaves of a JSON document.
fn numbers(v: &Value) -> Vec<(String, f64)> {
    flatten(v)
        .into_iter()
        .filter_map(|(k, s)| {
            s.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(|x| (k, x))
        })
        .collect()
}

fn join(prefix: &str, key: &str) -> String {
    // MLflow keys take letters, digits, `_ - . / ` and spaces.
    let key: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-./ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_flatten_to_mlflow_keys() {
        let v = json!({"a": {"b": 1, "c": [2.5, "x"]}, "d": null, "e:f": true, "g": "NaN"});
        assert_eq!(
            flatten(&v),
            vec![
                ("a.b".into(), "1".into()),
                ("a.c.0".into(), "2.5".into()),
                ("a.c.1".into(), "x".into()),
                ("e_f".into(), "true".into()),
                ("g".into(), "NaN".into()),
            ]
        );
        assert_eq!(
            numbers(&v),
            vec![("a.b".into(), 1.0), ("a.c.0".into(), 2.5)]
        );
        assert_eq!(truncate("héllo", 2), "hé");
        assert!(MlflowClient::new("ftp://x").is_err());
        assert!(MlflowClient::new("not a url").is_err());
    }
}
