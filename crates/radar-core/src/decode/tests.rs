use super::*;
use crate::schema::parse_streams;

const DECL: &str = r#"
[streams.tx]
timestamp = "ts"
entity = "card"
id = "id"
max_event_bytes = 400

[streams.tx.fields]
amount = { type = "float", min = 0.0, max = 10000.0 }
n = { type = "int", required = false }
online = { type = "bool", required = false }
channel = { type = "category", allowed = ["pos", "web"] }
note = { type = "category", required = false }
label = { type = "bool", label = true }
"#;

fn decoder() -> Decoder {
    let (name, config) = parse_streams(DECL).unwrap().into_iter().next().unwrap();
    Decoder::new(config.build(&name).unwrap())
}

fn reason(json: &str) -> Reason {
    match decoder().decode_json(json.as_bytes(), 0) {
        Err(dl) => {
            assert_eq!(
                dl.raw,
                json.as_bytes(),
                "the dead letter keeps the raw bytes"
            );
            dl.reason
        }
        Ok(r) => panic!("{json} decoded: {r:?}"),
    }
}

const GOOD: &str = r#"{"id":"e1","ts":"2026-11-25T10:00:00Z","card":"c1","amount":12.5,"channel":"pos","extra":{"a":[1,2]}}"#;

#[test]
fn a_valid_event_decodes_into_typed_values() {
    let mut d = decoder();
    let r = d.decode_json(GOOD.as_bytes(), 0).unwrap();
    assert_eq!(r.id.as_deref(), Some("e1"));
    assert_eq!(r.entity.as_deref(), Some("c1"));
    assert_eq!(
        r.ts,
        crate::time::parse_rfc3339("2026-11-25T10:00:00Z").unwrap()
    );
    let field = |name: &str| r.values[d.schema().field_index(name).unwrap()].clone();
    assert_eq!(field("amount"), Value::Float(12.5));
    assert_eq!(field("channel"), Value::Str("pos".into()));
    assert_eq!(field("n"), Value::Missing);
    assert_eq!(field("label"), Value::Missing);
    assert_eq!(d.stats().decoded, 1);

    let r = d
        .decode_json(br#"{"id":7,"ts":1764064800,"card":123,"amount":3,"n":4.0,"online":1,"channel":"web","note":"x\"y","label":true}"#, 0)
        .unwrap();
    assert_eq!(r.entity.as_deref(), Some("123"));
    assert_eq!(r.id.as_deref(), Some("7"));
    assert_eq!(r.ts, 1_764_064_800 * MICROS_PER_SECOND);
    assert_eq!(
        r.values[d.schema().field_index("n").unwrap()],
        Value::Int(4)
    );
    assert_eq!(
        r.values[d.schema().field_index("online").unwrap()],
        Value::Bool(true)
    );
    assert_eq!(
        r.values[d.schema().field_index("note").unwrap()],
        Value::Str("x\"y".into())
    );
    // Epoch milliseconds are recognised by magnitude.
    let r = d
        .decode_json(
            br#"{"id":"a","ts":1764064800123,"card":"c","amount":1,"channel":"pos"}"#,
            0,
        )
        .unwrap();
    assert_eq!(r.ts, 1_764_064_800_123_000);
}

#[test]
fn too_large() {
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(500));
    assert_eq!(
        reason(&big),
        Reason::TooLarge {
            size: big.len(),
            limit: 400
        }
    );
}

#[test]
fn not_json() {
    for bad in ["{\"id\":", "hello", "", "{\"a\":1}}", "{\"a\":\"\u{1}\"}"] {
        let r = reason(bad);
        assert_eq!(r.code(), "not_json", "{bad}: {r}");
    }
    assert_eq!(
        reason("[1,2]"),
        Reason::NotAnObject {
            found: "an array".into()
        }
    );
    assert_eq!(
        reason("42"),
        Reason::NotAnObject {
            found: "a number".into()
        }
    );
    assert_eq!(
        reason("\"s\""),
        Reason::NotAnObject {
            found: "a string".into()
        }
    );
}

#[test]
fn missing_fields_are_named() {
    let r = reason(r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","channel":"pos"}"#);
    assert_eq!(
        r,
        Reason::Missing {
            field: "amount".into()
        }
    );
    assert_eq!(r.to_string(), "field `amount` is missing");
    let r = reason(r#"{"id":"e","card":"c","amount":1,"channel":"pos"}"#);
    assert_eq!(r, Reason::Missing { field: "ts".into() });
    let r = reason(r#"{"id":"e","ts":"2026-11-25T10:00:00Z","amount":1,"channel":"pos"}"#);
    assert_eq!(
        r,
        Reason::Missing {
            field: "card".into()
        }
    );
    // JSON null is missing too.
    let r = reason(
        r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":null,"channel":"pos"}"#,
    );
    assert_eq!(
        r,
        Reason::Missing {
            field: "amount".into()
        }
    );
}

#[test]
fn wrong_types_are_named() {
    let r = reason(
        r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":"12","channel":"pos"}"#,
    );
    assert_eq!(
        r.to_string(),
        "field `amount`: expected a number, found a string"
    );
    let r =
        reason(r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":1,"channel":["pos"]}"#);
    assert_eq!(
        r.to_string(),
        "field `channel`: expected a string, found an array"
    );
    let r = reason(
        r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":1,"n":1.5,"channel":"pos"}"#,
    );
    assert_eq!(r.code(), "wrong_type");
    assert_eq!(r.field(), Some("n"));
    let r = reason(
        r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":{"k":1},"amount":1,"channel":"pos"}"#,
    );
    assert_eq!(r.field(), Some("card"));
    let r = reason(
        r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":1,"online":"yes","channel":"pos"}"#,
    );
    assert_eq!(
        r.to_string(),
        "field `online`: expected a boolean (or 0/1), found a string"
    );
}

#[test]
fn unparseable_timestamps_are_named() {
    let r = reason(r#"{"id":"e","ts":"yesterday","card":"c","amount":1,"channel":"pos"}"#);
    assert_eq!(r.code(), "bad_timestamp");
    assert!(
        r.to_string()
            .starts_with("field `ts`: `yesterday` is not an RFC 3339 timestamp"),
        "{r}"
    );
    let r =
        reason(r#"{"id":"e","ts":"2026-02-30T00:00:00Z","card":"c","amount":1,"channel":"pos"}"#);
    assert_eq!(r.field(), Some("ts"));
    let r = reason(r#"{"id":"e","ts":true,"card":"c","amount":1,"channel":"pos"}"#);
    assert_eq!(
        r.to_string(),
        "field `ts`: expected a timestamp, found a boolean"
    );
}

#[test]
fn out_of_range_values_are_named() {
    let r =
        reason(r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":-3,"channel":"pos"}"#);
    assert_eq!(
        r.to_string(),
        "field `amount`: -3 is out of range [0, 10000]"
    );
    assert_eq!(r.code(), "out_of_range");
}

#[test]
fn values_not_allowed_are_named() {
    let r =
        reason(r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":1,"channel":"atm"}"#);
    assert_eq!(
        r.to_string(),
        "field `channel`: `atm` is not an allowed value"
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let r = reason(
        r#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","amount":1,"amount":2,"channel":"pos"}"#,
    );
    assert_eq!(
        r,
        Reason::Duplicate {
            field: "amount".into()
        }
    );
}

#[test]
fn every_outcome_is_counted() {
    let mut d = decoder();
    d.decode_json(GOOD.as_bytes(), 0).unwrap();
    d.decode_json(b"nope", 0).unwrap_err();
    d.decode_json(b"[]", 0).unwrap_err();
    d.decode_json(
        br#"{"id":"e","ts":"2026-11-25T10:00:00Z","card":"c","channel":"pos"}"#,
        0,
    )
    .unwrap_err();
    assert_eq!(d.stats().decoded, 1);
    assert_eq!(d.stats().dead_letter_count("not_json"), 1);
    assert_eq!(d.stats().dead_letter_count("not_an_object"), 1);
    assert_eq!(d.stats().dead_letter_count("missing"), 1);
    assert_eq!(d.stats().total_dead_letters(), 3);
}

#[test]
fn csv_cells_decode_like_json() {
    let mut d = decoder();
    let header = ["id", "ts", "card", "amount", "channel", "n", "label"];
    let r = d
        .decode_cells(
            &header,
            &["e1", "2026-11-25T10:00:00Z", "c1", "12.5", "pos", "", "1"],
            b"line",
            0,
        )
        .unwrap();
    assert_eq!(
        r,
        decoder()
            .decode_json(GOOD.as_bytes(), 0)
            .map(|mut g| {
                g.values[d.schema().field_index("label").unwrap()] = Value::Bool(true);
                g
            })
            .unwrap()
    );
    let err = d
        .decode_cells(
            &header,
            &["e1", "2026-11-25T10:00:00Z", "c1", "lots", "pos", "", ""],
            b"line 2",
            0,
        )
        .unwrap_err();
    assert_eq!(
        err.reason.to_string(),
        "field `amount`: expected a number, found a string"
    );
    assert_eq!(err.raw, b"line 2");
    let err = d
        .decode_cells(
            &header,
            &["e1", "2026-11-25T10:00:00Z", "c1", "inf", "pos", "", ""],
            b"l",
            0,
        )
        .unwrap_err();
    assert_eq!(
        err.reason.to_string(),
        "field `amount`: expected a finite number, found NaN or infinity"
    );
}

#[test]
fn streams_without_a_timestamp_use_ingest_time() {
    let (name, config) = parse_streams("[streams.t.fields]\nx = { type = \"float\" }\n")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let mut d = Decoder::new(config.build(&name).unwrap());
    let r = d.decode_json(br#"{"x": 1}"#, 42).unwrap();
    assert_eq!(r.ts, 42);
    assert_eq!(r.entity, None);
}

#[test]
fn records_round_trip_through_json() {
    let mut d = decoder();
    let r = d
        .decode_json(br#"{"id":"a","ts":"2026-11-25T10:00:00.123456Z","card":"c","amount":1.25,"n":3,"online":true,"channel":"web","label":false}"#, 0)
        .unwrap();
    let json = r.to_json(d.schema());
    let back = decoder().decode_json(json.as_bytes(), 0).unwrap();
    assert_eq!(back, r);
}

/// The bug: an event dated beyond year 9999 (or an absurd epoch) was
/// accepted; it landed in a lake partition the lake could not list back
/// (it vanished from training) and froze its entity's clock. Event time is
/// bounded at decode, with a reason naming the field and the bounds.
#[test]
fn regression_event_time_beyond_year_9999_was_accepted() {
    let decl = r#"
[streams.s]
timestamp = "ts"
[streams.s.fields]
v = { type = "float" }
[[streams.s.features]]
kind = "raw"
field = "v"
"#;
    let (name, c) = crate::schema::parse_streams(decl)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let schema = c.build(&name).unwrap();
    let mut d = Decoder::new(schema);
    for ts in [
        "\"10000-01-01T00:00:00Z\"",
        "\"2150-06-01T00:00:00Z\"",
        "99999999999999999",
        "\"1969-12-31T23:59:59Z\"",
    ] {
        let raw = format!("{{\"ts\":{ts},\"v\":1}}");
        let dl = d.decode_json(raw.as_bytes(), 0).unwrap_err();
        assert_eq!(dl.reason.code(), "bad_timestamp", "{ts}: {}", dl.reason);
        assert_eq!(dl.reason.field(), Some("ts"));
    }
    let dl = d
        .decode_json(br#"{"ts":"2150-06-01T00:00:00Z","v":1}"#, 0)
        .unwrap_err();
    assert!(
        dl.reason.to_string().contains("event_time_max"),
        "{}",
        dl.reason
    );
    assert!(
        d.decode_json(br#"{"ts":"2099-12-31T23:59:59Z","v":1}"#, 0)
            .is_ok()
    );
    // The bounds are the declaration's to set.
    let narrow = decl.replace(
        "timestamp = \"ts\"",
        "timestamp = \"ts\"\nevent_time_min = \"2020-01-01T00:00:00Z\"\nevent_time_max = \"2030-01-01T00:00:00Z\"",
    );
    let (name, c) = crate::schema::parse_streams(&narrow)
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let mut d = Decoder::new(c.build(&name).unwrap());
    assert!(
        d.decode_json(br#"{"ts":"2019-06-01T00:00:00Z","v":1}"#, 0)
            .is_err()
    );
    assert!(
        d.decode_json(br#"{"ts":"2025-06-01T00:00:00Z","v":1}"#, 0)
            .is_ok()
    );
}
