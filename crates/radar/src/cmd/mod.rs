//! One module per command: parse its arguments, call the library, print.

pub mod args;
pub mod capture;
pub mod demo;
pub mod demo_drift;
pub mod eval;
pub mod eval_nab;
pub mod export;
pub mod features;
pub mod generate;
pub mod ingest;
pub mod keys;
pub mod labels;
pub mod lake;
pub mod log;
pub mod models;
pub mod monitor;
pub mod render;
pub mod report;
pub mod retrain;
pub mod train;
pub mod up;

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use radar_pipeline::Config;

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM: the stop a terminal
/// sends and the one Kubernetes, Docker and systemd send before killing.
/// Either starts the same drain.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Where the config and data live; shared by the commands.
#[derive(Debug, Clone, Args)]
pub struct Place {
    /// The config file (radar.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Storage root (local directory or object-store URL); overrides the
    /// config's `storage.root`.
    #[arg(long, global = true)]
    pub data_dir: Option<String>,
}

impl Place {
    pub fn load(&self) -> Result<Config> {
        let mut c = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            c.storage.root = d.clone();
        }
        Ok(c)
    }
}

/// An RFC 3339 time argument, in UTC µs.
pub fn time_arg(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| radar_core::time::parse_rfc3339(s).map_err(|e| anyhow::anyhow!("--{name}: {e}")))
        .transpose()
}

/// A progress bar for people (hidden when `show` is false).
pub fn bar(template: &str, show: bool) -> ProgressBar {
    let b = if show {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    b.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}
