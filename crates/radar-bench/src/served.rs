//! A real `radar up` for the benches that drive it over HTTP: a
//! config in a temporary directory, generated history ingested, captured
//! and trained on, then the binary serving on a port, stopped with SIGINT.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use radar_core::synth::transactions::{TransactionSpec, Transactions};

/// The radar binary: `given`, else the one beside this bench.
pub fn radar_bin(given: Option<&Path>) -> Result<PathBuf> {
    match given {
        Some(b) => Ok(b.to_owned()),
        None => Ok(std::env::current_exe()?
            .parent()
            .context("no directory beside radar-bench")?
            .join("radar")),
    }
}

fn radar(bin: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new(bin).args(args).output()?;
    if !out.status.success() {
        bail!(
            "radar {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// A trained deployment in `dir`: `radar.toml` (the example streams,
/// storage under `dir/data`, `extra` added to the top) and the history
/// file it was trained on.
pub struct Deployment {
    pub config: PathBuf,
    pub data: PathBuf,
    pub history: PathBuf,
}

impl Deployment {
    pub fn train(
        bin: &Path,
        dir: &Path,
        spec: TransactionSpec,
        max_entities: usize,
        extra: &str,
    ) -> Result<Deployment> {
        Self::train_stream(bin, dir, spec, max_entities, extra, "transactions")
    }

    /// The same with the example stream named `stream` (its own topic).
    pub fn train_stream(
        bin: &Path,
        dir: &Path,
        spec: TransactionSpec,
        max_entities: usize,
        extra: &str,
        stream: &str,
    ) -> Result<Deployment> {
        let data = dir.join("data");
        let examples = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/transactions.toml"),
        )?
        .replace("streams.transactions", &format!("streams.{stream}"));
        let streams = examples.replacen(
            &format!("[streams.{stream}]\n"),
            &format!("[streams.{stream}]\nmax_entities = {max_entities}\n"),
            1,
        );
        let config = dir.join("radar.toml");
        std::fs::write(
            &config,
            format!(
                "[storage]\nroot = \"{}\"\n\n{extra}\n\n{streams}",
                data.display()
            ),
        )?;
        let cfg = config.to_str().context("config path")?;
        let history = dir.join("history.jsonl");
        let mut text = String::new();
        for tx in Transactions::new(spec) {
            tx.write_json(&mut text);
            text.push('\n');
        }
        std::fs::write(&history, text)?;
        radar(
            bin,
            &["ingest", history.to_str().context("path")?, "--config", cfg],
        )?;
        radar(bin, &["capture", "--until-idle", "1", "--config", cfg])?;
        radar(bin, &["train", "--promote", "--config", cfg])?;
        Ok(Deployment {
            config,
            data,
            history,
        })
    }

    /// `radar up` on `port`, once `/readyz` says ready.
    pub fn up(&self, bin: &Path, port: u16, args: &[&str]) -> Result<Up> {
        let up = self.spawn_up(bin, port, args)?;
        wait_until(port, "/readyz", Duration::from_secs(60))?;
        Ok(up)
    }

    /// `radar up` on `port`, started.
    pub fn spawn_up(&self, bin: &Path, port: u16, args: &[&str]) -> Result<Up> {
        let child = Command::new(bin)
            .arg("up")
            .arg("--config")
            .arg(&self.config)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Up { child })
    }
}

/// Waits for `path` on 127.0.0.1:`port` to answer 2xx.
pub fn wait_until(port: u16, path: &str, within: Duration) -> Result<()> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let by = Instant::now() + within;
    while !client
        .get(format!("http://127.0.0.1:{port}{path}"))
        .send()
        .is_ok_and(|r| r.status().is_success())
    {
        if Instant::now() > by {
            bail!("nothing answered {path} on port {port} within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// A running `radar up`.
pub struct Up {
    child: Child,
}

impl Up {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT, then waits; whether it exited cleanly.
    pub fn stop(mut self) -> Result<bool> {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        Ok(self.child.wait()?.success())
    }
}

impl Drop for Up {
    /// A bench that fails before stopping it leaves no server behind
    /// (a no-op once `stop` has reaped it).
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free local port.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
