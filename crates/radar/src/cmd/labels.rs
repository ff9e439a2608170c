//! `radar labels import | mark | ls`: what people say about events.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use radar_core::labels::Label;
use radar_core::time::{format_rfc3339, now_micros};
use radar_pipeline::labels::{self, Recorded};

use super::Place;

#[derive(Debug, Subcommand)]
pub enum LabelsCommand {
    /// Labels in bulk: JSON lines or CSV (event_id, label, kind, source,
    /// known_at, author); every line is checked first, nothing is stored
    /// when one is bad.
    Import {
        file: PathBuf,
        /// Source of labels that do not name one.
        #[arg(long, default_value = "import")]
        source: String,
    },
    /// One verdict on one event (an alert marked, or a missed fraud).
    Mark {
        event_id: String,
        /// It was fraud (a true positive, or a miss).
        #[arg(long, conflicts_with = "legit", required_unless_present = "legit")]
        fraud: bool,
        /// It was genuine (a false positive).
        #[arg(long)]
        legit: bool,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        author: Option<String>,
    },
    /// Labels as recorded, oldest first (an event's history with --event).
    Ls {
        #[arg(long)]
        event: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct LabelsArgs {
    #[command(subcommand)]
    pub command: LabelsCommand,
    #[arg(long, global = true)]
    pub stream: Option<String>,
    #[command(flatten)]
    pub place: Place,
}

pub fn run(args: LabelsArgs) -> Result<()> {
    let config = args.place.load()?;
    let schema = config.stream(args.stream.as_deref())?;
    let store = config.open_labels()?;
    let given = match args.command {
        LabelsCommand::Import { file, source } => labels::read_file(&file, &source, now_micros())?,
        LabelsCommand::Mark {
            event_id,
            fraud,
            legit: _,
            kind,
            author,
        } => {
            let v = serde_json::json!({
                "event_id": event_id, "label": fraud, "kind": kind, "author": author,
            });
            vec![Label::from_json(&v, "cli", now_micros())?]
        }
        LabelsCommand::Ls { event, limit, json } => {
            let rows = store.list(&schema.name, event.as_deref(), 0, limit)?;
            for r in rows {
                let l = &r.label;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string(&serde_json::json!({
                            "seq": r.seq, "event_id": l.event_id, "fraud": l.fraud, "kind": l.kind,
                            "source": l.source, "author": l.author,
                            "known_at": format_rfc3339(l.known_at), "recorded_at": format_rfc3339(r.recorded_at),
                        }))?
                    );
                } else {
                    println!(
                        "{:>8} {:<20} {:<6} {:<22} {:<12} known {}",
                        r.seq,
                        l.event_id,
                        if l.fraud { "fraud" } else { "legit" },
                        l.kind.as_deref().unwrap_or("-"),
                        l.source,
                        format_rfc3339(l.known_at)
                    );
                }
            }
            return Ok(());
        }
    };
    let outcomes = store.record(&schema.name, &given)?;
    let (mut accepted, mut duplicate, mut unknown) = (0, 0, Vec::new());
    for (l, o) in given.iter().zip(&outcomes) {
        match o {
            Recorded::Accepted { .. } => accepted += 1,
            Recorded::Duplicate { .. } => duplicate += 1,
            Recorded::UnknownEvent => unknown.push(l.event_id.as_str()),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let lake = config.open_lake()?;
    while store.export(&lake, rt.handle(), &schema.name)? > 0 {}
    eprintln!(
        "{accepted} labels recorded, {duplicate} already recorded, {} about events stream `{}` never had",
        unknown.len(),
        schema.name
    );
    if !unknown.is_empty() {
        eprintln!(
            "unknown event ids: {}{}",
            unknown[..unknown.len().min(10)].join(", "),
            if unknown.len() > 10 { ", …" } else { "" }
        );
        if accepted + duplicate == 0 {
            bail!("no label was recorded");
        }
    }
    Ok(())
}
