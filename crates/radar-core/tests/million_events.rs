//! One million generated transactions: features computed in one pass equal,
//! bit for bit, features computed in random chunks with the engine's state
//! checkpointed and restored into a fresh engine between chunks.

use radar_core::Rng;
use radar_core::decode::Decoder;
use radar_core::features::FeatureEngine;
use radar_core::schema::parse_streams;
use radar_core::synth::transactions::{TransactionSpec, Transactions};

#[test]
fn chunked_with_checkpoints_equals_one_pass_on_a_million_events() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/transactions.toml"
    ))
    .unwrap();
    let (name, config) = parse_streams(&text).unwrap().into_iter().next().unwrap();
    let schema = config.build(&name).unwrap();
    let spec = TransactionSpec {
        cardholders: 20_000,
        days: 400.0,
        seed: 11,
        ..TransactionSpec::default()
    };
    let mut decoder = Decoder::new(schema.clone());
    let mut line = String::new();
    let records: Vec<_> = Transactions::new(spec)
        .take(1_000_000)
        .map(|tx| {
            line.clear();
            tx.write_json(&mut line);
            decoder
                .decode_json(line.as_bytes(), 0)
                .expect("generated events are valid")
        })
        .collect();
    assert_eq!(records.len(), 1_000_000);

    let width = schema.columns.len();
    let mut whole = vec![0.0; records.len() * width];
    let mut engine = FeatureEngine::new(schema.clone());
    for (r, out) in records.iter().zip(whole.chunks_exact_mut(width)) {
        engine.process(r, out);
    }

    let mut rng = Rng::seed_from_u64(5);
    let mut chunked = vec![0.0; records.len() * width];
    let mut engine = FeatureEngine::new(schema.clone());
    let mut start = 0;
    let mut restores = 0;
    while start < records.len() {
        let end = (start + 1 + rng.below(120_000) as usize).min(records.len());
        for (r, out) in records[start..end]
            .iter()
            .zip(chunked[start * width..end * width].chunks_exact_mut(width))
        {
            engine.process(r, out);
        }
        let mut fresh = FeatureEngine::new(schema.clone());
        fresh.restore(&engine.checkpoint()).unwrap();
        engine = fresh;
        restores += 1;
        start = end;
    }
    assert!(restores > 5);
    let differing = whole
        .iter()
        .zip(&chunked)
        .position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(differing, None, "first differing value at {differing:?}");
    assert!(engine.entities() > 19_000);
}
