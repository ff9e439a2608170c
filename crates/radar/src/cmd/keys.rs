//! `radar keys …`: API keys for `radar up`, stored hashed; a new key is
//! printed once and never again.

use anyhow::Result;
use clap::{Args, Subcommand};
use radar_core::time::format_rfc3339;
use radar_pipeline::access::Role;

use super::Place;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key; prints it (once).
    Create {
        /// ingest, score, read, label or admin.
        #[arg(long)]
        role: String,
        /// Who or what holds it.
        #[arg(long)]
        name: String,
        /// It stops working after this long (`30d`, `12h`, seconds).
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// Every key (without secrets): id, name, role, when made, expiry,
    /// revocation.
    Ls,
    /// Revoke a key by its id (the 8 characters after `rk_`); `radar up`
    /// refuses it within a second.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub place: Place,
}

pub fn run(args: KeysArgs) -> Result<()> {
    let config = args.place.load()?;
    let store = config.open_keys()?;
    match args.command {
        KeysCommand::Create {
            role,
            name,
            expires_in,
        } => {
            let role = Role::parse(&role)?;
            let expires_at = match expires_in {
                Some(d) => {
                    let d = radar_core::time::parse_duration(&d)
                        .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?;
                    Some(radar_core::time::now_micros() + d.as_micros() as i64)
                }
                None => None,
            };
            let made = store.create(&name, role, expires_at)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"key": made.key, "info": made.info})
                    )?
                );
            } else {
                println!("{}", made.key);
                eprintln!(
                    "key `{}` ({}, role {}) made; it is shown only now: keep it secret",
                    made.info.id,
                    made.info.name,
                    role.name()
                );
            }
        }
        KeysCommand::Ls => {
            let keys = store.list()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!(
                    "{:<10} {:<20} {:<7} {:<28} {:<28} revoked",
                    "id", "name", "role", "created", "expires"
                );
                for k in keys {
                    let t = |v: Option<i64>| v.map_or("-".into(), format_rfc3339);
                    println!(
                        "{:<10} {:<20} {:<7} {:<28} {:<28} {}",
                        k.id,
                        k.name,
                        k.role.name(),
                        format_rfc3339(k.created_at),
                        t(k.expires_at),
                        t(k.revoked_at)
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            store.revoke(&id)?;
            eprintln!("key `{id}` revoked");
        }
    }
    Ok(())
}
