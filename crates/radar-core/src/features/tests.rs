use proptest::prelude::*;

use super::*;
use crate::schema::parse_streams;

const ALL_KINDS: &str = r#"
[streams.s]
timestamp = "ts"
entity = "e"
max_entities = 4
history = 4
entity_ttl_seconds = 1000

[streams.s.fields]
x = { type = "float" }
c = { type = "category" }
lat = { type = "float" }
lon = { type = "float" }

[[streams.s.features]]
kind = "raw"
field = "x"
[[streams.s.features]]
kind = "log1p"
field = "x"
[[streams.s.features]]
kind = "hour_of_day"
[[streams.s.features]]
kind = "day_of_week"
[[streams.s.features]]
kind = "count"
window_seconds = 60
[[streams.s.features]]
kind = "ewma_mean"
field = "x"
alpha = 0.5
[[streams.s.features]]
kind = "ewma_std"
field = "x"
alpha = 0.5
[[streams.s.features]]
kind = "zscore"
field = "x"
alpha = 0.5
min_events = 2
[[streams.s.features]]
kind = "time_since_last"
cap_seconds = 500
[[streams.s.features]]
kind = "distance"
lat = "lat"
lon = "lon"
[[streams.s.features]]
kind = "speed"
lat = "lat"
lon = "lon"
[[streams.s.features]]
kind = "novelty"
field = "c"
max_categories = 3
[[streams.s.features]]
kind = "frequency"
field = "c"
max_categories = 3
[[streams.s.features]]
kind = "hour_frequency"
[[streams.s.features]]
kind = "lag"
field = "x"
k = 3
[[streams.s.features]]
kind = "window"
field = "x"
windows = [60, 3600]
aggregates = ["sum", "mean", "max", "count"]
[[streams.s.features]]
kind = "baseline_ratio"
field = "x"
log1p = true
window_seconds = 60
baseline_seconds = 3600
min_events = 1
[[streams.s.features]]
kind = "age"
[[streams.s.features]]
kind = "distinct"
field = "c"
window_seconds = 120
max_categories = 4
[[streams.s.features]]
kind = "rarity"
field = "c"
[[streams.s.features]]
kind = "count"
window_seconds = 60
key = "c"
name = "count_by_c"
[[streams.s.features]]
kind = "window"
windows = [300]
aggregates = ["count"]
key = "c"
name = "c_rate"
[[streams.s.features]]
kind = "label_rate"
window_seconds = 600
[[streams.s.features]]
kind = "label_rate"
window_seconds = 300
key = "c"
"#;

fn schema(text: &str) -> StreamSchema {
    let (name, config) = parse_streams(text).unwrap().into_iter().next().unwrap();
    config.build(&name).unwrap()
}

fn record(e: &str, ts_secs: i64, x: f64, c: &str, lat: f64, lon: f64) -> Record {
    Record {
        id: None,
        ts: ts_secs * MICROS_PER_SECOND,
        entity: Some(e.into()),
        // Declared fields in schema order (alphabetical): c, lat, lon, x.
        values: vec![
            Value::Str(c.into()),
            Value::Float(lat),
            Value::Float(lon),
            Value::Float(x),
        ],
    }
}

fn col(engine: &FeatureEngine, row: &[f64], name: &str) -> f64 {
    row[engine
        .columns()
        .iter()
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}"))]
}

#[test]
fn features_follow_their_definitions() {
    let mut e = FeatureEngine::new(schema(ALL_KINDS));
    let mut row = vec![0.0; e.width()];
    // 2026-11-25 is a Wednesday; 06:00 UTC.
    let t0 = 1_795_564_800 + 6 * 3600;
    e.process(&record("a", t0, 10.0, "food", 48.85, 2.35), &mut row);
    assert_eq!(col(&e, &row, "raw_x"), 10.0);
    assert_eq!(col(&e, &row, "log1p_x"), 11f64.ln());
    assert!((col(&e, &row, "hour_of_day_sin") - 1.0).abs() < 1e-12);
    assert_eq!(col(&e, &row, "count"), 0.0);
    assert_eq!(col(&e, &row, "ewma_mean_x"), 10.0);
    assert_eq!(col(&e, &row, "ewma_std_x"), 0.0);
    assert_eq!(col(&e, &row, "zscore_x"), 0.0);
    assert_eq!(col(&e, &row, "time_since_last"), 500.0);
    assert_eq!(col(&e, &row, "distance"), 0.0);
    assert_eq!(col(&e, &row, "novelty_c"), 1.0);
    assert_eq!(col(&e, &row, "frequency_c"), 0.0);
    assert_eq!(col(&e, &row, "hour_frequency"), 0.0);
    assert_eq!(
        [col(&e, &row, "lag_x_1"), col(&e, &row, "lag_x_2")],
        [10.0, 10.0]
    );

    // 30 s later, 343 km away (Paris -> London), x = 20.
    e.process(
        &record("a", t0 + 30, 20.0, "food", 51.5074, -0.1278),
        &mut row,
    );
    assert_eq!(col(&e, &row, "count"), 1.0);
    assert_eq!(col(&e, &row, "ewma_mean_x"), 10.0);
    assert_eq!(col(&e, &row, "time_since_last"), 30.0);
    let km = col(&e, &row, "distance");
    assert!((km - 343.5).abs() < 1.0, "{km}");
    assert!((col(&e, &row, "speed") - km / (30.0 / 3600.0)).abs() < 1e-6);
    assert_eq!(col(&e, &row, "novelty_c"), 0.0);
    assert_eq!(col(&e, &row, "frequency_c"), 1.0);
    assert_eq!(col(&e, &row, "hour_frequency"), 1.0);
    assert_eq!(col(&e, &row, "zscore_x"), 0.0, "below min_events");
    assert_eq!(
        [
            col(&e, &row, "lag_x_1"),
            col(&e, &row, "lag_x_2"),
            col(&e, &row, "lag_x_3")
        ],
        [10.0, 10.0, 10.0]
    );

    // Third event: EWMA after 10, 20 with alpha 0.5: mean 15, var 0.5*(0+10*5) = 25.
    e.process(
        &record("a", t0 + 100, 25.0, "fuel", 51.5074, -0.1278),
        &mut row,
    );
    assert_eq!(col(&e, &row, "ewma_mean_x"), 15.0);
    assert_eq!(col(&e, &row, "ewma_std_x"), 5.0);
    assert_eq!(col(&e, &row, "zscore_x"), 2.0);
    assert_eq!(
        col(&e, &row, "count"),
        0.0,
        "both earlier events left the 60 s window"
    );
    assert_eq!(col(&e, &row, "novelty_c"), 1.0);
    assert_eq!(
        [
            col(&e, &row, "lag_x_1"),
            col(&e, &row, "lag_x_2"),
            col(&e, &row, "lag_x_3")
        ],
        [20.0, 10.0, 10.0]
    );

    // Another entity starts afresh.
    e.process(&record("b", t0 + 101, 1.0, "fuel", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "novelty_c"), 1.0);
    assert_eq!(col(&e, &row, "time_since_last"), 500.0);
    assert_eq!(e.entities(), 2);
}

#[test]
fn windows_ratios_age_distinct_rarity_and_second_keys_follow_their_definitions() {
    let mut e = FeatureEngine::new(schema(ALL_KINDS));
    let mut row = vec![0.0; e.width()];
    let t0 = 1_795_564_800;
    e.process(&record("a", t0, 10.0, "food", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "window_x_sum_1m"), 10.0);
    assert_eq!(col(&e, &row, "window_x_max_1h"), 10.0);
    assert_eq!(col(&e, &row, "age"), 0.0);
    assert_eq!(col(&e, &row, "distinct_c"), 1.0);
    // Nothing seen yet: −ln(½ / 1).
    assert!((col(&e, &row, "rarity_c") - 2f64.ln()).abs() < 1e-12);
    assert_eq!(col(&e, &row, "baseline_ratio_x"), 0.0);

    e.process(&record("a", t0 + 60, 20.0, "fuel", 0.0, 0.0), &mut row);
    let d = (-1.0f64).exp();
    assert!((col(&e, &row, "window_x_sum_1m") - (10.0 * d + 20.0)).abs() < 1e-12);
    assert!((col(&e, &row, "window_x_count_1m") - (d + 1.0)).abs() < 1e-12);
    assert!((col(&e, &row, "window_x_mean_1m") - (10.0 * d + 20.0) / (d + 1.0)).abs() < 1e-12);
    assert_eq!(col(&e, &row, "window_x_max_1m"), 20.0);
    assert_eq!(col(&e, &row, "age"), 60.0);
    assert_eq!(col(&e, &row, "distinct_c"), 2.0);
    // `fuel` is new to the stream: 0 of 1 earlier events.
    assert!((col(&e, &row, "rarity_c") - (1.0f64 / 0.25).ln()).abs() < 1e-12);

    // Another entity buying `food`: its own history is empty, the
    // category's (the second key) is not, and `food` is not rare.
    e.process(&record("b", t0 + 70, 5.0, "food", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "age"), 0.0);
    assert_eq!(col(&e, &row, "count"), 0.0);
    assert_eq!(col(&e, &row, "count_by_c"), 0.0);
    let c_rate = (-70.0f64 / 300.0).exp() + 1.0;
    assert!((col(&e, &row, "c_rate_count_5m") - c_rate).abs() < 1e-12);
    assert!((col(&e, &row, "rarity_c") - (3.0f64 / 1.5).ln()).abs() < 1e-12);

    // A steady card, then a spike: the recent rate jumps above the usual.
    let mut e = FeatureEngine::new(schema(ALL_KINDS));
    for i in 0..50 {
        e.process(&record("a", t0 + 60 * i, 10.0, "food", 0.0, 0.0), &mut row);
    }
    let steady = col(&e, &row, "baseline_ratio_x");
    e.process(
        &record("a", t0 + 60 * 50, 5000.0, "food", 0.0, 0.0),
        &mut row,
    );
    let spike = col(&e, &row, "baseline_ratio_x");
    assert!(steady.abs() < 1.0, "steady {steady}");
    assert!(spike > steady + 0.5, "spike {spike} vs steady {steady}");
    // Values last seen over two minutes ago leave the distinct count.
    e.process(
        &record("a", t0 + 60 * 50 + 10, 1.0, "fuel", 0.0, 0.0),
        &mut row,
    );
    assert_eq!(col(&e, &row, "distinct_c"), 2.0);
    e.process(&record("a", t0 + 60 * 60, 1.0, "fuel", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "distinct_c"), 1.0);
}

#[test]
fn label_rates_count_only_labels_known_before_the_event() {
    let s = schema(ALL_KINDS);
    let mut e = FeatureEngine::new(s);
    let mut row = vec![0.0; e.width()];
    let window = 600.0f64;
    // Two events of card a at merchant category m, the first labelled fraud
    // at t = 150 s, retracted at t = 400 s.
    let r0 = record("a", 100, 1.0, "m", 0.0, 0.0);
    e.process(&r0, &mut row);
    assert_eq!(col(&e, &row, "label_rate"), 0.0);
    assert_eq!(col(&e, &row, "label_rate_c"), 0.0);
    let keys = e.label_keyer().keys(&r0);
    assert_eq!(keys.len(), 2, "the entity and `c`");
    e.apply_label(&keys, 150 * MICROS_PER_SECOND, LabelChange::Fraud);

    // Card b at the same category sees the category's rate, not card a's.
    e.process(&record("b", 200, 1.0, "m", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "label_rate"), 0.0, "b has no fraud");
    let fraud = (-50.0f64 / 300.0).exp();
    let events = (-100.0f64 / 300.0).exp();
    assert!((col(&e, &row, "label_rate_c") - fraud / (events + 1.0)).abs() < 1e-12);

    e.process(&record("a", 300, 1.0, "n", 0.0, 0.0), &mut row);
    let fraud = (-150.0 / window).exp();
    let events = (-200.0 / window).exp();
    assert!((col(&e, &row, "label_rate") - fraud / (events + 1.0)).abs() < 1e-12);
    assert_eq!(col(&e, &row, "label_rate_c"), 0.0, "category n is clean");

    e.apply_label(
        &keys,
        400 * MICROS_PER_SECOND,
        LabelChange::Retracted {
            since: 150 * MICROS_PER_SECOND,
        },
    );
    e.process(&record("a", 500, 1.0, "n", 0.0, 0.0), &mut row);
    assert!(col(&e, &row, "label_rate").abs() < 1e-12, "taken back");
}

/// Regression: a label known after an event must not change that event's
/// features in the batch driver (the point-in-time rule), while one known
/// before must.
#[test]
fn regression_batch_labels_known_after_an_event_do_not_reach_it() {
    let s = schema(ALL_KINDS);
    let recs: Vec<Record> = (0..4)
        .map(|i| record("a", 100 + 100 * i, 1.0, "m", 0.0, 0.0))
        .collect();
    let rate = |at: i64| {
        let (m, _) = FeatureEngine::new(s.clone())
            .batch_with_labels(
                &recs,
                &[LabelFeed {
                    row: 0,
                    at: at * MICROS_PER_SECOND,
                    change: LabelChange::Fraud,
                }],
            )
            .unwrap();
        let e = FeatureEngine::new(s.clone());
        (0..4)
            .map(|i| col(&e, m.row(i), "label_rate"))
            .collect::<Vec<_>>()
    };
    let known_at_250 = rate(250);
    assert_eq!(known_at_250[1], 0.0, "the event at 200 s came before");
    assert!(known_at_250[2] > 0.0, "the event at 300 s came after");
    let known_at_300 = rate(300);
    assert!(
        known_at_300[2] > 0.0,
        "known at the event's own time counts"
    );
    let known_later = rate(10_000);
    assert!(known_later.iter().all(|&v| v == 0.0));
}

#[test]
fn keys_must_be_declared_category_fields_on_stateful_kinds() {
    let base = "[streams.s]\nentity = \"e\"\n[streams.s.fields]\nx = { type = \"float\" }\nm = { type = \"category\" }\n[[streams.s.features]]\n";
    let err = |feature: &str| {
        let text = format!("{base}{feature}");
        let (name, config) = parse_streams(&text).unwrap().into_iter().next().unwrap();
        config.build(&name).unwrap_err().to_string()
    };
    assert!(
        err("kind = \"count\"\nwindow_seconds = 60\nkey = \"nope\"")
            .contains("`key` names field `nope`")
    );
    assert!(
        err("kind = \"count\"\nwindow_seconds = 60\nkey = \"x\"").contains("must be a category")
    );
    assert!(
        err("kind = \"raw\"\nfield = \"x\"\nkey = \"m\"").contains("option `key` does not apply")
    );
    assert!(err("kind = \"window\"\nwindows = [60]").contains("can only `count`"));
    assert!(err("kind = \"window\"\nfield = \"x\"").contains("needs `windows`"));
    assert!(
        err("kind = \"baseline_ratio\"\nwindow_seconds = 600\nbaseline_seconds = 60")
            .contains("must be longer")
    );
}

#[test]
fn late_events_are_processed_at_the_entitys_latest_time() {
    let mut e = FeatureEngine::new(schema(ALL_KINDS));
    let mut row = vec![0.0; e.width()];
    e.process(&record("a", 1000, 1.0, "x", 0.0, 0.0), &mut row);
    e.process(&record("a", 900, 1.0, "x", 0.0, 1.0), &mut row);
    assert_eq!(col(&e, &row, "time_since_last"), 0.0);
    // Zero elapsed time: speed uses the one-second floor.
    assert!((col(&e, &row, "speed") - col(&e, &row, "distance") * 3600.0).abs() < 1e-6);
    e.process(&record("a", 1010, 1.0, "x", 0.0, 1.0), &mut row);
    assert_eq!(col(&e, &row, "count"), 2.0);
    assert_eq!(col(&e, &row, "time_since_last"), 10.0);
}

#[test]
fn entities_beyond_capacity_evict_the_least_recent() {
    let mut e = FeatureEngine::new(schema(ALL_KINDS));
    let mut row = vec![0.0; e.width()];
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        e.process(&record(name, 100 + i as i64, 1.0, "x", 0.0, 0.0), &mut row);
    }
    // Touch a; e then evicts b, the least recently seen.
    e.process(&record("a", 110, 1.0, "x", 0.0, 0.0), &mut row);
    e.process(&record("e", 111, 1.0, "x", 0.0, 0.0), &mut row);
    assert_eq!(e.stats().entity_evictions, 1);
    assert_eq!(e.entities(), 4);
    e.process(&record("a", 112, 1.0, "x", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "time_since_last"), 2.0, "a kept its history");
    e.process(&record("b", 113, 1.0, "x", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "time_since_last"), 500.0, "b was evicted");
}

#[test]
fn category_sets_and_ttl_are_bounded() {
    let mut e = FeatureEngine::new(schema(ALL_KINDS));
    let mut row = vec![0.0; e.width()];
    for (i, c) in ["p", "q", "r", "s"].iter().enumerate() {
        e.process(&record("a", 100 + i as i64, 1.0, c, 0.0, 0.0), &mut row);
    }
    assert_eq!(e.stats().category_evictions, 1, "cap 3: p was evicted by s");
    e.process(&record("a", 110, 1.0, "q", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "novelty_c"), 0.0);
    e.process(&record("a", 111, 1.0, "p", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "novelty_c"), 1.0);
    // Unseen for longer than the TTL (1000 s): a fresh history.
    e.process(&record("a", 5000, 1.0, "p", 0.0, 0.0), &mut row);
    assert_eq!(col(&e, &row, "time_since_last"), 500.0);
    // Both the card and the category `p` (the second key) start afresh.
    assert_eq!(e.stats().entity_resets, 2);
}

#[test]
fn peek_reads_without_changing_state() {
    let mut e = FeatureEngine::new(schema(ALL_KINDS));
    let mut row = vec![0.0; e.width()];
    let mut peeked = vec![0.0; e.width()];
    e.process(&record("a", 100, 1.0, "x", 0.0, 0.0), &mut row);
    let next = record("a", 130, 7.0, "y", 1.0, 1.0);
    let before = e.checkpoint();
    e.peek(&next, &mut peeked);
    assert_eq!(e.checkpoint(), before);
    e.process(&next, &mut row);
    assert_eq!(peeked, row);
    let mut fresh = vec![0.0; e.width()];
    e.peek(&record("zz", 130, 7.0, "y", 1.0, 1.0), &mut fresh);
    assert_eq!(col(&e, &fresh, "novelty_c"), 1.0);
}

#[test]
fn checkpoints_refuse_another_declaration_and_corruption() {
    let e = FeatureEngine::new(schema(ALL_KINDS));
    let other = FeatureEngine::new(schema(
        &ALL_KINDS.replace("window_seconds = 60", "window_seconds = 61"),
    ));
    let mut other2 = other.clone();
    assert!(matches!(
        other2.restore(&e.checkpoint()),
        Err(CheckpointError::WrongStream { .. })
    ));
    let mut bytes = e.checkpoint();
    let last = bytes.len() - 6;
    bytes[last] ^= 1;
    let mut e2 = e.clone();
    assert!(e2.restore(&bytes).is_err());
    assert!(e2.restore(b"garbage").is_err());
}

#[derive(Debug, Clone)]
struct Ev {
    entity: u8,
    dt: i64,
    x: f64,
    c: u8,
    lat: f64,
    lon: f64,
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (
            0u8..7,
            -60i64..400,
            -1000.0f64..1000.0,
            0u8..6,
            -80.0f64..80.0,
            -170.0f64..170.0,
        )
            .prop_map(|(entity, dt, x, c, lat, lon)| Ev {
                entity,
                dt,
                x,
                c,
                lat,
                lon,
            }),
        1..300,
    )
}

fn records(evs: &[Ev]) -> Vec<Record> {
    let mut t = 1_700_000_000i64;
    evs.iter()
        .map(|ev| {
            t += ev.dt;
            record(
                &format!("entity-{}", ev.entity),
                t,
                ev.x,
                &format!("cat{}", ev.c),
                ev.lat,
                ev.lon,
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any split into batches, with a checkpoint and restore into a new
    /// engine at any boundary, gives the rows of one uninterrupted pass, bit
    /// for bit.
    #[test]
    fn batches_and_checkpoints_match_one_pass(
        evs in events(),
        cuts in prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..8),
    ) {
        let s = schema(ALL_KINDS);
        let recs = records(&evs);
        let whole = FeatureEngine::new(s.clone()).batch(&recs).unwrap();

        let mut bounds: Vec<(usize, bool)> = cuts.iter().map(|(i, restore)| (i.index(recs.len() + 1), *restore)).collect();
        bounds.sort();
        let mut engine = FeatureEngine::new(s.clone());
        let mut rows: Vec<f64> = Vec::new();
        let mut start = 0;
        for (end, restore) in bounds.into_iter().chain([(recs.len(), false)]) {
            let part = engine.batch(&recs[start..end]).unwrap();
            rows.extend_from_slice(part.data());
            start = end;
            if restore {
                let mut fresh = FeatureEngine::new(s.clone());
                fresh.restore(&engine.checkpoint()).unwrap();
                prop_assert_eq!(fresh.checkpoint(), engine.checkpoint());
                engine = fresh;
            }
        }
        let a: Vec<u64> = whole.data().iter().map(|v| v.to_bits()).collect();
        let b: Vec<u64> = rows.iter().map(|v| v.to_bits()).collect();
        prop_assert_eq!(a, b);
    }

    /// Labels fed to a live engine as they become known (with checkpoints
    /// in between) give the batch driver's rows, bit for bit.
    #[test]
    fn live_labels_equal_batch_labels(
        evs in events(),
        marks in prop::collection::vec((any::<prop::sample::Index>(), 0i64..2000, any::<bool>()), 0..20),
        restore_every in 1usize..50,
    ) {
        let s = schema(ALL_KINDS);
        let recs = records(&evs);
        let mut feed: Vec<LabelFeed> = marks
            .iter()
            .map(|(i, delay, fraud)| {
                let row = i.index(recs.len());
                let at = recs[row].ts + delay * MICROS_PER_SECOND;
                let change = if *fraud {
                    LabelChange::Fraud
                } else {
                    LabelChange::Retracted { since: recs[row].ts }
                };
                LabelFeed { row, at, change }
            })
            .collect();
        feed.sort_by_key(|l| l.at);
        let (whole, _) = FeatureEngine::new(s.clone()).batch_with_labels(&recs, &feed).unwrap();

        let mut e = FeatureEngine::new(s.clone());
        let mut row = vec![0.0; e.width()];
        let mut next = 0;
        for (i, r) in recs.iter().enumerate() {
            while let Some(l) = feed.get(next) && l.at <= r.ts && l.row < i {
                let keys = e.label_keyer().keys(&recs[l.row]);
                e.apply_label(&keys, l.at, l.change);
                next += 1;
            }
            e.process(r, &mut row);
            prop_assert!(row.iter().all(|v| v.is_finite()));
            let expected: Vec<u64> = whole.row(i).iter().map(|v| v.to_bits()).collect();
            let got: Vec<u64> = row.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(expected, got);
            if i % restore_every == 0 {
                let mut fresh = FeatureEngine::new(s.clone());
                fresh.restore(&e.checkpoint()).unwrap();
                e = fresh;
            }
        }
    }

    /// The incremental driver, one record at a time, equals the batch driver.
    #[test]
    fn incremental_equals_batch(evs in events()) {
        let s = schema(ALL_KINDS);
        let recs = records(&evs);
        let whole = FeatureEngine::new(s.clone()).batch(&recs).unwrap();
        let mut e = FeatureEngine::new(s);
        let mut row = vec![0.0; e.width()];
        for (i, r) in recs.iter().enumerate() {
            e.process(r, &mut row);
            prop_assert!(row.iter().all(|v| v.is_finite()));
            let expected: Vec<u64> = whole.row(i).iter().map(|v| v.to_bits()).collect();
            let got: Vec<u64> = row.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(expected, got);
        }
    }
}

/// Two 16-byte printable keys with the same unkeyed [`hash64`]: its
/// word step is invertible, so the second word of one key can be solved
/// to bring its state to the other's.
fn keys_colliding_under_hash64() -> (String, String) {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let h0: u64 = 0x243F_6A88_85A3_08D3 ^ 16u64.wrapping_mul(K);
    let step = |h: u64, w: &[u8]| {
        (h ^ u64::from_le_bytes(w.try_into().unwrap()))
            .wrapping_mul(K)
            .rotate_left(29)
    };
    let a = *b"card-0000-victim";
    let after_a = step(h0, &a[..8]);
    let a2 = u64::from_le_bytes(a[8..].try_into().unwrap());
    const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for n in 0u64.. {
        // Every byte varies (a fixed low byte would fix one of the solved
        // second word's bytes after the multiply and rotate).
        let b1: String = (0..8)
            .map(|i| ALNUM[((n >> (6 * i)) % 62) as usize] as char)
            .collect();
        let b2 = (after_a ^ a2 ^ step(h0, b1.as_bytes())).to_le_bytes();
        if b2.iter().all(|c| c.is_ascii_alphanumeric()) {
            let b = format!("{b1}{}", std::str::from_utf8(&b2).unwrap());
            return (String::from_utf8(a.to_vec()).unwrap(), b);
        }
    }
    unreachable!()
}

#[test]
fn regression_a_crafted_entity_key_could_share_another_entitys_state() {
    let (victim, crafted) = keys_colliding_under_hash64();
    assert_ne!(victim, crafted);
    assert_eq!(hash64(victim.as_bytes()), hash64(crafted.as_bytes()));
    let secret = EntityHasher::new(*b"a deployment key");
    let mut engine = FeatureEngine::new(schema(ALL_KINDS)).with_entity_hasher(secret);
    let mut row = vec![0.0; engine.width()];
    for t in 0..3 {
        engine.process(&record(&victim, 100 + t, 5.0, "a", 0.0, 0.0), &mut row);
    }
    // The crafted key starts its own history: nothing of the victim's.
    assert_eq!(
        engine.process(&record(&crafted, 104, 5.0, "a", 0.0, 0.0), &mut row),
        0
    );
    assert_eq!(
        engine.process(&record(&victim, 105, 5.0, "a", 0.0, 0.0), &mut row),
        3
    );
}

#[test]
fn checkpoints_are_read_only_under_the_secret_they_were_kept_under() {
    let keyed = |k: u8| {
        FeatureEngine::new(schema(ALL_KINDS)).with_entity_hasher(EntityHasher::new([k; 16]))
    };
    let mut engine = keyed(1);
    let mut row = vec![0.0; engine.width()];
    engine.process(&record("card", 100, 5.0, "a", 0.0, 0.0), &mut row);
    let bytes = engine.checkpoint();
    assert!(matches!(
        keyed(2).restore(&bytes),
        Err(CheckpointError::WrongSecret { .. })
    ));
    let mut same = keyed(1);
    same.restore(&bytes).unwrap();
    assert_eq!(
        same.process(&record("card", 101, 5.0, "a", 0.0, 0.0), &mut row),
        1
    );
    // A checkpoint of the unkeyed format is refused with what to do.
    let mut old = bytes.clone();
    old[10] = 1; // the envelope's kind
    let len = old.len() - 4;
    let crc = crc32c::crc32c(&old[..len]);
    old[len..].copy_from_slice(&crc.to_le_bytes());
    let e = keyed(1).restore(&old).unwrap_err();
    assert!(matches!(e, CheckpointError::Unkeyed), "{e}");
    assert!(e.to_string().contains("remove it"));
}
