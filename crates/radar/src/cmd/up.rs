//! `radar up`: the pipelines (capture, the scorer, the sinks) of every
//! stream in the config, or of those named, with one HTTP API in front.
//! Ctrl-C drains: the server stops taking requests, capture and the
//! scorers catch up and checkpoint, nothing acknowledged is lost.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use radar_pipeline::pipeline::{self, PipelineOptions};
use radar_pipeline::sinks::webhook::WebhookConfig;
use radar_server::door::{Door, Limits};
use radar_server::http::{Server, ServerOptions};

use super::Place;

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// A stream to serve (repeat for several); default: every stream the
    /// config declares.
    #[arg(long)]
    pub stream: Vec<String>,
    /// The registry model to serve, when one stream is served (default:
    /// the declaration's `detector.model`, else `<stream>-<kind>`).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Serve HTTPS: the certificate chain (PEM, leaf first)…
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// …and its private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Also print each new alert as a JSON line on stdout.
    #[arg(long)]
    pub stdout_alerts: bool,
    /// POST each new alert to this URL.
    #[arg(long)]
    pub webhook: Option<String>,
    /// Alerts waiting for the webhook at most; more are dropped (and
    /// counted in /metrics); every alert stays in the alerts table.
    #[arg(long, default_value_t = 10_000)]
    pub webhook_queue: usize,
    /// How long one alert is retried while the webhook fails, in seconds.
    #[arg(long, default_value_t = 600)]
    pub webhook_retry_seconds: u64,
    /// Also append each new alert to this topic of the event log (a Kafka
    /// topic when the log is Kafka), keyed by event id.
    #[arg(long)]
    pub alerts_topic: Option<String>,
    /// Which events in the log may alert: `start` (those appended after
    /// the scorer first started on this data; older history only builds
    /// state, counted as backfill), `all`, or an RFC 3339 time.
    #[arg(long, default_value = "start")]
    pub alerts_from: String,
    /// Listen beyond loopback without API keys: anyone who reaches the
    /// port may ingest, score and read. For trusted networks only.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// `/metrics` needs a read key too (by default it stays open, like
    /// `/healthz` and `/readyz`).
    #[arg(long)]
    pub metrics_auth: bool,
    /// Most events one request may carry (`/events`, `/score`, `/labels`).
    #[arg(long, default_value_t = radar_server::http::DEFAULT_MAX_EVENTS)]
    pub max_events_per_request: usize,
    /// Requests per second one API key may make (429 with Retry-After
    /// beyond it).
    #[arg(long)]
    pub key_rate_limit: Option<f64>,
    /// Requests one API key may have in flight at once.
    #[arg(long)]
    pub key_concurrency: Option<usize>,
    /// Seconds a connection may take to send its request headers.
    #[arg(long, default_value_t = 10)]
    pub header_timeout_seconds: u64,
    /// Seconds a request may take, body included, before a 408.
    #[arg(long, default_value_t = 60)]
    pub request_timeout_seconds: u64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    /// Export runs, model versions and aliases to this MLflow tracking
    /// server every 30 seconds (and once more when stopping).
    #[arg(long)]
    pub mlflow_url: Option<String>,
    #[command(flatten)]
    pub place: Place,
}

impl UpArgs {
    pub fn options(&self) -> Result<PipelineOptions> {
        let alerts_from = match self.alerts_from.as_str() {
            "start" => None,
            "all" => Some(i64::MIN),
            t => Some(radar_core::time::parse_rfc3339(t).map_err(|e| {
                anyhow::anyhow!("--alerts-from: expected start, all or an RFC 3339 time: {e}")
            })?),
        };
        Ok(PipelineOptions {
            stream: None,
            model: self.model.clone(),
            stdout_alerts: self.stdout_alerts,
            webhook: self.webhook.clone().map(|url| WebhookConfig {
                url,
                queue: self.webhook_queue,
                retry_for: Duration::from_secs(self.webhook_retry_seconds),
            }),
            alerts_topic: self.alerts_topic.clone(),
            alerts_from,
            ..PipelineOptions::default()
        })
    }

    pub fn addr(&self) -> Result<SocketAddr> {
        format!("{}:{}", self.host, self.port)
            .parse()
            .context("--host/--port")
    }
}

pub fn run(args: UpArgs) -> Result<()> {
    let config = args.place.load()?;
    let addr = args.addr()?;
    let keys = config.open_keys()?;
    let has_keys = !keys.active()?.is_empty();
    let loopback = addr.ip().is_loopback();
    if !loopback && !has_keys && !args.insecure_no_auth {
        anyhow::bail!(
            "refusing to listen on {addr} without API keys: anyone who reaches it could ingest events, score them and read alerts and models. Make a key (`radar keys create --role admin --name ops`), listen on 127.0.0.1 (--host), or pass --insecure-no-auth on a trusted network"
        );
    }
    if !loopback && !has_keys {
        tracing::warn!(%addr, "--insecure-no-auth: serving beyond loopback WITHOUT API keys; anyone who reaches this port may ingest, score and read everything");
        eprintln!(
            "WARNING: --insecure-no-auth: {addr} is open to anyone who reaches it (no API keys)"
        );
    }
    if args
        .key_rate_limit
        .is_some_and(|r| !(r > 0.0 && r.is_finite()))
    {
        anyhow::bail!("--key-rate-limit must be a positive number of requests per second");
    }
    if args.key_concurrency == Some(0) || args.max_events_per_request == 0 {
        anyhow::bail!("--key-concurrency and --max-events-per-request must be at least 1");
    }
    let door = Door::new(
        keys,
        loopback || args.insecure_no_auth,
        !args.metrics_auth,
        Limits {
            rate: args.key_rate_limit,
            concurrent: args.key_concurrency,
        },
    )?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            Some(radar_server::http::tls_acceptor(cert, key).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let pipelines = pipeline::start_streams(&config, &args.stream, &args.options()?)?;
    let options = ServerOptions {
        tls,
        max_body_bytes: args.max_body_bytes,
        max_events_per_request: args.max_events_per_request,
        door: Some(door),
        header_timeout: Duration::from_secs(args.header_timeout_seconds.max(1)),
        request_timeout: Duration::from_secs(args.request_timeout_seconds.max(1)),
    };
    let server = match Server::start(&pipelines, addr, options) {
        Ok(s) => s,
        Err(e) => {
            // What started drains before the error is said.
            if let Err(stop) = pipeline::shutdown_all(pipelines) {
                tracing::error!(error = %stop, "stopping the streams");
            }
            return Err(anyhow::Error::new(e).context(format!("cannot listen on {addr}")));
        }
    };
    let names: Vec<String> = pipelines
        .iter()
        .map(|p| format!("`{}`", p.shared.schema.name))
        .collect();
    eprintln!(
        "radar is up on {scheme}://{addr} ({} {}; the dashboard at {scheme}://{addr}/); Ctrl-C or SIGTERM stops it, draining",
        if names.len() == 1 {
            "stream"
        } else {
            "streams"
        },
        names.join(", "),
        addr = server.addr
    );
    let rt = pipelines[0].rt.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let exporter = match &args.mlflow_url {
        Some(url) => {
            radar_pipeline::mlflow::MlflowClient::new(url)?;
            let (registry, url, stop) = (config.open_registry()?, url.clone(), stop.clone());
            Some(std::thread::spawn(move || {
                loop {
                    let stopping = stop.load(std::sync::atomic::Ordering::Relaxed);
                    // A server away is tried again at the next round.
                    match radar_pipeline::mlflow::export(&registry, &url) {
                        Ok(e) => tracing::debug!(?e, "exported to MLflow"),
                        Err(e) => tracing::warn!(error = %e, "MLflow export failed"),
                    }
                    if stopping {
                        return;
                    }
                    let t = std::time::Instant::now();
                    while t.elapsed() < Duration::from_secs(30)
                        && !stop.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }))
        }
        None => None,
    };
    rt.block_on(super::stop_signal());
    eprintln!("stopping: draining capture and the scorers");
    server.stop(&rt);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(t) = exporter {
        let _ = t.join();
    }
    Ok(pipeline::shutdown_all(pipelines)?)
}
