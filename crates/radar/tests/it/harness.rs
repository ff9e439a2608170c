//! What the end-to-end tests of `radar up` share: a stream with history and
//! a champion, the real binary started on a free port, clients that keep
//! count of what was acknowledged, and the final check that every
//! acknowledged event is in the lake exactly once and the alerts are
//! exactly those of one clean pass of the champion over the log.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use radar::config::Config;
use radar_core::features::FeatureEngine;
use radar_core::synth::transactions::{Transaction, TransactionSpec, Transactions};
use radar_registry::Bundle;

use crate::{radar, stderr};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn transactions_config() -> String {
    format!(
        "{}/../../examples/transactions.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Where a test's radar keeps its config and data: `--config` and,
/// unless the config names its storage, `--data-dir`.
pub struct Place {
    pub config: String,
    pub data_dir: Option<String>,
}

impl Place {
    /// The example streams, data under `dir/data`.
    pub fn in_dir(dir: &Path) -> Place {
        Place {
            config: transactions_config(),
            data_dir: Some(dir.join("data").to_str().unwrap().to_owned()),
        }
    }

    /// Makes an API key of `role` here; the key.
    pub fn create_key(&self, role: &str, name: &str) -> String {
        let mut args = vec!["keys", "create", "--role", role, "--name", name];
        let place_args = self.args();
        args.extend(place_args.iter().map(String::as_str));
        let out = radar(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["--config".to_owned(), self.config.clone()];
        if let Some(d) = &self.data_dir {
            a.extend(["--data-dir".to_owned(), d.clone()]);
        }
        a
    }

    pub fn load(&self) -> Config {
        let mut c = Config::load(Some(Path::new(&self.config))).unwrap();
        // As for the binary (`crate::command`): the file's broker, not the
        // environment's.
        let file: Config = toml::from_str(&std::fs::read_to_string(&self.config).unwrap()).unwrap();
        if file.log.kafka.brokers.is_some() {
            c.log.kafka.brokers = file.log.kafka.brokers;
        }
        c.metadata.url = file.metadata.url;
        if let Some(d) = &self.data_dir {
            c.storage.root = d.clone();
        }
        c
    }

    /// Runs a radar command here; it must succeed.
    pub fn run(&self, args: &[&str]) {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(self.args());
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = radar(&refs);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }

    /// Writes history (the first 10 days of `spec`), ingests, captures and
    /// trains a champion on it; returns the live transactions after it.
    pub fn with_history(
        &self,
        dir: &Path,
        spec: TransactionSpec,
    ) -> impl Iterator<Item = Transaction> {
        let split = spec.start + 10 * 86_400_000_000;
        let mut all = Transactions::new(spec).peekable();
        let history = dir.join("history.jsonl");
        let mut text = String::new();
        while let Some(tx) = all.next_if(|t| t.ts < split) {
            tx.write_json(&mut text);
            text.push('\n');
        }
        std::fs::write(&history, text).unwrap();
        self.run(&["ingest", history.to_str().unwrap()]);
        self.run(&["capture", "--until-idle", "0.5"]);
        self.run(&["train", "--promote", "--max-samples", "256"]);
        all
    }

    /// Starts `radar up` on `port` with `extra` arguments; its stderr goes
    /// to `log`.
    pub fn up(&self, port: u16, extra: &[&str], log: Option<&Path>) -> Up {
        let stderr = match log {
            Some(p) => Stdio::from(std::fs::File::create(p).unwrap()),
            None => Stdio::null(),
        };
        Up(Some(
            crate::command()
                .arg("up")
                .args(self.args())
                .args(["--port", &port.to_string()])
                // The checks compare with one pass over everything,
                // unless the test says otherwise.
                .args(if extra.contains(&"--alerts-from") {
                    &[][..]
                } else {
                    &["--alerts-from", "all"][..]
                })
                .args(extra)
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap(),
        ))
    }
}

/// A running `radar up`, killed if the test ends (or panics) without
/// stopping it.
pub struct Up(Option<Child>);

impl Up {
    /// Runs `command`, killed like `radar up` if the test ends first.
    pub fn spawn(command: &mut std::process::Command) -> Up {
        Up(Some(command.spawn().unwrap()))
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn wait_ready(client: &reqwest::blocking::Client, port: u16) {
    wait_readyz(client, port, "become ready", |ok, _| ok);
}

/// Waits until `radar up` serves a model, a sink the test keeps down (a
/// dead webhook, which makes it "degraded") notwithstanding.
pub fn wait_serving(client: &reqwest::blocking::Client, port: u16) {
    wait_readyz(client, port, "start serving", |ok, body| {
        ok || body["status"]
            .as_str()
            .is_some_and(|s| s.starts_with("degraded"))
    });
}

/// Polls `/readyz` for a minute until `done(answered 2xx, body)`.
fn wait_readyz(
    client: &reqwest::blocking::Client,
    port: u16,
    what: &str,
    done: impl Fn(bool, &serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/readyz")).send() {
            let ok = r.status().is_success();
            let body: serde_json::Value = r.json().unwrap_or_default();
            if done(ok, &body) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("radar up did not {what}");
}

/// A batch of live events as NDJSON and their ids.
pub fn batch(live: &mut impl Iterator<Item = Transaction>, n: usize) -> (String, Vec<String>) {
    let mut body = String::new();
    let mut ids = Vec::new();
    for tx in live.take(n) {
        tx.write_json(&mut body);
        body.push('\n');
        ids.push(format!("tx-{:010}", tx.event_id));
    }
    (body, ids)
}

/// What one POST of events got.
#[derive(Debug)]
pub enum Posted {
    Accepted,
    /// 503 with `Retry-After`: nothing stored, send again later.
    RetryLater,
    Failed(String),
}

pub fn post(client: &reqwest::blocking::Client, port: u16, body: &str) -> Posted {
    match client
        .post(format!(
            "http://127.0.0.1:{port}/v1/streams/transactions/events"
        ))
        .header("content-type", "application/x-ndjson")
        .body(body.to_owned())
        .send()
    {
        Ok(r) if r.status().as_u16() == 202 => Posted::Accepted,
        Ok(r) if r.status().as_u16() == 503 => {
            assert!(
                r.headers().contains_key("retry-after"),
                "a 503 says when to retry"
            );
            let text = r.text().unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&text).expect("a JSON error body");
            assert!(v["error"].is_string(), "{text}");
            Posted::RetryLater
        }
        Ok(r) => Posted::Failed(format!("{}: {}", r.status(), r.text().unwrap_or_default())),
        Err(e) => Posted::Failed(e.to_string()),
    }
}

pub fn get_json(
    client: &reqwest::blocking::Client,
    port: u16,
    path: &str,
) -> (u16, serde_json::Value) {
    let r = client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or_default())
}

/// A metric's values (every series of it) on `/metrics`.
pub fn metric(client: &reqwest::blocking::Client, port: u16, name: &str) -> Vec<(String, f64)> {
    let text = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Waits until `/readyz` reports `component` in `state`.
pub fn wait_component(
    client: &reqwest::blocking::Client,
    port: u16,
    component: &str,
    state: &str,
    within: Duration,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, body) = get_json(client, port, "/readyz");
        if body["components"][component]["state"] == state {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{component} never became {state}: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the scorer's lag is 0 on every one of `partitions`.
pub fn wait_caught_up(client: &reqwest::blocking::Client, port: u16, partitions: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lags: Vec<f64> = metric(client, port, "radar_consumer_lag")
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        if lags.len() == partitions && lags.iter().all(|&l| l == 0.0) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the scorer did not catch up: {lags:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGINT, then the exit must be clean (`log`: its stderr, shown if not).
/// Waits (up to two minutes) until the scorer scored `expected` events;
/// how many it scored. A broker's high watermark cannot be trusted for lag
/// (tansu's, NOTES.md): the count is.
pub fn wait_scored(client: &reqwest::blocking::Client, port: u16, expected: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut scored = 0.0;
    while scored < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        scored = metric(client, port, "radar_scored_total")[0].1;
    }
    scored
}

pub fn stop(up: Up, log: Option<&Path>) {
    stop_with(up, libc::SIGINT, log);
}

/// `signal`, then the exit must be clean (`log`: its stderr, shown if not).
pub fn stop_with(mut up: Up, signal: i32, log: Option<&Path>) {
    let mut child = up.0.take().expect("radar up is running");
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    let said = log
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    assert!(
        status.success(),
        "radar up stopped cleanly on signal {signal}: {status}\n{said}"
    );
}

/// Checks, against what clients were told, that every acknowledged event
/// is in the lake exactly once and that the alerts are exactly those of
/// one clean pass of the champion over the lake's events in log order.
/// Prints acknowledged vs found.
pub fn verify(place: &Place, acknowledged: &BTreeSet<String>, scenario: &str) {
    let c = place.load();
    let schema = c.stream(None).unwrap();
    let lake = c.open_lake().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut in_lake: Vec<String> = Vec::new();
    let mut records = Vec::new();
    rt.block_on(async {
        let mut scan = lake.scan(&schema, i64::MIN, i64::MAX).await.unwrap();
        while let Some(rows) = scan.next_file().await.unwrap() {
            for r in rows {
                in_lake.push(r.record.id.as_deref().unwrap().to_owned());
                records.push((r.partition, r.offset, r.record));
            }
        }
    });
    // The log: every acknowledged event once.
    let log = c.open_log().unwrap();
    let mut in_log: std::collections::BTreeMap<String, u32> = Default::default();
    for p in 0..log.partitions(&schema.name).unwrap() {
        // Read until nothing comes: a Kafka-protocol broker's high
        // watermark is not trusted (tansu's lags behind, NOTES.md).
        let (mut at, _) = log.offsets(&schema.name, p).unwrap();
        loop {
            let got = log.read(&schema.name, p, at, 10_000).unwrap();
            let Some(last) = got.last() else { break };
            at = last.offset + 1;
            for s in got {
                let v: serde_json::Value =
                    serde_json::from_slice(&s.record.value).unwrap_or_default();
                if let Some(id) = v["event_id"].as_str() {
                    *in_log.entry(id.to_owned()).or_default() += 1;
                }
            }
        }
    }
    drop(log);
    let wrong: Vec<(&String, u32)> = acknowledged
        .iter()
        .map(|id| (id, in_log.get(id).copied().unwrap_or(0)))
        .filter(|&(_, n)| n != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} acknowledged events not in the log exactly once (id, copies): {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(8)]
    );
    let distinct: BTreeSet<String> = in_lake.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        in_lake.len(),
        "no duplicate rows in the lake"
    );
    assert!(
        acknowledged.is_subset(&distinct),
        "{} acknowledged events missing from the lake (of {}; first missing {:?}, last {:?}; acknowledged from {:?} to {:?})",
        acknowledged.difference(&distinct).count(),
        acknowledged.len(),
        acknowledged.difference(&distinct).next(),
        acknowledged.difference(&distinct).last(),
        acknowledged.first(),
        acknowledged.last()
    );

    let registry = c.open_registry().unwrap();
    let version = registry
        .alias("transactions-iforest", "champion")
        .unwrap()
        .unwrap();
    let mv = registry.version("transactions-iforest", version).unwrap();
    let bundle = Bundle::from_bytes(&rt.block_on(registry.artifact(&mv)).unwrap()).unwrap();
    // One pass in log order, with the scorer's state kept per partition.
    records.sort_by_key(|(p, o, _)| (*p, *o));
    let mut engines: std::collections::BTreeMap<u32, FeatureEngine> = Default::default();
    let mut row = vec![0.0; schema.columns.len()];
    let mut expected = BTreeSet::new();
    for (p, _, r) in &records {
        engines
            .entry(*p)
            .or_insert_with(|| FeatureEngine::new(schema.clone()))
            .process(r, &mut row);
        if bundle.detector.score_row(&row).unwrap() > bundle.threshold {
            expected.insert(r.id.as_deref().unwrap().to_owned());
        }
    }
    let alerts = c.open_alerts().unwrap();
    let got: BTreeSet<String> = alerts.event_ids().unwrap().into_iter().collect();
    let missing: Vec<_> = expected.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(&expected).take(5).collect();
    println!(
        "{scenario}: acknowledged {} events, found {} in the log and {} in the lake ({} rows); alerts {} of {} expected",
        acknowledged.len(),
        acknowledged
            .iter()
            .filter(|id| in_log.contains_key(*id))
            .count(),
        acknowledged.intersection(&distinct).count(),
        in_lake.len(),
        got.len(),
        expected.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "alerts differ from one clean pass: missing {missing:?}, extra {extra:?} ({} vs {})",
        got.len(),
        expected.len()
    );
    assert!(!got.is_empty());
}
