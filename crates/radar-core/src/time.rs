//! Event time: UTC microseconds since the Unix epoch inside, RFC 3339 on the
//! wire. Hand-written so the core needs no date crate.

pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// The wall clock in UTC microseconds (0 before 1970).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

/// Parses an RFC 3339 timestamp (`2026-11-25T13:50:30.123Z`,
/// `2026-11-25 13:50:30+01:00`) into UTC microseconds. Fractions beyond
/// microseconds are truncated; a time without an offset is read as UTC.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let bad = || format!("`{s}` is not an RFC 3339 timestamp (like 2026-11-25T13:50:30Z)");
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let year = digits(b, 0, 4).ok_or_else(bad)? as i64;
    let month = digits(b, 5, 2).ok_or_else(bad)?;
    let day = digits(b, 8, 2).ok_or_else(bad)?;
    let hour = digits(b, 11, 2).ok_or_else(bad)?;
    let minute = digits(b, 14, 2).ok_or_else(bad)?;
    let second = digits(b, 17, 2).ok_or_else(bad)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(format!("`{s}` is not a valid date and time"));
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        for _ in (i - start).min(6)..6 {
            micros *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i) {
        // No offset: read as UTC (NAB and many CSV exports write times so).
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = digits(b, i + 1, 2).ok_or_else(bad)? as i64;
            let om = digits(b, i + 4, 2).ok_or_else(bad)? as i64;
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let off = oh * 3600 + om * 60;
            if sign == b'+' { off } else { -off }
        }
        _ => return Err(bad()),
    };
    // A leap second (:60) is read as the next second.
    let secs = days_from_civil(year, month, day) * 86_400
        + hour as i64 * 3600
        + minute as i64 * 60
        + second as i64
        - offset_secs;
    Ok(secs * MICROS_PER_SECOND + micros)
}

/// Formats UTC microseconds as RFC 3339 with microseconds when non-zero.
pub fn format_rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SECOND);
    let frac = micros.rem_euclid(MICROS_PER_SECOND);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, (sod % 3600) / 60, sod % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:06}Z")
    }
}

/// A duration written `30s`, `2m`, `250ms` or plain seconds; positive.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = match s.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => [('s', 1.0), ('m', 60.0), ('h', 3600.0), ('d', 86_400.0)]
            .into_iter()
            .find_map(|(u, secs)| s.strip_suffix(u).map(|n| (n, secs)))
            .unwrap_or((s, 1.0)),
    };
    let v: f64 = num.trim().parse().map_err(|_| {
        format!("expected `30s`, `2m`, `12h`, `90d`, `250ms` or seconds, got `{s}`")
    })?;
    if !(v > 0.0 && v.is_finite()) {
        return Err(format!("must be positive, got `{s}`"));
    }
    Ok(std::time::Duration::from_secs_f64(v * unit))
}

/// Seconds into the UTC day, as a fraction of 24 hours' worth of hours.
pub fn hour_of_day(micros: i64) -> f64 {
    micros.rem_euclid(86_400 * MICROS_PER_SECOND) as f64 / (3600.0 * MICROS_PER_SECOND as f64)
}

/// Day of week with its fraction, Monday = 0.
pub fn day_of_week(micros: i64) -> f64 {
    let day = 86_400 * MICROS_PER_SECOND;
    // 1970-01-01 was a Thursday (3).
    let days = micros.div_euclid(day) + 3;
    days.rem_euclid(7) as f64 + micros.rem_euclid(day) as f64 / day as f64
}

/// Whole hour of the UTC day, 0..24.
pub fn hour_index(micros: i64) -> usize {
    (micros.rem_euclid(86_400 * MICROS_PER_SECOND) / (3600 * MICROS_PER_SECOND)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_known_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_rfc3339("2026-11-25T13:50:30Z").unwrap(),
            1_795_614_630 * MICROS_PER_SECOND
        );
        assert_eq!(
            parse_rfc3339("2026-11-25T14:50:30.5+01:00").unwrap(),
            1_795_614_630 * MICROS_PER_SECOND + 500_000
        );
        assert_eq!(parse_rfc3339("1969-12-31 23:59:59.999999Z").unwrap(), -1);
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00.123456789Z").unwrap() % 1_000_000,
            123_456
        );
        assert_eq!(
            parse_rfc3339("2014-04-01 00:00:00").unwrap(),
            parse_rfc3339("2014-04-01T00:00:00Z").unwrap()
        );
    }

    #[test]
    fn rejects_malformed_and_impossible_dates() {
        for s in [
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25",
            "yesterday",
            "2026-11-25T13:50:30.Z",
            "2026-11-25T13:50:30+1:00",
        ] {
            assert!(parse_rfc3339(s).is_err(), "{s}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30s").unwrap(),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            parse_duration("2m").unwrap(),
            std::time::Duration::from_secs(120)
        );
        assert_eq!(
            parse_duration("250ms").unwrap(),
            std::time::Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("1.5").unwrap(),
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(
            parse_duration("12h").unwrap(),
            std::time::Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            parse_duration("90d").unwrap(),
            std::time::Duration::from_secs(90 * 86_400)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-3s").is_err());
    }

    #[test]
    fn calendar_helpers() {
        // 2026-11-25 is a Wednesday (2).
        let t = parse_rfc3339("2026-11-25T18:00:00Z").unwrap();
        assert_eq!(hour_index(t), 18);
        assert!((hour_of_day(t) - 18.0).abs() < 1e-12);
        assert!((day_of_week(t) - 2.75).abs() < 1e-12);
        assert_eq!(hour_index(-1), 23);
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(micros in -62_135_596_800_000_000i64..253_402_300_799_000_000i64) {
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(micros)).unwrap(), micros);
        }
    }
}
