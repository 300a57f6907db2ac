//! The publish gate: before a draft becomes a version, Ferry runs the
//! edge-case checklist against the workflow's sandbox connections: real
//! contacts created in the sandbox portal, the draft run on them through
//! the bound connections (writes made, waits awaited, a passing outage
//! injected), each check judged from what happened. Any failure blocks
//! publishing; the report, with its evidence, is stored with the version.

use super::Workflows;
use super::build::trigger_payload;
use crate::{Error, Member};
use chrono::{DateTime, Utc};
use ferry_core::catalog::ConnectorKey;
use ferry_core::workflow::{Definition, StepKind};
use ferry_core::{ConnectionStatus, Environment};
use ferry_engine::runs::{DryStep, TestMode, TestRun};
use ferry_store::alerts;
use ferry_store::connections;
use ferry_store::workflows::Workflow;
use serde_json::{Value, json};

/// One check of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateCheck {
    /// Stable key (`missing_field`, …).
    pub key: String,
    /// What it checks, in words.
    pub title: String,
    /// Passed.
    pub passed: bool,
    /// What happened, in a sentence.
    pub summary: String,
    /// The runs it made: each step, its outcome and its calls.
    pub evidence: Vec<String>,
}

/// The checklist's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateReport {
    /// Every check passed.
    pub passed: bool,
    /// When it ran.
    pub ran_at: DateTime<Utc>,
    /// The checks, in order.
    pub checks: Vec<GateCheck>,
}

impl GateReport {
    /// How many checks failed.
    pub fn failed(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed).count()
    }

    /// As stored with the version.
    pub fn to_json(&self) -> Value {
        json!({
            "passed": self.passed,
            "ran_at": self.ran_at.to_rfc3339(),
            "checks": self.checks.iter().map(|c| json!({
                "key": c.key,
                "title": c.title,
                "passed": c.passed,
                "summary": c.summary,
                "evidence": c.evidence,
            })).collect::<Vec<_>>(),
        })
    }

    /// Read back from a version.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            passed: v["passed"].as_bool()?,
            ran_at: v["ran_at"].as_str()?.parse().ok()?,
            checks: v["checks"]
                .as_array()?
                .iter()
                .map(|c| GateCheck {
                    key: c["key"].as_str().unwrap_or("").to_owned(),
                    title: c["title"].as_str().unwrap_or("").to_owned(),
                    passed: c["passed"].as_bool().unwrap_or(false),
                    summary: c["summary"].as_str().unwrap_or("").to_owned(),
                    evidence: c["evidence"]
                        .as_array()
                        .map(|e| {
                            e.iter()
                                .filter_map(|x| x.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect(),
        })
    }
}

fn check(
    key: &str,
    title: &str,
    passed: bool,
    summary: String,
    evidence: Vec<String>,
) -> GateCheck {
    GateCheck {
        key: key.into(),
        title: title.into(),
        passed,
        summary,
        evidence,
    }
}

/// A run's steps as evidence lines: outcome, attempts, calls (no values).
fn evidence(label: &str, run: &TestRun) -> Vec<String> {
    let mut out = vec![format!("Run on {label}:")];
    for s in &run.steps {
        let calls = s
            .calls
            .iter()
            .map(|c| {
                format!(
                    "{} {} → {} ({} ms)",
                    c.method, c.path, c.status, c.duration_ms
                )
            })
            .collect::<Vec<_>>();
        out.push(format!(
            "  {} [{}]: {}{}{}",
            s.key,
            s.kind,
            s.status,
            if s.attempts > 1 {
                format!(" after {} attempts", s.attempts)
            } else {
                String::new()
            },
            if calls.is_empty() {
                String::new()
            } else {
                format!(" — {}", calls.join("; "))
            }
        ));
        if s.status == "failed" && !s.note.is_empty() {
            out.push(format!("    why: {}", s.note));
        }
    }
    out
}

/// Whether a step wrote (a call that changes something was made).
fn wrote(s: &DryStep) -> bool {
    s.calls
        .iter()
        .any(|c| c.method != "GET" && c.status < 300 && c.status > 0)
}

impl Workflows {
    /// Runs the edge-case checklist on the draft against its sandbox
    /// connections. `Unavailable` when it cannot run (no sandbox, a
    /// production or broken connection, a trigger it cannot simulate).
    pub async fn run_gate(&self, admin: &Member, wf: &Workflow) -> Result<GateReport, Error> {
        admin.require_admin()?;
        let d = &wf.draft;
        let link = self.0.sandbox.as_ref().ok_or_else(|| {
            Error::Unavailable(
                "The publish checklist runs against the sandbox, which is off on this Ferry."
                    .into(),
            )
        })?;
        if d.trigger.connector != ConnectorKey::HubSpot {
            return Err(Error::Unavailable(
                "The publish checklist simulates HubSpot events: this workflow's trigger is not one yet.".into(),
            ));
        }
        let conns = connections::list(&self.0.db, &admin.tenant_id).await?;
        let mut portal = None;
        for k in d.connectors() {
            let c = wf
                .bindings
                .get(k.as_str())
                .and_then(|id| conns.iter().find(|c| &c.id == id))
                .ok_or_else(|| {
                    Error::Unavailable(format!("No {} connection is chosen.", k.def().name))
                })?;
            if c.environment != Environment::Sandbox || wf.environment != Environment::Sandbox {
                return Err(Error::Unavailable(
                    "The publish checklist runs against sandbox connections: build and publish this workflow with sandbox connections first.".into(),
                ));
            }
            if c.status == ConnectionStatus::Broken {
                return Err(Error::Unavailable(format!(
                    "The connection “{}” is broken: fix it before publishing.",
                    c.name
                )));
            }
            if k == ConnectorKey::HubSpot {
                portal = c.external_account.clone();
            }
        }
        let portal = portal.ok_or_else(|| {
            Error::Unavailable("The HubSpot connection names no sandbox portal.".into())
        })?;
        let portal = portal.as_str();
        let http = self.0.connections.http(Environment::Sandbox);
        let tenant = &admin.tenant_id;
        let tag = format!("{:06x}", rand::random::<u32>() & 0xff_ffff);
        let create = |props: Value| async move {
            link.admin(
                http,
                reqwest::Method::POST,
                &format!("/sandbox/hubspot/admin/portals/{portal}/contacts"),
                Some(tenant),
                json!({ "properties": props, "quiet": true }),
            )
            .await
            .map_err(|e| {
                Error::Unavailable(format!("The sandbox refused a checklist contact: {e}"))
            })
            .and_then(|v| {
                v["id"].as_str().map(str::to_owned).ok_or_else(|| {
                    Error::Unavailable("The sandbox created a contact without an id.".into())
                })
            })
        };
        let baseline = create(json!({
            "firstname": "Gate",
            "lastname": "Baseline",
            "email": format!("gate.baseline.{tag}@checklist.example"),
        }))
        .await?;
        let missing = create(json!({
            "firstname": "Gate",
            "email": format!("gate.missing.{tag}@checklist.example"),
        }))
        .await?;
        let long_last: String = "Łukasiewicz-Ñúñez O'Brien 李小龍 "
            .chars()
            .cycle()
            .take(120)
            .collect::<String>()
            .trim()
            .to_owned();
        let edge = create(json!({
            "firstname": "  Zoë-Ånne  ",
            "lastname": long_last,
            "email": format!("  Gate.Edge+kyc.{tag}@Checklist.example  "),
            "phone": "+44 20 7946 0958",
            "date_of_birth": "1900-01-01",
            "country": "JP",
        }))
        .await?;
        let now = self.0.clock.now();
        let mode = |seed: u64| TestMode {
            writes: true,
            wait: std::time::Duration::from_secs(15),
            dry: false,
            retry_backoff_ms: Some(200),
            seed: Some(seed),
        };
        let engine = &self.0.engine;
        let run = |record: String, seed: u64| {
            let payload = trigger_payload(d, &record, now);
            async move {
                engine
                    .test_run(tenant, d, &wf.bindings, payload, mode(seed))
                    .await
            }
        };
        let seed: u64 = rand::random();
        // 1. A passing outage: the next HubSpot call fails once.
        let set_fail = |n: u32, path: Option<String>| async move {
            link.admin(
                http,
                reqwest::Method::PUT,
                &format!("/sandbox/hubspot/admin/portals/{portal}/faults"),
                Some(tenant),
                json!({ "fail_next": n, "fail_path": path }),
            )
            .await
            .map_err(|e| Error::Unavailable(format!("The sandbox refused the fault knob: {e}")))
        };
        // Only this contact's calls count, so other traffic on the portal
        // does not use the failure up.
        set_fail(1, Some(format!("/{baseline}"))).await?;
        let first = run(baseline.clone(), seed).await;
        set_fail(0, None).await?;
        // 2. The rest at once: the same event again, a missing field, edge values.
        let (again, gap, edgy) = tokio::join!(
            run(baseline.clone(), seed),
            run(missing.clone(), seed ^ 1),
            run(edge.clone(), seed ^ 2),
        );
        let mut checks = Vec::new();
        checks.push(self.missing_field_check(&gap));
        checks.push(duplicate_check(&first, &again));
        checks.push(self.outage_check(admin, wf, &first).await?);
        checks.push(processed_check(d, &again));
        checks.push(
            self.edge_check(link, http, tenant, portal, &edge, &edgy)
                .await,
        );
        let passed = checks.iter().all(|c| c.passed);
        Ok(GateReport {
            passed,
            ran_at: now,
            checks,
        })
    }

    fn missing_field_check(&self, run: &TestRun) -> GateCheck {
        let title = "A missing required field is rejected by validation, nothing written, logged";
        let stopped = run
            .steps
            .iter()
            .position(|s| s.kind == "validate" && s.status == "failed");
        let wrote_before = stopped.is_some_and(|i| run.steps[..i].iter().any(wrote));
        let ev = evidence("a contact without a last name", run);
        match stopped {
            Some(i) if !wrote_before => check(
                "missing_field",
                title,
                true,
                format!(
                    "Stopped at “{}” before any write: {}",
                    run.steps[i].key, run.steps[i].note
                ),
                ev,
            ),
            Some(_) => check(
                "missing_field",
                title,
                false,
                "Validation stopped it, but only after a write was made: validate before the first write.".into(),
                ev,
            ),
            None => check(
                "missing_field",
                title,
                false,
                if run.steps.iter().any(wrote) {
                    "No validation step stopped it: the record was written. Add a “Check the data” step with the required fields before the first write."
                } else {
                    "No validation step stopped it (a step's own field check did, which leaves no rule on record). Add a “Check the data” step with the required fields before the first write."
                }
                .into(),
                ev,
            ),
        }
    }

    async fn outage_check(
        &self,
        admin: &Member,
        wf: &Workflow,
        run: &TestRun,
    ) -> Result<GateCheck, Error> {
        let title = "A failed API call is retried, logged and alerted — not silent";
        let mut ev = evidence(
            "a new contact while HubSpot fails one call (the sandbox's fault knob)",
            run,
        );
        let failed_then_ok = run.steps.iter().find(|s| {
            s.calls.iter().any(|c| c.status >= 500) && s.status == "ok" && s.attempts > 1
        });
        let rules = alerts::list(&self.0.db, &admin.tenant_id, Some(&wf.id)).await?;
        let alerting: Vec<String> = rules
            .iter()
            .filter(|r| r.enabled && matches!(r.kind.key(), "error_rate" | "destination_writes"))
            .map(|r| r.kind.label().to_owned())
            .collect();
        for r in &alerting {
            ev.push(format!(
                "Alert rule on: {r} (emails its recipient when failures pass its threshold)"
            ));
        }
        Ok(match (failed_then_ok, alerting.is_empty()) {
            (Some(s), false) => check(
                "failed_call",
                title,
                true,
                format!(
                    "“{}” got a 500, was retried and succeeded on attempt {}; every attempt is on record, and a failure that persists is dead-lettered and alerted.",
                    s.key, s.attempts
                ),
                ev,
            ),
            (Some(_), true) => check(
                "failed_call",
                title,
                false,
                "The failed call was retried, but no alert rule watches this workflow's failures: turn on the error-rate or destination-writes alert.".into(),
                ev,
            ),
            (None, _) => check(
                "failed_call",
                title,
                false,
                if run.steps.iter().any(|s| s.calls.iter().any(|c| c.status >= 500)) {
                    "A call failed and was not retried to success: give the step at least two attempts."
                } else {
                    "No HubSpot call was made to fail: the checklist injects the outage into HubSpot calls."
                }
                .into(),
                ev,
            ),
        })
    }

    async fn edge_check(
        &self,
        link: &crate::SandboxLink,
        http: &ferry_connectors::HttpClient,
        tenant: &ferry_core::TenantId,
        portal: &str,
        contact: &str,
        run: &TestRun,
    ) -> GateCheck {
        let title = "Values at the edge of accepted formats are written back correctly";
        let mut ev = evidence(
            "a contact with a unicode, 120-character last name, surrounding spaces, a plus-addressed mixed-case email, an international phone number and a boundary date of birth",
            run,
        );
        let failed = run.steps.iter().find(|s| s.status == "failed");
        if let Some(s) = failed {
            return check(
                "edge_values",
                title,
                false,
                format!("“{}” failed on edge values: {}", s.key, s.note),
                ev,
            );
        }
        // What the write-back sent, read back from the CRM.
        let written: Vec<(String, Value)> = run
            .steps
            .iter()
            .filter(|s| wrote(s))
            .filter_map(|s| s.input["properties"].as_object().cloned())
            .flat_map(|m| m.into_iter())
            .collect();
        let stored = link
            .admin(
                http,
                reqwest::Method::GET,
                &format!("/sandbox/hubspot/admin/portals/{portal}/contacts/{contact}"),
                Some(tenant),
                Value::Null,
            )
            .await
            .unwrap_or(Value::Null);
        let mut wrong = Vec::new();
        for (k, v) in &written {
            let expected = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let got = stored["properties"][k].as_str().unwrap_or("");
            if got == expected {
                ev.push(format!(
                    "  read back {k}: as written ({} characters)",
                    expected.chars().count()
                ));
            } else {
                wrong.push(k.clone());
                ev.push(format!("  read back {k}: DIFFERS from what was written"));
            }
        }
        if written.is_empty() {
            return check(
                "edge_values",
                title,
                run.steps.iter().all(|s| s.status == "ok"),
                "Ran to the end on edge values; it writes no properties back to check.".into(),
                ev,
            );
        }
        check(
            "edge_values",
            title,
            wrong.is_empty(),
            if wrong.is_empty() {
                format!(
                    "Ran to the end; the {} propert{} written back read back exactly.",
                    written.len(),
                    if written.len() == 1 { "y" } else { "ies" }
                )
            } else {
                format!("Written back differently: {}.", wrong.join(", "))
            },
            ev,
        )
    }
}

fn duplicate_check(first: &TestRun, again: &TestRun) -> GateCheck {
    let title = "The same event delivered twice gives one run and one effect";
    let mut ev = evidence("the event", first);
    ev.extend(evidence("the same event again", again));
    let mut differing = Vec::new();
    for (a, b) in first.steps.iter().zip(&again.steps) {
        if wrote(a) && a.output.get("id").is_some() && a.output.get("id") != b.output.get("id") {
            differing.push(a.key.clone());
        }
    }
    ev.push(
        "Ferry stores each event once per dedupe key (HubSpot's event id): a repeat starts no second run."
            .into(),
    );
    if differing.is_empty() {
        check(
            "duplicate_event",
            title,
            true,
            "Replayed with the same event, every write carried the same idempotency key and the provider answered with the same record: one effect.".into(),
            ev,
        )
    } else {
        check(
            "duplicate_event",
            title,
            false,
            format!(
                "The repeat made a second effect at: {}.",
                differing.join(", ")
            ),
            ev,
        )
    }
}

fn processed_check(d: &Definition, again: &TestRun) -> GateCheck {
    let title = "A record already processed is skipped and logged";
    if d.trigger.event.ends_with(".creation") {
        return check(
            "already_processed",
            title,
            true,
            "The trigger is a creation event: Ferry runs a workflow once per record and records a later event for the same record as a skipped run, with the reason.".into(),
            vec!["Trigger: a creation event (runs once per record).".into()],
        );
    }
    let stopped = again
        .steps
        .iter()
        .find(|s| s.kind == "condition" && s.status == "stopped");
    let has_condition = d
        .steps
        .iter()
        .any(|s| matches!(s.kind, StepKind::Condition { .. }));
    let ev = evidence("a contact processed a moment before", again);
    match stopped {
        Some(s) => check(
            "already_processed",
            title,
            true,
            format!("The second run on the processed contact ended at “{}”.", s.key),
            ev,
        ),
        None => check(
            "already_processed",
            title,
            false,
            if has_condition {
                "The processed contact was processed again: its condition does not recognise a processed record."
            } else {
                "This trigger fires again for a processed contact and nothing stops it: add an “Only continue if” step (e.g. the outcome property is empty)."
            }
            .into(),
            ev,
        ),
    }
}
