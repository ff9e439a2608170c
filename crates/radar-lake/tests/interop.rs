//! The lake's Parquet files read by pyarrow give the same rows and column
//! types radar wrote.

use std::process::Command;

use radar_core::decode::Value;
use radar_core::time::MICROS_PER_SECOND;
use radar_lake::{Lake, testing};

fn python() -> Option<String> {
    if let Ok(p) = std::env::var("RADAR_PYTHON") {
        return Some(p);
    }
    if std::env::var_os("RADAR_SKIP_PYARROW").is_some() {
        eprintln!(
            "RADAR_PYTHON not set: pyarrow interoperability NOT checked (RADAR_SKIP_PYARROW set)"
        );
        return None;
    }
    panic!(
        "set RADAR_PYTHON to a Python with pyarrow (scripts/test does), or RADAR_SKIP_PYARROW=1"
    );
}

const READ: &str = r#"
import json, sys, glob
import pyarrow.parquet as pq
import pyarrow as pa
files = sorted(glob.glob(sys.argv[1] + "/lake/raw/tx/**/*.parquet", recursive=True))
t = pa.concat_tables([pq.read_table(f) for f in files])
# Hive partitioning is also read as such by pyarrow datasets.
ds = pq.ParquetDataset(sys.argv[1] + "/lake/raw/tx")
out = {
    "types": {f.name: str(f.type) for f in t.schema},
    "rows": t.to_pylist(),
    "dataset_rows": ds.read().num_rows,
}
print(json.dumps(out, default=str))
"#;

#[tokio::test]
async fn pyarrow_reads_what_radar_wrote() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap(), &[]).unwrap();
    let schema = testing::schema();
    let day = 1_767_225_600 * MICROS_PER_SECOND;
    let rows: Vec<_> = (0..30u64)
        .map(|o| testing::row(0, o, day + o as i64 * 1000))
        .collect();
    lake.write_raw(&schema, &rows).await.unwrap();

    let out = Command::new(py)
        .arg("-c")
        .arg(READ)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let types = &v["types"];
    assert_eq!(types["ts"], "timestamp[us, tz=UTC]");
    assert_eq!(types["id"], "string");
    assert_eq!(types["card"], "string");
    assert_eq!(types["amount"], "double");
    assert_eq!(types["n"], "int64");
    assert_eq!(types["ok"], "bool");
    assert_eq!(types["kind"], "string");
    assert_eq!(types["_offset"], "uint64");
    assert_eq!(types["_partition"], "uint32");
    assert_eq!(types["_ingest_time"], "timestamp[us, tz=UTC]");
    assert_eq!(v["dataset_rows"], 30);
    let got = v["rows"].as_array().unwrap();
    assert_eq!(got.len(), 30);
    for (r, g) in rows.iter().zip(got) {
        assert_eq!(g["_offset"], r.offset);
        assert_eq!(g["id"], r.record.id.as_deref().unwrap());
        assert_eq!(g["card"], r.record.entity.as_deref().unwrap());
        assert_eq!(g["amount"].as_f64(), r.record.values[0].as_f64());
        match &r.record.values[2] {
            Value::Int(n) => assert_eq!(g["n"], *n),
            _ => assert!(g["n"].is_null()),
        }
        assert_eq!(
            g["ok"].as_bool(),
            Some(r.record.values[3].as_f64() == Some(1.0))
        );
    }
}
