//! One stream's pipeline, started and stopped as a unit: capture (log →
//! lake), the model watch (registry `champion` → the served model), the
//! scorer (log → features → detector → sinks), and the sinks. `radar up`,
//! `radar demo`, the tests and the benchmarks all start it here; the HTTP
//! API is put in front of it by `radar-server`. Several streams in one
//! process ([`start_streams`]) share the I/O runtime and the metrics
//! registry; each keeps its own threads, state and consumer positions.
//!
//! Stopping drains: capture and the scorer catch up with what the log
//! holds, checkpoint and commit, so nothing acknowledged is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use radar_core::schema::Serve;
use radar_lake::capture::{self, CaptureOptions};
use radar_log::EventLog;
use radar_registry::Registry;

use crate::config::Config;
use crate::error::{PipelineError, Result};
use crate::metrics::{MetricFamilies, Metrics};
use crate::scorer::{self, ScorerOptions, Shared};
use crate::sinks::stdout::Stdout;
use crate::sinks::topic::TopicConfig;
use crate::sinks::webhook::WebhookConfig;
use crate::sinks::{AlertSink, AlertStore, Sinks};
use crate::state::Checkpoints;

/// The scorers' consumer group: workers scoring one stream split its
/// partitions.
pub const SCORER_GROUP: &str = "radar-scorer";

/// The health component of the label export.
pub const LABEL_EXPORT: &str = "label_export";

/// How to run a stream's pipeline (beyond `radar.toml`).
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// The stream (the only one declared when `None`).
    pub stream: Option<String>,
    /// The registry model served (default: the declaration's
    /// `detector.model`, else `<stream>-<kind>`).
    pub model: Option<String>,
    /// Alerts as JSON lines on stdout.
    pub stdout_alerts: bool,
    pub webhook: Option<WebhookConfig>,
    /// A log topic for alerts.
    pub alerts_topic: Option<String>,
    /// How often capture rolls files.
    pub capture_every: Duration,
    /// How often the scorer checkpoints.
    pub checkpoint_every: Duration,
    /// Top contributions attached to an alert.
    pub explain_top: usize,
    /// Log append time (UTC µs) before which events only build state
    /// (backfill); `None`: from when the scorer first started.
    pub alerts_from: Option<i64>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            stream: None,
            model: None,
            stdout_alerts: false,
            webhook: None,
            alerts_topic: None,
            capture_every: Duration::from_secs(5),
            checkpoint_every: Duration::from_secs(1),
            explain_top: 3,
            alerts_from: None,
        }
    }
}

/// A running pipeline.
pub struct Pipeline {
    pub shared: Shared,
    pub log: Arc<dyn EventLog>,
    pub alerts: AlertStore,
    pub labels: crate::labels::LabelStore,
    pub registry: Registry,
    /// The registry model the scorer follows (unless an online detector
    /// scores the stream).
    pub model_name: String,
    pub stop: Arc<AtomicBool>,
    /// The I/O runtime (shared by the streams of one process).
    pub rt: Arc<tokio::runtime::Runtime>,
    config_lake: radar_lake::Lake,
    threads: Vec<(&'static str, JoinHandle<Result<()>>)>,
}

impl Pipeline {
    /// Opens what the config names and starts every component. Each
    /// option is checked before anything starts.
    pub fn start(config: &Config, options: &PipelineOptions) -> Result<Pipeline> {
        Pipeline::start_in(config, options, &Process::open(config)?)
    }

    /// Starts the stream `options` names in `process`.
    fn start_in(config: &Config, options: &PipelineOptions, process: &Process) -> Result<Pipeline> {
        let schema = config.stream(options.stream.as_deref())?;
        if let Some(w) = &options.webhook {
            w.validate()?;
        }
        let model_name = options
            .model
            .clone()
            .unwrap_or_else(|| schema.detector.model_name(&schema.name));
        radar_registry::check_model_name(&model_name)?;
        let log = process.log.clone();
        let rt = process.rt.clone();
        log.create_topic(&schema.name, config.log.partitions)?;
        let lake = config.open_lake()?;
        let registry = config.open_registry()?;
        let alerts = config.open_alerts()?;
        let labels = config.open_labels()?;
        let entities = config.entity_hasher()?;
        let local: PathBuf = config.storage.local_dir();
        let metrics = Arc::new(Metrics::in_families(&process.families, &schema.name));
        let partitions = log.partitions(&schema.name)?;
        let shared = Shared::new(schema.clone(), entities, partitions, metrics.clone())?;
        let stop = Arc::new(AtomicBool::new(false));

        let mut sinks: Vec<Box<dyn AlertSink>> = Vec::new();
        if options.stdout_alerts {
            sinks.push(Box::new(Stdout::new(metrics.clone())));
        }
        if let Some(w) = &options.webhook {
            sinks.push(Box::new(w.clone().build(
                metrics.clone(),
                shared.health.clone(),
                rt.handle(),
            )?));
        }
        if let Some(topic) = &options.alerts_topic {
            sinks.push(Box::new(
                TopicConfig {
                    topic: topic.clone(),
                    partitions: config.log.partitions,
                    queue: 10_000,
                }
                .build(log.clone(), metrics.clone(), shared.health.clone())?,
            ));
        }
        let sinks = Arc::new(Sinks::new(alerts.clone(), sinks, metrics.clone()));

        let mut threads = Vec::new();
        let spawn = |name: &'static str, f: Box<dyn FnOnce() -> Result<()> + Send>| {
            // Every line a component logs names its stream (several run in
            // one process).
            let span = tracing::info_span!("stream", stream = %schema.name);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || span.in_scope(f))
                .map(|h| (name, h))
                .map_err(|e| PipelineError::Internal(format!("cannot start {name}: {e}")))
        };
        if schema.detector.serve() == Serve::Registry && schema.retrain.is_enabled() {
            let (config, schema, drift, stop, model, sinks) = (
                config.clone(),
                schema.clone(),
                shared.drift.clone(),
                stop.clone(),
                model_name.clone(),
                sinks.clone(),
            );
            threads.push(spawn(
                "retrain",
                Box::new(move || {
                    let notify = |n: crate::sinks::Notice| sinks.notify(&n);
                    crate::retrain::watch(&config, &schema, &model, Some(&drift), &notify, &stop)
                }),
            )?);
        }
        if schema.detector.serve() == Serve::Registry {
            for (thread, alias) in [
                ("model-watch", "champion"),
                ("challenger-watch", "challenger"),
            ] {
                let (registry, shared, stop, handle, model) = (
                    registry.clone(),
                    shared.clone(),
                    stop.clone(),
                    rt.handle().clone(),
                    model_name.clone(),
                );
                threads.push(spawn(
                    thread,
                    Box::new(move || {
                        scorer::watch_model(registry, model, alias.into(), shared, stop, handle);
                        Ok(())
                    }),
                )?);
            }
        }
        {
            let (log, schema, stop, handle) = (
                log.clone(),
                schema.clone(),
                stop.clone(),
                rt.handle().clone(),
            );
            let observer = crate::labels::Indexing::new(
                &schema,
                entities,
                labels.clone(),
                shared.health.clone(),
                Some(metrics.clone()),
            );
            let capture_options = CaptureOptions {
                max_age: options.capture_every,
                ..CaptureOptions::default()
            };
            threads.push(spawn(
                "capture",
                Box::new(move || {
                    capture::run(
                        log.as_ref(),
                        &lake,
                        &schema,
                        &schema.name,
                        &capture_options,
                        &stop,
                        &handle,
                        &observer,
                    )?;
                    Ok(())
                }),
            )?);
        }
        {
            // Labels go to the lake's labels table, where training reads
            // them, within seconds of being recorded.
            let (labels, lake, stop, handle, stream, health) = (
                labels.clone(),
                config.open_lake()?,
                stop.clone(),
                rt.handle().clone(),
                schema.name.clone(),
                shared.health.clone(),
            );
            threads.push(spawn(
                "label-export",
                Box::new(move || {
                    loop {
                        let stopping = stop.load(Ordering::Relaxed);
                        match labels.export(&lake, &handle, &stream) {
                            Ok(_) => health.ok(LABEL_EXPORT),
                            Err(e) => health.degraded(LABEL_EXPORT, e.to_string()),
                        }
                        if stopping {
                            return Ok(());
                        }
                        let t = std::time::Instant::now();
                        while t.elapsed() < Duration::from_secs(5) && !stop.load(Ordering::Relaxed)
                        {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }),
            )?);
        }
        {
            let (log, shared, stop) = (log.clone(), shared.clone(), stop.clone());
            let scorer_options = ScorerOptions {
                group: SCORER_GROUP.into(),
                checkpoints: Checkpoints::open(
                    &config.storage.root,
                    &config.storage.options(),
                    &schema.name,
                    SCORER_GROUP,
                    rt.handle().clone(),
                )?,
                legacy_checkpoint: Some(local.join("scorer").join(format!("{}.ckpt", schema.name))),
                checkpoint_every: options.checkpoint_every,
                explain_top: options.explain_top,
                labels: Some(labels.clone()),
                registry: Some(registry.clone()),
                alerts_from: options.alerts_from,
            };
            threads.push(spawn(
                "scorer",
                Box::new(move || {
                    scorer::run(log.as_ref(), &shared, &sinks, &scorer_options, &stop)?;
                    Ok(())
                }),
            )?);
        }
        Ok(Pipeline {
            shared,
            log,
            alerts,
            labels,
            registry,
            model_name,
            stop,
            rt,
            config_lake: config.open_lake()?,
            threads,
        })
    }

    /// Writes the labels recorded so far to the lake's labels table now
    /// (the pipeline also does it every few seconds), for a training run
    /// that must see them.
    pub fn export_labels(&self) -> Result<usize> {
        let lake = self.config_lake.clone();
        let mut n = 0;
        loop {
            let k = self
                .labels
                .export(&lake, self.rt.handle(), &self.shared.schema.name)?;
            if k == 0 {
                return Ok(n);
            }
            n += k;
        }
    }

    /// Lets capture and the scorer catch up and checkpoint, then stops
    /// them; the first error any component ended with.
    pub fn shutdown(self) -> Result<()> {
        shutdown_all(vec![self])
    }

    fn join(mut self) -> Result<()> {
        let mut first = None;
        for (name, t) in self.threads.drain(..) {
            let result = match t.join() {
                Ok(r) => r,
                Err(_) => Err(PipelineError::Internal(format!("{name} panicked"))),
            };
            if let Err(e) = result {
                tracing::error!(component = name, error = %e, "stopped with an error");
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// What the pipelines of one process share: the I/O runtime (object
/// storage, webhooks, the HTTP server), the metrics registry, and the
/// event log (the embedded one is opened once per process).
struct Process {
    rt: Arc<tokio::runtime::Runtime>,
    families: Arc<MetricFamilies>,
    log: Arc<dyn EventLog>,
}

impl Process {
    fn open(config: &Config) -> Result<Process> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(PipelineError::io("starting the I/O runtime"))?;
        Ok(Process {
            rt: Arc::new(rt),
            families: Arc::new(MetricFamilies::new()),
            log: config.open_log()?,
        })
    }
}

/// Starts the pipelines of the streams `names` (every declared stream
/// when empty), in the config's order, sharing one I/O runtime and one
/// metrics registry. When one cannot start, those already started are
/// drained and stopped before the error is returned.
pub fn start_streams(
    config: &Config,
    names: &[String],
    options: &PipelineOptions,
) -> Result<Vec<Pipeline>> {
    let names: Vec<String> = if names.is_empty() {
        config.streams.keys().cloned().collect()
    } else {
        names.to_vec()
    };
    if names.is_empty() {
        // The single-stream path says what is missing.
        config.stream(None)?;
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(PipelineError::input(format!("stream `{n}` named twice")));
        }
    }
    if names.len() > 1 && options.model.is_some() {
        return Err(PipelineError::input(
            "a model name (--model) serves one stream; name that stream (--stream) or leave the model to each stream's declaration",
        ));
    }
    let process = Process::open(config)?;
    let mut started = Vec::with_capacity(names.len());
    for name in names {
        let one = PipelineOptions {
            stream: Some(name),
            ..options.clone()
        };
        match Pipeline::start_in(config, &one, &process) {
            Ok(p) => started.push(p),
            Err(e) => {
                if let Err(stop) = shutdown_all(started) {
                    tracing::error!(error = %stop, "stopping the streams already started");
                }
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// Drains and stops `pipelines` together (every one is told to stop
/// before any is waited for); the first error any component ended with.
pub fn shutdown_all(pipelines: Vec<Pipeline>) -> Result<()> {
    for p in &pipelines {
        p.stop.store(true, Ordering::Relaxed);
    }
    let mut first = None;
    for p in pipelines {
        if let Err(e) = p.join() {
            first.get_or_insert(e);
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
