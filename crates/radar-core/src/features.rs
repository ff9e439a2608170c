//! The feature engine: one implementation for training backfill and live
//! scoring.
//!
//! The features of an event are computed from the state its entity's earlier
//! events left, then the event updates that state. [`FeatureEngine::process`]
//! is the incremental driver (one record in, one row out);
//! [`FeatureEngine::batch`] is the batch driver, the same code in a loop.
//! State is checkpointed and restored bit for bit, so a scorer that restarts
//! from a checkpoint produces exactly the rows an uninterrupted pass would.
//!
//! Out-of-order events: an entity's clock never goes back. An event older
//! than its entity's latest one is processed at the latest time (so it sees
//! a zero time gap and lands last in the entity's window history); its own
//! timestamp still drives hour-of-day and day-of-week.
//!
//! State is bounded: at most `max_entities` entities (the least recently
//! seen is evicted, counted in [`EngineStats::entity_evictions`]), a fixed
//! number of timestamps and categories per entity (least recently used
//! category evicted, counted in [`EngineStats::category_evictions`]).

use crate::binary::{DecodeError, Envelope, Reader, Writer};
use crate::decode::{Record, Value};
use crate::hash::{EntityHasher, hash64};
use crate::matrix::{Matrix, MatrixError};
use crate::schema::{Aggregate, CategorySource, Feature, StreamSchema};
use crate::time::{self, MICROS_PER_SECOND};

const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Signed log1p: finite for every finite input, odd, monotone.
#[inline]
pub fn signed_log1p(x: f64) -> f64 {
    x.signum() * x.abs().ln_1p()
}

/// The hash of a field's value as a category or a key (a missing value
/// hashes to 0).
fn value_hash(v: &Value) -> u64 {
    match v {
        Value::Str(s) => hash64(s.as_bytes()),
        Value::Int(v) => hash64(&v.to_le_bytes()),
        Value::Bool(b) => *b as u64,
        Value::Float(v) => hash64(&v.to_bits().to_le_bytes()),
        Value::Missing => 0,
    }
}

/// Where an event's state is kept for one key: the keyed hash of the
/// stream's entity, or of the key field's value (events without it share
/// one history). Keyed, so that a crafted key cannot choose its slot.
fn entity_key(entities: &EntityHasher, record: &Record, key: Option<usize>) -> u64 {
    match key {
        None => record
            .entity
            .as_deref()
            .map_or(0, |e| entities.hash(e.as_bytes())),
        Some(f) => match &record.values[f] {
            Value::Str(s) => entities.hash(s.as_bytes()),
            Value::Int(v) => entities.hash(&v.to_le_bytes()),
            Value::Float(v) => entities.hash(&v.to_bits().to_le_bytes()),
            Value::Bool(b) => *b as u64,
            Value::Missing => 0,
        },
    }
}

/// Great-circle distance in km (haversine).
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Ewma {
    offset: usize,
    field: usize,
    alpha: f64,
    log1p: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Loc {
    offset: usize,
    lat: usize,
    lon: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct CategorySet {
    offset: usize,
    source: CategorySource,
    cap: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Lag {
    offset: usize,
    field: usize,
    k: usize,
}

/// Decayed (sum, count, max) of each window of a `window` feature.
#[derive(Debug, Clone, PartialEq)]
struct Win {
    offset: usize,
    field: Option<usize>,
    log1p: bool,
    windows: Vec<u64>,
}

/// Decayed recent and long-run sums of a `baseline_ratio` feature.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ratio {
    offset: usize,
    field: Option<usize>,
    log1p: bool,
    fast: u64,
    slow: u64,
    min_events: u32,
}

/// The last time each of up to `cap` values was seen.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recent {
    offset: usize,
    source: CategorySource,
    cap: usize,
    window: u64,
}

/// Decayed known-fraud and event masses of a `label_rate` feature, and
/// the time they were decayed to (labels move it as well as events).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    offset: usize,
    window: u64,
}

impl Rate {
    /// (fraud, events) decayed to `at` (never back in time), and that time.
    fn decayed(&self, state: &[u64], at: i64) -> (f64, f64, i64) {
        let clock = state[self.offset + 2] as i64;
        let now = at.max(clock);
        let d = (-((now - clock) as f64) / (self.window as f64 * MICROS_PER_SECOND as f64)).exp();
        (
            f64::from_bits(state[self.offset]) * d,
            f64::from_bits(state[self.offset + 1]) * d,
            now,
        )
    }

    fn store(&self, state: &mut [u64], fraud: f64, events: f64, at: i64) {
        state[self.offset] = fraud.to_bits();
        state[self.offset + 1] = events.to_bits();
        state[self.offset + 2] = at as u64;
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Raw(usize),
    Log1p(usize),
    HourOfDay,
    DayOfWeek,
    Count {
        window_seconds: u64,
    },
    EwmaMean(usize),
    EwmaStd(usize),
    Zscore {
        ewma: usize,
        min_events: u32,
    },
    TimeSinceLast {
        cap_seconds: u64,
    },
    Distance(usize),
    Speed(usize),
    Novelty(usize),
    Frequency {
        set: usize,
        surprise: bool,
    },
    HourFrequency {
        surprise: bool,
    },
    Lag(usize),
    Window {
        win: usize,
        at: usize,
        agg: Aggregate,
    },
    Ratio(usize),
    Age {
        cap_seconds: u64,
    },
    Distinct(usize),
    LabelRate(usize),
}

/// A share count/n as itself, or as surprise −ln((count + ½) / (n + 1)).
#[inline]
fn share(count: u32, n: u32, surprise: bool) -> f64 {
    if surprise {
        -((count as f64 + 0.5) / (n as f64 + 1.0)).ln()
    } else if n == 0 {
        0.0
    } else {
        count as f64 / n as f64
    }
}

// Fixed words of every entity's state.
const HEADER: usize = 0; // n_events u32 | ring length u8 << 32 | ring head u8 << 40
const LAST_TS: usize = 1;
const FIXED_WORDS: usize = 2;

/// What one record needs in several places, computed once: EWMA inputs,
/// category hashes with their slots in the entity's sets, the hour.
#[derive(Debug, Clone, Default)]
struct Prepared {
    hour: usize,
    ewma_x: Vec<f64>,
    set_hash: Vec<u32>,
    set_pos: Vec<Option<usize>>,
    /// Per window of every `window` feature: (sum, count, max) with this
    /// event included.
    win_vals: Vec<[f64; 3]>,
    /// Per `baseline_ratio`: (recent sum with this event, long-run sum
    /// without it).
    ratio_vals: Vec<(f64, f64)>,
    recent_hash: Vec<u32>,
}

/// The layout of an entity's state and the compiled features.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    words: usize,
    ring: Option<(usize, usize)>, // (offset, capacity in timestamps)
    hour_profile: Option<usize>,
    ewmas: Vec<Ewma>,
    locs: Vec<Loc>,
    sets: Vec<CategorySet>,
    lags: Vec<Lag>,
    wins: Vec<Win>,
    ratios: Vec<Ratio>,
    recents: Vec<Recent>,
    rates: Vec<Rate>,
    first_seen: Option<usize>,
    /// Each op with the first output column it writes.
    ops: Vec<(Op, usize)>,
    defaults: Vec<f64>,
    ttl_micros: Option<i64>,
}

impl Plan {
    /// The plan of the features `members` (indices into the schema's
    /// features, all keyed alike); `starts[i]` is feature i's first column.
    fn new(schema: &StreamSchema, members: &[usize], starts: &[usize]) -> Plan {
        let features: Vec<&Feature> = members.iter().map(|&i| &schema.features[i]).collect();
        let mut words = FIXED_WORDS;
        let mut alloc = |n: usize| {
            let at = words;
            words += n;
            at
        };
        let needs_ring = features.iter().any(|f| matches!(f, Feature::Count { .. }));
        let ring = needs_ring.then(|| (alloc(schema.history.div_ceil(2)), schema.history));
        let hour_profile = features
            .iter()
            .any(|f| matches!(f, Feature::HourFrequency { .. }))
            .then(|| alloc(3));
        let first_seen = features
            .iter()
            .any(|f| matches!(f, Feature::Age { .. } | Feature::BaselineRatio { .. }))
            .then(|| alloc(1));
        let mut wins: Vec<Win> = Vec::new();
        let mut ratios: Vec<Ratio> = Vec::new();
        let mut recents: Vec<Recent> = Vec::new();
        let mut rates: Vec<Rate> = Vec::new();
        let mut ewmas: Vec<Ewma> = Vec::new();
        let mut locs: Vec<Loc> = Vec::new();
        let mut sets: Vec<CategorySet> = Vec::new();
        let mut lags: Vec<Lag> = Vec::new();
        // Features over the same inputs share state.
        let mut ewma =
            |field: usize, alpha: f64, log1p: bool, alloc: &mut dyn FnMut(usize) -> usize| {
                match ewmas
                    .iter()
                    .position(|e| e.field == field && e.alpha == alpha && e.log1p == log1p)
                {
                    Some(i) => i,
                    None => {
                        ewmas.push(Ewma {
                            offset: alloc(2),
                            field,
                            alpha,
                            log1p,
                        });
                        ewmas.len() - 1
                    }
                }
            };
        let mut ops = Vec::new();
        // Category sets are sized by the largest cap asked of them.
        let mut set_caps: Vec<(CategorySource, usize)> = Vec::new();
        for f in &features {
            if let Feature::Novelty {
                source,
                max_categories,
            }
            | Feature::Frequency {
                source,
                max_categories,
                ..
            } = f
            {
                match set_caps.iter_mut().find(|(s, _)| s == source) {
                    Some((_, cap)) => *cap = (*cap).max(*max_categories),
                    None => set_caps.push((*source, *max_categories)),
                }
            }
        }
        for (source, cap) in set_caps {
            sets.push(CategorySet {
                offset: alloc(cap),
                source,
                cap,
            });
        }
        for (&member, f) in members.iter().zip(&features) {
            let start = starts[member];
            let op = match **f {
                Feature::Raw { field } => Op::Raw(field),
                Feature::Log1p { field } => Op::Log1p(field),
                Feature::HourOfDay => Op::HourOfDay,
                Feature::DayOfWeek => Op::DayOfWeek,
                Feature::HourFrequency { surprise } => Op::HourFrequency { surprise },
                Feature::Count { window_seconds } => Op::Count { window_seconds },
                Feature::EwmaMean {
                    field,
                    alpha,
                    log1p,
                } => Op::EwmaMean(ewma(field, alpha, log1p, &mut alloc)),
                Feature::EwmaStd {
                    field,
                    alpha,
                    log1p,
                } => Op::EwmaStd(ewma(field, alpha, log1p, &mut alloc)),
                Feature::Zscore {
                    field,
                    alpha,
                    log1p,
                    min_events,
                } => Op::Zscore {
                    ewma: ewma(field, alpha, log1p, &mut alloc),
                    min_events,
                },
                Feature::TimeSinceLast { cap_seconds } => Op::TimeSinceLast { cap_seconds },
                Feature::Distance { lat, lon } | Feature::Speed { lat, lon } => {
                    let i = match locs.iter().position(|l| l.lat == lat && l.lon == lon) {
                        Some(i) => i,
                        None => {
                            locs.push(Loc {
                                offset: alloc(1),
                                lat,
                                lon,
                            });
                            locs.len() - 1
                        }
                    };
                    if matches!(f, Feature::Distance { .. }) {
                        Op::Distance(i)
                    } else {
                        Op::Speed(i)
                    }
                }
                Feature::Novelty { source, .. } => {
                    Op::Novelty(sets.iter().position(|s| s.source == source).unwrap_or(0))
                }
                Feature::Frequency {
                    source, surprise, ..
                } => Op::Frequency {
                    set: sets.iter().position(|s| s.source == source).unwrap_or(0),
                    surprise,
                },
                Feature::Lag { field, k } => {
                    let i = match lags.iter().position(|l| l.field == field && l.k == k) {
                        Some(i) => i,
                        None => {
                            lags.push(Lag {
                                offset: alloc(k),
                                field,
                                k,
                            });
                            lags.len() - 1
                        }
                    };
                    Op::Lag(i)
                }
                Feature::Window {
                    field,
                    log1p,
                    ref windows,
                    ref aggregates,
                } => {
                    wins.push(Win {
                        offset: alloc(3 * windows.len()),
                        field,
                        log1p,
                        windows: windows.clone(),
                    });
                    let win = wins.len() - 1;
                    // Columns window-major: every aggregate of a window together.
                    for (w, col) in (0..windows.len())
                        .flat_map(|w| aggregates.iter().map(move |a| (w, *a)))
                        .zip(start..)
                    {
                        let (at, agg) = w;
                        ops.push((Op::Window { win, at, agg }, col));
                    }
                    continue;
                }
                Feature::BaselineRatio {
                    field,
                    log1p,
                    window_seconds,
                    baseline_seconds,
                    min_events,
                } => {
                    ratios.push(Ratio {
                        offset: alloc(2),
                        field,
                        log1p,
                        fast: window_seconds,
                        slow: baseline_seconds,
                        min_events,
                    });
                    Op::Ratio(ratios.len() - 1)
                }
                Feature::Age { cap_seconds } => Op::Age { cap_seconds },
                Feature::Distinct {
                    source,
                    window_seconds,
                    max_categories,
                } => {
                    recents.push(Recent {
                        offset: alloc(max_categories),
                        source,
                        cap: max_categories,
                        window: window_seconds,
                    });
                    Op::Distinct(recents.len() - 1)
                }
                Feature::LabelRate { window_seconds } => {
                    // Same window, same state: two declarations are one rate.
                    match rates.iter().position(|r| r.window == window_seconds) {
                        Some(i) => Op::LabelRate(i),
                        None => {
                            rates.push(Rate {
                                offset: alloc(3),
                                window: window_seconds,
                            });
                            Op::LabelRate(rates.len() - 1)
                        }
                    }
                }
                // Stream-wide state, kept by the engine.
                Feature::Rarity { .. } => continue,
            };
            ops.push((op, start));
        }
        Plan {
            words,
            ring,
            hour_profile,
            ewmas,
            locs,
            sets,
            lags,
            wins,
            ratios,
            recents,
            rates,
            first_seen,
            ops,
            defaults: schema
                .fields
                .iter()
                .map(|f| f.default.unwrap_or(0.0))
                .collect(),
            ttl_micros: schema
                .entity_ttl_seconds
                .map(|s| (s as i64).saturating_mul(MICROS_PER_SECOND)),
        }
    }

    #[inline]
    fn number(&self, record: &Record, field: usize) -> f64 {
        record.values[field]
            .as_f64()
            .unwrap_or(self.defaults[field])
    }

    #[inline]
    fn category(&self, record: &Record, source: CategorySource) -> u32 {
        match source {
            CategorySource::Hour => time::hour_index(record.ts) as u32,
            CategorySource::Field(i) => {
                let h = value_hash(&record.values[i]);
                (h ^ (h >> 32)) as u32
            }
        }
    }

    fn ewma_input(&self, record: &Record, e: &Ewma) -> f64 {
        let x = self.number(record, e.field);
        if e.log1p { signed_log1p(x) } else { x }
    }

    /// A `window` / `baseline_ratio` input: the field's value (log1p'd if
    /// asked), or 1 per event without a field.
    fn amount(&self, record: &Record, field: Option<usize>, log1p: bool) -> f64 {
        match field {
            None => 1.0,
            Some(f) if log1p => signed_log1p(self.number(record, f)),
            Some(f) => self.number(record, f),
        }
    }

    fn prepare(&self, state: &[u64], record: &Record, p: &mut Prepared) {
        let n = n_events(state);
        let last_ts = state[LAST_TS] as i64;
        let elapsed = if n == 0 {
            0.0
        } else {
            (record.ts.max(last_ts) - last_ts) as f64 / MICROS_PER_SECOND as f64
        };
        p.win_vals.clear();
        for w in &self.wins {
            let x = self.amount(record, w.field, w.log1p);
            for (i, &secs) in w.windows.iter().enumerate() {
                let o = w.offset + 3 * i;
                p.win_vals.push(if n == 0 {
                    [x, 1.0, x]
                } else {
                    let d = (-elapsed / secs as f64).exp();
                    [
                        f64::from_bits(state[o]) * d + x,
                        f64::from_bits(state[o + 1]) * d + 1.0,
                        (f64::from_bits(state[o + 2]) * d).max(x),
                    ]
                });
            }
        }
        p.ratio_vals.clear();
        for r in &self.ratios {
            let x = self.amount(record, r.field, r.log1p);
            let fast = f64::from_bits(state[r.offset]) * (-elapsed / r.fast as f64).exp();
            let slow = f64::from_bits(state[r.offset + 1]) * (-elapsed / r.slow as f64).exp();
            p.ratio_vals.push((fast + x, slow));
        }
        p.recent_hash.clear();
        p.recent_hash
            .extend(self.recents.iter().map(|r| self.category(record, r.source)));
        p.hour = time::hour_index(record.ts);
        p.ewma_x.clear();
        p.ewma_x
            .extend(self.ewmas.iter().map(|e| self.ewma_input(record, e)));
        p.set_hash.clear();
        p.set_pos.clear();
        for s in &self.sets {
            let h = match s.source {
                CategorySource::Hour => p.hour as u32,
                source => self.category(record, source),
            };
            p.set_hash.push(h);
            p.set_pos.push(
                state[s.offset..s.offset + s.cap]
                    .iter()
                    .position(|&w| slot_value(w) > 0 && slot_hash(w) == h),
            );
        }
    }

    /// Writes the features of `record` given its entity's state.
    fn compute(&self, state: &[u64], record: &Record, p: &Prepared, out: &mut [f64]) {
        let n = n_events(state);
        let last_ts = state[LAST_TS] as i64;
        let now = if n > 0 {
            record.ts.max(last_ts)
        } else {
            record.ts
        };
        for &(op, col) in &self.ops {
            match op {
                Op::Raw(f) => {
                    out[col] = self.number(record, f);
                }
                Op::Log1p(f) => {
                    out[col] = signed_log1p(self.number(record, f));
                }
                Op::HourOfDay => {
                    let (sin, cos) =
                        (time::hour_of_day(record.ts) * std::f64::consts::TAU / 24.0).sin_cos();
                    out[col] = sin;
                    out[col + 1] = cos;
                }
                Op::DayOfWeek => {
                    let (sin, cos) =
                        (time::day_of_week(record.ts) * std::f64::consts::TAU / 7.0).sin_cos();
                    out[col] = sin;
                    out[col + 1] = cos;
                }
                Op::Count { window_seconds } => {
                    let (offset, cap) = self.ring.unwrap_or((0, 1));
                    let horizon = seconds(now) as i64 - window_seconds as i64;
                    out[col] = (0..ring_len(state))
                        .filter(|&i| ring_get(state, offset, cap, i) as i64 > horizon)
                        .count() as f64;
                }
                Op::EwmaMean(i) => {
                    let e = &self.ewmas[i];
                    out[col] = if n == 0 {
                        p.ewma_x[i]
                    } else {
                        f64::from_bits(state[e.offset])
                    };
                }
                Op::EwmaStd(i) => {
                    let e = &self.ewmas[i];
                    out[col] = if n == 0 {
                        0.0
                    } else {
                        f64::from_bits(state[e.offset + 1]).max(0.0).sqrt()
                    };
                }
                Op::Zscore { ewma, min_events } => {
                    let e = &self.ewmas[ewma];
                    out[col] = if n < min_events.max(1) {
                        0.0
                    } else {
                        let mean = f64::from_bits(state[e.offset]);
                        let std = f64::from_bits(state[e.offset + 1]).max(0.0).sqrt();
                        let floor = 1e-6 * mean.abs().max(1.0);
                        (p.ewma_x[ewma] - mean) / std.max(floor)
                    };
                }
                Op::TimeSinceLast { cap_seconds } => {
                    out[col] = if n == 0 {
                        cap_seconds as f64
                    } else {
                        ((now - last_ts) as f64 / MICROS_PER_SECOND as f64).min(cap_seconds as f64)
                    };
                }
                Op::Distance(i) | Op::Speed(i) => {
                    let l = &self.locs[i];
                    let km = if n == 0 {
                        0.0
                    } else {
                        let (lat0, lon0) = unpack_loc(state[l.offset]);
                        haversine_km(
                            lat0,
                            lon0,
                            self.number(record, l.lat),
                            self.number(record, l.lon),
                        )
                    };
                    out[col] = if matches!(op, Op::Speed(_)) {
                        let hours = ((now - last_ts) as f64 / (3600.0 * MICROS_PER_SECOND as f64))
                            .max(1.0 / 3600.0);
                        if n == 0 { 0.0 } else { km / hours }
                    } else {
                        km
                    };
                }
                Op::Novelty(set) | Op::Frequency { set, .. } => {
                    let s = &self.sets[set];
                    let count = p.set_pos[set].map_or(0, |i| slot_value(state[s.offset + i]));
                    out[col] = match op {
                        Op::Frequency { surprise, .. } => share(count, n, surprise),
                        _ => (count == 0) as u8 as f64,
                    };
                }
                Op::HourFrequency { surprise } => {
                    let offset = self.hour_profile.unwrap_or(0);
                    let profile = hour_profile(state, offset);
                    let total: u32 = profile.iter().map(|&c| c as u32).sum();
                    out[col] = share(profile[p.hour] as u32, total, surprise);
                }
                Op::Lag(i) => {
                    let l = &self.lags[i];
                    let x = self.number(record, l.field);
                    let available = (n as usize).min(l.k);
                    for j in 1..=l.k {
                        // The j-th previous value; beyond the history, the oldest one
                        // (or the current value when there is none).
                        out[col + j - 1] = if available == 0 {
                            x
                        } else {
                            let j = j.min(available);
                            let pos = (n as usize - j) % l.k;
                            f64::from_bits(state[l.offset + pos])
                        };
                    }
                }
                Op::Window { win, at, agg } => {
                    let first: usize = self.wins[..win].iter().map(|w| w.windows.len()).sum();
                    let [sum, count, max] = p.win_vals[first + at];
                    out[col] = match agg {
                        Aggregate::Sum => sum,
                        Aggregate::Count => count,
                        Aggregate::Max => max,
                        Aggregate::Mean => sum / count,
                    };
                }
                Op::Ratio(i) => {
                    let r = &self.ratios[i];
                    out[col] = if n < r.min_events.max(1) {
                        0.0
                    } else {
                        let first = self.first_seen.map_or(0, |o| state[o]) as f64;
                        let age = (seconds(now) as f64 - first).max(1.0);
                        // Each sum over the time it could have gathered in,
                        // so a young key is not judged against a long-run
                        // sum it had no time to build.
                        let reach = |w: u64| w as f64 * -(-age / w as f64).exp_m1();
                        let (fast, slow) = p.ratio_vals[i];
                        let (recent, usual) = (fast / reach(r.fast), slow / reach(r.slow));
                        if usual > 0.0 && recent > 0.0 {
                            (recent / usual).ln().clamp(-RATIO_CAP, RATIO_CAP)
                        } else if recent > 0.0 {
                            RATIO_CAP
                        } else {
                            0.0
                        }
                    };
                }
                Op::Age { cap_seconds } => {
                    out[col] = match self.first_seen {
                        Some(o) if n > 0 => {
                            (seconds(now) as f64 - state[o] as f64).clamp(0.0, cap_seconds as f64)
                        }
                        _ => 0.0,
                    };
                }
                Op::Distinct(i) => {
                    let r = &self.recents[i];
                    let h = p.recent_hash[i];
                    let horizon = seconds(now) as i64 - r.window as i64;
                    let others = state[r.offset..r.offset + r.cap]
                        .iter()
                        .filter(|&&w| slot_value(w) as i64 > horizon.max(0) && slot_hash(w) != h)
                        .count();
                    out[col] = (others + 1).min(r.cap) as f64;
                }
                Op::LabelRate(i) => {
                    let (fraud, events, _) = self.rates[i].decayed(state, record.ts);
                    out[col] = fraud / (events + 1.0);
                }
            }
        }
    }

    /// Folds `record` into its entity's state.
    fn update(&self, state: &mut [u64], record: &Record, p: &Prepared, stats: &mut EngineStats) {
        let n = n_events(state);
        let last_ts = state[LAST_TS] as i64;
        let now = if n > 0 {
            record.ts.max(last_ts)
        } else {
            record.ts
        };
        if let Some((offset, cap)) = self.ring {
            let len = ring_len(state);
            let head = ring_head(state);
            let secs = seconds(now);
            if len < cap {
                ring_put(state, offset, (head + len) % cap, secs);
                set_ring(state, len + 1, head);
            } else {
                // Full: overwrite the oldest (at head) and advance head.
                ring_put(state, offset, head, secs);
                set_ring(state, len, (head + 1) % cap);
            }
        }
        if let Some(offset) = self.hour_profile {
            let mut profile = hour_profile(state, offset);
            let h = p.hour;
            if profile[h] == u8::MAX {
                profile.iter_mut().for_each(|c| *c /= 2);
            }
            profile[h] += 1;
            for (w, chunk) in profile.chunks_exact(8).enumerate() {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                state[offset + w] = u64::from_le_bytes(b);
            }
        }
        for (e, &x) in self.ewmas.iter().zip(&p.ewma_x) {
            if n == 0 {
                state[e.offset] = x.to_bits();
                state[e.offset + 1] = 0f64.to_bits();
            } else {
                let mean = f64::from_bits(state[e.offset]);
                let var = f64::from_bits(state[e.offset + 1]);
                let diff = x - mean;
                let incr = e.alpha * diff;
                state[e.offset] = (mean + incr).to_bits();
                state[e.offset + 1] = ((1.0 - e.alpha) * (var + diff * incr)).to_bits();
            }
        }
        for l in &self.locs {
            state[l.offset] = pack_loc(self.number(record, l.lat), self.number(record, l.lon));
        }
        for s in &self.sets {
            let h = self.category(record, s.source);
            let slots = &mut state[s.offset..s.offset + s.cap];
            let found = slots
                .iter()
                .position(|&w| slot_value(w) > 0 && slot_hash(w) == h);
            let entry = match found {
                Some(i) => pack_slot(h, slot_value(slots[i]).saturating_add(1)),
                None => {
                    if slot_value(slots[s.cap - 1]) > 0 {
                        stats.category_evictions += 1;
                    }
                    pack_slot(h, 1)
                }
            };
            // Most recently used first.
            let end = found.unwrap_or(s.cap - 1);
            slots.copy_within(0..end, 1);
            slots[0] = entry;
        }
        for l in &self.lags {
            state[l.offset + n as usize % l.k] = self.number(record, l.field).to_bits();
        }
        let mut vals = p.win_vals.iter();
        for w in &self.wins {
            for i in 0..w.windows.len() {
                if let Some(v) = vals.next() {
                    for (k, x) in v.iter().enumerate() {
                        state[w.offset + 3 * i + k] = x.to_bits();
                    }
                }
            }
        }
        for (r, &(fast, slow)) in self.ratios.iter().zip(&p.ratio_vals) {
            let x = self.amount(record, r.field, r.log1p);
            state[r.offset] = fast.to_bits();
            state[r.offset + 1] = (slow + x).to_bits();
        }
        let now_secs = seconds(now).max(1);
        for (r, &h) in self.recents.iter().zip(&p.recent_hash) {
            let slots = &mut state[r.offset..r.offset + r.cap];
            // This value's slot, else the longest unseen (empty ones first).
            let at = slots
                .iter()
                .position(|&w| slot_value(w) > 0 && slot_hash(w) == h)
                .or_else(|| (0..slots.len()).min_by_key(|&i| slot_value(slots[i])))
                .unwrap_or(0);
            slots[at] = pack_slot(h, now_secs);
        }
        for r in &self.rates {
            let (fraud, events, at) = r.decayed(state, record.ts);
            r.store(state, fraud, events + 1.0, at);
        }
        if let Some(o) = self.first_seen
            && n == 0
        {
            state[o] = now_secs as u64;
        }
        state[LAST_TS] = now as u64;
        state[HEADER] = (state[HEADER] & !0xFFFF_FFFF) | n.saturating_add(1) as u64;
    }
}

#[inline]
fn n_events(state: &[u64]) -> u32 {
    state[HEADER] as u32
}
#[inline]
fn ring_len(state: &[u64]) -> usize {
    ((state[HEADER] >> 32) & 0xFF) as usize
}
#[inline]
fn ring_head(state: &[u64]) -> usize {
    ((state[HEADER] >> 40) & 0xFF) as usize
}
fn set_ring(state: &mut [u64], len: usize, head: usize) {
    state[HEADER] = (state[HEADER] & 0xFFFF_FFFF) | (len as u64) << 32 | (head as u64) << 40;
}
/// The i-th oldest timestamp (seconds) of a ring of `cap` slots.
#[inline]
fn ring_get(state: &[u64], offset: usize, cap: usize, i: usize) -> u32 {
    let pos = (ring_head(state) + i) % cap;
    (state[offset + pos / 2] >> (32 * (pos % 2))) as u32
}
fn ring_put(state: &mut [u64], offset: usize, pos: usize, v: u32) {
    let w = &mut state[offset + pos / 2];
    let shift = 32 * (pos % 2);
    *w = (*w & !(0xFFFF_FFFFu64 << shift)) | (v as u64) << shift;
}
/// Event time in whole seconds, clamped to what a u32 holds.
#[inline]
fn seconds(micros: i64) -> u32 {
    micros
        .div_euclid(MICROS_PER_SECOND)
        .clamp(0, u32::MAX as i64) as u32
}
fn hour_profile(state: &[u64], offset: usize) -> [u8; 24] {
    let mut p = [0u8; 24];
    for w in 0..3 {
        p[w * 8..w * 8 + 8].copy_from_slice(&state[offset + w].to_le_bytes());
    }
    p
}
/// A category slot: the value's hash in the low half, and in the high half
/// its count (category sets) or the second it was last seen (`distinct`);
/// 0 in the high half is an empty slot.
#[inline]
fn slot_hash(w: u64) -> u32 {
    w as u32
}
#[inline]
fn slot_value(w: u64) -> u32 {
    (w >> 32) as u32
}
#[inline]
fn pack_slot(hash: u32, value: u32) -> u64 {
    (value as u64) << 32 | hash as u64
}

/// The largest |ln ratio| a `baseline_ratio` reports (e^30 ≈ 10^13).
const RATIO_CAP: f64 = 30.0;

fn pack_loc(lat: f64, lon: f64) -> u64 {
    ((lon as f32).to_bits() as u64) << 32 | (lat as f32).to_bits() as u64
}
fn unpack_loc(w: u64) -> (f64, f64) {
    (
        f32::from_bits(w as u32) as f64,
        f32::from_bits((w >> 32) as u32) as f64,
    )
}

/// Counters of the engine's bounded state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub entity_evictions: u64,
    pub category_evictions: u64,
    pub entity_resets: u64,
}

const EMPTY: u32 = u32::MAX;

/// Per-entity state: an open-addressing table from key hash to a dense
/// index, the state words of each entity, and a least-recently-used list.
#[derive(Debug, Clone, PartialEq)]
struct EntityStore {
    words_per: usize,
    cap: usize,
    table: Vec<u32>,
    keys: Vec<u64>,
    words: Vec<u64>,
    prev: Vec<u32>,
    next: Vec<u32>,
    /// Most and least recently used.
    head: u32,
    tail: u32,
}

impl EntityStore {
    fn new(words_per: usize, cap: usize) -> Self {
        EntityStore {
            words_per,
            cap,
            table: vec![EMPTY; 1024],
            keys: Vec::new(),
            words: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            head: EMPTY,
            tail: EMPTY,
        }
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    #[inline]
    fn find(&self, key: u64) -> Result<u32, usize> {
        let mask = self.table.len() - 1;
        let mut i = key as usize & mask;
        loop {
            match self.table[i] {
                EMPTY => return Err(i),
                idx if self.keys[idx as usize] == key => return Ok(idx),
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn state(&self, idx: u32) -> &[u64] {
        let s = idx as usize * self.words_per;
        &self.words[s..s + self.words_per]
    }

    fn state_mut(&mut self, idx: u32) -> &mut [u64] {
        let s = idx as usize * self.words_per;
        &mut self.words[s..s + self.words_per]
    }

    fn unlink(&mut self, idx: u32) {
        let (p, n) = (self.prev[idx as usize], self.next[idx as usize]);
        if p == EMPTY {
            self.head = n
        } else {
            self.next[p as usize] = n
        }
        if n == EMPTY {
            self.tail = p
        } else {
            self.prev[n as usize] = p
        }
    }

    fn push_front(&mut self, idx: u32) {
        self.prev[idx as usize] = EMPTY;
        self.next[idx as usize] = self.head;
        if self.head != EMPTY {
            self.prev[self.head as usize] = idx;
        }
        self.head = idx;
        if self.tail == EMPTY {
            self.tail = idx;
        }
    }

    fn touch(&mut self, idx: u32) {
        if self.head != idx {
            self.unlink(idx);
            self.push_front(idx);
        }
    }

    /// Grows vectors in steps of an eighth, so capacity stays within 12.5%
    /// of use (this state is what bounds memory per entity).
    fn reserve_one(&mut self) {
        if self.keys.len() == self.keys.capacity() {
            let more = (self.keys.len() / 8)
                .max(1024)
                .min(self.cap - self.keys.len())
                .max(1);
            self.keys.reserve_exact(more);
            self.prev.reserve_exact(more);
            self.next.reserve_exact(more);
            self.words.reserve_exact(more * self.words_per);
        }
        if (self.keys.len() + 1) * 2 > self.table.len() {
            self.rehash(self.table.len() * 2);
        }
    }

    fn rehash(&mut self, size: usize) {
        self.table = vec![EMPTY; size];
        let mask = size - 1;
        for (idx, &key) in self.keys.iter().enumerate() {
            let mut i = key as usize & mask;
            while self.table[i] != EMPTY {
                i = (i + 1) & mask;
            }
            self.table[i] = idx as u32;
        }
    }

    /// Removes `key`'s table entry (backward-shift deletion keeps probe
    /// chains intact without tombstones).
    fn remove_from_table(&mut self, key: u64) {
        let Ok(_) = self.find(key) else { return };
        let mask = self.table.len() - 1;
        let mut i = key as usize & mask;
        while self.keys[self.table[i] as usize] != key {
            i = (i + 1) & mask;
        }
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let idx = self.table[j];
            if idx == EMPTY {
                break;
            }
            let home = self.keys[idx as usize] as usize & mask;
            // Move j back to i unless its home lies cyclically in (i, j].
            let in_between = if i <= j {
                home > i && home <= j
            } else {
                home > i || home <= j
            };
            if !in_between {
                self.table[i] = idx;
                i = j;
            }
        }
        self.table[i] = EMPTY;
    }

    /// The index of `key`'s state, inserting a fresh one (and evicting the
    /// least recently used entity at capacity).
    fn get_or_insert(&mut self, key: u64, stats: &mut EngineStats) -> u32 {
        match self.find(key) {
            Ok(idx) => {
                self.touch(idx);
                idx
            }
            Err(_) if self.len() >= self.cap => {
                let victim = self.tail;
                let old = self.keys[victim as usize];
                self.remove_from_table(old);
                self.keys[victim as usize] = key;
                self.state_mut(victim).fill(0);
                let Err(slot) = self.find(key) else {
                    unreachable!("key was absent")
                };
                self.table[slot] = victim;
                self.touch(victim);
                stats.entity_evictions += 1;
                victim
            }
            Err(_) => {
                self.reserve_one();
                let idx = self.keys.len() as u32;
                self.keys.push(key);
                self.prev.push(EMPTY);
                self.next.push(EMPTY);
                self.words.resize(self.words.len() + self.words_per, 0);
                let Err(slot) = self.find(key) else {
                    unreachable!("key was absent")
                };
                self.table[slot] = idx;
                self.push_front(idx);
                idx
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        self.table.capacity() * 4
            + self.keys.capacity() * 8
            + self.words.capacity() * 8
            + self.prev.capacity() * 4
            + self.next.capacity() * 4
    }
}

const CHECKPOINT: Envelope = Envelope {
    magic: *b"RADARFST",
    what: "radar feature-state checkpoint",
    // The payload's layout is covered by the fingerprint (one entity
    // store per key, then the rarity sketches): a checkpoint of another
    // layout is refused as made for a different declaration.
    version: 1,
};

/// The checkpoint kind whose entity keys are hashed under a secret.
const KEYED_CHECKPOINT: u16 = 2;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CheckpointError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(
        "the checkpoint was made for a different stream declaration (fingerprint {found:#x}, expected {expected:#x})"
    )]
    WrongStream { expected: u64, found: u64 },
    #[error(
        "the checkpoint was kept under another entity secret (id {found:#x}, this deployment's is {expected:#x}); \
         give this process the same secret (RADAR_ENTITY_SECRET or the data directory's entity.secret), or remove the checkpoint to rebuild state from the log"
    )]
    WrongSecret { expected: u64, found: u64 },
    #[error(
        "the checkpoint predates keyed entity hashing (format 1); remove it to rebuild state from the log"
    )]
    Unkeyed,
}

/// A fixed-size count sketch (count-min, conservative update) of a
/// category over the whole stream: how often each value was seen, never
/// under-counted, over-counted only by collisions.
#[derive(Debug, Clone, PartialEq)]
struct Sketch {
    source: CategorySource,
    /// `SKETCH_ROWS` rows of `SKETCH_WIDTH` counters.
    counts: Vec<u32>,
    total: u64,
    /// Output columns of the features reading this sketch.
    cols: Vec<usize>,
}

const SKETCH_WIDTH: usize = 1 << 14;
const SKETCH_ROWS: usize = 2;

impl Sketch {
    fn slots(h: u32) -> [usize; SKETCH_ROWS] {
        let x = h as u64;
        let shift = 64 - SKETCH_WIDTH.trailing_zeros();
        [
            (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize,
            SKETCH_WIDTH + (x.wrapping_mul(0xC2B2_AE3D_27D4_EB4F) >> shift) as usize,
        ]
    }

    fn estimate(&self, h: u32) -> u32 {
        Sketch::slots(h)
            .iter()
            .map(|&i| self.counts[i])
            .min()
            .unwrap_or(0)
    }

    fn add(&mut self, h: u32) {
        let slots = Sketch::slots(h);
        let min = self.estimate(h);
        for i in slots {
            if self.counts[i] == min {
                self.counts[i] += 1;
            }
        }
        self.total += 1;
        // Halving keeps the counters bounded and lets old values fade.
        if min + 1 >= u32::MAX / 2 {
            self.counts.iter_mut().for_each(|c| *c /= 2);
            self.total /= 2;
        }
    }
}

/// The features that share a key (the stream's entity, or a field) with
/// their compiled plan and that key's state.
#[derive(Debug, Clone)]
struct Group {
    /// None: the stream's entity.
    key: Option<usize>,
    plan: Plan,
    store: EntityStore,
}

/// Which keys a label moves: the keys of the stream's `label_rate`
/// features, read from the labelled event. Kept with an event (the labels
/// index stores them) so that a label arriving weeks later needs no lookup
/// of the event itself.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelKeyer {
    keys: Vec<Option<usize>>,
    entities: EntityHasher,
}

impl LabelKeyer {
    /// The keyer of an engine keyed with `entities` (labels must land on
    /// the state the engine keeps: [`FeatureEngine::label_keyer`]).
    pub fn new(schema: &StreamSchema, entities: EntityHasher) -> LabelKeyer {
        let mut keys = Vec::new();
        for (f, k) in schema.features.iter().zip(&schema.feature_keys) {
            if matches!(f, Feature::LabelRate { .. }) && !keys.contains(k) {
                keys.push(*k);
            }
        }
        LabelKeyer { keys, entities }
    }

    /// No `label_rate` features: labels move nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key hashes of `record` a label of it moves, in a fixed order.
    pub fn keys(&self, record: &Record) -> Vec<u64> {
        self.keys
            .iter()
            .map(|&k| entity_key(&self.entities, record, k))
            .collect()
    }
}

/// What a label tells the `label_rate` features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LabelChange {
    /// The event became known as fraud.
    Fraud,
    /// The event, known as fraud since `since` (µs), is now known genuine:
    /// what that fraud still weighs is taken back.
    Retracted { since: i64 },
}

/// One label change for the batch driver: the row of the labelled event,
/// when the change became known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelFeed {
    pub row: usize,
    pub at: i64,
    pub change: LabelChange,
}

/// The feature engine of one stream.
#[derive(Debug, Clone)]
pub struct FeatureEngine {
    schema: StreamSchema,
    labels: LabelKeyer,
    /// Where each entity's state is kept: its key's keyed hash.
    entities: EntityHasher,
    /// The stream's entity first (always present: it holds the history
    /// length), then one group per other key field.
    groups: Vec<Group>,
    sketches: Vec<Sketch>,
    stats: EngineStats,
    scratch: Prepared,
}

impl FeatureEngine {
    pub fn new(schema: StreamSchema) -> Self {
        let mut starts = Vec::with_capacity(schema.features.len());
        let mut col = 0;
        for f in &schema.features {
            starts.push(col);
            col += f.width();
        }
        let mut keys: Vec<Option<usize>> = vec![None];
        for k in schema.feature_keys.iter().flatten() {
            if !keys.contains(&Some(*k)) {
                keys.push(Some(*k));
            }
        }
        let groups = keys
            .into_iter()
            .map(|key| {
                let members: Vec<usize> = (0..schema.features.len())
                    .filter(|&i| schema.feature_keys.get(i).copied().flatten() == key)
                    .collect();
                let plan = Plan::new(&schema, &members, &starts);
                let store = EntityStore::new(plan.words, schema.max_entities);
                Group { key, plan, store }
            })
            .collect();
        let mut sketches: Vec<Sketch> = Vec::new();
        for (f, &start) in schema.features.iter().zip(&starts) {
            if let Feature::Rarity { source } = *f {
                match sketches.iter_mut().find(|s| s.source == source) {
                    Some(s) => s.cols.push(start),
                    None => sketches.push(Sketch {
                        source,
                        counts: vec![0; SKETCH_ROWS * SKETCH_WIDTH],
                        total: 0,
                        cols: vec![start],
                    }),
                }
            }
        }
        let entities = EntityHasher::default();
        FeatureEngine {
            labels: LabelKeyer::new(&schema, entities),
            entities,
            schema,
            groups,
            sketches,
            stats: EngineStats::default(),
            scratch: Prepared::default(),
        }
    }

    pub fn schema(&self) -> &StreamSchema {
        &self.schema
    }

    pub fn columns(&self) -> &[String] {
        &self.schema.columns
    }

    pub fn width(&self) -> usize {
        self.schema.columns.len()
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// Entities of the stream's own key with state.
    pub fn entities(&self) -> usize {
        self.groups[0].store.len()
    }

    /// Words of state per entity of the stream's own key (without table
    /// overhead).
    pub fn state_words_per_entity(&self) -> usize {
        self.groups[0].plan.words
    }

    /// Heap bytes all feature state holds now: every key's entities (all
    /// vectors' capacities) and the stream-wide sketches.
    pub fn state_heap_bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.store.heap_bytes())
            .sum::<usize>()
            + self
                .sketches
                .iter()
                .map(|s| s.counts.capacity() * 4)
                .sum::<usize>()
    }

    /// The same engine with entity keys hashed under `entities` (the
    /// deployment's secret). State kept under one secret is never read
    /// under another: the checkpoint carries the secret's id.
    pub fn with_entity_hasher(mut self, entities: EntityHasher) -> Self {
        self.entities = entities;
        self.labels = LabelKeyer::new(&self.schema, entities);
        self
    }

    /// Incremental driver: features of `record` into `out` (one slot per
    /// column), then `record` updates its entity's state. Returns how many
    /// earlier events of the entity the features saw (its history length;
    /// 0 for an entity's first event), which tells cold-start rows apart.
    pub fn process(&mut self, record: &Record, out: &mut [f64]) -> u32 {
        debug_assert_eq!(out.len(), self.width());
        let mut history = 0;
        for (g, group) in self.groups.iter_mut().enumerate() {
            let key = entity_key(&self.entities, record, group.key);
            let idx = group.store.get_or_insert(key, &mut self.stats);
            let plan = &group.plan;
            let state = group.store.state_mut(idx);
            if let Some(ttl) = plan.ttl_micros
                && n_events(state) > 0
                && record.ts.saturating_sub(state[LAST_TS] as i64) > ttl
            {
                state.fill(0);
                self.stats.entity_resets += 1;
            }
            if g == 0 {
                history = n_events(state);
            }
            let p = &mut self.scratch;
            plan.prepare(state, record, p);
            plan.compute(state, record, p, out);
            plan.update(state, record, p, &mut self.stats);
        }
        for sk in &mut self.sketches {
            let h = self.groups[0].plan.category(record, sk.source);
            let rarity = share(sk.estimate(h), sk.total.min(u32::MAX as u64) as u32, true);
            for &c in &sk.cols {
                out[c] = rarity;
            }
            sk.add(h);
        }
        history
    }

    /// The hasher placing entities' state (keyed with the deployment's
    /// secret in a live pipeline).
    pub fn entity_hasher(&self) -> EntityHasher {
        self.entities
    }

    /// The keys a label of an event moves (see [`LabelKeyer`]).
    pub fn label_keyer(&self) -> &LabelKeyer {
        &self.labels
    }

    /// Folds a label known at `at` into the `label_rate` state of the keys
    /// its event had (`keys` from [`LabelKeyer::keys`]). A key without
    /// state gets some (its label counts before its next event does).
    pub fn apply_label(&mut self, keys: &[u64], at: i64, change: LabelChange) {
        for (&key, want) in keys.iter().zip(&self.labels.keys) {
            let Some(group) = self.groups.iter_mut().find(|g| g.key == *want) else {
                continue;
            };
            let idx = group.store.get_or_insert(key, &mut self.stats);
            let state = group.store.state_mut(idx);
            for r in &group.plan.rates {
                let (fraud, events, now) = r.decayed(state, at);
                let fraud = match change {
                    LabelChange::Fraud => fraud + 1.0,
                    LabelChange::Retracted { since } => {
                        let secs = (now - since).max(0) as f64 / MICROS_PER_SECOND as f64;
                        (fraud - (-secs / r.window as f64).exp()).max(0.0)
                    }
                };
                r.store(state, fraud, events, now);
            }
        }
    }

    /// Batch driver with labels: before each record, the labels known by
    /// its time (`at` ≤ its timestamp) about earlier rows are folded in, in
    /// the order they became known — what a live scorer fed labels as they
    /// arrive computes. `labels` must be sorted by `at`.
    pub fn batch_with_labels(
        &mut self,
        records: &[Record],
        labels: &[LabelFeed],
    ) -> Result<(Matrix, Vec<u32>), MatrixError> {
        debug_assert!(labels.windows(2).all(|w| w[0].at <= w[1].at));
        let mut m = Matrix::with_columns(self.width())?;
        let mut history = Vec::with_capacity(records.len());
        let mut row = vec![0.0; self.width()];
        let mut next = 0;
        for (i, r) in records.iter().enumerate() {
            self.apply_labels_before(records, i, labels, &mut next);
            history.push(self.process(r, &mut row));
            m.push_row(&row)?;
        }
        Ok((m, history))
    }

    /// The batch driver's step before row `i`: folds in `labels[*next..]`
    /// known by row i's time about rows before it, advancing `next`.
    pub fn apply_labels_before(
        &mut self,
        records: &[Record],
        i: usize,
        labels: &[LabelFeed],
        next: &mut usize,
    ) {
        let Some(r) = records.get(i) else { return };
        while let Some(l) = labels.get(*next)
            && l.at <= r.ts
            && l.row < i
        {
            let keys = self.labels.keys(&records[l.row]);
            self.apply_label(&keys, l.at, l.change);
            *next += 1;
        }
    }

    /// Features of `record` from the current state, without changing it
    /// (scoring an event that is not stored).
    pub fn peek(&self, record: &Record, out: &mut [f64]) {
        let mut p = Prepared::default();
        for group in &self.groups {
            let fresh = vec![0; group.plan.words];
            let state = match group
                .store
                .find(entity_key(&self.entities, record, group.key))
            {
                Ok(idx) => {
                    let s = group.store.state(idx);
                    let expired = group.plan.ttl_micros.is_some_and(|ttl| {
                        n_events(s) > 0 && record.ts.saturating_sub(s[LAST_TS] as i64) > ttl
                    });
                    if expired { &fresh[..] } else { s }
                }
                Err(_) => &fresh[..],
            };
            group.plan.prepare(state, record, &mut p);
            group.plan.compute(state, record, &p, out);
        }
        for sk in &self.sketches {
            let h = self.groups[0].plan.category(record, sk.source);
            let rarity = share(sk.estimate(h), sk.total.min(u32::MAX as u64) as u32, true);
            for &c in &sk.cols {
                out[c] = rarity;
            }
        }
    }

    /// Batch driver: the rows of `records` in order, as `process` gives them.
    pub fn batch(&mut self, records: &[Record]) -> Result<Matrix, MatrixError> {
        Ok(self.batch_with_history(records)?.0)
    }

    /// As [`batch`](Self::batch), with each row's history length.
    pub fn batch_with_history(
        &mut self,
        records: &[Record],
    ) -> Result<(Matrix, Vec<u32>), MatrixError> {
        let mut m = Matrix::with_columns(self.width())?;
        let mut history = Vec::with_capacity(records.len());
        let mut row = vec![0.0; self.width()];
        for r in records {
            history.push(self.process(r, &mut row));
            m.push_row(&row)?;
        }
        Ok((m, history))
    }

    /// A fingerprint of what the state means: the features, their keys
    /// and the layout.
    fn fingerprint(&self) -> u64 {
        let plans: Vec<&Plan> = self.groups.iter().map(|g| &g.plan).collect();
        hash64(
            format!(
                "{:?}|{:?}|{:?}",
                self.schema.features, self.schema.feature_keys, plans
            )
            .as_bytes(),
        )
    }

    /// Serializes all feature state.
    pub fn checkpoint(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(self.fingerprint());
        w.u64(self.entities.id());
        w.u64(self.groups.len() as u64);
        for g in &self.groups {
            let s = &g.store;
            w.u64(s.words_per as u64);
            w.u64(s.cap as u64);
            w.u32(s.head);
            w.u32(s.tail);
            w.u64s(&s.keys);
            w.u64s(&s.words);
            w.u32s(&s.prev);
            w.u32s(&s.next);
        }
        w.u64(self.stats.entity_evictions);
        w.u64(self.stats.category_evictions);
        w.u64(self.stats.entity_resets);
        for sk in &self.sketches {
            w.u64(sk.total);
            w.u32s(&sk.counts);
        }
        CHECKPOINT.seal(KEYED_CHECKPOINT, &w.into_bytes())
    }

    /// Replaces all feature state with a checkpoint's.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), CheckpointError> {
        // Kind 1: entity keys hashed without a secret (refused); kind 2:
        // keyed, the secret's id after the fingerprint.
        let (kind, payload) = CHECKPOINT.open(bytes)?;
        if kind < KEYED_CHECKPOINT {
            return Err(CheckpointError::Unkeyed);
        }
        let mut r = Reader::new(payload);
        let found = r.u64()?;
        let expected = self.fingerprint();
        if found != expected {
            return Err(CheckpointError::WrongStream { expected, found });
        }
        let found = r.u64()?;
        let expected = self.entities.id();
        if found != expected {
            return Err(CheckpointError::WrongSecret { expected, found });
        }
        let invalid = |m: &str| CheckpointError::Decode(DecodeError::Invalid(m.to_owned()));
        if r.u64()? != self.groups.len() as u64 {
            return Err(invalid("the number of keys disagrees"));
        }
        let mut stores = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            let words_per = r.u64()? as usize;
            let cap = r.u64()? as usize;
            let (head, tail) = (r.u32()?, r.u32()?);
            let keys = r.u64s()?;
            let words = r.u64s()?;
            let prev = r.u32s()?;
            let next = r.u32s()?;
            let n = keys.len();
            if words_per != g.plan.words
                || words.len() != n * words_per
                || prev.len() != n
                || next.len() != n
                || n > cap
            {
                return Err(invalid("entity arrays disagree in length"));
            }
            let link_ok = |v: u32| v == EMPTY || (v as usize) < n;
            if !prev.iter().chain(&next).all(|&v| link_ok(v)) || !link_ok(head) || !link_ok(tail) {
                return Err(invalid("entity list points outside the entities"));
            }
            let mut store = EntityStore::new(words_per, self.schema.max_entities.max(n));
            store.keys = keys;
            store.words = words;
            store.prev = prev;
            store.next = next;
            store.head = head;
            store.tail = tail;
            let mut size = 1024;
            while size < n * 2 + 2 {
                size *= 2;
            }
            store.rehash(size);
            if store
                .keys
                .iter()
                .enumerate()
                .any(|(i, &k)| store.find(k) != Ok(i as u32))
            {
                return Err(invalid("duplicate entity keys"));
            }
            stores.push(store);
        }
        let stats = EngineStats {
            entity_evictions: r.u64()?,
            category_evictions: r.u64()?,
            entity_resets: r.u64()?,
        };
        let mut sketches = Vec::with_capacity(self.sketches.len());
        for _ in &self.sketches {
            let total = r.u64()?;
            let counts = r.u32s()?;
            if counts.len() != SKETCH_ROWS * SKETCH_WIDTH {
                return Err(invalid("a rarity sketch has the wrong size"));
            }
            sketches.push((total, counts));
        }
        r.finish()?;
        for (g, store) in self.groups.iter_mut().zip(stores) {
            g.store = store;
        }
        for (sk, (total, counts)) in self.sketches.iter_mut().zip(sketches) {
            sk.total = total;
            sk.counts = counts;
        }
        self.stats = stats;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
