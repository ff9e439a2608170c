//! `radar monitor`: the served model's drift, as a running `radar up`
//! sees it (`GET /v1/streams/{stream}/drift`), for people or as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Where `radar up` listens.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// The stream (default: the one the config declares).
    #[arg(long)]
    pub stream: Option<String>,
    /// The config file naming the stream.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the server's JSON document.
    #[arg(long)]
    pub json: bool,
    /// An API key with the read role, when the server has keys.
    #[arg(long, env = "RADAR_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

pub fn run(args: MonitorArgs) -> Result<()> {
    let stream = match &args.stream {
        Some(s) => s.clone(),
        None => {
            let config = radar_pipeline::Config::load(args.config.as_deref())?;
            config.stream(None)?.name
        }
    };
    let url = format!(
        "{}/v1/streams/{stream}/drift",
        args.url.trim_end_matches('/')
    );
    let mut request = reqwest::blocking::Client::new().get(&url);
    if let Some(key) = &args.api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .with_context(|| format!("GET {url}: the answer is not JSON"))?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {body}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    print!("{}", render(&body));
    Ok(())
}

/// The drift document as a table.
fn render(body: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let f = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.3}"));
    let _ = writeln!(
        out,
        "stream {}: {} events in the current window of {}",
        body["stream"].as_str().unwrap_or("?"),
        body["pending_events"],
        body["options"]["window_events"]
    );
    let latest = &body["latest"];
    if latest.is_null() {
        let _ = writeln!(
            out,
            "no window finished yet (drift needs a model served from the registry)"
        );
        return out;
    }
    let _ = writeln!(
        out,
        "last window ended {} ({} events, model {} v{}): drift {} — {:.0}% of features drifted; alert rate {} (reference expects {})",
        latest["ended_at"].as_str().unwrap_or("?"),
        latest["events"],
        latest["model"].as_str().unwrap_or("?"),
        latest["version"],
        if latest["drift"].as_bool() == Some(true) {
            "YES"
        } else {
            "no"
        },
        100.0 * latest["drifted_share"].as_f64().unwrap_or(0.0),
        f(&latest["alert_rate"]),
        f(&latest["expected_alert_rate"]),
    );
    let _ = writeln!(
        out,
        "\n{:<28} {:>12} {:>8}  drifted",
        "feature", "wasserstein", "psi"
    );
    let columns = latest["features"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&latest["score"]).filter(|s| !s.is_null()));
    for c in columns {
        let _ = writeln!(
            out,
            "{:<28} {:>12} {:>8}  {}",
            c["column"].as_str().unwrap_or("?"),
            f(&c["wasserstein"]),
            f(&c["psi"]),
            if c["drifted"].as_bool() == Some(true) {
                "yes"
            } else {
                ""
            }
        );
    }
    let history = body["history"].as_array().map_or(0, Vec::len);
    let drifted = body["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|w| w["drift"].as_bool() == Some(true))
        .count();
    let _ = writeln!(out, "\n{history} windows kept, {drifted} drifted");
    out
}
