//! `radar models …` and `radar runs …`.

use anyhow::Result;
use clap::{Args, Subcommand};

use super::Place;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Every version of every model, with its aliases.
    Ls,
    /// One model's versions and the history of its aliases.
    Show { name: String },
    /// One model's life in time order: every step recorded (trained,
    /// gated, shadow, canary, promoted, rolled back) and every alias move,
    /// with reasons and figures.
    History { name: String },
    /// Point an alias (default `champion`) at a version.
    Promote {
        name: String,
        version: i64,
        #[arg(long, default_value = "champion")]
        alias: String,
        #[arg(long, default_value = "promoted by hand")]
        reason: String,
    },
    /// Move an alias back to where it pointed before its last move.
    Rollback {
        name: String,
        #[arg(long, default_value = "champion")]
        alias: String,
        #[arg(long, default_value = "rolled back by hand")]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub command: ModelsCommand,
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub place: Place,
}

pub fn run_models(args: ModelsArgs) -> Result<()> {
    let config = args.place.load()?;
    let reg = config.open_registry()?;
    match args.command {
        ModelsCommand::Ls => {
            let versions = reg.versions()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&versions)?);
            } else {
                println!(
                    "{:<28} {:>7} {:<20} {:<14} run",
                    "model", "version", "aliases", "sha256"
                );
                for v in versions {
                    println!(
                        "{:<28} {:>7} {:<20} {:<14} {}",
                        v.name,
                        v.version,
                        v.aliases.join(","),
                        &v.sha256[..12],
                        v.run_id.unwrap_or_default()
                    );
                }
            }
        }
        ModelsCommand::Show { name } => {
            let versions: Vec<_> = reg
                .versions()?
                .into_iter()
                .filter(|v| v.name == name)
                .collect();
            if versions.is_empty() {
                anyhow::bail!("no model named `{name}`");
            }
            let history = reg.alias_history(&name)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"versions": versions, "alias_history": history})
                    )?
                );
            } else {
                for v in &versions {
                    println!(
                        "v{:<4} {:<20} {}",
                        v.version,
                        v.aliases.join(","),
                        v.metrics
                    );
                }
                println!("\nalias history:");
                for h in history {
                    println!(
                        "  {} {}: {} -> v{} ({})",
                        radar_core::time::format_rfc3339(h.at),
                        h.alias,
                        h.from_version.map_or("-".into(), |v| format!("v{v}")),
                        h.to_version,
                        h.reason
                    );
                }
            }
        }
        ModelsCommand::History { name } => {
            let events = reg.events(&name)?;
            let moves = reg.alias_history(&name)?;
            if events.is_empty() && moves.is_empty() {
                anyhow::bail!("no history for a model named `{name}`");
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"events": events, "alias_moves": moves})
                    )?
                );
            } else {
                let mut lines: Vec<(i64, String)> = events
                    .iter()
                    .map(|e| {
                        (
                            e.at,
                            format!(
                                "v{:<4} {:<12} {} {}",
                                e.version, e.event, e.reason, e.figures
                            ),
                        )
                    })
                    .chain(moves.iter().map(|m| {
                        (
                            m.at,
                            format!(
                                "v{:<4} {:<12} {} (was {})",
                                m.to_version,
                                format!("-> {}", m.alias),
                                m.reason,
                                m.from_version.map_or("-".into(), |v| format!("v{v}"))
                            ),
                        )
                    }))
                    .collect();
                lines.sort_by_key(|(at, _)| *at);
                for (at, line) in lines {
                    println!("{}  {line}", radar_core::time::format_rfc3339(at));
                }
            }
        }
        ModelsCommand::Promote {
            name,
            version,
            alias,
            reason,
        } => {
            reg.set_alias(&name, &alias, version, &reason)?;
            println!("{name}: {alias} -> v{version}");
        }
        ModelsCommand::Rollback {
            name,
            alias,
            reason,
        } => {
            let v = reg.rollback(&name, &alias, &reason)?;
            println!("{name}: {alias} -> v{v}");
        }
    }
    Ok(())
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    Ls,
    Show { id: String },
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: RunsCommand,
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub place: Place,
}

pub fn run_runs(args: RunsArgs) -> Result<()> {
    let config = args.place.load()?;
    let reg = config.open_registry()?;
    match args.command {
        RunsCommand::Ls => {
            let runs = reg.runs(100)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                println!(
                    "{:<28} {:<14} {:<10} {:<22} metrics",
                    "run", "experiment", "status", "started"
                );
                for r in runs {
                    println!(
                        "{:<28} {:<14} {:<10} {:<22} {}",
                        r.id,
                        r.experiment,
                        r.status,
                        radar_core::time::format_rfc3339(r.started_at - r.started_at % 1_000_000),
                        r.metrics
                    );
                }
            }
        }
        RunsCommand::Show { id } => {
            let r = reg.run(&id)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
    }
    Ok(())
}
