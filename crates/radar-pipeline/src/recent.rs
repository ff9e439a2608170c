//! The last scored live events, kept in memory for people to look at
//! (the dashboard's Explore page): each one's event time, feature row,
//! score and whether it alerted. Bounded; the oldest go first.

use std::collections::VecDeque;

/// One scored event.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scored {
    /// Event time (UTC µs).
    pub ts: i64,
    pub entity: Option<String>,
    pub score: f64,
    pub alert: bool,
    pub features: Vec<f64>,
}

/// A ring of the last `capacity` scored events.
#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    events: VecDeque<Scored>,
}

/// Events kept unless told otherwise.
pub const DEFAULT_CAPACITY: usize = 5_000;

impl Default for Recent {
    fn default() -> Self {
        Recent::new(DEFAULT_CAPACITY)
    }
}

impl Recent {
    pub fn new(capacity: usize) -> Recent {
        Recent {
            capacity: capacity.max(1),
            events: VecDeque::with_capacity(capacity.max(1)),
        }
    }

    /// Keeps one scored event. Once full, the evicted event's buffers take
    /// the new one: the scorer calls this for every live event, and
    /// steady state allocates nothing.
    pub fn push(
        &mut self,
        ts: i64,
        entity: Option<&str>,
        score: f64,
        alert: bool,
        features: &[f64],
    ) {
        let mut slot = if self.events.len() == self.capacity {
            self.events.pop_front()
        } else {
            None
        }
        .unwrap_or_else(|| Scored {
            ts,
            entity: None,
            score,
            alert,
            features: Vec::with_capacity(features.len()),
        });
        slot.ts = ts;
        slot.score = score;
        slot.alert = alert;
        slot.features.clear();
        slot.features.extend_from_slice(features);
        match (entity, &mut slot.entity) {
            (Some(e), Some(kept)) => {
                kept.clear();
                kept.push_str(e);
            }
            (e, kept) => *kept = e.map(str::to_owned),
        }
        self.events.push_back(slot);
    }

    /// The last `n` (of `entity`'s, when given), oldest first.
    pub fn last(&self, n: usize, entity: Option<&str>) -> Vec<Scored> {
        let mut out: Vec<Scored> = self
            .events
            .iter()
            .rev()
            .filter(|e| entity.is_none_or(|x| e.entity.as_deref() == Some(x)))
            .take(n)
            .cloned()
            .collect();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_capacity_oldest_first() {
        let mut r = Recent::new(3);
        for i in 0..5 {
            r.push(
                i,
                Some(&format!("e{}", i % 2)),
                i as f64,
                i == 4,
                &[i as f64],
            );
        }
        assert_eq!(r.last(1, None)[0].features, [4.0]);
        assert_eq!(r.last(1, None)[0].entity.as_deref(), Some("e0"));
        let ts: Vec<i64> = r.last(10, None).iter().map(|s| s.ts).collect();
        assert_eq!(ts, [2, 3, 4]);
        assert_eq!(r.last(1, None)[0].ts, 4);
        assert!(r.last(1, None)[0].alert);
        let odd: Vec<i64> = r.last(10, Some("e1")).iter().map(|s| s.ts).collect();
        assert_eq!(odd, [3]);
    }
}
