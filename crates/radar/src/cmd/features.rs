use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use radar_core::decode::{Decoder, Value};
use radar_core::features::FeatureEngine;
use radar_core::time::format_rfc3339;

use radar_pipeline::events;

#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Config file declaring the stream.
    #[arg(long)]
    pub config: PathBuf,
    /// Stream name (optional when the config declares one stream).
    #[arg(long)]
    pub stream: Option<String>,
    /// Events: JSON lines or CSV with a header (optionally gzipped).
    #[arg(long)]
    pub input: PathBuf,
    /// Feature rows as CSV: event id, time, entity, the feature columns and
    /// the label fields.
    #[arg(long)]
    pub output: PathBuf,
    /// Also write refused events (reason and raw event) as JSON lines.
    #[arg(long)]
    pub dead_letters: Option<PathBuf>,
}

fn csv_cell(v: &Value) -> String {
    match v {
        Value::Missing => String::new(),
        Value::Float(x) => x.to_string(),
        Value::Int(x) => x.to_string(),
        Value::Bool(b) => (*b as u8).to_string(),
        Value::Str(s) if s.contains([',', '"', '\n']) => format!("\"{}\"", s.replace('"', "\"\"")),
        Value::Str(s) => s.to_string(),
    }
}

pub fn run(args: FeaturesArgs) -> Result<()> {
    let schema = events::load_schema(&args.config, args.stream.as_deref())?;
    if args.output.extension().is_some_and(|e| e == "parquet") {
        bail!("Parquet output comes with the data lake; write `.csv` for now");
    }
    let mut decoder = Decoder::new(schema.clone());
    let file = events::read_all(&args.input, &mut decoder)?;
    let mut engine = FeatureEngine::new(schema.clone());
    let out = File::create(&args.output)
        .with_context(|| format!("cannot create `{}`", args.output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let labels: Vec<usize> = schema.labels().collect();
    let mut header = vec!["event_id".to_owned(), "ts".to_owned()];
    if let Some(e) = &schema.entity {
        header.push(e.clone());
    }
    header.extend(schema.columns.iter().cloned());
    header.extend(labels.iter().map(|&i| schema.fields[i].name.clone()));
    writeln!(out, "{}", header.join(","))?;
    let mut row = vec![0.0; engine.width()];
    let mut line = String::new();
    for (n, r) in file.records.iter().enumerate() {
        engine.process(r, &mut row);
        line.clear();
        line.push_str(
            r.id.as_deref()
                .map_or_else(|| n.to_string(), str::to_owned)
                .as_str(),
        );
        line.push(',');
        line.push_str(&format_rfc3339(r.ts));
        if let Some(e) = &r.entity {
            line.push(',');
            line.push_str(&csv_cell(&Value::Str(e.clone())));
        }
        for v in &row {
            line.push(',');
            line.push_str(&v.to_string());
        }
        for &i in &labels {
            line.push(',');
            line.push_str(&csv_cell(&r.values[i]));
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    if let Some(path) = &args.dead_letters {
        let mut dl = BufWriter::new(
            File::create(path).with_context(|| format!("cannot create `{}`", path.display()))?,
        );
        for (line_no, d) in &file.dead_letters {
            let doc = serde_json::json!({
                "line": line_no,
                "reason": d.reason.code(),
                "message": d.reason.to_string(),
                "field": d.reason.field(),
                "raw": String::from_utf8_lossy(&d.raw),
            });
            writeln!(dl, "{doc}")?;
        }
        dl.flush()?;
    }
    eprintln!(
        "{} events → {} rows × {} features in {}",
        file.records.len() + file.dead_letters.len(),
        file.records.len(),
        engine.width(),
        args.output.display()
    );
    if !file.dead_letters.is_empty() {
        eprintln!("{}", events::dead_letter_summary(&file.dead_letters));
    }
    let stats = engine.stats();
    if stats.entity_evictions + stats.category_evictions > 0 {
        eprintln!(
            "state bounds reached: {} entities and {} categories evicted",
            stats.entity_evictions, stats.category_evictions
        );
    }
    Ok(())
}
