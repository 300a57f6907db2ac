//! The workflow page: steps, connections, versions and the dry run of
//! the draft on a sample payload.

use super::*;

/// What a refused change shows when the page is re-rendered.
#[derive(Default)]
pub(super) struct Feedback {
    /// The submitted definition, kept as typed.
    pub(super) definition: Option<String>,
    /// Problems, each naming step and field.
    pub(super) issues: Vec<String>,
    /// The dry run's sample payload, as typed.
    pub(super) dry_payload: Option<String>,
    /// The dry run's steps, when one was made.
    pub(super) dry_steps: Option<Vec<DryRow>>,
    /// Why the sample payload was refused.
    pub(super) dry_error: Option<String>,
    /// Field -> message, for the lifecycle forms (name, confirm, held).
    pub(super) manage_errors: BTreeMap<String, String>,
}

pub(super) struct DryRow {
    pub(super) key: String,
    pub(super) kind: &'static str,
    pub(super) status: &'static str,
    pub(super) input: String,
    pub(super) output: String,
    pub(super) note: String,
}

pub(super) struct StepRow {
    pub(super) title: String,
    pub(super) kind: &'static str,
    pub(super) summary: String,
}

pub(super) struct BindingRow {
    pub(super) connector: &'static str,
    pub(super) label: &'static str,
    pub(super) options: Vec<(String, String, bool)>,
}

pub(super) struct VersionRow {
    pub(super) version: i32,
    pub(super) published_by: String,
    pub(super) published_at: String,
    pub(super) current: bool,
    pub(super) note: String,
}

#[derive(Template)]
#[template(path = "workflow.html")]
pub(super) struct WorkflowPage {
    pub(super) layout: Layout,
    pub(super) is_admin: bool,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) owner: String,
    pub(super) environment: &'static str,
    pub(super) status: String,
    pub(super) trigger: String,
    pub(super) steps: Vec<StepRow>,
    pub(super) bindings: Vec<BindingRow>,
    pub(super) versions: Vec<VersionRow>,
    pub(super) definition: String,
    pub(super) issues: Vec<String>,
    pub(super) dry_payload: String,
    pub(super) dry_steps: Option<Vec<DryRow>>,
    pub(super) dry_error: Option<String>,
    pub(super) advanced_open: bool,
    pub(super) charts: Vec<crate::charts::Chart>,
    pub(super) health: Option<crate::pages::home::HealthRow>,
    pub(super) alerts: Vec<crate::pages::alerts::IncidentRow>,
    pub(super) published: bool,
    pub(super) paused_since: Option<String>,
    pub(super) held: u64,
    pub(super) unpublished_changes: Vec<String>,
    pub(super) manage_errors: BTreeMap<String, String>,
}

pub(super) fn summary(kind: &StepKind) -> (&'static str, String) {
    match kind {
        StepKind::Action {
            connector,
            action,
            input,
            retry,
        } => {
            let label = connector
                .def()
                .action(action)
                .map_or(action.as_str(), |a| a.label);
            (
                "action",
                format!(
                    "{} — {label}; maps {}; {} attempt(s)",
                    connector.def().name,
                    input.keys().cloned().collect::<Vec<_>>().join(", "),
                    retry.attempts
                ),
            )
        }
        StepKind::Validate { rules } => (
            "validate",
            format!(
                "{} rule(s): {}",
                rules.len(),
                rules
                    .iter()
                    .map(|r| r.path.to_string())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        StepKind::Map { output } => (
            "map",
            format!(
                "computes {}",
                output.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ),
        StepKind::Wait {
            connector,
            event,
            timeout_secs,
            ..
        } => (
            "wait",
            format!(
                "for {} {event}, up to {} h",
                connector.def().name,
                timeout_secs / 3600
            ),
        ),
        StepKind::Condition {
            path,
            equals,
            negate,
        } => (
            "condition",
            format!(
                "go on when {path} {} {equals}",
                if *negate { "is not" } else { "is" }
            ),
        ),
    }
}

/// Each app the draft uses, with the connections of its kind in the
/// workflow's environment (the one chosen marked).
pub(super) fn binding_rows(
    wf: &Workflow,
    available: &[ferry_store::connections::Connection],
) -> Vec<BindingRow> {
    wf.draft
        .connectors()
        .into_iter()
        .map(|k| BindingRow {
            connector: k.as_str(),
            label: k.def().name,
            options: available
                .iter()
                .filter(|c| c.connector == k && c.environment == wf.environment)
                .map(|c| {
                    (
                        c.id.to_string(),
                        c.name.clone(),
                        wf.bindings.get(k.as_str()) == Some(&c.id),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Loads the workflow and renders its page with `feedback` (a refused
/// change re-renders it with 422).
pub(super) async fn workflow_page(
    state: &AppState,
    req: &HttpRequest,
    member: &Member,
    id: &WorkflowId,
    status_code: StatusCode,
    feedback: Feedback,
) -> Result<HttpResponse, AppError> {
    let view = state.services.workflows.view(&member.actor, id).await?;
    let monitoring = state
        .services
        .alerts
        .dashboard(&member.actor, Some(id))
        .await?;
    let (wf, available, owner) = (view.workflow, view.connections, view.owner);
    let (held, unpublished_changes) = (view.held, view.unpublished_changes);
    let bindings = binding_rows(&wf, &available);
    let versions = view
        .versions
        .into_iter()
        .map(|v| VersionRow {
            version: v.version.version,
            published_by: v.published_by,
            published_at: v
                .version
                .published_at
                .format("%Y-%m-%d %H:%M UTC")
                .to_string(),
            current: wf.published_version == Some(v.version.version),
            note: v.version.change_note.clone().unwrap_or_default(),
        })
        .collect();
    let steps = wf
        .draft
        .steps
        .iter()
        .map(|s| {
            let (kind, summary) = summary(&s.kind);
            StepRow {
                title: s.title(),
                kind,
                summary,
            }
        })
        .collect();
    let advanced_open = feedback.definition.is_some()
        || feedback.dry_steps.is_some()
        || feedback.dry_error.is_some();
    let definition = feedback
        .definition
        .unwrap_or_else(|| serde_json::to_string_pretty(&wf.draft).unwrap_or_default());
    render(
        req,
        status_code,
        &WorkflowPage {
            layout: Layout::new(req, wf.name.clone(), "/workflows"),
            charts: crate::charts::monitoring("wf", &monitoring.hours, &monitoring.days),
            health: monitoring
                .workflows
                .first()
                .map(crate::pages::home::health_row),
            alerts: monitoring
                .open
                .iter()
                .map(crate::pages::alerts::incident_row)
                .collect(),
            is_admin: member.role == Role::Admin,
            published: wf.published_version.is_some(),
            paused_since: wf
                .paused_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
            held,
            unpublished_changes,
            manage_errors: feedback.manage_errors,
            id: wf.id.to_string(),
            owner,
            environment: wf.environment.as_str(),
            status: status(&wf),
            trigger: format!(
                "{}: {}",
                wf.draft.trigger.connector.def().name,
                wf.draft.trigger.event
            ),
            steps,
            bindings,
            versions,
            definition: definition.chars().take(200_000).collect(),
            issues: feedback.issues,
            dry_payload: feedback
                .dry_payload
                .unwrap_or_else(|| sample_payload(&wf.draft)),
            dry_steps: feedback.dry_steps,
            dry_error: feedback.dry_error,
            advanced_open,
            name: wf.name,
            description: wf.description,
        },
    )
}

/// A sample trigger payload for the dry-run form.
pub(super) fn sample_payload(d: &Definition) -> String {
    let sample = match (d.trigger.connector, d.trigger.event.as_str()) {
        (ConnectorKey::HubSpot, event) => json!({
            "subscriptionType": event,
            "objectId": "1",
            "portalId": 0,
            "eventId": 1,
        }),
        (ConnectorKey::Verification, _) => json!({
            "type": "check.completed",
            "check": { "id": "chk_sample", "result": "clear" },
        }),
        _ => json!({ "id": "1", "email": "client@example.com" }),
    };
    serde_json::to_string_pretty(&sample).unwrap_or_default()
}

/// The dry-run form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct DryRunForm {
    #[serde(default)]
    pub(super) payload: String,
}

/// POST /workflows/{id}/dry-run (admin): the draft on a sample payload;
/// nothing is written anywhere.
pub async fn dry_run(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<DryRunForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let text = form.payload.trim().to_owned();
    let parsed = if text.len() > 64 * 1024 {
        Err("The sample payload is too long (at most 64 KiB).".to_owned())
    } else {
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            Ok(_) => Err("The sample payload must be a JSON object.".to_owned()),
            Err(e) => Err(format!("The sample payload is not valid JSON: {e}.")),
        }
    };
    let (status, feedback) = match parsed {
        Err(message) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Feedback {
                dry_payload: Some(text),
                dry_error: Some(message),
                ..Feedback::default()
            },
        ),
        Ok(payload) => {
            let steps = state
                .services
                .workflows
                .dry_run(&admin.actor, &id, payload)
                .await?;
            let pretty = |v: &serde_json::Value| {
                if v.is_null() {
                    String::new()
                } else {
                    serde_json::to_string_pretty(v).unwrap_or_default()
                }
            };
            (
                StatusCode::OK,
                Feedback {
                    dry_payload: Some(text),
                    dry_steps: Some(
                        steps
                            .iter()
                            .map(|s| DryRow {
                                key: s.key.clone(),
                                kind: s.kind,
                                status: s.status,
                                input: pretty(&s.input),
                                output: pretty(&s.output),
                                note: s.note.clone(),
                            })
                            .collect(),
                    ),
                    ..Feedback::default()
                },
            )
        }
    };
    workflow_page(&state, &req, &admin, &id, status, feedback).await
}
