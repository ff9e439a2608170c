//! `radar retrain`: a candidate trained on the lake like `radar train`,
//! then gated against the champion on the same recent events; it becomes
//! the `challenger` (or the first champion) only if it passes. Every step
//! lands in the registry's audit trail (`radar models history`).

use anyhow::{Result, bail};
use clap::Args;
use radar_pipeline::retrain::{self, GateOptions};

use super::train::TrainArgs;

#[derive(Debug, Args)]
pub struct RetrainArgs {
    #[command(flatten)]
    pub train: TrainArgs,
    /// Share of the window's most recent events both models are judged on.
    #[arg(long, default_value_t = 0.2)]
    pub recent_share: f64,
    /// The candidate's alert rate may be this many times the champion's
    /// (or that many times smaller) at most.
    #[arg(long, default_value_t = 3.0)]
    pub max_alert_rate_ratio: f64,
    /// The candidate may alert on this share of events at most.
    #[arg(long, default_value_t = 0.05)]
    pub max_alert_rate: f64,
    /// Keep running: retrain whenever the stream's `[retrain]` policy says
    /// (its schedule and new labels; drift triggers need `radar up`),
    /// until Ctrl-C.
    #[arg(long)]
    pub watch: bool,
}

pub fn run(args: RetrainArgs) -> Result<()> {
    if args.train.promote {
        bail!(
            "--promote: a retrained candidate is never promoted directly; it passes the gate to become the challenger"
        );
    }
    if !(args.recent_share > 0.0 && args.recent_share < 1.0) {
        bail!(
            "--recent-share must be in (0, 1), got {}",
            args.recent_share
        );
    }
    if args.max_alert_rate_ratio.is_nan() || args.max_alert_rate_ratio < 1.0 {
        bail!(
            "--max-alert-rate-ratio must be at least 1, got {}",
            args.max_alert_rate_ratio
        );
    }
    if !(args.max_alert_rate > 0.0 && args.max_alert_rate <= 1.0) {
        bail!(
            "--max-alert-rate must be in (0, 1], got {}",
            args.max_alert_rate
        );
    }
    let config = args.train.place.load()?;
    let spec = super::train::spec(&config, &args.train)?;
    if args.watch {
        if !spec.schema.retrain.is_enabled() {
            bail!(
                "--watch: stream `{}` declares no [streams.{}.retrain] trigger (every_hours, on_drift, new_labels)",
                spec.schema.name,
                spec.schema.name
            );
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let watcher = std::thread::spawn(move || {
            radar_pipeline::retrain::watch(
                &config,
                &spec.schema,
                &spec.model,
                None,
                &|n| println!("{}", serde_json::to_string(&n).unwrap_or_default()),
                &stop,
            )
        });
        rt.block_on(super::stop_signal());
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        return match watcher.join() {
            Ok(r) => Ok(r?),
            Err(_) => bail!("the retrain watcher panicked"),
        };
    }
    let gate = GateOptions {
        recent_share: args.recent_share,
        max_alert_rate_ratio: args.max_alert_rate_ratio,
        max_alert_rate: args.max_alert_rate,
        ..GateOptions::default()
    };
    let bar = super::bar(
        "{spinner} {msg:<9} [{bar:30}] {pos}/{len}",
        !args.train.json,
    );
    let report = retrain::retrain(&config, &spec, &gate, &|step, done, total| {
        bar.set_message(step.to_owned());
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if args.train.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let c = &report.candidate;
        println!(
            "{} v{}: {} — {}",
            report.model,
            c.version,
            if report.passed {
                "gate passed"
            } else {
                "gate FAILED"
            },
            report.reason
        );
        println!(
            "judged on the {} most recent events ({} labelled fraud): candidate alert rate {:.2}%{}",
            report.judged_events,
            report.labelled_frauds,
            100.0 * c.alert_rate,
            report.champion.as_ref().map_or(String::new(), |h| format!(
                ", champion v{} {:.2}%",
                h.version,
                100.0 * h.alert_rate
            ))
        );
        if let Some(alias) = &report.alias {
            println!("{} -> v{}", alias, c.version);
        }
    }
    if !report.passed {
        // A failed gate is an outcome, not a crash, but scripts must see it.
        std::process::exit(3);
    }
    Ok(())
}
