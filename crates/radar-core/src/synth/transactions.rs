//! Synthetic card transactions with ground-truth fraud.
//!
//! A population of cardholders, each with habits: a home city, a typical
//! amount (log-normal), active hours, a few preferred merchant categories, a
//! usual device, a pace of spending. Normal life includes the unusual too
//! (a trip to another city, a big purchase, a new shop, a late night), so
//! no single oddity gives fraud away. Fraud comes in six kinds, each
//! labelled: amount spikes, card-testing bursts, impossible travel,
//! activity at the cardholder's unusual hours, a new merchant category on a
//! new device, and subtle fraud that is only slightly off.
//!
//! Events come out in event-time order, from a heap of each card's next
//! event, so the stream can be as long as asked without holding it all.
//! Identical options give identical output.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

use crate::rng::{Rng, derive_seed};
use crate::time::{MICROS_PER_SECOND, format_rfc3339};

/// Options of the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionSpec {
    pub cardholders: usize,
    /// Share of events that are fraud, in [0, 0.5].
    pub fraud_rate: f64,
    pub seed: u64,
    /// Event time of the start, UTC µs.
    pub start: i64,
    /// Event-time span in days; events stop at start + span.
    pub days: f64,
    /// How the stream changes from a point on (none by default).
    pub shift: Option<Shift>,
}

/// A change in the stream from an event time on (`radar demo --drift`):
/// what a price rise, a new kind of merchant and a new fraud ring do to a
/// card stream. Before `at` the generator's output is exactly that of the
/// same spec without a shift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// Event time the shift begins, UTC µs.
    pub at: i64,
    /// Every amount (legitimate and fraudulent) is multiplied by this.
    pub amount_factor: f64,
    /// Share of legitimate purchases that go to digital goods, whatever
    /// the card bought before.
    pub digital_share: f64,
    /// Share of events that are account takeovers: the new fraud pattern,
    /// a purchase of a few times the usual amount from a device the card
    /// never used, at its usual place and hour.
    pub takeover_rate: f64,
}

impl Shift {
    /// The shift `radar demo --drift` applies.
    pub fn demo(at: i64) -> Shift {
        Shift {
            at,
            amount_factor: 2.5,
            digital_share: 0.3,
            takeover_rate: 0.004,
        }
    }
}

impl Default for TransactionSpec {
    fn default() -> Self {
        TransactionSpec {
            cardholders: 10_000,
            fraud_rate: 0.01,
            seed: 0,
            // 2026-01-01T00:00:00Z
            start: 1_767_225_600 * MICROS_PER_SECOND,
            days: 30.0,
            shift: None,
        }
    }
}

/// Fraud kinds, as written in `label_kind`.
pub const FRAUD_KINDS: [&str; 7] = [
    "amount_spike",
    "card_testing",
    "impossible_travel",
    "unusual_hour",
    "new_category_device",
    "subtle",
    // Only after a [`Shift`].
    "account_takeover",
];
/// The kind a [`Shift`] brings.
const TAKEOVER: usize = 6;
/// The merchant category a [`Shift`] moves purchases to.
const DIGITAL_GOODS: usize = 13;

/// Share of fraud events of each kind (card testing counts its whole burst).
const KIND_SHARE: [f64; 6] = [0.2, 0.2, 0.15, 0.15, 0.2, 0.1];
/// Mean events of one card-testing burst.
const BURST_MEAN: f64 = 7.0;

const CATEGORIES: [&str; 15] = [
    "grocery",
    "restaurant",
    "fuel",
    "pharmacy",
    "clothing",
    "electronics",
    "travel",
    "entertainment",
    "utilities",
    "home",
    "health",
    "sports",
    "books",
    "digital_goods",
    "jewelry",
];

/// (name, latitude, longitude) of the cities cardholders live in and visit.
const CITIES: [(&str, f64, f64); 24] = [
    ("paris", 48.8566, 2.3522),
    ("london", 51.5074, -0.1278),
    ("berlin", 52.52, 13.405),
    ("madrid", 40.4168, -3.7038),
    ("rome", 41.9028, 12.4964),
    ("amsterdam", 52.3676, 4.9041),
    ("stockholm", 59.3293, 18.0686),
    ("warsaw", 52.2297, 21.0122),
    ("lisbon", 38.7223, -9.1393),
    ("vienna", 48.2082, 16.3738),
    ("new_york", 40.7128, -74.006),
    ("chicago", 41.8781, -87.6298),
    ("los_angeles", 34.0522, -118.2437),
    ("toronto", 43.6532, -79.3832),
    ("mexico_city", 19.4326, -99.1332),
    ("sao_paulo", -23.5505, -46.6333),
    ("buenos_aires", -34.6037, -58.3816),
    ("tokyo", 35.6762, 139.6503),
    ("seoul", 37.5665, 126.978),
    ("singapore", 1.3521, 103.8198),
    ("mumbai", 19.076, 72.8777),
    ("sydney", -33.8688, 151.2093),
    ("johannesburg", -26.2041, 28.0473),
    ("dubai", 25.2048, 55.2708),
];

/// One generated transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    pub event_id: u64,
    pub ts: i64,
    pub card: u32,
    pub amount: f64,
    pub category: &'static str,
    pub lat: f64,
    pub lon: f64,
    pub device: u64,
    /// Index into [`FRAUD_KINDS`], or None for a legitimate transaction.
    pub fraud: Option<usize>,
}

impl Transaction {
    /// The JSON line `radar generate` writes (without the newline).
    pub fn write_json(&self, out: &mut String) {
        let _ = write!(
            out,
            r#"{{"event_id":"tx-{:010}","ts":"{}","card_id":"card-{:07}","amount":{:.2},"merchant_category":"{}","lat":{:.4},"lon":{:.4},"device":"dev-{:x}","label":{},"label_kind":"{}"}}"#,
            self.event_id,
            format_rfc3339(self.ts),
            self.card,
            self.amount,
            self.category,
            self.lat,
            self.lon,
            self.device,
            self.fraud.is_some() as u8,
            self.fraud.map_or("none", |k| FRAUD_KINDS[k]),
        );
    }
}

#[derive(Debug, Clone)]
struct Card {
    home: (f64, f64),
    /// Where the card is now (home, or a city it travels to) and until when.
    here: (f64, f64),
    away_until: i64,
    log_amount: f64,
    amount_sigma: f64,
    /// Centre and spread of active hours.
    hour_centre: f64,
    hour_spread: f64,
    categories: [usize; 3],
    category_weights: [f64; 3],
    devices: [u64; 2],
    has_second_device: bool,
    /// Mean events per day.
    rate: f64,
    last_ts: i64,
    last_place: (f64, f64),
}

/// What was bought, where and from which device.
struct Purchase {
    amount: f64,
    category: usize,
    place: (f64, f64),
    device: u64,
}

/// An event waiting in the heap: a normal event, or a fraud event that was
/// scheduled ahead (travel, card testing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Normal,
    /// A fraud of this kind, at a time chosen when it was decided.
    Fraud(u8),
    Travel,
    Testing {
        left: u8,
        device: u64,
    },
}

/// The generator: an iterator of transactions in event-time order.
pub struct Transactions {
    spec: TransactionSpec,
    rng: Rng,
    cards: Vec<Card>,
    heap: BinaryHeap<Reverse<(i64, u32, Pending)>>,
    end: i64,
    next_id: u64,
    /// Probability that a normal event starts a fraud of each kind.
    start_prob: [f64; 6],
}

const HOUR: i64 = 3600 * MICROS_PER_SECOND;
const DAY: i64 = 24 * HOUR;

fn jitter(rng: &mut Rng, (lat, lon): (f64, f64), km: f64) -> (f64, f64) {
    let dlat = rng.normal() * km / 111.0;
    let dlon = rng.normal() * km / (111.0 * lat.to_radians().cos().abs().max(0.2));
    (
        (lat + dlat).clamp(-89.9, 89.9),
        ((lon + dlon + 540.0) % 360.0) - 180.0,
    )
}

fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    crate::features::haversine_km(a.0, a.1, b.0, b.1)
}

impl Transactions {
    pub fn new(spec: TransactionSpec) -> Self {
        let mut rng = Rng::seed_from_u64(derive_seed(spec.seed, 0));
        let cards: Vec<Card> = (0..spec.cardholders)
            .map(|i| {
                let mut r = Rng::seed_from_u64(derive_seed(spec.seed, i as u64 + 1));
                let city = CITIES[r.below(CITIES.len() as u64) as usize];
                let home = jitter(&mut r, (city.1, city.2), 8.0);
                let mut categories = [0usize; 3];
                let mut k = 0;
                while k < 3 {
                    let c = r.below(CATEGORIES.len() as u64) as usize;
                    if !categories[..k].contains(&c) {
                        categories[k] = c;
                        k += 1;
                    }
                }
                let w: [f64; 3] = [
                    1.0 + r.next_f64() * 3.0,
                    0.5 + r.next_f64() * 2.0,
                    0.3 + r.next_f64(),
                ];
                let total: f64 = w.iter().sum();
                Card {
                    home,
                    here: home,
                    away_until: i64::MIN,
                    log_amount: (40f64).ln() + 0.7 * r.normal(),
                    amount_sigma: 0.25 + 0.3 * r.next_f64(),
                    hour_centre: 9.0 + 11.0 * r.next_f64(),
                    hour_spread: 1.5 + 1.5 * r.next_f64(),
                    categories,
                    category_weights: w.map(|x| x / total),
                    devices: [r.next_u64() >> 16, r.next_u64() >> 16],
                    has_second_device: r.next_f64() < 0.3,
                    rate: (0.5f64.ln() + r.next_f64() * (6f64.ln() - 0.5f64.ln())).exp(),
                    last_ts: i64::MIN,
                    last_place: home,
                }
            })
            .collect();
        // Each kind's share of fraud events, turned into a chance per normal
        // event of starting one (a burst starts BURST_MEAN events at once).
        let f = spec.fraud_rate.clamp(0.0, 0.5);
        let mut start_prob = [0.0; 6];
        for (k, share) in KIND_SHARE.iter().enumerate() {
            let events_per_start = if k == 1 { BURST_MEAN } else { 1.0 };
            start_prob[k] = f * share / events_per_start / (1.0 - f).max(0.5);
        }
        let end = spec.start + (spec.days.max(0.0) * DAY as f64) as i64;
        let mut heap = BinaryHeap::with_capacity(cards.len());
        for (i, card) in cards.iter().enumerate() {
            let first = spec.start + (rng.exponential(1.0 / card.rate) * DAY as f64) as i64;
            heap.push(Reverse((first, i as u32, Pending::Normal)));
        }
        Transactions {
            spec,
            rng,
            cards,
            heap,
            end,
            next_id: 0,
            start_prob,
        }
    }

    pub fn spec(&self) -> &TransactionSpec {
        &self.spec
    }

    /// A time on the day of `t` whose hour follows the card's habits (or is
    /// off them), not before `t`.
    fn time_at_hour(&mut self, t: i64, hour: f64) -> i64 {
        let day_start = t.div_euclid(DAY) * DAY;
        let at = day_start + (hour.rem_euclid(24.0) * HOUR as f64) as i64;
        if at >= t { at } else { at + DAY }
    }

    fn habitual_hour(&mut self, c: usize) -> f64 {
        let card = &self.cards[c];
        // A few legitimate events at any hour.
        if self.rng.next_f64() < 0.02 {
            return self.rng.next_f64() * 24.0;
        }
        card.hour_centre + card.hour_spread * self.rng.normal()
    }

    fn schedule_next(&mut self, c: usize, after: i64) {
        let gap = self.rng.exponential(1.0 / self.cards[c].rate) * DAY as f64;
        let rough = after + gap as i64;
        let hour = self.habitual_hour(c);
        // The habitual hour on the day the gap lands on, or its next
        // occurrence when that is already past.
        let mut t = rough - rough.rem_euclid(DAY) + (hour.rem_euclid(24.0) * HOUR as f64) as i64;
        if t <= after {
            t = self.time_at_hour(after + MICROS_PER_SECOND, hour);
        }
        self.heap.push(Reverse((t, c as u32, Pending::Normal)));
    }

    /// The shift in force at `t`, if any.
    fn shift_at(&self, t: i64) -> Option<Shift> {
        self.spec.shift.filter(|s| t >= s.at)
    }

    /// What amounts are multiplied by at `t`.
    fn amount_factor(&self, t: i64) -> f64 {
        self.shift_at(t).map_or(1.0, |s| s.amount_factor)
    }

    fn habitual_amount(&mut self, c: usize, t: i64) -> f64 {
        let factor = self.amount_factor(t);
        let card = &self.cards[c];
        let mut a = (card.log_amount + card.amount_sigma * self.rng.normal()).exp();
        // The odd legitimate big purchase.
        if self.rng.next_f64() < 0.005 {
            a *= 3.0 + 3.0 * self.rng.next_f64();
        }
        (a * factor).max(0.5)
    }

    fn habitual_category(&mut self, c: usize, t: i64) -> usize {
        if let Some(s) = self.shift_at(t)
            && self.rng.next_f64() < s.digital_share
        {
            return DIGITAL_GOODS;
        }
        if self.rng.next_f64() < 0.02 {
            return self.rng.below(CATEGORIES.len() as u64) as usize;
        }
        let card = &self.cards[c];
        let u = self.rng.next_f64();
        let w = card.category_weights;
        if u < w[0] {
            card.categories[0]
        } else if u < w[0] + w[1] {
            card.categories[1]
        } else {
            card.categories[2]
        }
    }

    fn habitual_device(&mut self, c: usize) -> u64 {
        if self.rng.next_f64() < 0.002 {
            // A new phone replaces the old one.
            self.cards[c].devices[0] = self.rng.next_u64() >> 16;
        }
        let card = &self.cards[c];
        if card.has_second_device && self.rng.next_f64() < 0.3 {
            card.devices[1]
        } else {
            card.devices[0]
        }
    }

    /// Somewhere in the city the card is in, no farther from its last
    /// place than ~50 km/h allows since then.
    fn place_near(&mut self, c: usize, t: i64) -> (f64, f64) {
        let card = &self.cards[c];
        let (here, last, last_ts) = (card.here, card.last_place, card.last_ts);
        if last_ts != i64::MIN && distance_km(here, last) < 50.0 {
            let hours = (t - last_ts) as f64 / HOUR as f64;
            let km = (50.0 * hours).min(6.0);
            if km < 6.0 {
                return jitter(&mut self.rng, last, km / 2.0);
            }
        }
        jitter(&mut self.rng, here, 6.0)
    }

    fn far_city(&mut self, from: (f64, f64), min_km: f64) -> (f64, f64) {
        loop {
            let city = CITIES[self.rng.below(CITIES.len() as u64) as usize];
            let p = (city.1, city.2);
            if distance_km(from, p) >= min_km {
                return jitter(&mut self.rng, p, 5.0);
            }
        }
    }

    fn emit(&mut self, t: i64, c: usize, p: Purchase, fraud: Option<usize>) -> Transaction {
        let Purchase {
            amount,
            category,
            place,
            device,
        } = p;
        let id = self.next_id;
        self.next_id += 1;
        // Fraud does not move the card's real whereabouts.
        if fraud.is_none() {
            self.cards[c].last_place = place;
        }
        self.cards[c].last_ts = t;
        Transaction {
            event_id: id,
            ts: t,
            card: c as u32,
            amount: (amount * 100.0).round() / 100.0,
            category: CATEGORIES[category],
            lat: place.0,
            lon: place.1,
            device,
            fraud,
        }
    }

    /// Picks a fraud kind to start, or None for a normal event.
    fn pick_kind(&mut self, t: i64) -> Option<usize> {
        let u = self.rng.next_f64();
        let mut acc = 0.0;
        for (k, p) in self.start_prob.iter().enumerate() {
            acc += p;
            if u < acc {
                return Some(k);
            }
        }
        // The same draw: before a shift, nothing changes.
        let takeover = self.shift_at(t).map_or(0.0, |s| s.takeover_rate);
        (u < acc + takeover).then_some(TAKEOVER)
    }

    /// The card's next event at `t`. Returns None when the event moved to a
    /// later time (it went back into the heap, so output stays in order).
    fn normal_or_fraud(&mut self, t: i64, c: usize) -> Option<Transaction> {
        // Legitimate trips: away for a few days, reached in plausible time.
        if t > self.cards[c].away_until && self.cards[c].here != self.cards[c].home {
            self.cards[c].here = self.cards[c].home;
        }
        if self.rng.next_f64() < 0.01 {
            let dest = self.far_city(self.cards[c].home, 300.0);
            self.cards[c].here = dest;
            self.cards[c].away_until = t + ((1.0 + 4.0 * self.rng.next_f64()) * DAY as f64) as i64;
        }
        let place = self.place_near(c, t);
        // A flight takes time: never faster than ~700 km/h plus two hours.
        let last = self.cards[c].last_ts;
        let travel = distance_km(self.cards[c].last_place, place);
        if last != i64::MIN && travel > 100.0 {
            let earliest = last + ((travel / 700.0 + 2.0) * HOUR as f64) as i64;
            if t < earliest {
                self.heap
                    .push(Reverse((earliest, c as u32, Pending::Normal)));
                return None;
            }
        }
        let card = self.cards[c].clone();
        let tx = match self.pick_kind(t) {
            None => {
                let amount = self.habitual_amount(c, t);
                let category = self.habitual_category(c, t);
                let device = self.habitual_device(c);
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category,
                        place,
                        device,
                    },
                    None,
                )
            }
            Some(k @ (3 | 5)) => {
                // Unusual hour: far from the card's active hours. Subtle: a
                // few hours off. Both happen later today or tomorrow.
                let hour = if k == 3 {
                    card.hour_centre + 12.0 + 2.0 * self.rng.normal()
                } else {
                    card.hour_centre + card.hour_spread * (2.0 + self.rng.next_f64())
                };
                let at = self.time_at_hour(t, hour);
                self.heap
                    .push(Reverse((at, c as u32, Pending::Fraud(k as u8))));
                return None;
            }
            Some(1) => {
                // Card testing: a burst of tiny amounts on the fraudster's device.
                let device = self.rng.next_u64() >> 16;
                let n = (BURST_MEAN - 2.0 + 4.0 * self.rng.next_f64()).round() as u8;
                let amount = 0.5 + 2.5 * self.rng.next_f64();
                let next =
                    t + ((20.0 + 70.0 * self.rng.next_f64()) * MICROS_PER_SECOND as f64) as i64;
                self.heap.push(Reverse((
                    next,
                    c as u32,
                    Pending::Testing {
                        left: n - 1,
                        device,
                    },
                )));
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category: DIGITAL_GOODS,
                        place,
                        device,
                    },
                    Some(1),
                )
            }
            Some(2) => {
                // Impossible travel: this event is normal; a use of the card
                // far away follows within the hour.
                let next = t
                    + ((5.0 + 55.0 * self.rng.next_f64()) * 60.0 * MICROS_PER_SECOND as f64) as i64;
                self.heap.push(Reverse((next, c as u32, Pending::Travel)));
                let amount = self.habitual_amount(c, t);
                let category = self.habitual_category(c, t);
                let device = self.habitual_device(c);
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category,
                        place,
                        device,
                    },
                    None,
                )
            }
            Some(k) => return Some(self.fraud(t, c, k)),
        };
        self.schedule_next(c, tx.ts);
        Some(tx)
    }

    /// A single-event fraud of kind `k` at `t`, followed by the card's next
    /// normal event.
    fn fraud(&mut self, t: i64, c: usize, k: usize) -> Transaction {
        let card = self.cards[c].clone();
        let typical = card.log_amount.exp() * self.amount_factor(t);
        let place = self.place_near(c, t);
        let tx = match k {
            0 => {
                // Amount spike: a big-ticket purchase (electronics, jewelry,
                // travel) the card does not usually make, on its own device.
                let category = [5, 14, 6][self.rng.below(3) as usize];
                let amount = typical * (8.0 + 22.0 * self.rng.next_f64());
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category,
                        place,
                        device: card.devices[0],
                    },
                    Some(0),
                )
            }
            3 => {
                let amount = typical * (3.0 + 3.0 * self.rng.next_f64());
                let category = self.habitual_category(c, t);
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category,
                        place,
                        device: card.devices[0],
                    },
                    Some(3),
                )
            }
            4 => {
                // A category the card never uses, from a new device.
                let category = loop {
                    let k = self.rng.below(CATEGORIES.len() as u64) as usize;
                    if !card.categories.contains(&k) {
                        break k;
                    }
                };
                let amount = typical * (1.0 + 2.0 * self.rng.next_f64());
                let device = self.rng.next_u64() >> 16;
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category,
                        place,
                        device,
                    },
                    Some(4),
                )
            }
            TAKEOVER => {
                // Someone else's phone, the card's usual shops, big baskets.
                let amount = typical * (2.0 + 3.0 * self.rng.next_f64());
                let category = self.habitual_category(c, t);
                let device = self.rng.next_u64() >> 16;
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category,
                        place,
                        device,
                    },
                    Some(TAKEOVER),
                )
            }
            _ => {
                // Subtle: a bit more than usual, a bit late, a rarely used shop.
                let amount = typical * (1.5 + self.rng.next_f64());
                let category = card.categories[2];
                self.emit(
                    t,
                    c,
                    Purchase {
                        amount,
                        category,
                        place,
                        device: card.devices[0],
                    },
                    Some(5),
                )
            }
        };
        self.schedule_next(c, tx.ts);
        tx
    }
}

impl Iterator for Transactions {
    type Item = Transaction;

    fn next(&mut self) -> Option<Transaction> {
        loop {
            let Reverse((t, c, pending)) = self.heap.pop()?;
            if t >= self.end {
                // Past the span: this card is done (its pending events too).
                continue;
            }
            let c = c as usize;
            let card = self.cards[c].clone();
            return Some(match pending {
                Pending::Normal => match self.normal_or_fraud(t, c) {
                    Some(tx) => tx,
                    None => continue,
                },
                Pending::Fraud(k) => self.fraud(t, c, k as usize),
                Pending::Travel => {
                    let place = self.far_city(card.last_place, 2000.0);
                    let amount = card.log_amount.exp()
                        * self.amount_factor(t)
                        * (1.0 + 2.0 * self.rng.next_f64());
                    let category = self.habitual_category(c, t);
                    self.emit(
                        t,
                        c,
                        Purchase {
                            amount,
                            category,
                            place,
                            device: card.devices[0],
                        },
                        Some(2),
                    )
                }
                Pending::Testing { left, device } => {
                    let amount = 0.5 + 2.5 * self.rng.next_f64();
                    let place = card.last_place;
                    if left > 1 {
                        let next = t
                            + ((20.0 + 70.0 * self.rng.next_f64()) * MICROS_PER_SECOND as f64)
                                as i64;
                        self.heap.push(Reverse((
                            next,
                            c as u32,
                            Pending::Testing {
                                left: left - 1,
                                device,
                            },
                        )));
                    }
                    self.emit(
                        t,
                        c,
                        Purchase {
                            amount,
                            category: DIGITAL_GOODS,
                            place,
                            device,
                        },
                        Some(1),
                    )
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cardholders: usize, days: f64, seed: u64) -> TransactionSpec {
        TransactionSpec {
            cardholders,
            days,
            seed,
            ..TransactionSpec::default()
        }
    }

    #[test]
    fn same_seed_same_stream_in_time_order() {
        let a: Vec<Transaction> = Transactions::new(spec(300, 10.0, 4)).collect();
        let b: Vec<Transaction> = Transactions::new(spec(300, 10.0, 4)).collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].ts <= w[1].ts), "event-time order");
        let c: Vec<Transaction> = Transactions::new(spec(300, 10.0, 5)).collect();
        assert_ne!(a, c);
        let end = TransactionSpec::default().start + 10 * DAY;
        assert!(
            a.iter()
                .all(|t| t.ts < end && t.ts >= TransactionSpec::default().start)
        );
    }

    #[test]
    fn a_shift_changes_nothing_before_it_and_amounts_mix_and_fraud_after() {
        let plain: Vec<Transaction> = Transactions::new(spec(2000, 20.0, 9)).collect();
        let at = TransactionSpec::default().start + 10 * DAY;
        let shifted: Vec<Transaction> = Transactions::new(TransactionSpec {
            shift: Some(Shift::demo(at)),
            ..spec(2000, 20.0, 9)
        })
        .collect();
        let before = plain.iter().take_while(|t| t.ts < at).count();
        assert!(before > 1000);
        assert_eq!(
            plain[..before],
            shifted[..before],
            "identical before the shift"
        );
        let after = |txs: &[Transaction]| -> Vec<Transaction> {
            txs.iter().filter(|t| t.ts >= at).cloned().collect()
        };
        let (p, s) = (after(&plain), after(&shifted));
        let median = |txs: &[Transaction]| {
            let mut a: Vec<f64> = txs
                .iter()
                .filter(|t| t.fraud.is_none())
                .map(|t| t.amount)
                .collect();
            a.sort_by(f64::total_cmp);
            a[a.len() / 2]
        };
        let ratio = median(&s) / median(&p);
        assert!((2.2..2.8).contains(&ratio), "median amount ×{ratio}");
        let digital = |txs: &[Transaction]| {
            txs.iter().filter(|t| t.category == "digital_goods").count() as f64 / txs.len() as f64
        };
        assert!(
            digital(&s) > digital(&p) + 0.2,
            "{} vs {}",
            digital(&s),
            digital(&p)
        );
        let takeovers = s.iter().filter(|t| t.fraud == Some(TAKEOVER)).count() as f64;
        let share = takeovers / s.len() as f64;
        assert!((0.002..0.006).contains(&share), "takeovers {share}");
    }

    #[test]
    fn fraud_rate_and_kinds_are_as_asked() {
        let txs: Vec<Transaction> = Transactions::new(spec(5000, 30.0, 1)).collect();
        let n = txs.len() as f64;
        assert!(n > 100_000.0, "{n} events");
        let fraud = txs.iter().filter(|t| t.fraud.is_some()).count() as f64;
        assert!(
            (fraud / n - 0.01).abs() < 0.002,
            "fraud share {}",
            fraud / n
        );
        assert!(txs.iter().all(|t| t.fraud != Some(TAKEOVER)), "no shift");
        for k in 0..KIND_SHARE.len() {
            let share = txs.iter().filter(|t| t.fraud == Some(k)).count() as f64 / fraud;
            assert!(
                (share - KIND_SHARE[k]).abs() < 0.05,
                "{}: {share}",
                FRAUD_KINDS[k]
            );
        }
        // Card testing comes in bursts of small amounts minutes apart.
        let testing: Vec<&Transaction> = txs.iter().filter(|t| t.fraud == Some(1)).collect();
        assert!(testing.iter().all(|t| t.amount <= 3.0));
        // Impossible travel is far and fast.
        let travel = txs.iter().filter(|t| t.fraud == Some(2)).count();
        assert!(travel > 0);
    }

    #[test]
    fn json_lines_carry_every_field() {
        let t = Transactions::new(spec(10, 5.0, 2)).next().unwrap();
        let mut line = String::new();
        t.write_json(&mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for key in [
            "event_id",
            "ts",
            "card_id",
            "amount",
            "merchant_category",
            "lat",
            "lon",
            "device",
            "label",
            "label_kind",
        ] {
            assert!(v.get(key).is_some(), "{key} in {line}");
        }
        assert_eq!(
            crate::time::parse_rfc3339(v["ts"].as_str().unwrap()).unwrap(),
            t.ts
        );
    }
}

/// How a fraud team's labels arrive, for [`team_labels`].
///
/// - An analyst reviews the alerts a first model raised: it alerts on a
///   fraud with probability `analyst_catch` and on a genuine transaction
///   with `analyst_false_alarm`; each reviewed alert gets a verdict
///   (fraud with its kind, or legit) `analyst_delay_hours` after the event.
/// - A cardholder disputes a fraud with probability `chargeback`; the
///   chargeback becomes known `chargeback_days` after the event.
/// - Fraud neither alerted nor disputed is never labelled.
///
/// Delays are drawn uniformly from their ranges.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelPolicy {
    pub analyst_catch: f64,
    pub analyst_false_alarm: f64,
    pub analyst_delay_hours: (f64, f64),
    pub chargeback: f64,
    pub chargeback_days: (f64, f64),
}

impl Default for LabelPolicy {
    fn default() -> Self {
        LabelPolicy {
            analyst_catch: 0.5,
            analyst_false_alarm: 0.003,
            analyst_delay_hours: (0.2, 8.0),
            chargeback: 0.7,
            chargeback_days: (5.0, 40.0),
        }
    }
}

/// A label as the team would record it: (event id, fraud, kind, source,
/// known at).
#[derive(Debug, Clone, PartialEq)]
pub struct TeamLabel {
    pub event_id: String,
    pub fraud: bool,
    pub kind: Option<&'static str>,
    pub source: &'static str,
    pub known_at: i64,
}

impl TeamLabel {
    /// The JSON line `radar generate --labels-out` writes.
    pub fn write_json(&self, out: &mut String) {
        let _ = write!(
            out,
            r#"{{"event_id":"{}","label":"{}","#,
            self.event_id,
            if self.fraud { "fraud" } else { "legit" }
        );
        if let Some(k) = self.kind {
            let _ = write!(out, r#""kind":"{k}","#);
        }
        let _ = write!(
            out,
            r#""source":"{}","known_at":"{}"}}"#,
            self.source,
            format_rfc3339(self.known_at)
        );
    }
}

/// The labels a team would have for `tx` (none, one or two), drawn from
/// `policy` deterministically per event and `seed`.
pub fn team_labels(tx: &Transaction, seed: u64, policy: &LabelPolicy) -> Vec<TeamLabel> {
    let mut rng = Rng::seed_from_u64(derive_seed(seed ^ 0x1abe_1500, tx.event_id));
    let id = format!("tx-{:010}", tx.event_id);
    let between = |rng: &mut Rng, (lo, hi): (f64, f64), unit: i64| -> i64 {
        ((lo + (hi - lo) * rng.next_f64()) * unit as f64) as i64
    };
    let mut out = Vec::new();
    let alerted = match tx.fraud {
        Some(_) => rng.next_f64() < policy.analyst_catch,
        None => rng.next_f64() < policy.analyst_false_alarm,
    };
    if alerted {
        out.push(TeamLabel {
            event_id: id.clone(),
            fraud: tx.fraud.is_some(),
            kind: tx.fraud.map(|k| FRAUD_KINDS[k]),
            source: "analyst",
            known_at: tx.ts + between(&mut rng, policy.analyst_delay_hours, HOUR),
        });
    }
    if let Some(k) = tx.fraud
        && rng.next_f64() < policy.chargeback
    {
        out.push(TeamLabel {
            event_id: id,
            fraud: true,
            kind: Some(FRAUD_KINDS[k]),
            source: "chargeback",
            known_at: tx.ts + between(&mut rng, policy.chargeback_days, DAY),
        });
    }
    out
}
