//! `radar up` under SIGKILL during live ingest: afterwards every
//! acknowledged event is in the lake exactly once, every one was scored,
//! and the alerts are exactly those a single uninterrupted pass raises (no
//! duplicate, no miss, no cold-start burst from lost feature state).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use radar_core::Rng;
use radar_core::synth::transactions::TransactionSpec;

use crate::harness::{self, Place, Posted};

#[test]
fn radar_up_survives_sigkill_during_live_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place {
        config: harness::transactions_config(),
        data_dir: Some(dir.path().join("data").to_str().unwrap().to_owned()),
    };
    // History: ingest, capture, train, promote.
    let mut all = place.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 800,
            days: 40.0,
            seed: 4,
            ..TransactionSpec::default()
        },
    );

    // Live: send batches while killing radar up at random moments.
    let client = harness::client();
    let mut rng = Rng::seed_from_u64(8);
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    for _ in 0..4 {
        let port = harness::free_port();
        let mut child = place.up(port, &[], None);
        harness::wait_ready(&client, port);
        let kill_after = Duration::from_millis(300 + rng.below(1200));
        let started = Instant::now();
        while started.elapsed() < kill_after {
            let (body, ids) = harness::batch(&mut all, 50);
            if let Posted::Accepted = harness::post(&client, port, &body) {
                acknowledged.extend(ids);
            }
        }
        child.kill(); // SIGKILL
    }
    assert!(
        acknowledged.len() > 500,
        "{} events acknowledged",
        acknowledged.len()
    );

    // A last run catches up; then a graceful stop (SIGINT).
    let port = harness::free_port();
    let child = place.up(port, &[], None);
    harness::wait_ready(&client, port);
    // Caught up: every partition's lag reads 0 on /metrics.
    harness::wait_caught_up(&client, port, 4);
    // Capture flushes every few seconds; give it one roll.
    std::thread::sleep(Duration::from_secs(6));
    harness::stop(child, None);

    // Every acknowledged event is in the lake exactly once; alerts = one
    // uninterrupted pass of the champion over the log.
    harness::verify(&place, &acknowledged, "sigkill");
}

/// `radar up` told to stop with SIGTERM (what Kubernetes, Docker and
/// systemd send) drains before it exits: sent while the scorer is still
/// behind, it exits cleanly, and with no restart every acknowledged event
/// is in the lake once and scored, the alerts those of one clean pass.
#[test]
fn sigterm_drains_capture_and_the_scorer_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place {
        config: harness::transactions_config(),
        data_dir: Some(dir.path().join("data").to_str().unwrap().to_owned()),
    };
    let mut all = place.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 500,
            days: 30.0,
            seed: 12,
            ..TransactionSpec::default()
        },
    );
    let client = harness::client();
    let port = harness::free_port();
    let log = dir.path().join("up.log");
    let child = place.up(port, &[], Some(&log));
    harness::wait_ready(&client, port);
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let (body, ids) = harness::batch(&mut all, 200);
        if let Posted::Accepted = harness::post(&client, port, &body) {
            acknowledged.extend(ids);
        }
    }
    assert!(acknowledged.len() > 500, "{}", acknowledged.len());
    // At once, with events still unscored and capture's file still open.
    harness::stop_with(child, libc::SIGTERM, Some(&log));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("stopping: draining"), "{said}");
    harness::verify(&place, &acknowledged, "sigterm");
}

/// Labels posted to `radar up` are durable once answered: SIGKILLed at
/// random moments while labels pour in, every label it accepted is in the
/// labels table afterwards, once, and reaches the lake's labels table.
#[test]
fn accepted_labels_survive_sigkill_of_radar_up() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place {
        config: harness::transactions_config(),
        data_dir: Some(dir.path().join("data").to_str().unwrap().to_owned()),
    };
    drop(place.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 300,
            days: 20.0,
            seed: 9,
            ..TransactionSpec::default()
        },
    ));
    // The history's event ids (captured, so labels may name them).
    let ids: Vec<String> = std::fs::read_to_string(dir.path().join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let client = harness::client();
    let mut rng = Rng::seed_from_u64(2);
    let mut accepted: BTreeSet<String> = BTreeSet::new();
    let mut next = 0;
    for _ in 0..3 {
        let port = harness::free_port();
        let mut child = place.up(port, &[], None);
        harness::wait_ready(&client, port);
        let kill_after = Duration::from_millis(200 + rng.below(800));
        let started = Instant::now();
        while started.elapsed() < kill_after && next + 20 <= ids.len() {
            let batch = &ids[next..next + 20];
            next += 20;
            let body: String = batch
                .iter()
                .map(|id| {
                    format!(
                        "{{\"event_id\":\"{id}\",\"label\":\"fraud\",\"source\":\"analyst\"}}\n"
                    )
                })
                .collect();
            let Ok(r) = client
                .post(format!("http://127.0.0.1:{port}/v1/labels"))
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
            else {
                continue;
            };
            if r.status().as_u16() == 201 {
                let v: serde_json::Value = r.json().unwrap();
                for item in v["results"].as_array().unwrap() {
                    assert_eq!(item["status"], "accepted", "{v}");
                    accepted.insert(item["event_id"].as_str().unwrap().to_owned());
                }
            }
        }
        child.kill(); // SIGKILL
    }
    assert!(accepted.len() >= 40, "{} labels accepted", accepted.len());
    // A last run exports what is left to the lake, then stops cleanly.
    let port = harness::free_port();
    let child = place.up(port, &[], None);
    harness::wait_ready(&client, port);
    std::thread::sleep(Duration::from_secs(6));
    harness::stop(child, None);
    let config = place.load();
    let stored: Vec<String> = config
        .open_labels()
        .unwrap()
        .list("transactions", None, 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| r.label.event_id)
        .collect();
    let distinct: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(distinct.len(), stored.len(), "each label stored once");
    assert!(accepted.is_subset(&distinct), "an accepted label was lost");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let in_lake: BTreeSet<String> = rt
        .block_on(config.open_lake().unwrap().labels("transactions"))
        .unwrap()
        .into_iter()
        .map(|r| r.label.event_id)
        .collect();
    assert_eq!(in_lake, distinct, "the lake holds every stored label");
    println!(
        "labels under SIGKILL: {} accepted, {} stored, {} in the lake",
        accepted.len(),
        distinct.len(),
        in_lake.len()
    );
}

/// History in the log before `radar up` first starts builds the scorer's
/// state without alerting (counted as backfill); events sent after it
/// started alert; a restart does not move that point.
#[test]
fn history_builds_state_without_alerting_and_live_events_alert_even_under_a_reused_id() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place {
        config: harness::transactions_config(),
        data_dir: Some(dir.path().join("data").to_str().unwrap().to_owned()),
    };
    let mut live = place.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 800,
            days: 30.0,
            seed: 6,
            fraud_rate: 0.03,
            ..TransactionSpec::default()
        },
    );
    let client = harness::client();
    let port = harness::free_port();
    let child = place.up(port, &["--alerts-from", "start"], None);
    harness::wait_ready(&client, port);
    harness::wait_caught_up(&client, port, 4);
    let backfill = harness::metric(&client, port, "radar_backfill_events_total")[0].1;
    assert!(backfill > 5_000.0, "backfill {backfill}");
    assert_eq!(
        harness::metric(&client, port, "radar_alerts_total")[0].1,
        0.0,
        "no alert on history"
    );
    // The second half reuses one client-chosen event id: alerts are
    // keyed by the event's place in the log, so reuse cannot suppress
    // them (an id-keyed store would keep one).
    let mut sent = 0;
    while sent < 3000 {
        let (mut body, ids) = harness::batch(&mut live, 100);
        if sent >= 1500 {
            for id in ids {
                body = body.replace(&id, "tx-reused");
            }
        }
        assert!(matches!(
            harness::post(&client, port, &body),
            Posted::Accepted
        ));
        sent += 100;
    }
    harness::wait_caught_up(&client, port, 4);
    let alerts = harness::metric(&client, port, "radar_alerts_total")[0].1;
    assert!(alerts > 0.0, "live events alert");
    harness::stop(child, None);
    // Restarted, the point stays: nothing old alerts, nothing is redone.
    let port = harness::free_port();
    let child = place.up(port, &["--alerts-from", "start"], None);
    harness::wait_ready(&client, port);
    harness::wait_caught_up(&client, port, 4);
    assert_eq!(
        harness::metric(&client, port, "radar_backfill_events_total")[0].1,
        0.0
    );
    harness::stop(child, None);
    let stored = radar_pipeline::sinks::AlertStore::open(dir.path().join("data").join("alerts.db"))
        .unwrap()
        .event_ids()
        .unwrap();
    assert_eq!(stored.len() as f64, alerts);
    let reused = stored.iter().filter(|id| *id == "tx-reused").count();
    assert!(reused > 1, "{reused} alerts under the reused id");
}

/// Beyond loopback, `radar up` refuses to start without API keys unless
/// told the network is trusted.
#[test]
fn off_loopback_bind_without_keys_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = crate::radar(&[
        "up",
        "--config",
        &harness::transactions_config(),
        "--data-dir",
        data.to_str().unwrap(),
        "--host",
        "0.0.0.0",
        "--port",
        &harness::free_port().to_string(),
    ]);
    assert!(!out.status.success());
    let err = crate::stderr(&out);
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    assert!(err.contains("radar keys create"), "{err}");
}

/// A half-sent request (headers that never end, a body that never comes)
/// does not hold a connection open: the headers are cut off at the
/// header timeout, the body answered 408 at the request timeout.
#[test]
fn slow_requests_are_cut_off() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let port = harness::free_port();
    let mut child = crate::command()
        .args([
            "up",
            "--config",
            &harness::transactions_config(),
            "--data-dir",
            dir.path().join("data").to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--header-timeout-seconds",
            "1",
            "--request-timeout-seconds",
            "2",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = harness::client();
    let t = Instant::now();
    while client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .is_err()
    {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "radar up did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Headers that never end: the connection closes.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /v1/streams/transactions/events HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "held {:?}",
        t.elapsed()
    );
    // A body promised and never sent: 408.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"POST /v1/streams/transactions/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let _ = child.kill();
    let _ = child.wait();
}

/// HTTPS from PEM files: a client that trusts the certificate is served;
/// plain HTTP on the same port is not; a key that does not match the
/// certificate stops `radar up` before it listens, naming the flags.
#[test]
fn tls_from_certificate_and_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let openssl = |key_out: &std::path::Path, cert_out: &std::path::Path| {
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // A server's certificate, not a CA's (webpki refuses a CA
            // certificate as the end entity).
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(key_out)
            .arg("-out")
            .arg(cert_out)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs")
            .success();
        assert!(ok, "openssl made no certificate");
    };
    openssl(&key, &cert);
    let place = Place {
        config: harness::transactions_config(),
        data_dir: Some(dir.path().join("data").to_str().unwrap().to_owned()),
    };
    let port = harness::free_port();
    let tls_args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let child = place.up(port, &tls_args, None);
    let trusted = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap()])
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/healthz");
    let mut answered = None;
    let mut last_error = String::new();
    for _ in 0..150 {
        match trusted.get(&url).send() {
            Ok(r) => {
                answered = Some(r.status().as_u16());
                break;
            }
            Err(e) => last_error = format!("{e:?}"),
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(answered, Some(200), "HTTPS /healthz: {last_error}");
    let plain = harness::client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send();
    assert!(
        plain.map_or(true, |r| !r.status().is_success()),
        "plain HTTP must not be served on a TLS port"
    );
    let untrusting = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(
        untrusting.get(&url).send().is_err(),
        "an unknown certificate is refused by default clients"
    );
    harness::stop(child, None);
    // Another pair's key: refused at start.
    let (other_cert, other_key) = (dir.path().join("other.pem"), dir.path().join("other.key"));
    openssl(&other_key, &other_cert);
    let out = crate::radar(&[
        "up",
        "--config",
        &place.config,
        "--data-dir",
        place.data_dir.as_deref().unwrap(),
        "--port",
        &harness::free_port().to_string(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        other_key.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = crate::stderr(&out);
    assert!(
        err.contains("--tls-cert") && err.contains("--tls-key"),
        "{err}"
    );
}

/// `radar up` without `--stream` serves every stream of its config: one
/// API routing by stream, each stream its own scorer and alerts, one
/// metrics exposition with a series per stream; it drains both on stop.
#[test]
fn up_serves_every_stream_of_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    // The transactions' champion is trained with the one-stream example;
    // the served config adds a stream scored by an online detector.
    let one = Place {
        config: harness::transactions_config(),
        data_dir: Some(data.clone()),
    };
    let mut live = one.with_history(
        dir.path(),
        TransactionSpec {
            cardholders: 300,
            days: 16.0,
            seed: 9,
            ..TransactionSpec::default()
        },
    );
    let config = dir.path().join("radar.toml");
    std::fs::write(
        &config,
        std::fs::read_to_string(harness::transactions_config()).unwrap()
            + r#"
[streams.metrics]
timestamp = "timestamp"
[streams.metrics.fields]
value = { type = "float" }
[[streams.metrics.features]]
kind = "raw"
field = "value"
[[streams.metrics.features]]
kind = "lag"
field = "value"
k = 3
[streams.metrics.detector]
kind = "random_cut_forest"
warmup = 50
sample_size = 64
"#,
    )
    .unwrap();
    let both = Place {
        config: config.to_str().unwrap().to_owned(),
        data_dir: Some(data),
    };
    let client = harness::client();
    let port = harness::free_port();
    let log = dir.path().join("up.log");
    let child = both.up(port, &["--alerts-from", "start"], Some(&log));
    harness::wait_ready(&client, port);
    let (status, ready) = harness::get_json(&client, port, "/readyz");
    assert_eq!(status, 200, "{ready}");
    for name in ["transactions", "metrics"] {
        assert_eq!(ready["streams"][name]["status"], "ready", "{ready}");
    }

    let mut sent = 0;
    while sent < 1000 {
        let (body, _) = harness::batch(&mut live, 100);
        let posted = harness::post(&client, port, &body);
        assert!(matches!(posted, Posted::Accepted), "{posted:?}");
        sent += 100;
    }
    // A calm series with three spikes far outside it.
    let spikes = [400, 550, 700];
    let mut series = String::new();
    for i in 0..800 {
        let value = if spikes.contains(&i) {
            1_000.0
        } else {
            10.0 + (i as f64 / 10.0).sin()
        };
        series += &format!(
            "{{\"timestamp\":{},\"value\":{value}}}\n",
            1_700_000_000 + i * 60
        );
    }
    let r = client
        .post(format!("http://127.0.0.1:{port}/v1/streams/metrics/events"))
        .header("content-type", "application/x-ndjson")
        .body(series)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{}", r.text().unwrap_or_default());

    let of_stream = |name: &str, stream: &str| {
        harness::metric(&client, port, name)
            .into_iter()
            .find(|(series, _)| series.contains(&format!("stream=\"{stream}\"")))
            .map_or(0.0, |(_, v)| v)
    };
    // Live: scored beyond the history the transactions' scorer read as
    // backfill when it started. (Regression: a part starting fresh took
    // "now" when its partition first reached the scorer, seconds after
    // start with two streams, so live events acknowledged meanwhile were
    // counted as backfill and could not alert.)
    let live_of = |stream: &str| {
        of_stream("radar_scored_total", stream) - of_stream("radar_backfill_events_total", stream)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while (live_of("transactions") < 1000.0 || live_of("metrics") < 800.0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        (live_of("transactions"), live_of("metrics")),
        (1000.0, 800.0),
        "each stream's scorer scored its own events, once"
    );
    assert!(of_stream("radar_backfill_events_total", "transactions") > 1000.0);
    // Each stream's alerts are its own.
    let (_, body) = harness::get_json(&client, port, "/v1/alerts?stream=metrics&limit=1000");
    let alerts = body["alerts"].as_array().unwrap();
    assert!(alerts.iter().all(|a| a["stream"] == "metrics"), "{body}");
    let spike_times: Vec<i64> = spikes
        .iter()
        .map(|i| (1_700_000_000 + i * 60) * 1_000_000)
        .collect();
    let spiked = alerts
        .iter()
        .filter(|a| spike_times.contains(&a["event_time_us"].as_i64().unwrap()))
        .count();
    assert!(spiked >= 1, "a spike alerts: {body}");
    let (_, body) = harness::get_json(&client, port, "/v1/alerts?stream=transactions&limit=1000");
    assert!(
        body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["stream"] == "transactions"),
        "{body}"
    );
    // One exposition: each family once.
    let text = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
    let mut unique = types.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), types.len(), "a family declared twice");
    // A stream not in the config is named as such.
    let (status, body) = harness::get_json(&client, port, "/v1/streams/nope/drift");
    assert_eq!(status, 404, "{body}");
    harness::stop(child, Some(&log));
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("streams `metrics`, `transactions`"), "{said}");
}
