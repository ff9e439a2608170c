//! Exponential backoff with jitter, for retrying what a retry can fix
//! (storage down, a full disk, a broker restarting): each delay doubles up
//! to a cap, and is drawn from its upper half so that many retriers spread
//! out instead of knocking together.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Rng;
use crate::health::Health;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    rng: Rng,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let seed = crate::time::now_micros() as u64 ^ (std::process::id() as u64) << 32;
        Backoff {
            first,
            max,
            next: first,
            rng: Rng::seed_from_u64(seed),
        }
    }

    /// The next delay to wait: in [d/2, d] for d = first · 2^tries, capped.
    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d.mul_f64(0.5 + 0.5 * self.rng.next_f64())
    }

    /// After a success: the next failure starts from the first delay.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Waits the next delay, waking early when `stop` is set; returns
    /// whether it waited the whole delay.
    pub fn wait(&mut self, stop: &AtomicBool) -> bool {
        let until = Instant::now() + self.delay();
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        true
    }
}

pub use crate::error::Classify;

/// Runs a component's operations, retrying the transient failures with
/// backoff and keeping its [`Health`] current: degraded while it retries,
/// failed when an error cannot be retried, ok once an operation succeeds.
/// After `stop` is set, retries go on for `grace` (a drain on shutdown
/// gets a chance to finish), then the error is returned.
pub struct Retry<'a> {
    pub component: &'a str,
    pub health: &'a Health,
    pub stop: &'a AtomicBool,
    pub grace: Duration,
    backoff: Backoff,
    failing: bool,
}

impl<'a> Retry<'a> {
    pub fn new(component: &'a str, health: &'a Health, stop: &'a AtomicBool) -> Retry<'a> {
        health.ok(component);
        Retry {
            component,
            health,
            stop,
            grace: Duration::from_secs(10),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(10)),
            failing: false,
        }
    }

    pub fn run<T, E: Classify>(&mut self, mut op: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let mut stopped_at: Option<Instant> = None;
        loop {
            match self.attempt(&mut op) {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() => {
                    if self.stop.load(Ordering::Relaxed) {
                        let since = *stopped_at.get_or_insert_with(Instant::now);
                        if since.elapsed() >= self.grace {
                            return Err(e);
                        }
                        std::thread::sleep(self.backoff.delay().min(Duration::from_secs(1)));
                    } else {
                        self.backoff.wait(self.stop);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `op` once, reporting its outcome like [`Retry::run`] without
    /// waiting: for work that is tried again later anyway (a periodic
    /// checkpoint).
    pub fn attempt<T, E: Classify>(&mut self, op: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        match op() {
            Ok(v) => {
                if self.failing {
                    self.health.ok(self.component);
                    self.backoff.reset();
                    self.failing = false;
                }
                Ok(v)
            }
            Err(e) => {
                self.failing = true;
                if e.is_transient() {
                    self.health.degraded(self.component, e.to_string());
                } else {
                    self.health.failed(self.component, e.to_string());
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_stay_in_their_upper_half() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let bounds = [100, 200, 400, 800, 1000, 1000];
        for hi in bounds {
            let d = b.delay().as_secs_f64() * 1000.0;
            assert!(
                d >= hi as f64 / 2.0 - 1e-9 && d <= hi as f64 + 1e-9,
                "{d} vs {hi}"
            );
        }
        b.reset();
        assert!(b.delay() <= Duration::from_millis(100));
    }

    #[derive(Debug)]
    struct E(bool);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "transient: {}", self.0)
        }
    }
    impl Classify for E {
        fn kind(&self) -> crate::error::ErrorKind {
            if self.0 {
                crate::error::ErrorKind::Unavailable
            } else {
                crate::error::ErrorKind::Internal
            }
        }
    }

    #[test]
    fn retry_retries_transient_errors_and_reports_health() {
        let health = Health::default();
        let stop = AtomicBool::new(false);
        let mut retry = Retry::new("capture", &health, &stop);
        let mut calls = 0;
        let v = retry.run(|| {
            calls += 1;
            if calls < 3 { Err(E(true)) } else { Ok(calls) }
        });
        assert_eq!(v.unwrap(), 3);
        let s = &health.snapshot()["capture"];
        assert_eq!((s.state, s.errors), (crate::health::State::Ok, 2));
        let r: Result<(), E> = retry.run(|| Err(E(false)));
        assert!(r.is_err());
        assert_eq!(
            health.snapshot()["capture"].state,
            crate::health::State::Failed
        );
    }

    #[test]
    fn retry_gives_up_after_the_grace_once_stopped() {
        let health = Health::default();
        let stop = AtomicBool::new(true);
        let mut retry = Retry::new("capture", &health, &stop);
        retry.grace = Duration::from_millis(300);
        let t = Instant::now();
        let r: Result<(), E> = retry.run(|| Err(E(true)));
        assert!(r.is_err());
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert_eq!(
            health.snapshot()["capture"].state,
            crate::health::State::Degraded
        );
    }

    #[test]
    fn wait_returns_early_on_stop() {
        let mut b = Backoff::new(Duration::from_secs(30), Duration::from_secs(30));
        let stop = AtomicBool::new(true);
        let t = Instant::now();
        assert!(!b.wait(&stop));
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
