//! The alert evaluation: once a minute (claimed in the database, so once
//! across every process), every rule is judged over the stored rollups —
//! never over runs, so its cost grows with rules and workflows, not with
//! traffic — and each incident moves on by [`ferry_core::alerts::step`].
//! An incident's change, its history row and its email (in the outbox) are
//! written in one transaction; the mail delivery then sends it with its
//! retries.

use crate::Mailer;
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use ferry_core::alerts::{Incident, Notice, Pacing, RuleKind, Verdict, Window, judge, step};
use ferry_core::metrics::{Rollup, Span, median};
use ferry_core::{Clock, EmailAddress, TenantId, UserId, UserStatus, WorkflowId};
use ferry_store::alerts::{self, CredentialProblem, Rule, Watched};
use ferry_store::{Db, Exec, StoreError, emails, tenants, users};
use std::collections::HashMap;
use std::sync::Arc;

/// How far ahead an expiring credential is reported.
pub const EXPIRY_NOTICE_DAYS: i64 = 7;
/// The trailing period baselines come from.
const BASELINE_DAYS: i64 = 7;
/// Windows up to this long are read from minute rollups; longer ones from
/// hour rollups.
const MINUTE_WINDOW_MAX: u32 = 120;

/// What one evaluation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Rules judged.
    pub rules: usize,
    /// Incidents opened.
    pub opened: usize,
    /// Incidents escalated.
    pub escalated: usize,
    /// Incidents resolved.
    pub resolved: usize,
    /// Emails written to the outbox.
    pub emails: usize,
}

/// Evaluates the alert rules. Cheap to clone.
#[derive(Clone)]
pub struct Evaluator {
    db: Db,
    clock: Arc<dyn Clock>,
    mailer: Mailer,
    base: String,
    baselines: Arc<tokio::sync::Mutex<Option<Baselines>>>,
}

/// Baselines change once an hour (they leave the current hour out): they
/// are computed at the first evaluation of each hour and kept.
struct Baselines {
    /// The hour they are for (its hours before it are in).
    hour: DateTime<Utc>,
    /// When the hours were last all read again.
    built: DateTime<Utc>,
    /// Each workflow's past hours: p95 and events.
    hours: HashMap<(String, String), Vec<Past>>,
    of: Arc<HashMap<(String, String), Baseline>>,
}

/// One past hour of a workflow, as baselines use it.
#[derive(Clone, Copy)]
struct Past {
    at: DateTime<Utc>,
    p95_ms: Option<f64>,
    events: u64,
}

/// Every so often the baselines' hours are all read again (a late flush
/// into an hour already read is then counted); in between, each new hour
/// adds its one row per workflow.
const BASELINE_REBUILD_HOURS: i64 = 24;

impl Evaluator {
    /// An evaluator whose emails link to pages under `public_url`.
    pub fn new(db: Db, clock: Arc<dyn Clock>, mailer: Mailer, public_url: &url::Url) -> Self {
        Self {
            db,
            clock,
            mailer,
            base: public_url.as_str().trim_end_matches('/').to_owned(),
            baselines: Arc::default(),
        }
    }

    /// Evaluates if this process claims the current minute; `None` when
    /// another process (or an earlier tick) has it.
    pub async fn tick(&self) -> Result<Option<Report>, StoreError> {
        let now = self.clock.now();
        if !alerts::claim_tick(&self.db, "alerts", Span::Minute.start(now)).await? {
            return Ok(None);
        }
        self.evaluate(now).await.map(Some)
    }

    /// Checks every 10 s whether a new minute is due, until `stop` flips.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.tick().await {
                Ok(Some(r)) if r.opened + r.resolved + r.escalated > 0 => {
                    tracing::info!(
                        rules = r.rules,
                        opened = r.opened,
                        escalated = r.escalated,
                        resolved = r.resolved,
                        "alert rules evaluated"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "alert evaluation failed; next minute again"),
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Judges every rule at `now` and moves its incident on.
    pub async fn evaluate(&self, now: DateTime<Utc>) -> Result<Report, StoreError> {
        let started = std::time::Instant::now();
        let rules = alerts::to_evaluate(&self.db).await?;
        let ruled = started.elapsed();
        let mut report = Report {
            rules: rules.len(),
            ..Report::default()
        };
        if rules.is_empty() {
            return Ok(report);
        }
        let baselines = self.baselines(now).await?;
        let baselined = started.elapsed();
        let data = Data::load(&self.db, &rules, now).await?;
        let loaded = started.elapsed();
        for rule in &rules {
            let watched = data
                .workflows
                .get(&(rule.tenant_id.clone(), rule.workflow_id.clone()));
            let verdict = if rule.enabled {
                let w = data.window(&baselines, rule, watched);
                judge(
                    &rule.kind,
                    &w,
                    &ferry_core::alerts::window_label(rule.window_minutes),
                )
            } else {
                Verdict::Ok
            };
            let pacing = Pacing {
                escalate_after: Duration::minutes(i64::from(rule.escalate_after_minutes)),
                ..Pacing::default()
            };
            let (next, notice) = step(&rule.state, &verdict, now, pacing);
            if next == rule.state && notice == Notice::None {
                continue;
            }
            match self
                .apply(rule, watched, (&next, notice), &verdict, now)
                .await
            {
                Ok(sent) => {
                    report.emails += sent;
                    match notice {
                        Notice::Opened => report.opened += 1,
                        Notice::Escalated => report.escalated += 1,
                        Notice::Resolved => report.resolved += 1,
                        Notice::None => {}
                    }
                }
                Err(e) => {
                    tracing::error!(rule_id = %rule.id, error = %e, "could not record an alert's change; next minute again");
                }
            }
        }
        if report.emails > 0 {
            self.mailer.wake();
        }
        tracing::debug!(
            rules = report.rules,
            rules_ms = ruled.as_millis(),
            baselines_ms = baselined.as_millis(),
            loaded_ms = loaded.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "alert evaluation timings"
        );
        Ok(report)
    }

    /// This hour's baselines, computed at its first evaluation.
    async fn baselines(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Arc<HashMap<(String, String), Baseline>>, StoreError> {
        let hour = Span::Hour.start(now);
        let week = hour - Duration::days(BASELINE_DAYS);
        let mut cached = self.baselines.lock().await;
        if let Some(b) = cached.as_ref().filter(|b| b.hour == hour) {
            return Ok(b.of.clone());
        }
        // Incremental from the last hour read, unless a rebuild is due.
        let kept = cached
            .take()
            .filter(|b| b.hour < hour && hour - b.built < Duration::hours(BASELINE_REBUILD_HOURS));
        let (from, built, mut hours) = match kept {
            Some(b) => (b.hour.max(week), b.built, b.hours),
            None => (week, hour, HashMap::new()),
        };
        let read = ferry_store::metrics::hours_between(&self.db, from, hour).await?;
        for (key, rows) in read {
            hours
                .entry(key)
                .or_default()
                .extend(rows.iter().map(|h| Past {
                    at: h.at,
                    p95_ms: ferry_core::metrics::quantile(&h.latency, 0.95),
                    events: h.events,
                }));
        }
        for past in hours.values_mut() {
            past.retain(|p| p.at >= week);
        }
        hours.retain(|_, past| !past.is_empty());
        let of: Arc<HashMap<(String, String), Baseline>> = Arc::new(
            hours
                .iter()
                .map(|(k, past)| (k.clone(), baseline(past, hour)))
                .collect(),
        );
        *cached = Some(Baselines {
            hour,
            built,
            hours,
            of: of.clone(),
        });
        Ok(of)
    }

    /// Writes an incident's change, its history and its emails in one
    /// transaction; returns the emails written (none when another process
    /// changed the rule first).
    async fn apply(
        &self,
        rule: &Rule,
        watched: Option<&Watched>,
        (next, notice): (&Incident, Notice),
        verdict: &Verdict,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let tx = self.db.begin().await?;
        let summary = match verdict {
            Verdict::Firing(why) => why.clone(),
            Verdict::Ok if rule.kind == RuleKind::ReviewOverdue => {
                "review no longer overdue".to_owned()
            }
            Verdict::Ok => format!("{} back to normal", rule.kind.label()),
        };
        let incident = match notice {
            Notice::Opened => Some(alerts::open(&tx, rule, &summary, now).await?),
            _ => rule.incident_id.clone(),
        };
        let keep = matches!(next, Incident::Firing { .. })
            .then_some(incident.as_ref())
            .flatten();
        if !alerts::transition(&tx, rule, next, keep, now).await? {
            return Ok(0);
        }
        let Some(incident) = incident else {
            tx.commit().await?;
            return Ok(0);
        };
        match notice {
            Notice::Resolved => alerts::close_or_escalate(&tx, &incident, true, now).await?,
            Notice::Escalated => alerts::close_or_escalate(&tx, &incident, false, now).await?,
            _ => {}
        }
        let recipients: Vec<(&UserId, &str)> = match notice {
            Notice::Opened => vec![(&rule.recipient_id, "opened")],
            Notice::Escalated => rule
                .escalation_id
                .iter()
                .map(|u| (u, "escalated"))
                .collect(),
            Notice::Resolved => {
                let mut to = vec![(&rule.recipient_id, "resolved")];
                if let (
                    Incident::Firing {
                        escalated: true, ..
                    },
                    Some(e),
                ) = (&rule.state, &rule.escalation_id)
                    && e != &rule.recipient_id
                {
                    to.push((e, "resolved"));
                }
                to
            }
            Notice::None => Vec::new(),
        };
        let tenant_name = tenants::get(&tx, &rule.tenant_id)
            .await
            .map(|t| t.name)
            .unwrap_or_default();
        let workflow_name = watched.map_or("a workflow", |w| w.name.as_str());
        let mut sent = 0;
        for (user, kind) in recipients {
            let Some(to) = address(&tx, &rule.tenant_id, user, watched).await? else {
                tracing::warn!(rule_id = %rule.id, "no active recipient for an alert; the incident is recorded without an email");
                continue;
            };
            let message = compose(
                &self.base,
                &Message {
                    notice,
                    rule,
                    incident: &incident,
                    summary: &summary,
                    workflow: workflow_name,
                    tenant: &tenant_name,
                    at: now,
                },
            );
            let stored = emails::insert(
                &tx,
                emails::Draft {
                    tenant: Some(&rule.tenant_id),
                    to: to.as_str(),
                    subject: &message.subject,
                    text: &message.text,
                    html: Some(&message.html),
                },
                self.mailer.status(),
                now,
            )
            .await?;
            alerts::add_notice(
                &tx,
                &rule.tenant_id,
                &incident,
                (&stored.id, kind, user),
                now,
            )
            .await?;
            sent += 1;
        }
        tx.commit().await?;
        Ok(sent)
    }

    /// Sends a test email for `rule` to its recipient now (no incident).
    pub async fn send_test(&self, rule: &Rule, workflow: &str) -> Result<bool, StoreError> {
        let now = self.clock.now();
        let tenant_name = tenants::get(&self.db, &rule.tenant_id)
            .await
            .map(|t| t.name)
            .unwrap_or_default();
        let Some(to) = address(&self.db, &rule.tenant_id, &rule.recipient_id, None).await? else {
            return Ok(false);
        };
        let message = compose(
            &self.base,
            &Message {
                notice: Notice::None,
                rule,
                incident: &ferry_core::IncidentId::generate(),
                summary: "test alert: nothing is wrong, this checks that alerts reach you",
                workflow,
                tenant: &tenant_name,
                at: now,
            },
        );
        emails::insert(
            &self.db,
            emails::Draft {
                tenant: Some(&rule.tenant_id),
                to: to.as_str(),
                subject: &message.subject.replacen("FIRING", "TEST", 1),
                text: &message.text,
                html: Some(&message.html),
            },
            self.mailer.status(),
            now,
        )
        .await?;
        self.mailer.wake();
        Ok(true)
    }
}

/// The address of an active member of the tenant: the recipient, or else
/// the workflow's owner.
async fn address(
    db: &impl Exec,
    tenant: &TenantId,
    user: &UserId,
    watched: Option<&Watched>,
) -> Result<Option<EmailAddress>, StoreError> {
    for who in std::iter::once(user).chain(watched.map(|w| &w.owner_id)) {
        match users::member(db, tenant, who).await {
            Ok(m) if m.status == UserStatus::Active => {
                if let Ok(a) = EmailAddress::parse("email", &m.user.email) {
                    return Ok(Some(a));
                }
            }
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// What the evaluation reads once per minute: each rule's window summed
/// by the database (one row per workflow and window length), the
/// workflows, and the connections in trouble.
struct Data {
    sums: HashMap<u32, HashMap<(TenantId, WorkflowId), Rollup>>,
    workflows: HashMap<(TenantId, WorkflowId), Watched>,
    credentials: HashMap<ferry_core::ConnectionId, CredentialProblem>,
    now: DateTime<Utc>,
}

impl Data {
    async fn load(db: &Db, rules: &[Rule], now: DateTime<Utc>) -> Result<Self, StoreError> {
        // The authentication and review rules read states, not counts.
        let mut windows: Vec<u32> = rules
            .iter()
            .filter(|r| r.enabled && r.kind.windowed())
            .map(|r| r.window_minutes.max(1))
            .collect();
        windows.sort_unstable();
        windows.dedup();
        // One pass per span: short windows from the minute rows, longer
        // ones from the hour rows; each window is the sum of its bands.
        let mut sums: HashMap<u32, HashMap<(TenantId, WorkflowId), Rollup>> = HashMap::new();
        let (short, long): (Vec<u32>, Vec<u32>) =
            windows.iter().partition(|w| **w <= MINUTE_WINDOW_MAX);
        for (span, ws) in [(Span::Minute, short), (Span::Hour, long)] {
            let starts: Vec<DateTime<Utc>> = ws
                .iter()
                .map(|w| span.start(now - Duration::minutes(i64::from(*w))))
                .collect();
            let banded = ferry_store::metrics::sums_in_bands(db, span, &starts).await?;
            for (k, minutes) in ws.iter().enumerate() {
                let summed = banded
                    .iter()
                    .map(|(key, bands)| {
                        let mut total = Rollup::default();
                        for b in bands.iter().take(k + 1) {
                            total.add(b);
                        }
                        (key.clone(), total)
                    })
                    .collect();
                sums.insert(*minutes, summed);
            }
        }
        Ok(Self {
            sums,
            workflows: alerts::watched(db).await?,
            credentials: alerts::credential_problems(db, now + Duration::days(EXPIRY_NOTICE_DAYS))
                .await?,
            now,
        })
    }

    fn window(
        &self,
        baselines: &HashMap<(String, String), Baseline>,
        rule: &Rule,
        watched: Option<&Watched>,
    ) -> Window {
        let key = (rule.tenant_id.clone(), rule.workflow_id.clone());
        let minutes = rule.window_minutes.max(1);
        let sum = self
            .sums
            .get(&minutes)
            .and_then(|s| s.get(&key))
            .copied()
            .unwrap_or_default();
        let base = baselines
            .get(&(rule.tenant_id.to_string(), rule.workflow_id.to_string()))
            .copied()
            .unwrap_or_default();
        let credential_problems = watched.map_or(0, |w| {
            w.connections
                .iter()
                .filter(|c| self.credentials.contains_key(*c))
                .count()
        });
        Window {
            runs: sum.ended(),
            failed: sum.failures(),
            events: sum.events,
            expected_events: base.events_per_minute.map(|per| per * f64::from(minutes)),
            writes: sum.writes,
            writes_failed: sum.writes_failed,
            p95_ms: sum.quantile_ms(0.95),
            baseline_p95_ms: base.p95_ms,
            overdue: sum.deadlines_missed,
            credential_problems: u64::try_from(credential_problems).unwrap_or(u64::MAX),
            review_late_days: watched
                .and_then(|w| w.review_due_at)
                .filter(|due| *due <= self.now)
                .map(|due| (self.now - due).num_days()),
        }
    }
}

#[derive(Clone, Copy, Default)]
struct Baseline {
    /// Median of the hourly p95s of the trailing days.
    p95_ms: Option<f64>,
    /// Events per minute over the trailing days.
    events_per_minute: Option<f64>,
}

/// Hours of data a baseline needs before it means anything.
const BASELINE_MIN_HOURS: usize = 6;

/// A workflow's baseline from its past hours (before `this_hour`).
fn baseline(past: &[Past], this_hour: DateTime<Utc>) -> Baseline {
    let mut p95s: Vec<f64> = past.iter().filter_map(|h| h.p95_ms).collect();
    let p95_ms = if p95s.len() >= BASELINE_MIN_HOURS {
        median(&mut p95s)
    } else {
        None
    };
    // Traffic is expected from the first hour that saw any, on.
    let first = past.iter().filter(|h| h.events > 0).map(|h| h.at).min();
    let events_per_minute = first.and_then(|first| {
        let span = (this_hour - first).num_minutes();
        let events: u64 = past.iter().map(|h| h.events).sum();
        #[allow(clippy::cast_precision_loss)]
        (span >= 60 * i64::try_from(BASELINE_MIN_HOURS).unwrap_or(6))
            .then(|| events as f64 / span as f64)
    });
    Baseline {
        p95_ms,
        events_per_minute,
    }
}

/// What an alert email says.
struct Message<'a> {
    notice: Notice,
    rule: &'a Rule,
    incident: &'a ferry_core::IncidentId,
    summary: &'a str,
    workflow: &'a str,
    tenant: &'a str,
    at: DateTime<Utc>,
}

/// An alert email: its subject, text and HTML.
pub struct Composed {
    /// Subject line.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<!doctype html>
<html lang="en"><body style="font-family:system-ui,sans-serif;color:#1b1f24;line-height:1.5">
<p style="font-size:1.1em"><strong>{{ headline }}</strong></p>
<p>{{ summary }}</p>
<table style="border-collapse:collapse">
<tr><th style="text-align:left;padding:2px 12px 2px 0">Workflow</th><td>{{ workflow }}</td></tr>
<tr><th style="text-align:left;padding:2px 12px 2px 0">Rule</th><td>{{ rule }} — {{ describe }}</td></tr>
<tr><th style="text-align:left;padding:2px 12px 2px 0">Window</th><td>{{ window }}</td></tr>
<tr><th style="text-align:left;padding:2px 12px 2px 0">When</th><td>{{ at }}</td></tr>
</table>
<p>{% for (label, href) in links %}<a href="{{ href }}" style="color:#0b57d0">{{ label }}</a><br>{% endfor %}</p>
<p style="color:#555;font-size:.9em">{{ footer }}</p>
</body></html>"#
)]
struct Html<'a> {
    headline: &'a str,
    summary: &'a str,
    workflow: &'a str,
    rule: &'a str,
    describe: &'a str,
    window: &'a str,
    at: &'a str,
    links: &'a [(String, String)],
    footer: &'a str,
}

fn compose(base: &str, m: &Message<'_>) -> Composed {
    let rule = m.rule;
    let subject = ferry_core::alerts::subject(m.notice, m.summary, m.workflow, m.tenant);
    let headline = match m.notice {
        Notice::Opened => format!("An alert opened: {}", rule.kind.label()),
        Notice::Escalated => format!(
            "Still firing and nobody acknowledged it: {}",
            rule.kind.label()
        ),
        Notice::Resolved => format!("Resolved: {}", rule.kind.label()),
        Notice::None => format!("Test alert: {}", rule.kind.label()),
    };
    let wf = &rule.workflow_id;
    let mut links: Vec<(String, String)> = Vec::new();
    match rule.kind {
        RuleKind::ErrorRate { .. } => {
            links.push((
                "Dead-lettered runs".into(),
                format!("{base}/runs?workflow={wf}&status=dead"),
            ));
            links.push((
                "Failed runs".into(),
                format!("{base}/runs?workflow={wf}&status=failed"),
            ));
        }
        RuleKind::Authentication => {
            links.push(("Connections".into(), format!("{base}/connections")));
        }
        RuleKind::ReviewOverdue => {
            links.push((
                "The review form".into(),
                format!("{base}/workflows/{wf}/review"),
            ));
        }
        _ => links.push((
            "Runs of this workflow".into(),
            format!("{base}/runs?workflow={wf}"),
        )),
    }
    if m.notice != Notice::None {
        links.push((
            "The incident (acknowledge it here)".into(),
            format!("{base}/alerts/{}", m.incident),
        ));
    }
    links.push((
        "The rule".into(),
        format!("{base}/alerts/rules/{}", rule.id),
    ));
    let window = ferry_core::alerts::window_label(rule.window_minutes);
    let at = m.at.format("%Y-%m-%d %H:%M UTC").to_string();
    let footer = match m.notice {
        Notice::Opened => {
            "You get one email when this opens and one when it resolves, not one per failure. Acknowledge it to stop the escalation."
        }
        Notice::Escalated => {
            "You are the escalation contact of this rule: it has fired for a while and nobody acknowledged it."
        }
        Notice::Resolved => "Nothing more to do unless it opens again.",
        Notice::None => "Sent from the rule's page to check that alerts reach you.",
    };
    let mut text = format!(
        "{headline}\n\n{}\n\nWorkflow: {}\nRule: {} — {}\nWindow: {window}\nWhen: {at}\n\n",
        m.summary,
        m.workflow,
        rule.kind.label(),
        rule.kind.describe()
    );
    for (label, href) in &links {
        text.push_str(&format!("{label}: {href}\n"));
    }
    text.push_str(&format!("\n{footer}\n"));
    let html = Html {
        headline: &headline,
        summary: m.summary,
        workflow: m.workflow,
        rule: rule.kind.label(),
        describe: rule.kind.describe(),
        window: &window,
        at: &at,
        links: &links,
        footer,
    }
    .render()
    .unwrap_or_else(|_| String::new());
    Composed {
        subject,
        text,
        html,
    }
}
