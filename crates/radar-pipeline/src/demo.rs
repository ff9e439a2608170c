//! The pieces of `radar demo`: a bootstrap history of card transactions
//! ingested and captured, live traffic sent through the HTTP ingest
//! endpoint at a rate, and the report of what the detector caught against
//! the generator's labels.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::iter::Peekable;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use radar_core::synth::transactions::{
    FRAUD_KINDS, LabelPolicy, TeamLabel, TransactionSpec, Transactions, team_labels,
};
use radar_lake::capture::{self, CaptureOptions};
use radar_log::Record;
use serde::Serialize;

use crate::config::Config;
use crate::error::{PipelineError, Result};

/// The built-in card-transaction declaration (`examples/transactions.toml`).
pub const DECLARATION: &str = include_str!("../../../examples/transactions.toml");

/// Makes `dir` ready for a demo: a previous demo's data there is removed;
/// a directory holding anything else is refused.
pub fn prepare_dir(dir: &std::path::Path) -> Result<()> {
    let shown = dir.display().to_string();
    if dir.exists() {
        let ours = ["log", "radar.db", "lake"]
            .iter()
            .any(|f| dir.join(f).exists());
        let empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
        if ours {
            std::fs::remove_dir_all(dir).map_err(PipelineError::io(format!(
                "clearing the previous demo in `{shown}`"
            )))?;
        } else if !empty {
            return Err(PipelineError::input(format!(
                "`{shown}` holds other files; give the demo an empty or new --data-dir"
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(PipelineError::io(format!("cannot create `{shown}`")))
}

/// Generates `days` of history from `spec`, appends it to the log and
/// captures it to the lake; returns how many events, and the generator
/// positioned at the live phase. `progress` hears events appended.
pub fn bootstrap(
    config: &Config,
    spec: TransactionSpec,
    days: f64,
    progress: &dyn Fn(u64),
) -> Result<Bootstrap> {
    let schema = config.stream(None)?;
    let seed = spec.seed;
    let mut labels = Vec::new();
    let mut last_ts = spec.start;
    let boot_end = spec.start + (days * 86_400e6) as i64;
    let mut generator = Transactions::new(spec).peekable();
    let log = config.open_log()?;
    log.create_topic(&schema.name, config.log.partitions)?;
    let mut batch = Vec::with_capacity(10_000);
    let mut line = String::new();
    let mut appended = 0usize;
    while let Some(tx) = generator.next_if(|t| t.ts < boot_end) {
        labels.extend(team_labels(&tx, seed, &LabelPolicy::default()));
        last_ts = tx.ts;
        line.clear();
        tx.write_json(&mut line);
        batch.push(Record::new(
            Some(format!("card-{:07}", tx.card).as_bytes()),
            line.clone().into_bytes(),
            radar_core::time::now_micros(),
        ));
        if batch.len() == batch.capacity() {
            log.append(&schema.name, &batch)?;
            appended += batch.len();
            progress(appended as u64);
            batch.clear();
        }
    }
    if !batch.is_empty() {
        log.append(&schema.name, &batch)?;
        appended += batch.len();
    }
    let lake = config.open_lake()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(PipelineError::io("starting the I/O runtime"))?;
    let options = CaptureOptions {
        until_caught_up: true,
        ..CaptureOptions::default()
    };
    capture::run(
        log.as_ref(),
        &lake,
        &schema,
        &schema.name,
        &options,
        &std::sync::atomic::AtomicBool::new(false),
        rt.handle(),
        &crate::labels::Indexing::new(
            &schema,
            config.entity_hasher()?,
            config.open_labels()?,
            std::sync::Arc::new(radar_core::health::Health::default()),
            None,
        ),
    )?;
    Ok(Bootstrap {
        events: appended,
        generator,
        labels,
        last_event_time: last_ts,
        seed,
    })
}

/// The history a demo starts from.
pub struct Bootstrap {
    pub events: usize,
    /// Positioned at the live phase.
    pub generator: Peekable<Transactions>,
    /// What the team will say about the history's events, and when.
    pub labels: Vec<TeamLabel>,
    pub last_event_time: i64,
    pub seed: u64,
}

/// Posts to a labels endpoint the `labels` known at `at` (event time),
/// in batches; returns (recorded, refused).
pub fn post_labels(
    rt: &tokio::runtime::Runtime,
    endpoint: &str,
    labels: &[TeamLabel],
    at: i64,
) -> Result<(u64, u64)> {
    let known: Vec<&TeamLabel> = labels.iter().filter(|l| l.known_at <= at).collect();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let (mut recorded, mut refused) = (0, 0);
        let mut body = String::new();
        for chunk in known.chunks(1000) {
            body.clear();
            for l in chunk {
                l.write_json(&mut body);
                body.push('\n');
            }
            let resp = client
                .post(endpoint)
                .header("content-type", "application/x-ndjson")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| PipelineError::Internal(format!("posting labels: {e}")))?;
            let v: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| PipelineError::Internal(format!("the labels answer: {e}")))?;
            recorded += v["recorded"].as_u64().unwrap_or(0);
            refused += v["refused"].as_u64().unwrap_or(0);
        }
        Ok((recorded, refused))
    })
}

/// Live traffic sent to an ingest endpoint by a task.
pub struct LiveFeed {
    pub sent: Arc<AtomicU64>,
    /// Event id → fraud kind (`None` for legitimate events) of what was
    /// sent.
    labels: Arc<Mutex<HashMap<String, Option<usize>>>>,
    request_ms: Arc<Mutex<Vec<f64>>>,
    team: Arc<Mutex<Vec<TeamLabel>>>,
    last_ts: Arc<std::sync::atomic::AtomicI64>,
    /// The id of the first event sent at or after the event time
    /// [`LiveFeed::start`] was asked to watch for (`u64::MAX` until then).
    pub crossed: Arc<AtomicU64>,
    pub started: Instant,
    task: tokio::task::JoinHandle<(Option<String>, Peekable<Transactions>)>,
}

impl LiveFeed {
    /// Sends `generator`'s transactions to `endpoint` at `rate` events per
    /// second (unbounded when infinite) for `duration`, on `rt`; notes the
    /// first event at or after event time `watch` in [`LiveFeed::crossed`].
    pub fn start(
        rt: &tokio::runtime::Runtime,
        endpoint: String,
        rate: f64,
        duration: Duration,
        generator: Peekable<Transactions>,
        seed: u64,
        watch: Option<i64>,
    ) -> LiveFeed {
        let crossed = Arc::new(AtomicU64::new(u64::MAX));
        let cr = crossed.clone();
        let labels = Arc::new(Mutex::new(HashMap::new()));
        let sent = Arc::new(AtomicU64::new(0));
        let request_ms = Arc::new(Mutex::new(Vec::new()));
        let team = Arc::new(Mutex::new(Vec::new()));
        let last_ts = Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN));
        let started = Instant::now();
        let (l, s, r, tm, lt) = (
            labels.clone(),
            sent.clone(),
            request_ms.clone(),
            team.clone(),
            last_ts.clone(),
        );
        let task = rt.spawn(async move {
            let client = reqwest::Client::new();
            let per_request = if rate.is_finite() {
                (rate / 100.0).ceil().max(1.0) as usize
            } else {
                2000
            };
            let mut generator = generator;
            let mut body = String::new();
            while started.elapsed() < duration {
                if rate.is_finite()
                    && s.load(Ordering::Relaxed) >= (started.elapsed().as_secs_f64() * rate) as u64
                {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                body.clear();
                let mut batch = Vec::with_capacity(per_request);
                let mut said = Vec::new();
                for tx in generator.by_ref().take(per_request) {
                    tx.write_json(&mut body);
                    body.push('\n');
                    batch.push((format!("tx-{:010}", tx.event_id), tx.fraud));
                    if watch.is_some_and(|w| tx.ts >= w) {
                        cr.fetch_min(tx.event_id, Ordering::Relaxed);
                    }
                    said.extend(team_labels(&tx, seed, &LabelPolicy::default()));
                    lt.store(tx.ts, Ordering::Relaxed);
                }
                if batch.is_empty() {
                    return (None, generator);
                }
                if let Ok(mut t) = tm.lock() {
                    t.extend(said);
                }
                if let Ok(mut l) = l.lock() {
                    l.extend(batch.iter().cloned());
                }
                let t = Instant::now();
                match client
                    .post(&endpoint)
                    .header("content-type", "application/x-ndjson")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(resp) if resp.status().is_success() => {
                        s.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        if let Ok(mut m) = r.lock() {
                            m.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    Ok(resp) => {
                        return (
                            Some(format!("ingest answered {}", resp.status())),
                            generator,
                        );
                    }
                    Err(e) => return (Some(format!("ingest request failed: {e}")), generator),
                }
            }
            (None, generator)
        });
        LiveFeed {
            sent,
            labels,
            request_ms,
            team,
            last_ts,
            crossed,
            started,
            task,
        }
    }

    /// Whether it is still sending.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    /// Waits for the task, telling `status` every 5 s; what it did, and
    /// the generator where it stopped.
    pub fn finish(
        self,
        rt: &tokio::runtime::Runtime,
        status: &dyn Fn(u64, f64),
    ) -> Result<(Finished, Peekable<Transactions>)> {
        let mut last = Instant::now();
        while !self.task.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= Duration::from_secs(5) {
                last = Instant::now();
                status(
                    self.sent.load(Ordering::Relaxed),
                    self.started.elapsed().as_secs_f64(),
                );
            }
        }
        let (early, generator) = rt
            .block_on(self.task)
            .map_err(|e| PipelineError::Internal(format!("the live feed panicked: {e}")))?;
        let labels = self
            .labels
            .lock()
            .map_err(|_| PipelineError::Internal("labels lock poisoned".into()))?
            .clone();
        let mut request_ms = self
            .request_ms
            .lock()
            .map_err(|_| PipelineError::Internal("lock poisoned".into()))?
            .clone();
        request_ms.sort_by(f64::total_cmp);
        let team = self
            .team
            .lock()
            .map_err(|_| PipelineError::Internal("lock poisoned".into()))?
            .clone();
        Ok((
            Finished {
                sent: self.sent.load(Ordering::Relaxed),
                seconds: self.started.elapsed().as_secs_f64(),
                labels,
                request_ms,
                team,
                last_event_time: self.last_ts.load(Ordering::Relaxed),
                early,
            },
            generator,
        ))
    }
}

/// What the live feed did.
pub struct Finished {
    pub sent: u64,
    pub seconds: f64,
    pub labels: HashMap<String, Option<usize>>,
    /// Sorted.
    pub request_ms: Vec<f64>,
    /// What the team will say about the events sent, and when.
    pub team: Vec<TeamLabel>,
    pub last_event_time: i64,
    /// Why it stopped before its time, if it did.
    pub early: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct KindReport {
    pub frauds: usize,
    pub caught: usize,
    pub recall: f64,
}

/// Waits until `metrics` counted `n` events scored.
pub fn wait_scored(metrics: &crate::metrics::Metrics, n: u64, within: Duration) -> Result<()> {
    let t = Instant::now();
    while metrics.scored() < n {
        if t.elapsed() > within {
            return Err(PipelineError::Internal(format!(
                "the scorer scored {} of {n} events in {within:?}",
                metrics.scored()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Waits until the scorer serves model version `version`.
pub fn wait_serving(
    metrics: &crate::metrics::Metrics,
    version: i64,
    within: Duration,
) -> Result<()> {
    let t = Instant::now();
    while metrics.model_version.get() != version {
        if t.elapsed() > within {
            return Err(PipelineError::Internal(format!(
                "version {version} was not served within {within:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// How the alerts did on the live events.
#[derive(Debug, Serialize)]
pub struct Caught {
    pub alerts_on_live_events: usize,
    pub frauds_in_live_events: usize,
    pub true_positives: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub recall_by_kind: BTreeMap<String, KindReport>,
}

/// Precision, recall and recall per fraud kind of `alerted` on `labels`.
pub fn caught(labels: &HashMap<String, Option<usize>>, alerted: &HashSet<String>) -> Caught {
    let mut by_kind: BTreeMap<String, KindReport> = BTreeMap::new();
    let (mut tp, mut alerts, mut frauds) = (0, 0, 0);
    for (id, fraud) in labels {
        let hit = alerted.contains(id);
        alerts += hit as usize;
        if let Some(k) = fraud {
            frauds += 1;
            tp += hit as usize;
            let e = by_kind
                .entry(FRAUD_KINDS[*k].to_owned())
                .or_insert(KindReport {
                    frauds: 0,
                    caught: 0,
                    recall: 0.0,
                });
            e.frauds += 1;
            e.caught += hit as usize;
        }
    }
    for k in by_kind.values_mut() {
        k.recall = k.caught as f64 / k.frauds.max(1) as f64;
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (precision, recall) = (ratio(tp, alerts), ratio(tp, frauds));
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    Caught {
        alerts_on_live_events: alerts,
        frauds_in_live_events: frauds,
        true_positives: tp,
        precision,
        recall,
        f1,
        recall_by_kind: by_kind,
    }
}

/// Writes transactions as JSON lines, and their team labels to `labels`;
/// returns (events, fraud events, labels).
pub fn write_transactions(
    spec: TransactionSpec,
    limit: Option<u64>,
    rate: Option<f64>,
    out: &mut dyn std::io::Write,
    mut labels: Option<Box<dyn std::io::Write>>,
) -> std::io::Result<(u64, u64, u64)> {
    let started = Instant::now();
    let seed = spec.seed;
    let policy = LabelPolicy::default();
    let mut line = String::with_capacity(256);
    let (mut written, mut fraud, mut labelled) = (0u64, 0u64, 0u64);
    for tx in Transactions::new(spec) {
        if limit.is_some_and(|l| written >= l) {
            break;
        }
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(written as f64 / rate);
            let now = Instant::now();
            if due > now {
                out.flush()?;
                std::thread::sleep(due - now);
            }
        }
        line.clear();
        tx.write_json(&mut line);
        line.push('\n');
        if let Err(e) = out.write_all(line.as_bytes()) {
            // A closed pipe (`radar generate | head`) ends the stream.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok((written, fraud, labelled));
            }
            return Err(e);
        }
        written += 1;
        fraud += tx.fraud.is_some() as u64;
        if let Some(l) = labels.as_mut() {
            for label in team_labels(&tx, seed, &policy) {
                line.clear();
                label.write_json(&mut line);
                line.push('\n');
                l.write_all(line.as_bytes())?;
                labelled += 1;
            }
        }
    }
    if let Some(mut l) = labels {
        l.flush()?;
    }
    match out.flush() {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok((written, fraud, labelled)),
    }
}
