//! `radar up`: ingest (HTTP), capture, the scorer and the HTTP API in one
//! process. Ctrl-C drains: the server stops taking requests, capture and
//! the scorer catch up and checkpoint, nothing acknowledged is lost.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwapOption;
use clap::Args;
use radar_core::features::FeatureEngine;
use radar_core::health::Health;
use radar_lake::capture::{self, CaptureOptions};
use radar_server::alerts::{AlertStore, Sinks, Webhook};
use radar_server::http::{AppState, router};
use radar_server::metrics::Metrics;
use radar_server::online::OnlineModel;
use radar_server::scorer::{self, ScorerOptions, Shared};

use super::ops::Place;
use crate::config::Config;

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    #[arg(long)]
    pub stream: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
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
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 16 << 20)]
    pub max_body_bytes: usize,
    #[command(flatten)]
    pub place: Place,
}

/// The running services.
pub struct Running {
    pub addr: SocketAddr,
    pub shared: Shared,
    pub alerts: AlertStore,
    pub stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
    server: Option<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub rt: tokio::runtime::Runtime,
    pub model_name: String,
}

pub fn start(config: &Config, args: &UpArgs) -> Result<Running> {
    let schema = config.stream(args.stream.as_deref())?;
    let log = config.open_log()?;
    log.create_topic(&schema.name, config.log.partitions)?;
    let lake = config.open_lake()?;
    let local = config.storage.local_dir();
    let registry = super::models::registry(config)?;
    let alerts = AlertStore::open(&local.join("alerts.db"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let metrics = Arc::new(Metrics::default());
    let shared = Shared {
        schema: schema.clone(),
        engine: Arc::new(RwLock::new(FeatureEngine::new(schema.clone()))),
        model: Arc::new(ArcSwapOption::empty()),
        online: OnlineModel::from_schema(&schema)
            .map_err(anyhow::Error::msg)?
            .map(|m| Arc::new(Mutex::new(m))),
        metrics: metrics.clone(),
        health: Arc::new(Health::default()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let model_name = format!("{}-iforest", schema.name);
    let mut threads = Vec::new();

    {
        let (registry, shared, stop, handle, model) = (
            registry.clone(),
            shared.clone(),
            stop.clone(),
            rt.handle().clone(),
            model_name.clone(),
        );
        threads.push(
            std::thread::Builder::new()
                .name("model-watch".into())
                .spawn(move || {
                    scorer::watch_model(registry, model, "champion".into(), shared, stop, handle);
                    Ok(())
                })?,
        );
    }
    {
        let (log, lake, schema, stop, handle, health) = (
            log.clone(),
            lake.clone(),
            schema.clone(),
            stop.clone(),
            rt.handle().clone(),
            shared.health.clone(),
        );
        threads.push(
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || {
                    let options = CaptureOptions {
                        max_age: Duration::from_secs(5),
                        ..CaptureOptions::default()
                    };
                    capture::run(
                        log.as_ref(),
                        &lake,
                        &schema,
                        &schema.name,
                        &options,
                        &stop,
                        &handle,
                        &health,
                    )?;
                    Ok(())
                })?,
        );
    }
    {
        let sinks = Sinks::new(
            alerts.clone(),
            args.stdout_alerts,
            args.webhook.clone().map(|url| Webhook {
                url,
                queue: args.webhook_queue,
                retry_for: Duration::from_secs(args.webhook_retry_seconds),
            }),
            metrics.clone(),
            shared.health.clone(),
            rt.handle(),
        );
        let (log, shared, stop) = (log.clone(), shared.clone(), stop.clone());
        let options = ScorerOptions {
            group: "radar-scorer".into(),
            checkpoint: local.join("scorer").join(format!("{}.ckpt", schema.name)),
            checkpoint_every: Duration::from_secs(1),
            explain_top: 3,
        };
        threads.push(
            std::thread::Builder::new()
                .name("scorer".into())
                .spawn(move || {
                    scorer::run(log.as_ref(), &shared, &sinks, &options, &stop)?;
                    Ok(())
                })?,
        );
    }
    let state = AppState {
        log: log.clone(),
        shared: shared.clone(),
        alerts: alerts.clone(),
        registry,
    };
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .context("--host/--port")?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot listen on {addr}"))?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(state, args.max_body_bytes);
    let server = rt.spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Running {
        addr,
        shared,
        alerts,
        stop,
        threads,
        server: Some(server),
        shutdown: Some(tx),
        rt,
        model_name,
    })
}

impl Running {
    /// Stops taking requests, then lets capture and the scorer finish and
    /// checkpoint.
    pub fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = self.rt.block_on(server);
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut first_err = None;
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(anyhow::anyhow!("a service thread panicked"));
                }
                Ok(Ok(())) => {}
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Data and model locations, for reports.
    pub fn where_things_are(config: &Config) -> (PathBuf, String) {
        (config.storage.local_dir(), config.storage.root.clone())
    }
}

pub fn run(args: UpArgs) -> Result<()> {
    let config = args.place.load()?;
    let running = start(&config, &args)?;
    eprintln!(
        "radar is up on http://{} (stream `{}`); Ctrl-C stops it",
        running.addr, running.shared.schema.name
    );
    running.rt.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    eprintln!("stopping: draining capture and the scorer");
    running.shutdown()
}
