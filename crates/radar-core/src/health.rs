//! Component health: what each long-running part of a pipeline (log,
//! capture, scorer, alert sinks) last said about itself.
//!
//! A component is `ok`, `degraded` (it cannot make progress and is
//! retrying: storage down, disk full, a sink unreachable) or `failed` (it
//! stopped on an error a retry cannot fix). Nothing here blocks for long:
//! readers (`/readyz`, `/metrics`) take one short lock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ok,
    Degraded,
    Failed,
}

/// One component's last word.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    pub state: State,
    /// Why it is not ok (the last error), if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when (UTC µs) it has been in this state.
    pub since_us: i64,
    /// Errors it has met so far (each retry that failed counts).
    pub errors: u64,
}

/// The health of every component that registered.
#[derive(Debug, Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, Status>>,
}

impl Health {
    /// Says `component` works (registering it if new).
    pub fn ok(&self, component: &str) {
        self.set(component, State::Ok, None, false);
    }

    /// Says `component` cannot make progress for `reason` and is retrying.
    pub fn degraded(&self, component: &str, reason: impl Into<String>) {
        self.set(component, State::Degraded, Some(reason.into()), true);
    }

    /// Says `component` stopped for `reason`.
    pub fn failed(&self, component: &str, reason: impl Into<String>) {
        self.set(component, State::Failed, Some(reason.into()), true);
    }

    fn set(&self, component: &str, state: State, reason: Option<String>, error: bool) {
        let Ok(mut all) = self.components.lock() else {
            return;
        };
        let now = crate::time::now_micros();
        let entry = all.entry(component.to_owned()).or_insert(Status {
            state,
            reason: None,
            since_us: now,
            errors: 0,
        });
        if entry.state != state {
            entry.since_us = now;
        }
        entry.state = state;
        entry.reason = reason;
        entry.errors += error as u64;
    }

    /// Every component's status, by name.
    pub fn snapshot(&self) -> BTreeMap<String, Status> {
        self.components
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Whether every component is ok.
    pub fn all_ok(&self) -> bool {
        self.snapshot().values().all(|s| s.state == State::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_move_and_errors_count() {
        let h = Health::default();
        h.ok("capture");
        assert!(h.all_ok());
        h.degraded("capture", "storage: connection refused");
        h.degraded("capture", "storage: timed out");
        let s = &h.snapshot()["capture"];
        assert_eq!(s.state, State::Degraded);
        assert_eq!(s.reason.as_deref(), Some("storage: timed out"));
        assert_eq!(s.errors, 2);
        assert!(!h.all_ok());
        h.ok("capture");
        let s = &h.snapshot()["capture"];
        assert_eq!((s.state, s.reason.clone(), s.errors), (State::Ok, None, 2));
        h.failed("scorer", "checkpoint unreadable");
        assert_eq!(h.snapshot()["scorer"].state, State::Failed);
    }
}
