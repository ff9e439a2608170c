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

    pub fn push(&mut self, event: Scored) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event);
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
            r.push(Scored {
                ts: i,
                entity: Some(format!("e{}", i % 2)),
                score: i as f64,
                alert: i == 4,
                features: vec![i as f64],
            });
        }
        let ts: Vec<i64> = r.last(10, None).iter().map(|s| s.ts).collect();
        assert_eq!(ts, [2, 3, 4]);
        assert_eq!(r.last(1, None)[0].ts, 4);
        assert!(r.last(1, None)[0].alert);
        let odd: Vec<i64> = r.last(10, Some("e1")).iter().map(|s| s.ts).collect();
        assert_eq!(odd, [3]);
    }
}
