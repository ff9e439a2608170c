//! Safe rollout of a challenger: what the scorer decides while the
//! registry's `challenger` alias points at a version beside the
//! `champion`. Pure bookkeeping; the scorer applies the [`Action`]s.
//!
//! 1. Shadow: for [`RolloutOptions::shadow_events`] events the challenger
//!    scores every event beside the champion without deciding; its
//!    would-be alerts are stored apart; agreement and both alert rates are
//!    tallied.
//! 2. Canary: for [`RolloutOptions::canary_events`] more, the entities
//!    whose hash falls in [`RolloutOptions::canary_share`] are decided by
//!    the challenger (stable: an entity stays on one side).
//! 3. Then, if the challenger's alert rate stayed within
//!    [`RolloutOptions::max_alert_rate_ratio`] of the stream's alert
//!    budget (either way), it is promoted; at any check past the first
//!    1,000 events, a challenger outside those bounds is rejected (rolled
//!    back before it decides more).
//! 4. After a promotion, the new champion is watched for
//!    [`RolloutOptions::watch_events`] events: if its alert rate leaves the
//!    same bounds, the champion alias is rolled back.
//!
//! The budget is the champion's expected alert rate (the share of its
//! training scores above its threshold), not its live rate: once the
//! stream drifts the champion itself alerts far more than it should, and
//! a retrained challenger that alerts as budgeted must not be rejected
//! for alerting less than a drifted champion. Without a known expectation
//! the champion's live rate stands in.
//!
//! The tallies live in memory: a restarted scorer starts the current
//! stage again (a longer rollout, never a skipped check). Checks run once
//! per scored batch, so a canary may decide up to a batch more before it
//! is stopped.

use radar_core::schema::RolloutOptions;

/// Events each side must have seen before a rate is trusted.
const MIN_EVENTS: u64 = 1000;

/// Whether `alerts` among `events` lie outside `reference` (an alert
/// rate) times [1/ratio, ratio] by more than chance: three standard
/// deviations of a Poisson count past the bound. A rate of 1% over a
/// thousand events expects ten alerts, and three of them is luck, not a
/// broken model. A floor of one alert in a thousand keeps a near-silent
/// reference from making any rate look explosive.
pub fn rate_outside(alerts: u64, events: u64, reference: f64, ratio: f64) -> bool {
    let expected = reference.max(1e-3) * events as f64;
    let (hi, lo) = (expected * ratio, expected / ratio);
    let a = alerts as f64;
    a > hi + 3.0 * hi.sqrt() || a < lo - 3.0 * lo.sqrt()
}

#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Tally {
    pub events: u64,
    pub alerts: u64,
}

impl Tally {
    pub fn rate(&self) -> f64 {
        self.alerts as f64 / self.events.max(1) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Shadow,
    Canary,
}

/// What the scorer must do in the registry.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A challenger's stage began (recorded in the audit trail).
    Stage {
        version: i64,
        stage: Stage,
        figures: serde_json::Value,
    },
    Promote {
        version: i64,
        figures: serde_json::Value,
    },
    Reject {
        version: i64,
        reason: String,
        figures: serde_json::Value,
    },
    RollBack {
        from: i64,
        to: i64,
        reason: String,
        figures: serde_json::Value,
    },
}

/// One event as the rollout sees it.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub entity_hash: u64,
    pub champion_alert: bool,
    pub challenger_alert: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Watch {
    previous: i64,
    promoted: i64,
    /// The previous champion's alert rate during the rollout.
    baseline: f64,
    tally: Tally,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Rollout {
    #[serde(skip)]
    options: RolloutOptions,
    champion: Option<i64>,
    challenger: Option<i64>,
    /// The champion's expected alert rate.
    budget: Option<f64>,
    stage: Stage,
    /// Both models over every event of the rollout.
    champion_tally: Tally,
    challenger_tally: Tally,
    agreed: u64,
    /// Events the challenger decided.
    canary_events: u64,
    /// Events of the rollout when the canary began.
    canary_start: u64,
    watch: Option<Watch>,
    /// Challengers already promoted or rejected: until the watchers catch
    /// up with the registry, they may still be loaded, and must not start
    /// a second rollout.
    decided: Vec<i64>,
    /// A shadow stage began and is not yet recorded.
    announce: bool,
}

impl Rollout {
    pub fn new(options: RolloutOptions) -> Rollout {
        Rollout {
            options,
            champion: None,
            challenger: None,
            budget: None,
            stage: Stage::Shadow,
            champion_tally: Tally::default(),
            challenger_tally: Tally::default(),
            agreed: 0,
            canary_events: 0,
            canary_start: 0,
            watch: None,
            decided: Vec::new(),
            announce: false,
        }
    }

    fn restart(&mut self, champion: i64, challenger: Option<i64>) {
        if self.champion != Some(champion) {
            // A champion nobody here promoted (by hand): nothing to watch.
            if self.watch.as_ref().is_none_or(|w| w.promoted != champion) {
                self.watch = None;
            }
        }
        self.champion = Some(champion);
        self.challenger = challenger;
        self.announce = challenger.is_some();
        self.stage = Stage::Shadow;
        self.champion_tally = Tally::default();
        self.challenger_tally = Tally::default();
        self.agreed = 0;
        self.canary_events = 0;
        self.canary_start = 0;
    }

    /// Whether the challenger decides for this entity now.
    pub fn in_canary(&self, entity_hash: u64) -> bool {
        self.stage == Stage::Canary
            && (entity_hash % 10_000) < (self.options.canary_share * 10_000.0) as u64
    }

    /// Tallies a batch scored by `champion` (expected to alert on
    /// `budget` of events, when known) and `challenger`, when there is
    /// one; returns, per event, whether the challenger decides it.
    pub fn observe(
        &mut self,
        champion: i64,
        budget: Option<f64>,
        challenger: Option<i64>,
        seen: &[Seen],
    ) -> Vec<bool> {
        let challenger = challenger.filter(|v| !self.decided.contains(v));
        // A promoted champion keeps the budget of the one it replaced.
        if self.watch.is_none() {
            self.budget = budget.filter(|b| b.is_finite() && *b > 0.0);
        }
        // Promoted, but the old champion is still loaded: wait for the swap.
        if self.watch.as_ref().is_some_and(|w| w.previous == champion) {
            return vec![false; seen.len()];
        }
        if self.champion != Some(champion) || self.challenger != challenger {
            self.restart(champion, challenger);
        }
        if let Some(w) = &mut self.watch {
            for s in seen {
                w.tally.events += 1;
                w.tally.alerts += s.champion_alert as u64;
            }
        }
        if challenger.is_none() {
            return vec![false; seen.len()];
        }
        seen.iter()
            .map(|s| {
                self.champion_tally.events += 1;
                self.champion_tally.alerts += s.champion_alert as u64;
                self.challenger_tally.events += 1;
                self.challenger_tally.alerts += s.challenger_alert as u64;
                self.agreed += (s.champion_alert == s.challenger_alert) as u64;
                let canary = self.in_canary(s.entity_hash);
                self.canary_events += canary as u64;
                canary
            })
            .collect()
    }

    fn within_bounds(&self, tally: Tally, reference: f64) -> bool {
        !rate_outside(
            tally.alerts,
            tally.events,
            reference,
            self.options.max_alert_rate_ratio,
        )
    }

    /// The rate a challenger's is held to: the budget, else the
    /// champion's live rate.
    fn reference(&self) -> f64 {
        self.budget.unwrap_or_else(|| self.champion_tally.rate())
    }

    fn reference_name(&self) -> &'static str {
        match self.budget {
            Some(_) => "budgeted (the champion's expected rate)",
            None => "for the champion",
        }
    }

    fn figures(&self) -> serde_json::Value {
        serde_json::json!({
            "stage": self.stage,
            "budget": self.budget,
            "events": self.champion_tally.events,
            "champion_alert_rate": self.champion_tally.rate(),
            "challenger_alert_rate": self.challenger_tally.rate(),
            "agreement": self.agreed as f64 / self.champion_tally.events.max(1) as f64,
            "canary_events": self.canary_events,
        })
    }

    /// What the registry must do now, if anything; the rollout's state
    /// moves as if it were done.
    pub fn decide(&mut self) -> Option<Action> {
        if let Some(w) = &self.watch
            && w.tally.events >= MIN_EVENTS
        {
            let w = self.watch.take()?;
            if !self.within_bounds(w.tally, w.baseline) {
                return Some(Action::RollBack {
                    from: w.promoted,
                    to: w.previous,
                    reason: format!(
                        "after promotion the alert rate was {:.2}% against {:.2}% budgeted",
                        100.0 * w.tally.rate(),
                        100.0 * w.baseline
                    ),
                    figures: serde_json::json!({
                        "events": w.tally.events, "alert_rate": w.tally.rate(),
                        "previous_alert_rate": w.baseline,
                    }),
                });
            }
            if w.tally.events < self.options.watch_events {
                self.watch = Some(w);
            }
        }
        let (champion, challenger) = (self.champion?, self.challenger?);
        if std::mem::take(&mut self.announce) {
            return Some(Action::Stage {
                version: challenger,
                stage: Stage::Shadow,
                figures: serde_json::json!({"champion": champion}),
            });
        }
        let events = self.champion_tally.events;
        let reference = self.reference();
        if events >= MIN_EVENTS && !self.within_bounds(self.challenger_tally, reference) {
            let action = Action::Reject {
                version: challenger,
                reason: format!(
                    "in {} the challenger's alert rate was {:.2}% against {:.2}% {}",
                    match self.stage {
                        Stage::Shadow => "shadow",
                        Stage::Canary => "canary",
                    },
                    100.0 * self.challenger_tally.rate(),
                    100.0 * reference,
                    self.reference_name(),
                ),
                figures: self.figures(),
            };
            self.decided.push(challenger);
            self.restart(champion, None);
            return Some(action);
        }
        match self.stage {
            Stage::Shadow if events >= self.options.shadow_events => {
                self.stage = Stage::Canary;
                self.canary_start = events;
                Some(Action::Stage {
                    version: challenger,
                    stage: Stage::Canary,
                    figures: self.figures(),
                })
            }
            // The canary's length counts from its start: checks run per
            // batch, and a long shadow batch must not eat the canary.
            Stage::Canary if events - self.canary_start >= self.options.canary_events => {
                let action = Action::Promote {
                    version: challenger,
                    figures: self.figures(),
                };
                self.decided.push(challenger);
                self.watch = Some(Watch {
                    previous: champion,
                    promoted: challenger,
                    baseline: reference,
                    tally: Tally::default(),
                });
                self.restart(challenger, None);
                Some(action)
            }
            _ => None,
        }
    }

    pub fn stage(&self) -> Option<Stage> {
        self.challenger.map(|_| self.stage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> RolloutOptions {
        RolloutOptions {
            shadow_events: 2000,
            canary_events: 2000,
            canary_share: 0.5,
            max_alert_rate_ratio: 3.0,
            watch_events: 2000,
        }
    }

    /// The next decision that is not the start of a stage.
    fn decision(r: &mut Rollout) -> Option<Action> {
        loop {
            match r.decide() {
                Some(Action::Stage { .. }) => continue,
                other => return other,
            }
        }
    }

    /// `n` events, every `every`-th alerting on each side.
    fn batch(n: usize, champion_every: usize, challenger_every: usize) -> Vec<Seen> {
        (0..n)
            .map(|i| Seen {
                entity_hash: (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                champion_alert: i % champion_every == 0,
                challenger_alert: i % challenger_every == 0,
            })
            .collect()
    }

    #[test]
    fn a_sound_challenger_goes_through_shadow_and_canary_to_champion() {
        let mut r = Rollout::new(options());
        let decided = r.observe(1, None, Some(2), &batch(1000, 100, 90));
        assert!(decided.iter().all(|d| !d), "shadow decides nothing");
        assert_eq!(decision(&mut r), None);
        r.observe(1, None, Some(2), &batch(1000, 100, 90));
        assert_eq!(decision(&mut r), None);
        assert_eq!(r.stage(), Some(Stage::Canary));
        let decided = r.observe(1, None, Some(2), &batch(2000, 100, 90));
        let share = decided.iter().filter(|&&d| d).count() as f64 / 2000.0;
        assert!((share - 0.5).abs() < 0.05, "{share}");
        match decision(&mut r) {
            Some(Action::Promote { version: 2, .. }) => {}
            other => panic!("{other:?}"),
        }
        // Until the watchers swap, the old champion and the promoted
        // challenger are still loaded: no second rollout starts.
        assert!(
            r.observe(1, None, Some(2), &batch(500, 100, 90))
                .iter()
                .all(|d| !d)
        );
        assert_eq!(decision(&mut r), None);
        assert_eq!(r.stage(), None);
        // The promoted champion behaves: no rollback.
        r.observe(2, None, None, &batch(2000, 90, 90));
        assert_eq!(decision(&mut r), None);
    }

    #[test]
    fn an_explosive_canary_is_rejected_and_a_bad_promotion_rolled_back() {
        let mut r = Rollout::new(options());
        r.observe(1, None, Some(2), &batch(2000, 100, 100));
        assert_eq!(decision(&mut r), None);
        r.observe(1, None, Some(2), &batch(1000, 100, 5));
        match decision(&mut r) {
            Some(Action::Reject {
                version: 2, reason, ..
            }) => {
                assert!(reason.contains("canary"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // Promoted, then its alert rate explodes on live traffic.
        let mut r = Rollout::new(options());
        r.observe(1, None, Some(3), &batch(4000, 100, 100));
        assert!(matches!(
            r.decide(),
            Some(Action::Stage {
                stage: Stage::Shadow,
                ..
            })
        ));
        assert!(matches!(
            r.decide(),
            Some(Action::Stage {
                stage: Stage::Canary,
                ..
            })
        ));
        // The canary counts from its own start.
        assert!(r.decide().is_none());
        r.observe(1, None, Some(3), &batch(2000, 100, 100));
        assert!(matches!(
            decision(&mut r),
            Some(Action::Promote { version: 3, .. })
        ));
        r.observe(3, None, None, &batch(1000, 4, 4));
        match decision(&mut r) {
            Some(Action::RollBack { from: 3, to: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regression_a_retrained_challenger_was_rejected_for_alerting_less_than_a_drifted_champion() {
        // The stream drifted: the champion, budgeted at 1%, alerts on 10%.
        // A challenger alerting on 1% is what the retrain was for.
        let mut r = Rollout::new(options());
        r.observe(1, Some(0.01), Some(2), &batch(2000, 10, 100));
        assert_eq!(decision(&mut r), None);
        r.observe(1, Some(0.01), Some(2), &batch(2000, 10, 100));
        assert!(matches!(
            decision(&mut r),
            Some(Action::Promote { version: 2, .. })
        ));
        // Against the same budget, one alerting on 10% is rejected.
        let mut r = Rollout::new(options());
        r.observe(1, Some(0.01), Some(2), &batch(2000, 100, 10));
        match decision(&mut r) {
            Some(Action::Reject { reason, .. }) => assert!(reason.contains("budgeted"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
