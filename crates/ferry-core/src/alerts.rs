//! Alert rules and incidents as pure rules (issue 9's groundwork): what a
//! rule watches, how a window of numbers makes it fire or clear, how an
//! incident moves (ok → firing → resolved, one email each way, cooldown,
//! escalation when nobody acknowledges), and the subject line of its email.
//! The engine feeds these functions rollups; nothing here reads runs, so the
//! cost of evaluating a rule does not grow with the number of runs.

use chrono::{DateTime, Duration, Utc};

/// What a rule watches, with its thresholds.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    /// Failures above `max_percent` of runs in the window, once at least
    /// `min_runs` ran.
    ErrorRate {
        /// Highest acceptable failure rate, in percent.
        max_percent: f64,
        /// Runs needed before the rate means anything.
        min_runs: u64,
    },
    /// p95 latency of the window above `factor` times the baseline.
    Latency {
        /// How many times the baseline is too slow.
        factor: f64,
        /// Runs needed in the window before p95 means anything.
        min_runs: u64,
    },
    /// No events in a window where at least `min_expected` were expected.
    Volume {
        /// Events the baseline expects in the window, at least.
        min_expected: u64,
    },
    /// Destination writes failing above `max_percent`, or none landing
    /// while runs happen.
    DestinationWrites {
        /// Highest acceptable failed-write rate, in percent.
        max_percent: f64,
    },
    /// Runs still waiting for their outcome past the deadline.
    OutcomeDeadline,
    /// A credential expired, was revoked, failed to refresh or needs
    /// rotation.
    Authentication,
    /// The workflow's 90-day review is more than `REVIEW_GRACE_DAYS` past
    /// its due date.
    ReviewOverdue,
}

/// Days past its due date after which a review is overdue (the owner had
/// a reminder on the due date).
pub const REVIEW_GRACE_DAYS: i64 = 14;

impl RuleKind {
    /// The rule's name in emails and pages.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ErrorRate { .. } => "error rate",
            Self::Latency { .. } => "latency",
            Self::Volume { .. } => "volume",
            Self::DestinationWrites { .. } => "destination writes",
            Self::OutcomeDeadline => "outcome deadline",
            Self::Authentication => "authentication",
            Self::ReviewOverdue => "review overdue",
        }
    }

    /// The rule's key where it is stored and in forms.
    pub fn key(&self) -> &'static str {
        match self {
            Self::ErrorRate { .. } => "error_rate",
            Self::Latency { .. } => "latency",
            Self::Volume { .. } => "volume",
            Self::DestinationWrites { .. } => "destination_writes",
            Self::OutcomeDeadline => "outcome_deadline",
            Self::Authentication => "authentication",
            Self::ReviewOverdue => "review_overdue",
        }
    }

    /// Whether it judges a window of numbers (the rules that watch a state,
    /// a credential or a review date, have no window to choose).
    pub fn windowed(&self) -> bool {
        !matches!(self, Self::Authentication | Self::ReviewOverdue)
    }

    /// A stored rule back from its key, threshold and minimum runs; none
    /// for an unknown key.
    pub fn parse(key: &str, threshold: f64, min_runs: u64) -> Option<Self> {
        Some(match key {
            "error_rate" => Self::ErrorRate {
                max_percent: threshold,
                min_runs,
            },
            "latency" => Self::Latency {
                factor: threshold,
                min_runs,
            },
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            "volume" => Self::Volume {
                min_expected: threshold.max(0.0) as u64,
            },
            "destination_writes" => Self::DestinationWrites {
                max_percent: threshold,
            },
            "outcome_deadline" => Self::OutcomeDeadline,
            "authentication" => Self::Authentication,
            "review_overdue" => Self::ReviewOverdue,
            _ => return None,
        })
    }

    /// Its threshold as stored (percent, factor or expected events; 0 for
    /// the rules that have none).
    pub fn threshold(&self) -> f64 {
        match self {
            Self::ErrorRate { max_percent, .. } | Self::DestinationWrites { max_percent } => {
                *max_percent
            }
            Self::Latency { factor, .. } => *factor,
            #[allow(clippy::cast_precision_loss)]
            Self::Volume { min_expected } => *min_expected as f64,
            Self::OutcomeDeadline | Self::Authentication | Self::ReviewOverdue => 0.0,
        }
    }

    /// Runs needed before it judges (0 where it does not apply).
    pub fn min_runs(&self) -> u64 {
        match self {
            Self::ErrorRate { min_runs, .. } | Self::Latency { min_runs, .. } => *min_runs,
            _ => 0,
        }
    }

    /// What the threshold means, for forms; none when it has none.
    pub fn threshold_label(&self) -> Option<&'static str> {
        match self {
            Self::ErrorRate { .. } => Some("Highest failure rate (%)"),
            Self::Latency { .. } => Some("Times slower than usual (p95)"),
            Self::Volume { .. } => Some("Events usually expected in the window, at least"),
            Self::DestinationWrites { .. } => Some("Highest failed-write rate (%)"),
            Self::OutcomeDeadline | Self::Authentication | Self::ReviewOverdue => None,
        }
    }

    /// The rule in one sentence, for pages.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::ErrorRate { .. } => {
                "Runs that fail or are dead-lettered, as a share of the runs that ended in the window."
            }
            Self::Latency { .. } => {
                "The slowest 5% of runs in the window, against the usual (the median hourly p95 of the last 7 days)."
            }
            Self::Volume { .. } => {
                "No events at all in a window where the last 7 days say traffic is expected."
            }
            Self::DestinationWrites { .. } => {
                "Writes to the destination that fail or do not land as written, or none landing while runs succeed."
            }
            Self::OutcomeDeadline => {
                "A run still waiting for its outcome (the verification result) when its deadline passes."
            }
            Self::Authentication => {
                "A connection the workflow uses stopped working (expired, revoked, refresh refused) or its credential expires within 7 days."
            }
            Self::ReviewOverdue => {
                "The workflow's 90-day review is two weeks past its due date (its owner was reminded on the day). Recording the review resolves it."
            }
        }
    }

    /// The window a new rule of this kind looks at, in minutes.
    pub fn default_window_minutes(&self) -> u32 {
        match self {
            Self::ErrorRate { .. } | Self::OutcomeDeadline => 24 * 60,
            Self::Latency { .. } | Self::DestinationWrites { .. } => 60,
            Self::Volume { .. } => 4 * 60,
            Self::Authentication | Self::ReviewOverdue => 1,
        }
    }

    /// The defaults every new workflow gets (small enough for the demo's
    /// sample contacts to fire the error-rate rule).
    pub fn defaults() -> Vec<Self> {
        vec![
            Self::ErrorRate {
                max_percent: 2.0,
                min_runs: 5,
            },
            Self::Latency {
                factor: 2.0,
                min_runs: 5,
            },
            Self::Volume { min_expected: 10 },
            Self::DestinationWrites { max_percent: 2.0 },
            Self::OutcomeDeadline,
            Self::Authentication,
            Self::ReviewOverdue,
        ]
    }
}

/// The numbers of one window, from the rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Window {
    /// Runs that ended.
    pub runs: u64,
    /// Of those, failed or dead-lettered.
    pub failed: u64,
    /// Events received.
    pub events: u64,
    /// Events the trailing baseline expects in a window this long (none
    /// without a baseline).
    pub expected_events: Option<f64>,
    /// Destination writes attempted.
    pub writes: u64,
    /// Of those, failed (or not confirmed).
    pub writes_failed: u64,
    /// p95 latency in the window, milliseconds (none without runs).
    pub p95_ms: Option<f64>,
    /// The baseline p95 (trailing median of hourly p95s), milliseconds.
    pub baseline_p95_ms: Option<f64>,
    /// Runs waiting past their outcome deadline.
    pub overdue: u64,
    /// Credentials that stopped working or need rotation.
    pub credential_problems: u64,
    /// Days the workflow's review is past its due date (none when it is
    /// not due, or has no review date).
    pub review_late_days: Option<i64>,
}

/// A rule's judgement of a window.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing wrong (or too little data to say).
    Ok,
    /// Wrong: what makes it so, for the email's subject (no personal data).
    Firing(String),
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Judges `w` by `rule`; `span` names the window in messages ("24h").
pub fn judge(rule: &RuleKind, w: &Window, span: &str) -> Verdict {
    match rule {
        RuleKind::ErrorRate {
            max_percent,
            min_runs,
        } => {
            let rate = percent(w.failed, w.runs);
            if w.runs >= *min_runs && rate > *max_percent {
                Verdict::Firing(format!(
                    "error rate {rate:.1}% > {max_percent}% in {span} ({} of {} runs)",
                    w.failed, w.runs
                ))
            } else {
                Verdict::Ok
            }
        }
        RuleKind::Latency { factor, min_runs } => match (w.p95_ms, w.baseline_p95_ms) {
            (Some(p95), Some(base)) if w.runs >= *min_runs && base > 0.0 && p95 > base * factor => {
                Verdict::Firing(format!(
                    "p95 latency {p95:.0} ms > {factor}× baseline {base:.0} ms in {span}"
                ))
            }
            _ => Verdict::Ok,
        },
        RuleKind::Volume { min_expected } => match w.expected_events {
            #[allow(clippy::cast_precision_loss)]
            Some(expected) if w.events == 0 && expected >= (*min_expected).max(1) as f64 => {
                Verdict::Firing(format!(
                    "no events in {span} (about {expected:.0} expected)"
                ))
            }
            _ => Verdict::Ok,
        },
        RuleKind::DestinationWrites { max_percent } => {
            let rate = percent(w.writes_failed, w.writes);
            if w.writes > 0 && rate > *max_percent {
                Verdict::Firing(format!(
                    "failed writes {rate:.1}% > {max_percent}% in {span} ({} of {})",
                    w.writes_failed, w.writes
                ))
            } else if w.writes == 0 && w.runs > 0 && w.failed < w.runs {
                Verdict::Firing(format!(
                    "no write landed in {span} while {} runs succeeded",
                    w.runs - w.failed
                ))
            } else {
                Verdict::Ok
            }
        }
        RuleKind::OutcomeDeadline => {
            if w.overdue > 0 {
                Verdict::Firing(format!(
                    "{} run{} waiting past the outcome deadline",
                    w.overdue,
                    if w.overdue == 1 { "" } else { "s" }
                ))
            } else {
                Verdict::Ok
            }
        }
        RuleKind::Authentication => {
            if w.credential_problems > 0 {
                Verdict::Firing(format!(
                    "{} credential{} stopped working or need{} rotation",
                    w.credential_problems,
                    if w.credential_problems == 1 { "" } else { "s" },
                    if w.credential_problems == 1 { "s" } else { "" }
                ))
            } else {
                Verdict::Ok
            }
        }
        RuleKind::ReviewOverdue => match w.review_late_days {
            Some(days) if days >= REVIEW_GRACE_DAYS => Verdict::Firing(format!(
                "the 90-day review is {days} days past its due date"
            )),
            _ => Verdict::Ok,
        },
    }
}

/// A window's length as messages name it: `24h`, `1h`, `15 min`, `7d`.
pub fn window_label(minutes: u32) -> String {
    if minutes > 24 * 60 && minutes.is_multiple_of(24 * 60) {
        format!("{}d", minutes / (24 * 60))
    } else if minutes >= 60 && minutes.is_multiple_of(60) {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes} min")
    }
}

/// Where an incident stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Incident {
    /// Quiet; `resolved_at` is when the last incident resolved (for the
    /// cooldown).
    Ok {
        /// When the last incident resolved.
        resolved_at: Option<DateTime<Utc>>,
    },
    /// Firing since `since`.
    Firing {
        /// When it opened.
        since: DateTime<Utc>,
        /// Whether someone acknowledged it (stops escalation).
        acknowledged: bool,
        /// Whether the escalation recipient was told.
        escalated: bool,
    },
}

/// What to send after a step of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Nothing.
    None,
    /// The incident opened: tell the recipient.
    Opened,
    /// Unacknowledged too long: tell the escalation recipient.
    Escalated,
    /// The incident resolved: tell the recipient.
    Resolved,
}

/// How incidents pace themselves.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// After a resolution, a new incident of the same rule opens no sooner.
    pub cooldown: Duration,
    /// Unacknowledged this long, the escalation recipient is told.
    pub escalate_after: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            cooldown: Duration::minutes(15),
            escalate_after: Duration::hours(4),
        }
    }
}

/// Moves an incident on by one evaluation: one notice when it opens, one
/// when it resolves, one escalation, never one per failure.
pub fn step(
    state: &Incident,
    verdict: &Verdict,
    now: DateTime<Utc>,
    pacing: Pacing,
) -> (Incident, Notice) {
    match (state, verdict) {
        (Incident::Ok { resolved_at }, Verdict::Firing(_)) => {
            if resolved_at.is_some_and(|t| now - t < pacing.cooldown) {
                (state.clone(), Notice::None)
            } else {
                (
                    Incident::Firing {
                        since: now,
                        acknowledged: false,
                        escalated: false,
                    },
                    Notice::Opened,
                )
            }
        }
        (Incident::Ok { .. }, Verdict::Ok) => (state.clone(), Notice::None),
        (Incident::Firing { .. }, Verdict::Ok) => (
            Incident::Ok {
                resolved_at: Some(now),
            },
            Notice::Resolved,
        ),
        (
            Incident::Firing {
                since,
                acknowledged,
                escalated,
            },
            Verdict::Firing(_),
        ) => {
            if !acknowledged && !escalated && now - *since >= pacing.escalate_after {
                (
                    Incident::Firing {
                        since: *since,
                        acknowledged: false,
                        escalated: true,
                    },
                    Notice::Escalated,
                )
            } else {
                (state.clone(), Notice::None)
            }
        }
    }
}

/// The subject of an incident's email: it says it all, e.g.
/// `[Ferry] FIRING: error rate 3.4% > 2% in 24h (…) — KYC (Demo Accounting)`.
pub fn subject(notice: Notice, what: &str, workflow: &str, tenant: &str) -> String {
    let state = match notice {
        Notice::Resolved => "RESOLVED",
        Notice::Escalated => "ESCALATED",
        Notice::Opened | Notice::None => "FIRING",
    };
    format!("[Ferry] {state}: {what} — {workflow} ({tenant})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn the_error_rate_fires_above_its_threshold_once_enough_runs_happened() {
        let rule = RuleKind::ErrorRate {
            max_percent: 2.0,
            min_runs: 5,
        };
        let few = Window {
            runs: 4,
            failed: 4,
            ..Window::default()
        };
        assert_eq!(
            judge(&rule, &few, "24h"),
            Verdict::Ok,
            "too few runs to say"
        );
        let bad = Window {
            runs: 29,
            failed: 1,
            ..Window::default()
        };
        assert_eq!(
            judge(&rule, &bad, "24h"),
            Verdict::Firing("error rate 3.4% > 2% in 24h (1 of 29 runs)".into())
        );
        let good = Window {
            runs: 100,
            failed: 2,
            ..Window::default()
        };
        assert_eq!(
            judge(&rule, &good, "24h"),
            Verdict::Ok,
            "2% is not above 2%"
        );
    }

    #[test]
    fn writes_fire_when_failing_or_when_none_land_while_runs_succeed() {
        let rule = RuleKind::DestinationWrites { max_percent: 2.0 };
        let none = Window {
            runs: 10,
            ..Window::default()
        };
        assert!(matches!(judge(&rule, &none, "1h"), Verdict::Firing(_)));
        let failing = Window {
            runs: 10,
            writes: 10,
            writes_failed: 3,
            ..Window::default()
        };
        assert!(matches!(judge(&rule, &failing, "1h"), Verdict::Firing(_)));
        let fine = Window {
            runs: 10,
            writes: 10,
            ..Window::default()
        };
        assert_eq!(judge(&rule, &fine, "1h"), Verdict::Ok);
    }

    #[test]
    fn volume_fires_on_silence_only_where_traffic_is_expected() {
        let rule = RuleKind::Volume { min_expected: 10 };
        let quiet_usual = Window::default();
        assert_eq!(judge(&rule, &quiet_usual, "4h"), Verdict::Ok, "no baseline");
        let little_expected = Window {
            expected_events: Some(3.0),
            ..Window::default()
        };
        assert_eq!(judge(&rule, &little_expected, "4h"), Verdict::Ok);
        let silent = Window {
            expected_events: Some(40.0),
            ..Window::default()
        };
        assert_eq!(
            judge(&rule, &silent, "4h"),
            Verdict::Firing("no events in 4h (about 40 expected)".into())
        );
        let busy = Window {
            events: 1,
            expected_events: Some(40.0),
            ..Window::default()
        };
        assert_eq!(judge(&rule, &busy, "4h"), Verdict::Ok);
    }

    #[test]
    fn latency_needs_a_baseline_and_fires_above_its_multiple() {
        let rule = RuleKind::Latency {
            factor: 2.0,
            min_runs: 5,
        };
        let no_base = Window {
            runs: 10,
            p95_ms: Some(900.0),
            ..Window::default()
        };
        assert_eq!(judge(&rule, &no_base, "1h"), Verdict::Ok);
        let slow = Window {
            runs: 10,
            p95_ms: Some(900.0),
            baseline_p95_ms: Some(400.0),
            ..Window::default()
        };
        assert!(matches!(judge(&rule, &slow, "1h"), Verdict::Firing(_)));
    }

    #[test]
    fn an_incident_sends_one_notice_each_way_escalates_once_and_cools_down() {
        let pacing = Pacing::default();
        let firing = Verdict::Firing("x".into());
        let mut state = Incident::Ok { resolved_at: None };
        let mut sent = Vec::new();
        // 300 evaluations with failures: one "opened", one escalation.
        for minute in 0..300 {
            let (next, notice) = step(&state, &firing, t(minute), pacing);
            state = next;
            if notice != Notice::None {
                sent.push((minute, notice));
            }
        }
        assert_eq!(sent, vec![(0, Notice::Opened), (240, Notice::Escalated)]);
        let (state, notice) = step(&state, &Verdict::Ok, t(300), pacing);
        assert_eq!(notice, Notice::Resolved);
        // Within the cooldown a new failure opens nothing; after, it does.
        let (state, notice) = step(&state, &firing, t(310), pacing);
        assert_eq!(notice, Notice::None);
        let (_, notice) = step(&state, &firing, t(316), pacing);
        assert_eq!(notice, Notice::Opened);
    }

    #[test]
    fn an_acknowledged_incident_is_not_escalated() {
        let pacing = Pacing::default();
        let state = Incident::Firing {
            since: t(0),
            acknowledged: true,
            escalated: false,
        };
        let (_, notice) = step(&state, &Verdict::Firing("x".into()), t(600), pacing);
        assert_eq!(notice, Notice::None);
    }

    #[test]
    fn a_review_is_overdue_after_the_grace_period_only() {
        let late = |d: Option<i64>| Window {
            review_late_days: d,
            ..Window::default()
        };
        let rule = RuleKind::ReviewOverdue;
        assert_eq!(judge(&rule, &late(None), "1 min"), Verdict::Ok);
        assert_eq!(judge(&rule, &late(Some(0)), "1 min"), Verdict::Ok);
        assert_eq!(
            judge(&rule, &late(Some(REVIEW_GRACE_DAYS - 1)), "1 min"),
            Verdict::Ok
        );
        assert_eq!(
            judge(&rule, &late(Some(REVIEW_GRACE_DAYS)), "1 min"),
            Verdict::Firing("the 90-day review is 14 days past its due date".into())
        );
        assert!(!rule.windowed() && RuleKind::OutcomeDeadline.windowed());
    }

    #[test]
    fn the_subject_says_it_all() {
        assert_eq!(
            subject(
                Notice::Opened,
                "error rate 3.4% > 2% in 24h",
                "HubSpot → identity check",
                "Demo Accounting"
            ),
            "[Ferry] FIRING: error rate 3.4% > 2% in 24h — HubSpot → identity check (Demo Accounting)"
        );
        assert!(subject(Notice::Resolved, "x", "w", "t").starts_with("[Ferry] RESOLVED: "));
        assert_eq!(RuleKind::defaults().len(), 7, "the seven rules");
        assert_eq!(window_label(1440), "24h");
        assert_eq!(window_label(2880), "2d");
        assert_eq!(window_label(60), "1h");
        assert_eq!(window_label(15), "15 min");
        for kind in RuleKind::defaults() {
            assert_eq!(
                RuleKind::parse(kind.key(), kind.threshold(), kind.min_runs()),
                Some(kind.clone()),
                "{} survives storage",
                kind.key()
            );
        }
    }
}
