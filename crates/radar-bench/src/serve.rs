//! Serving against the peer it replaces, in one run on one machine: the
//! replaced system's scoring script as a FastAPI + uvicorn service scoring
//! one event with scikit-learn's IsolationForest (`bench/serve_peer.py`),
//! and `radar up`'s `/score`, driven by the same closed-loop load generator
//! (keep-alive HTTP/1.1, one thread per connection, the same events) at the
//! same concurrency. Then radar's batched ingest end to end: NDJSON batches
//! acknowledged (durable), until the scorer has decided on every one.
//!
//! The ingested events are one live stream continuing the training history
//! (same cards, same density, event time moving on), every event sent once:
//! replaying a short list would send the same ids with event time jumping
//! back, which a real stream does not do and which makes most events
//! anomalous (an alert storm, a different workload). Should a run outlast
//! the stream, it wraps and says how many requests were replays.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use radar_core::synth::transactions::{TransactionSpec, Transactions};
use serde_json::json;

use crate::served::{Deployment, radar_bin, wait_until};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Connections, each a thread sending its next request when the last
    /// is answered.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds each service is driven.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// uvicorn workers of the peer.
    #[arg(long, default_value_t = 2)]
    peer_workers: usize,
    /// Events per NDJSON batch in the ingest run.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 10_000)]
    cardholders: usize,
    /// Paced (open-loop) ingest runs after the closed-loop one, at these
    /// events per second each (comma-separated): the decision p99 at a
    /// rate the scorer can follow, rather than the queue a closed loop
    /// builds in front of it.
    #[arg(long, value_delimiter = ',', default_value = "25000,50000,100000")]
    paced: Vec<f64>,
    /// The radar binary (default: beside this one).
    #[arg(long)]
    radar: Option<PathBuf>,
    /// Distinct live events prepared for the ingest runs (default: enough
    /// for 300,000 events/s in the closed loop and each paced rate, for
    /// `seconds` each).
    #[arg(long)]
    live_events: Option<usize>,
}

/// Request bodies handed out in order to every connection of a run (and
/// across runs): each body is sent once until they run out, then again
/// from the first (counted as replays).
struct Feed<'a> {
    bodies: &'a [Vec<u8>],
    next: std::sync::atomic::AtomicUsize,
}

impl<'a> Feed<'a> {
    fn new(bodies: &'a [Vec<u8>]) -> Feed<'a> {
        Feed {
            bodies,
            next: Default::default(),
        }
    }

    fn take(&self) -> &'a [u8] {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.bodies[i % self.bodies.len()]
    }

    /// Bodies handed out a second time (or more) so far.
    fn replays(&self) -> usize {
        self.next
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(self.bodies.len())
    }
}

/// What one load run measured.
#[derive(Debug, serde::Serialize)]
struct Load {
    requests: u64,
    failed: u64,
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// One keep-alive connection: sends a request, reads the whole answer;
/// its status.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    fn open(port: u16) -> Result<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(64 << 10),
        })
    }

    fn post(&mut self, path: &str, content_type: &str, body: &[u8]) -> Result<u16> {
        // Head and body in one write, as HTTP clients send them (two
        // writes on a no-delay socket are two segments and two wake-ups).
        self.buf.clear();
        write!(
            self.buf,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        self.buf.extend_from_slice(body);
        self.stream.write_all(&self.buf)?;
        self.buf.clear();
        let mut chunk = [0u8; 16 << 10];
        let header_end = loop {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("the server closed the connection");
            }
            self.buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = std::str::from_utf8(&self.buf[..header_end]).context("answer head")?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("no status")?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .context("answers must carry Content-Length")?;
        while self.buf.len() < header_end + length {
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                bail!("the server closed the connection mid-answer");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(status)
    }
}

/// Closed-loop load: `connections` threads taking bodies from `feed` for
/// `seconds`; latencies of every request.
fn load(
    port: u16,
    path: &str,
    content_type: &str,
    feed: &Feed,
    connections: usize,
    seconds: f64,
) -> Result<Load> {
    load_paced(port, path, content_type, feed, connections, seconds, None)
}

/// [`load`], each connection sending at most `per_second` requests a
/// second when given (on schedule: a late request goes at once, the next
/// keeps its time).
fn load_paced(
    port: u16,
    path: &str,
    content_type: &str,
    feed: &Feed,
    connections: usize,
    seconds: f64,
    per_second: Option<f64>,
) -> Result<Load> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let results: Vec<Result<(Vec<u32>, u64)>> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..connections)
            .map(|_| {
                s.spawn(move || -> Result<(Vec<u32>, u64)> {
                    let mut conn = Connection::open(port)?;
                    let mut micros = Vec::new();
                    let mut failed = 0;
                    let mut sent = 0u64;
                    let began = Instant::now();
                    while Instant::now() < deadline {
                        if let Some(rate) = per_second {
                            let due = began + Duration::from_secs_f64(sent as f64 / rate);
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            sent += 1;
                        }
                        let t = Instant::now();
                        let status = conn.post(path, content_type, feed.take())?;
                        micros.push(t.elapsed().as_micros() as u32);
                        if !(200..300).contains(&status) {
                            failed += 1;
                        }
                    }
                    Ok((micros, failed))
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| bail!("a load thread panicked")))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut failed = 0;
    for r in results {
        let (m, f) = r?;
        all.extend(m);
        failed += f;
    }
    all.sort_unstable();
    let q = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .map_or(0.0, |&u| u as f64 / 1000.0)
    };
    Ok(Load {
        requests: all.len() as u64,
        failed,
        requests_per_second: (all.len() as f64 / elapsed).round(),
        p50_ms: q(0.50),
        p99_ms: q(0.99),
    })
}

fn metric(port: u16, name: &str) -> f64 {
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The decision latency's p99 from the histogram's buckets (their upper
/// bound), over what was decided since `before` (bucket counts).
fn histogram_p99(port: u16, before: &[(f64, f64)]) -> Option<f64> {
    let now = buckets(port);
    let delta: Vec<(f64, f64)> = now
        .iter()
        .map(|&(le, n)| {
            let b = before.iter().find(|(l, _)| *l == le).map_or(0.0, |p| p.1);
            (le, n - b)
        })
        .collect();
    let total = delta.last()?.1;
    delta
        .iter()
        .find(|(_, n)| *n >= 0.99 * total)
        .map(|(le, _)| le * 1000.0)
}

fn buckets(port: u16) -> Vec<(f64, f64)> {
    let text = reqwest::blocking::get(format!("http://127.0.0.1:{port}/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default();
    let mut out: Vec<(f64, f64)> = text
        .lines()
        .filter(|l| l.starts_with("radar_decision_latency_seconds_bucket"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

pub fn run(args: Args) -> Result<()> {
    let bin = radar_bin(args.radar.as_deref())?;
    let dir = tempfile::tempdir()?;
    eprintln!("serve: history, capture, train");
    let history = TransactionSpec {
        cardholders: args.cardholders,
        days: HISTORY_DAYS,
        seed: 1,
        ..TransactionSpec::default()
    };
    let deployment =
        Deployment::train(&bin, dir.path(), history.clone(), 4 * args.cardholders, "")?;
    let batches = live_batches(&args, &history)?;
    let singles: Vec<Vec<u8>> = batches
        .iter()
        .flat_map(|b| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()))
        .take(4096)
        .map(<[u8]>::to_vec)
        .collect();

    let port = crate::served::free_port()?;
    let up = deployment.up(&bin, port, &[])?;
    eprintln!("serve: radar /score, {} connections", args.connections);
    let live = Feed::new(&batches);
    let radar_score = load(
        port,
        "/v1/streams/transactions/score",
        "application/json",
        &Feed::new(&singles),
        args.connections,
        args.seconds,
    )?;
    eprintln!("{radar_score:?}");
    eprintln!("serve: radar ingest, batches of {}", args.batch);
    let closed = ingest_run(port, &live, &args, None)?;
    let mut paced = Vec::new();
    for &rate in &args.paced {
        eprintln!("serve: radar ingest paced at {rate} events/s");
        let run = ingest_run(port, &live, &args, Some(rate))?;
        paced.push(json!({
            "target_events_per_second": rate,
            "acknowledged_per_second": (run.acked as f64 / run.sent_for).round(),
            "request_p99_ms": run.load.p99_ms,
            "failed_requests": run.load.failed,
            "decision_p99_ms_bucket_bound": p99_json(run.decision_p99_ms),
            "scorer_behind_at_end_seconds": ((run.decided_by - run.sent_for) * 10.0).round() / 10.0,
            "alert_share": run.alert_share(),
        }));
    }
    let replays = live.replays();
    let clean_exit = up.stop()?;

    eprintln!("serve: the peer, {} uvicorn workers", args.peer_workers);
    let peer_port = crate::served::free_port()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/serve_peer.py");
    let python = std::env::var("RADAR_PEER_PYTHON")
        .context("set RADAR_PEER_PYTHON to a Python with fastapi, uvicorn and scikit-learn (scripts/services.sh exports one)")?;
    let mut peer = Command::new(&python)
        .arg(&script)
        .arg(&deployment.history)
        .arg(peer_port.to_string())
        .arg(args.peer_workers.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", script.display()))?;
    let peer_result = wait_until(peer_port, "/healthz", Duration::from_secs(120)).and_then(|()| {
        load(
            peer_port,
            "/score",
            "application/json",
            &Feed::new(&singles),
            args.connections,
            args.seconds,
        )
    });
    let _ = peer.kill();
    let _ = peer.wait();
    let peer_score = peer_result?;
    eprintln!("{peer_score:?}");
    let versions = Command::new(&python)
        .args(["-c", "import fastapi, uvicorn, sklearn; print(fastapi.__version__, uvicorn.__version__, sklearn.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "serve": {
                "connections": args.connections,
                "seconds": args.seconds,
                "radar_score": radar_score,
                "peer_score": peer_score,
                "peer": format!("FastAPI + uvicorn ({} workers) + scikit-learn IsolationForest (fastapi, uvicorn, sklearn: {versions})", args.peer_workers),
                "score_ratio": radar_score.requests_per_second / peer_score.requests_per_second.max(1e-9),
                "ingest": {
                    "batch": args.batch,
                    "acknowledged_events": closed.acked,
                    "acknowledged_per_second": (closed.acked as f64 / closed.sent_for).round(),
                    "request_p99_ms": closed.load.p99_ms,
                    "failed_requests": closed.load.failed,
                    "end_to_end_events_per_second": (closed.acked as f64 / closed.decided_by).round(),
                    "decision_p99_ms_bucket_bound": p99_json(closed.decision_p99_ms),
                    "alert_share": closed.alert_share(),
                },
                "paced_ingest": paced,
                "live_events": batches.len() * args.batch,
                "replayed_ingest_requests": replays,
                "radar_clean_exit": clean_exit,
            }
        }))?
    );
    Ok(())
}

/// A decision p99 as the bench prints it: the histogram's top bucket is
/// open-ended (past 10 s).
fn p99_json(ms: Option<f64>) -> serde_json::Value {
    match ms {
        Some(ms) if ms.is_finite() => json!(ms),
        Some(_) => json!("over 10000"),
        None => json!(null),
    }
}

/// What one ingest run measured.
struct IngestRun {
    load: Load,
    acked: u64,
    alerts: f64,
    /// Seconds from the first request to the last answer.
    sent_for: f64,
    /// Seconds from the first request until the scorer had decided on
    /// every acknowledged event.
    decided_by: f64,
    decision_p99_ms: Option<f64>,
}

impl IngestRun {
    fn alert_share(&self) -> f64 {
        self.alerts / (self.acked as f64).max(1.0)
    }
}

/// Sends `live`'s next batches for `args.seconds` (closed loop, or paced
/// at `rate` events/s), then waits until the scorer has decided on every
/// acknowledged event.
fn ingest_run(port: u16, live: &Feed, args: &Args, rate: Option<f64>) -> Result<IngestRun> {
    let scored_before = metric(port, "radar_scored_total");
    let alerts_before = metric(port, "radar_alerts_total");
    let buckets_before = buckets(port);
    let started = Instant::now();
    let load = load_paced(
        port,
        "/v1/streams/transactions/events",
        "application/x-ndjson",
        live,
        args.connections,
        args.seconds,
        rate.map(|r| r / args.batch as f64 / args.connections as f64),
    )?;
    let acked = (load.requests - load.failed) * args.batch as u64;
    let sent_for = started.elapsed().as_secs_f64();
    let caught_up_by = Instant::now() + Duration::from_secs(300);
    while metric(port, "radar_scored_total") - scored_before < acked as f64 {
        if Instant::now() > caught_up_by {
            bail!("the scorer did not catch up within 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(IngestRun {
        decided_by: started.elapsed().as_secs_f64(),
        alerts: metric(port, "radar_alerts_total") - alerts_before,
        decision_p99_ms: histogram_p99(port, &buckets_before),
        load,
        acked,
        sent_for,
    })
}

/// Days of history the served model is trained on.
const HISTORY_DAYS: f64 = 3.0;

/// NDJSON batches of distinct live events: the same cards as `history`,
/// from where it ends on, at its density (events per day), as many as
/// `--live-events` says, in whole batches (a last partial one is left out).
fn live_batches(args: &Args, history: &TransactionSpec) -> Result<Vec<Vec<u8>>> {
    let wanted = args
        .live_events
        .unwrap_or_else(|| ((300_000.0 + args.paced.iter().sum::<f64>()) * args.seconds) as usize);
    let history_events = Transactions::new(history.clone()).count().max(1);
    let per_day = history_events as f64 / history.days;
    let live = Transactions::new(TransactionSpec {
        seed: 99,
        start: history.start + (history.days * 86_400e6) as i64,
        // A little longer than `wanted` needs at that density, so the
        // generator's own end never comes first.
        days: 1.1 * wanted as f64 / per_day + 1.0,
        ..history.clone()
    });
    let mut batches = Vec::with_capacity(wanted / args.batch + 1);
    let mut body = String::new();
    let mut in_body = 0;
    for tx in live.take(wanted) {
        tx.write_json(&mut body);
        body.push('\n');
        in_body += 1;
        if in_body == args.batch {
            batches.push(std::mem::take(&mut body).into_bytes());
            in_body = 0;
        }
    }
    if batches.is_empty() {
        bail!(
            "--live-events {wanted} is less than one batch of {}",
            args.batch
        );
    }
    Ok(batches)
}
