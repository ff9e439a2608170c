use super::*;

#[test]
fn file_names_parse_back() {
    let f = parse_file("lake/raw/tx/date=2026-01-02/hour=07/part-p00003-00000000000000000010-00000000000000000042.parquet", 9).unwrap();
    assert_eq!(
        (f.partition, f.first_offset, f.last_offset, f.size),
        (3, 10, 42, 9)
    );
    assert_eq!(format_rfc3339(f.hour), "2026-01-02T07:00:00Z");
    assert!(parse_file("lake/raw/tx/date=2026-01-02/other.parquet", 1).is_none());
    assert_eq!(hour_dir(f.hour), "date=2026-01-02/hour=07");
}

#[tokio::test]
async fn local_lake_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    testing::suite(&Lake::open(dir.path().to_str().unwrap(), &[]).unwrap()).await;
    assert!(dir.path().join("lake/raw/tx").is_dir());
}
