//! The lake suite every storage backend passes, and its fixtures. Public so
//! the backend tests (S3, Azure) run the same checks; not a stable API.
#![doc(hidden)]

use radar_core::decode::{Record, Value};
use radar_core::schema::{StreamSchema, parse_streams};
use radar_core::time::MICROS_PER_SECOND;

use crate::{DeadRow, HOUR, Lake, Row, Table};

pub fn schema() -> StreamSchema {
    let text = r#"
[streams.tx]
timestamp = "ts"
entity = "card"
id = "id"
[streams.tx.fields]
amount = { type = "float" }
n = { type = "int", required = false }
ok = { type = "bool", required = false }
kind = { type = "category" }
"#;
    let (name, c) = parse_streams(text).unwrap().into_iter().next().unwrap();
    c.build(&name).unwrap()
}

pub fn row(partition: u32, offset: u64, ts: i64) -> Row {
    Row {
        partition,
        offset,
        ingest_time: ts + 5,
        record: Record {
            id: Some(format!("e{partition}-{offset}").into()),
            ts,
            entity: Some(format!("c{}", offset % 3).into()),
            // Fields in schema order (alphabetical): amount, kind, n, ok.
            values: vec![
                Value::Float(offset as f64 * 1.5),
                Value::Str(format!("k{}", offset % 4).into()),
                if offset.is_multiple_of(2) {
                    Value::Missing
                } else {
                    Value::Int(offset as i64)
                },
                Value::Bool(offset.is_multiple_of(3)),
            ],
        },
    }
}

/// The lake suite: run on every storage backend (see tests/backends.rs).
pub async fn suite(lake: &Lake) {
    let s = schema();
    let day = 1_767_225_600 * MICROS_PER_SECOND; // 2026-01-01
    // Two hours, two partitions.
    let rows: Vec<Row> = (0..40u64)
        .map(|o| row((o % 2) as u32, o / 2, day + (o as i64 % 4) * HOUR / 2))
        .collect();
    let files = lake.write_raw(&s, &rows).await.unwrap();
    assert_eq!(files.len(), 4, "{files:?}");
    let listed = lake.files(Table::Raw, "tx", None).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(
        listed
            .windows(2)
            .all(|w| (w[0].partition, w[0].first_offset) <= (w[1].partition, w[1].first_offset))
    );

    // Scan returns every row, typed as written, in (partition, offset) order.
    let mut scan = lake.scan(&s, day, day + 2 * HOUR).await.unwrap();
    let mut back = Vec::new();
    while let Some(rows) = scan.next_file().await.unwrap() {
        back.extend(rows);
    }
    let mut expected = rows.clone();
    expected.sort_by_key(|r| (r.partition, r.offset));
    back.sort_by_key(|r| (r.partition, r.offset));
    assert_eq!(back, expected);
    // Time ranges prune.
    let mut scan = lake.scan(&s, day + HOUR, day + 2 * HOUR).await.unwrap();
    assert_eq!(scan.files().len(), 2);
    let mut n = 0;
    while let Some(rows) = scan.next_file().await.unwrap() {
        assert!(rows.iter().all(|r| r.record.ts >= day + HOUR));
        n += rows.len();
    }
    assert_eq!(n, 20);

    // Snapshots are stable and change with the data.
    let a = lake.snapshot("tx", None).await.unwrap();
    let b = lake.snapshot("tx", None).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a.rows, 40);
    assert_eq!(a.id.len(), 64);
    lake.write_raw(&s, &[row(5, 0, day)]).await.unwrap();
    let c = lake.snapshot("tx", None).await.unwrap();
    assert_ne!(c.id, a.id);
    assert_eq!(c.rows, 41);

    // Uncommitted files go; committed ones stay.
    let removed = lake.remove_uncommitted("tx", 5, 0).await.unwrap();
    assert_eq!(removed, 1);
    assert_eq!(lake.snapshot("tx", None).await.unwrap(), a);
    let removed = lake.remove_uncommitted("tx", 0, 20).await.unwrap();
    assert_eq!(removed, 0);

    // Dead letters have their own table.
    let dead = vec![DeadRow {
        partition: 1,
        offset: 99,
        ingest_time: day,
        reason: "not_json".into(),
        message: "not JSON: expected value".into(),
        field: None,
        raw: b"{oops".to_vec(),
    }];
    lake.write_dead_letters("tx", &dead).await.unwrap();
    assert_eq!(lake.dead_letters("tx").await.unwrap(), dead);
    assert_eq!(
        lake.snapshot("tx", None).await.unwrap(),
        a,
        "dead letters are not training data"
    );
}
