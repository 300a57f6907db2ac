//! Alert rules (one per kind per workflow, with the state of the incident
//! they are in), their incidents and the emails each incident sent, and the
//! claim that makes the scheduled evaluation run once per minute across
//! every process sharing the database.

use crate::emails::Email;
use crate::entities::{
    alert_incident, alert_notice, alert_rule, connection, email, scheduler_tick, tenant, workflow,
    workflow_version,
};
use crate::{Db, Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::alerts::{Incident as IncidentState, RuleKind};
use ferry_core::{
    AlertRuleId, ConnectionId, ConnectionStatus, EmailId, IncidentId, TenantId, TenantStatus,
    UserId, WorkflowId,
};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};
use std::collections::HashMap;

/// A stored rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its id.
    pub id: AlertRuleId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The workflow it watches.
    pub workflow_id: WorkflowId,
    /// What it watches, with its thresholds.
    pub kind: RuleKind,
    /// The window it looks at, in minutes.
    pub window_minutes: u32,
    /// Who is told.
    pub recipient_id: UserId,
    /// Who is told when nobody acknowledges in time, if anyone.
    pub escalation_id: Option<UserId>,
    /// How long unacknowledged before the escalation, in minutes.
    pub escalate_after_minutes: u32,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Where its incident stands.
    pub state: IncidentState,
    /// The open incident, when firing.
    pub incident_id: Option<IncidentId>,
    /// Bumped by every change (evaluations change a rule only from the
    /// version they read).
    pub version: i64,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn parse<T: std::str::FromStr>(s: &str, what: &'static str) -> Result<T, StoreError> {
    s.parse().map_err(|_| StoreError::Corrupt(what))
}

impl TryFrom<alert_rule::Model> for Rule {
    type Error = StoreError;
    fn try_from(m: alert_rule::Model) -> Result<Self, StoreError> {
        let state = match (m.firing, m.since) {
            (true, Some(since)) => IncidentState::Firing {
                since,
                acknowledged: m.acknowledged,
                escalated: m.escalated,
            },
            _ => IncidentState::Ok {
                resolved_at: m.resolved_at,
            },
        };
        Ok(Self {
            id: parse(&m.id, "alert_rules.id")?,
            tenant_id: parse(&m.tenant_id, "alert_rules.tenant_id")?,
            workflow_id: parse(&m.workflow_id, "alert_rules.workflow_id")?,
            kind: RuleKind::parse(&m.kind, m.threshold, u64::try_from(m.min_runs).unwrap_or(0))
                .ok_or(StoreError::Corrupt("alert_rules.kind"))?,
            window_minutes: u32::try_from(m.window_minutes).unwrap_or(60),
            recipient_id: parse(&m.recipient_id, "alert_rules.recipient_id")?,
            escalation_id: m
                .escalation_id
                .as_deref()
                .map(|s| parse(s, "alert_rules.escalation_id"))
                .transpose()?,
            escalate_after_minutes: u32::try_from(m.escalate_after_minutes).unwrap_or(240),
            enabled: m.enabled,
            state,
            incident_id: m
                .incident_id
                .as_deref()
                .map(|s| parse(s, "alert_rules.incident_id"))
                .transpose()?,
            version: m.version,
            updated_at: m.updated_at,
        })
    }
}

/// The default escalation delay: 4 hours unacknowledged.
pub const ESCALATE_AFTER_MINUTES: u32 = 240;

/// Creates the default rules of a new workflow, all told to `owner`.
pub async fn create_defaults(
    db: &impl Exec,
    tenant: &TenantId,
    workflow: &WorkflowId,
    owner: &UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let rows = RuleKind::defaults()
        .into_iter()
        .map(|kind| new_row(tenant, workflow, kind, owner, now));
    alert_rule::Entity::insert_many(rows)
        .exec_without_returning(db.conn())
        .await?;
    Ok(())
}

/// Adds one rule of `kind` looking at `window_minutes`, told to `recipient`.
pub async fn create(
    db: &impl Exec,
    (tenant, workflow): (&TenantId, &WorkflowId),
    kind: &RuleKind,
    window_minutes: u32,
    recipient: &UserId,
    now: DateTime<Utc>,
) -> Result<AlertRuleId, StoreError> {
    let id = AlertRuleId::generate();
    let mut row = new_row(tenant, workflow, kind.clone(), recipient, now);
    row.id = Set(id.to_string());
    row.window_minutes = Set(i32::try_from(window_minutes).unwrap_or(i32::MAX));
    alert_rule::Entity::insert(row)
        .exec_without_returning(db.conn())
        .await?;
    Ok(id)
}

fn new_row(
    tenant: &TenantId,
    workflow: &WorkflowId,
    kind: RuleKind,
    owner: &UserId,
    now: DateTime<Utc>,
) -> alert_rule::ActiveModel {
    alert_rule::ActiveModel {
        id: Set(AlertRuleId::generate().to_string()),
        tenant_id: Set(tenant.to_string()),
        workflow_id: Set(workflow.to_string()),
        kind: Set(kind.key().to_owned()),
        threshold: Set(kind.threshold()),
        window_minutes: Set(i32::try_from(kind.default_window_minutes()).unwrap_or(60)),
        min_runs: Set(i64::try_from(kind.min_runs()).unwrap_or(0)),
        recipient_id: Set(owner.to_string()),
        escalation_id: Set(None),
        escalate_after_minutes: Set(i32::try_from(ESCALATE_AFTER_MINUTES).unwrap_or(240)),
        enabled: Set(true),
        firing: Set(false),
        since: Set(None),
        acknowledged: Set(false),
        escalated: Set(false),
        resolved_at: Set(None),
        incident_id: Set(None),
        version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// A tenant's rules, for one workflow or all, in a stable order.
pub async fn list(
    db: &impl Exec,
    tenant: &TenantId,
    workflow: Option<&WorkflowId>,
) -> Result<Vec<Rule>, StoreError> {
    let mut q =
        alert_rule::Entity::find().filter(alert_rule::Column::TenantId.eq(tenant.to_string()));
    if let Some(w) = workflow {
        q = q.filter(alert_rule::Column::WorkflowId.eq(w.to_string()));
    }
    q.order_by_asc(alert_rule::Column::WorkflowId)
        .order_by_asc(alert_rule::Column::CreatedAt)
        .order_by_asc(alert_rule::Column::Kind)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Rule::try_from)
        .collect()
}

/// One rule of a tenant.
pub async fn get(db: &impl Exec, tenant: &TenantId, id: &AlertRuleId) -> Result<Rule, StoreError> {
    alert_rule::Entity::find_by_id(id.to_string())
        .filter(alert_rule::Column::TenantId.eq(tenant.to_string()))
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// Every enabled rule of every active tenant, and every firing one, for
/// the evaluation (a suspended firm is not emailed).
pub async fn to_evaluate(db: &Db) -> Result<Vec<Rule>, StoreError> {
    let active: Vec<String> = tenant::Entity::find()
        .select_only()
        .column(tenant::Column::Id)
        .filter(tenant::Column::Status.eq(TenantStatus::Active.as_str()))
        .into_tuple()
        .all(db.conn())
        .await?;
    alert_rule::Entity::find()
        .filter(
            Condition::any()
                .add(alert_rule::Column::Enabled.eq(true))
                .add(alert_rule::Column::Firing.eq(true)),
        )
        .filter(alert_rule::Column::TenantId.is_in(active))
        .all(db.conn())
        .await?
        .into_iter()
        .map(Rule::try_from)
        .collect()
}

/// What an admin may change on a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleEdit {
    /// The kind with its new thresholds (same kind).
    pub kind: RuleKind,
    /// The window, minutes.
    pub window_minutes: u32,
    /// Who is told.
    pub recipient_id: UserId,
    /// Who is told when nobody acknowledges.
    pub escalation_id: Option<UserId>,
    /// After how long, minutes.
    pub escalate_after_minutes: u32,
    /// Evaluated or not.
    pub enabled: bool,
}

/// Saves an admin's change to a rule.
pub async fn update(
    db: &impl Exec,
    tenant: &TenantId,
    id: &AlertRuleId,
    edit: &RuleEdit,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = alert_rule::Entity::update_many()
        .col_expr(
            alert_rule::Column::Threshold,
            Expr::value(edit.kind.threshold()),
        )
        .col_expr(
            alert_rule::Column::MinRuns,
            Expr::value(i64::try_from(edit.kind.min_runs()).unwrap_or(0)),
        )
        .col_expr(
            alert_rule::Column::WindowMinutes,
            Expr::value(i32::try_from(edit.window_minutes).unwrap_or(i32::MAX)),
        )
        .col_expr(
            alert_rule::Column::RecipientId,
            Expr::value(edit.recipient_id.to_string()),
        )
        .col_expr(
            alert_rule::Column::EscalationId,
            Expr::value(edit.escalation_id.as_ref().map(ToString::to_string)),
        )
        .col_expr(
            alert_rule::Column::EscalateAfterMinutes,
            Expr::value(i32::try_from(edit.escalate_after_minutes).unwrap_or(i32::MAX)),
        )
        .col_expr(alert_rule::Column::Enabled, Expr::value(edit.enabled))
        .col_expr(
            alert_rule::Column::Version,
            Expr::col(alert_rule::Column::Version).add(1),
        )
        .col_expr(alert_rule::Column::UpdatedAt, Expr::value(now))
        .filter(alert_rule::Column::Id.eq(id.to_string()))
        .filter(alert_rule::Column::TenantId.eq(tenant.to_string()))
        .filter(alert_rule::Column::Kind.eq(edit.kind.key()))
        .exec(db.conn())
        .await?;
    if done.rows_affected == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    }
}

/// Closes the open incident of a rule an admin turned off: it says why it
/// closed, and no "resolved" email goes (nothing was resolved).
pub async fn silence(
    db: &impl Exec,
    rule: &Rule,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    set_state(
        &IncidentState::Ok {
            resolved_at: Some(now),
        },
        None,
        now,
    )
    .filter(alert_rule::Column::Id.eq(rule.id.to_string()))
    .filter(alert_rule::Column::TenantId.eq(rule.tenant_id.to_string()))
    .exec(db.conn())
    .await?;
    alert_incident::Entity::update_many()
        .col_expr(alert_incident::Column::ResolvedAt, Expr::value(now))
        .col_expr(
            alert_incident::Column::Summary,
            Expr::value(format!(
                "{} (closed when the rule was turned off)",
                incident.summary
            )),
        )
        .filter(alert_incident::Column::Id.eq(incident.id.to_string()))
        .filter(alert_incident::Column::TenantId.eq(rule.tenant_id.to_string()))
        .filter(alert_incident::Column::ResolvedAt.is_null())
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Retires a deleted workflow's rules: each is turned off and its open
/// incident closed with that reason (no "resolved" email).
pub async fn retire_workflow(
    db: &impl Exec,
    tenant: &TenantId,
    workflow: &WorkflowId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    set_state(
        &IncidentState::Ok {
            resolved_at: Some(now),
        },
        None,
        now,
    )
    .col_expr(alert_rule::Column::Enabled, Expr::value(false))
    .filter(alert_rule::Column::TenantId.eq(tenant.to_string()))
    .filter(alert_rule::Column::WorkflowId.eq(workflow.to_string()))
    .exec(db.conn())
    .await?;
    let open = alert_incident::Entity::find()
        .filter(alert_incident::Column::TenantId.eq(tenant.to_string()))
        .filter(alert_incident::Column::WorkflowId.eq(workflow.to_string()))
        .filter(alert_incident::Column::ResolvedAt.is_null())
        .all(db.conn())
        .await?;
    for i in open {
        alert_incident::Entity::update_many()
            .col_expr(
                alert_incident::Column::Summary,
                Expr::value(format!(
                    "{} (closed when the workflow was deleted)",
                    i.summary
                )),
            )
            .col_expr(alert_incident::Column::ResolvedAt, Expr::value(now))
            .filter(alert_incident::Column::Id.eq(i.id))
            .exec(db.conn())
            .await?;
    }
    Ok(())
}

/// An update of a rule that writes its incident state `next` (and its open
/// incident), bumping its version.
fn set_state(
    next: &IncidentState,
    incident: Option<&IncidentId>,
    now: DateTime<Utc>,
) -> sea_orm::UpdateMany<alert_rule::Entity> {
    let (firing, since, acknowledged, escalated, resolved_at) = match next {
        IncidentState::Ok { resolved_at } => (false, None, false, false, *resolved_at),
        IncidentState::Firing {
            since,
            acknowledged,
            escalated,
        } => (true, Some(*since), *acknowledged, *escalated, None),
    };
    alert_rule::Entity::update_many()
        .col_expr(alert_rule::Column::Firing, Expr::value(firing))
        .col_expr(alert_rule::Column::Since, Expr::value(since))
        .col_expr(alert_rule::Column::Acknowledged, Expr::value(acknowledged))
        .col_expr(alert_rule::Column::Escalated, Expr::value(escalated))
        .col_expr(alert_rule::Column::ResolvedAt, Expr::value(resolved_at))
        .col_expr(
            alert_rule::Column::IncidentId,
            Expr::value(incident.map(ToString::to_string)),
        )
        .col_expr(
            alert_rule::Column::Version,
            Expr::col(alert_rule::Column::Version).add(1),
        )
        .col_expr(alert_rule::Column::UpdatedAt, Expr::value(now))
}

/// Moves a rule's incident state on, from the version the evaluation read;
/// false when the rule changed meanwhile (another process evaluated it, or
/// someone edited it): then nothing is written and nothing is sent.
pub async fn transition(
    db: &impl Exec,
    rule: &Rule,
    next: &IncidentState,
    incident: Option<&IncidentId>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let done = set_state(next, incident, now)
        .filter(alert_rule::Column::Id.eq(rule.id.to_string()))
        .filter(alert_rule::Column::Version.eq(rule.version))
        .exec(db.conn())
        .await?;
    Ok(done.rows_affected == 1)
}

/// One incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Its id.
    pub id: IncidentId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// The workflow it concerns.
    pub workflow_id: WorkflowId,
    /// The rule that opened it.
    pub rule_id: AlertRuleId,
    /// The rule's kind key.
    pub kind: String,
    /// What made it fire (numbers only, no personal data).
    pub summary: String,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// When it resolved, if it did.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<UserId>,
    /// When.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// When the escalation recipient was told.
    pub escalated_at: Option<DateTime<Utc>>,
}

impl TryFrom<alert_incident::Model> for Incident {
    type Error = StoreError;
    fn try_from(m: alert_incident::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: parse(&m.id, "alert_incidents.id")?,
            tenant_id: parse(&m.tenant_id, "alert_incidents.tenant_id")?,
            workflow_id: parse(&m.workflow_id, "alert_incidents.workflow_id")?,
            rule_id: parse(&m.rule_id, "alert_incidents.rule_id")?,
            kind: m.kind,
            summary: m.summary,
            opened_at: m.opened_at,
            resolved_at: m.resolved_at,
            acknowledged_by: m
                .acknowledged_by
                .as_deref()
                .map(|s| parse(s, "alert_incidents.acknowledged_by"))
                .transpose()?,
            acknowledged_at: m.acknowledged_at,
            escalated_at: m.escalated_at,
        })
    }
}

/// Opens an incident of `rule`.
pub async fn open(
    db: &impl Exec,
    rule: &Rule,
    summary: &str,
    now: DateTime<Utc>,
) -> Result<IncidentId, StoreError> {
    let id = IncidentId::generate();
    alert_incident::ActiveModel {
        id: Set(id.to_string()),
        tenant_id: Set(rule.tenant_id.to_string()),
        workflow_id: Set(rule.workflow_id.to_string()),
        rule_id: Set(rule.id.to_string()),
        kind: Set(rule.kind.key().to_owned()),
        summary: Set(summary.to_owned()),
        opened_at: Set(now),
        resolved_at: Set(None),
        acknowledged_by: Set(None),
        acknowledged_at: Set(None),
        escalated_at: Set(None),
    }
    .insert(db.conn())
    .await?;
    Ok(id)
}

/// Marks an incident resolved or escalated at `now`.
pub async fn close_or_escalate(
    db: &impl Exec,
    id: &IncidentId,
    resolved: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let col = if resolved {
        alert_incident::Column::ResolvedAt
    } else {
        alert_incident::Column::EscalatedAt
    };
    alert_incident::Entity::update_many()
        .col_expr(col, Expr::value(now))
        .filter(alert_incident::Column::Id.eq(id.to_string()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Records that `user` acknowledged an open incident: no escalation, no
/// reminders. False when it is not open (resolved, or not the tenant's).
pub async fn acknowledge(
    db: &impl Exec,
    tenant: &TenantId,
    id: &IncidentId,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    // The rule first, then the incident: the order the evaluation takes
    // them in, so the two never wait on each other.
    alert_rule::Entity::update_many()
        .col_expr(alert_rule::Column::Acknowledged, Expr::value(true))
        .col_expr(
            alert_rule::Column::Version,
            Expr::col(alert_rule::Column::Version).add(1),
        )
        .filter(alert_rule::Column::TenantId.eq(tenant.to_string()))
        .filter(alert_rule::Column::IncidentId.eq(id.to_string()))
        .exec(db.conn())
        .await?;
    let done = alert_incident::Entity::update_many()
        .col_expr(
            alert_incident::Column::AcknowledgedBy,
            Expr::value(user.to_string()),
        )
        .col_expr(alert_incident::Column::AcknowledgedAt, Expr::value(now))
        .filter(alert_incident::Column::Id.eq(id.to_string()))
        .filter(alert_incident::Column::TenantId.eq(tenant.to_string()))
        .filter(alert_incident::Column::ResolvedAt.is_null())
        .filter(alert_incident::Column::AcknowledgedAt.is_null())
        .exec(db.conn())
        .await?;
    // Zero: not open (the caller rolls its transaction back).
    Ok(done.rows_affected == 1)
}

/// A tenant's incidents, newest first, for one workflow or all.
pub async fn incidents(
    db: &impl Exec,
    tenant: &TenantId,
    workflow: Option<&WorkflowId>,
    limit: u64,
) -> Result<Vec<Incident>, StoreError> {
    let mut q = alert_incident::Entity::find()
        .filter(alert_incident::Column::TenantId.eq(tenant.to_string()));
    if let Some(w) = workflow {
        q = q.filter(alert_incident::Column::WorkflowId.eq(w.to_string()));
    }
    q.order_by_desc(alert_incident::Column::OpenedAt)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Incident::try_from)
        .collect()
}

/// A tenant's open incidents.
pub async fn open_incidents(
    db: &impl Exec,
    tenant: &TenantId,
) -> Result<Vec<Incident>, StoreError> {
    alert_incident::Entity::find()
        .filter(alert_incident::Column::TenantId.eq(tenant.to_string()))
        .filter(alert_incident::Column::ResolvedAt.is_null())
        .order_by_desc(alert_incident::Column::OpenedAt)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Incident::try_from)
        .collect()
}

/// How many incidents are open, every tenant's (for `/metrics`).
pub async fn firing_count(db: &Db) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(alert_incident::Entity::find()
        .filter(alert_incident::Column::ResolvedAt.is_null())
        .count(db.conn())
        .await?)
}

/// One incident of a tenant.
pub async fn incident(
    db: &impl Exec,
    tenant: &TenantId,
    id: &IncidentId,
) -> Result<Incident, StoreError> {
    alert_incident::Entity::find_by_id(id.to_string())
        .filter(alert_incident::Column::TenantId.eq(tenant.to_string()))
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// What an incident's email was about.
pub const NOTICE_KINDS: [&str; 3] = ["opened", "escalated", "resolved"];

/// Records that an incident sent `email` to `recipient`.
pub async fn add_notice(
    db: &impl Exec,
    tenant: &TenantId,
    incident: &IncidentId,
    (email, kind, recipient): (&EmailId, &str, &UserId),
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    alert_notice::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        incident_id: Set(incident.to_string()),
        email_id: Set(email.to_string()),
        kind: Set(kind.to_owned()),
        recipient_id: Set(recipient.to_string()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db.conn())
    .await?;
    Ok(())
}

/// An email an incident sent, with its delivery status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// opened, escalated or resolved.
    pub kind: String,
    /// Who it went to.
    pub recipient_id: UserId,
    /// The email (status, attempts, subject).
    pub email: Email,
}

/// The emails an incident sent, oldest first.
pub async fn notices(
    db: &impl Exec,
    tenant: &TenantId,
    incident: &IncidentId,
) -> Result<Vec<Notice>, StoreError> {
    let rows = alert_notice::Entity::find()
        .filter(alert_notice::Column::TenantId.eq(tenant.to_string()))
        .filter(alert_notice::Column::IncidentId.eq(incident.to_string()))
        .order_by_asc(alert_notice::Column::Id)
        .all(db.conn())
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.email_id.clone()).collect();
    let emails: Vec<Email> = email::Entity::find()
        .filter(email::Column::Id.is_in(ids))
        .filter(email::Column::TenantId.eq(tenant.to_string()))
        .all(db.conn())
        .await?
        .into_iter()
        .map(Email::try_from)
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(e) = emails.iter().find(|e| e.id.as_str() == r.email_id) {
            out.push(Notice {
                kind: r.kind,
                recipient_id: parse(&r.recipient_id, "alert_notices.recipient_id")?,
                email: e.clone(),
            });
        }
    }
    Ok(out)
}

/// Claims the scheduled job `name` for the minute starting at `minute`:
/// true for exactly one caller per minute, however many processes ask.
pub async fn claim_tick(db: &Db, name: &str, minute: DateTime<Utc>) -> Result<bool, StoreError> {
    // The row exists from the first claim on (inserted with a time far in
    // the past, so the update below can take it).
    scheduler_tick::Entity::insert(scheduler_tick::ActiveModel {
        name: Set(name.to_owned()),
        last_at: Set(DateTime::<Utc>::UNIX_EPOCH),
    })
    .on_conflict(
        OnConflict::column(scheduler_tick::Column::Name)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db.conn())
    .await?;
    let done = scheduler_tick::Entity::update_many()
        .col_expr(scheduler_tick::Column::LastAt, Expr::value(minute))
        .filter(scheduler_tick::Column::Name.eq(name))
        .filter(scheduler_tick::Column::LastAt.lt(minute))
        .exec(db.conn())
        .await?;
    Ok(done.rows_affected == 1)
}

/// A workflow as the evaluation sees it: its name for emails and the
/// connections its published version uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Its name.
    pub name: String,
    /// The person responsible.
    pub owner_id: UserId,
    /// The connections its published version is bound to.
    pub connections: Vec<ConnectionId>,
    /// When its 90-day review is due (published workflows only).
    pub review_due_at: Option<DateTime<Utc>>,
}

/// Every workflow of every tenant, keyed by tenant and workflow.
pub async fn watched(db: &Db) -> Result<HashMap<(TenantId, WorkflowId), Watched>, StoreError> {
    type Flow = (
        String,
        String,
        String,
        String,
        Option<i32>,
        Option<DateTime<Utc>>,
    );
    let flows: Vec<Flow> = workflow::Entity::find()
        .select_only()
        .column(workflow::Column::TenantId)
        .column(workflow::Column::Id)
        .column(workflow::Column::Name)
        .column(workflow::Column::OwnerId)
        .column(workflow::Column::PublishedVersion)
        .column(workflow::Column::ReviewDueAt)
        .filter(workflow::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db.conn())
        .await?;
    let published: HashMap<(String, i32), ()> = flows
        .iter()
        .filter_map(|(_, id, _, _, v, _)| v.map(|v| ((id.clone(), v), ())))
        .collect();
    let mut bindings: HashMap<String, Vec<ConnectionId>> = HashMap::new();
    if !published.is_empty() {
        let rows: Vec<(String, i32, String)> = workflow_version::Entity::find()
            .select_only()
            .column(workflow_version::Column::WorkflowId)
            .column(workflow_version::Column::Version)
            .column(workflow_version::Column::Bindings)
            .into_tuple()
            .all(db.conn())
            .await?;
        for (wf, v, b) in rows {
            if published.contains_key(&(wf.clone(), v)) {
                let b: crate::workflows::Bindings = serde_json::from_str(&b)
                    .map_err(|_| StoreError::Corrupt("workflow_versions.bindings"))?;
                bindings.insert(wf, b.into_values().collect());
            }
        }
    }
    let mut out = HashMap::new();
    for (tenant, id, name, owner, published, review_due_at) in flows {
        let connections = bindings.remove(&id).unwrap_or_default();
        out.insert(
            (
                parse(&tenant, "workflows.tenant_id")?,
                parse(&id, "workflows.id")?,
            ),
            Watched {
                name,
                owner_id: parse(&owner, "workflows.owner_id")?,
                connections,
                review_due_at: review_due_at.filter(|_| published.is_some()),
            },
        );
    }
    Ok(out)
}

/// A connection whose credential stopped working or is about to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialProblem {
    /// The connection's name (never its secret).
    pub name: String,
    /// What is wrong, in a few words.
    pub what: String,
}

/// Every tenant's connections that are broken, flagged for rotation, or
/// whose credential expires before `soon`.
pub async fn credential_problems(
    db: &Db,
    soon: DateTime<Utc>,
) -> Result<HashMap<ConnectionId, CredentialProblem>, StoreError> {
    let rows = connection::Entity::find()
        .filter(
            Condition::any()
                .add(connection::Column::Status.ne(ConnectionStatus::Healthy.as_str()))
                .add(connection::Column::NeedsRotation.eq(true))
                .add(connection::Column::CredentialExpiresAt.lt(soon)),
        )
        .all(db.conn())
        .await?;
    let mut out = HashMap::new();
    for c in rows {
        let what = if c.status != ConnectionStatus::Healthy.as_str() {
            "stopped working".to_owned()
        } else if c.needs_rotation {
            "needs its credential rotated".to_owned()
        } else if let Some(at) = c.credential_expires_at {
            format!("credential expires {}", at.format("%Y-%m-%d"))
        } else {
            continue;
        };
        out.insert(
            parse(&c.id, "connections.id")?,
            CredentialProblem { name: c.name, what },
        );
    }
    Ok(out)
}

/// Gives every workflow the default rules it lacks (workflows created
/// before alerts existed, or before a kind of rule was added); returns how
/// many workflows got one or more.
pub async fn backfill_defaults(db: &Db, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let flows: Vec<(String, String, String)> = workflow::Entity::find()
        .select_only()
        .column(workflow::Column::TenantId)
        .column(workflow::Column::Id)
        .column(workflow::Column::OwnerId)
        .filter(workflow::Column::DeletedAt.is_null())
        .into_tuple()
        .all(db.conn())
        .await?;
    let mut has: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    let kinds: Vec<(String, String)> = alert_rule::Entity::find()
        .select_only()
        .column(alert_rule::Column::WorkflowId)
        .column(alert_rule::Column::Kind)
        .distinct()
        .into_tuple()
        .all(db.conn())
        .await?;
    for (wf, kind) in kinds {
        has.entry(wf).or_default().insert(kind);
    }
    let mut done = 0;
    for (tenant, id, owner) in flows {
        let present = has.remove(&id).unwrap_or_default();
        let tenant = parse(&tenant, "workflows.tenant_id")?;
        let workflow = parse(&id, "workflows.id")?;
        let owner = parse(&owner, "workflows.owner_id")?;
        let missing: Vec<_> = RuleKind::defaults()
            .into_iter()
            .filter(|k| !present.contains(k.key()))
            .map(|kind| new_row(&tenant, &workflow, kind, &owner, now))
            .collect();
        if missing.is_empty() {
            continue;
        }
        alert_rule::Entity::insert_many(missing)
            .exec_without_returning(db.conn())
            .await?;
        done += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::seeded;
    use crate::workflows::{self, NewWorkflow};
    use ferry_core::Environment;
    use ferry_core::metrics::{Rollup, Span};

    #[tokio::test]
    async fn rules_incidents_ticks_and_rollups_round_trip() {
        let now = Utc::now();
        let s = seeded(now).await.unwrap();
        let draft = ferry_core::workflow::reference_template();
        let wf = workflows::create(
            &s.db,
            &s.tenant,
            NewWorkflow {
                name: "KYC",
                description: "",
                owner_id: &s.owner,
                environment: Environment::Sandbox,
                draft: &draft,
                bindings: &Default::default(),
            },
            now,
        )
        .await
        .unwrap();
        create_defaults(&s.db, &s.tenant, &wf.id, &s.owner, now)
            .await
            .unwrap();
        let rules = list(&s.db, &s.tenant, Some(&wf.id)).await.unwrap();
        assert_eq!(rules.len(), 7);
        assert!(list(&s.db, &s.other, None).await.unwrap().is_empty());
        assert_eq!(to_evaluate(&s.db).await.unwrap().len(), 7);
        let rule = &rules[0];
        assert!(matches!(
            get(&s.db, &s.other, &rule.id).await,
            Err(StoreError::NotFound)
        ));
        // An incident opens once: the second change from the same version
        // is refused.
        let firing = IncidentState::Firing {
            since: now,
            acknowledged: false,
            escalated: false,
        };
        let id = open(&s.db, rule, "x", now).await.unwrap();
        assert!(
            transition(&s.db, rule, &firing, Some(&id), now)
                .await
                .unwrap()
        );
        assert!(
            !transition(&s.db, rule, &firing, Some(&id), now)
                .await
                .unwrap()
        );
        let again = get(&s.db, &s.tenant, &rule.id).await.unwrap();
        assert_eq!(again.state, firing);
        assert_eq!(again.incident_id.as_ref(), Some(&id));
        assert!(
            acknowledge(&s.db, &s.tenant, &id, &s.owner, now)
                .await
                .unwrap()
        );
        assert!(
            !acknowledge(&s.db, &s.tenant, &id, &s.owner, now)
                .await
                .unwrap()
        );
        assert_eq!(open_incidents(&s.db, &s.tenant).await.unwrap().len(), 1);
        assert_eq!(firing_count(&s.db).await.unwrap(), 1);
        // One claim per minute.
        let minute = Span::Minute.start(now);
        assert!(claim_tick(&s.db, "alerts", minute).await.unwrap());
        assert!(!claim_tick(&s.db, "alerts", minute).await.unwrap());
        assert!(
            claim_tick(&s.db, "alerts", minute + chrono::Duration::minutes(1))
                .await
                .unwrap()
        );
        // Rollups add up, per minute and per hour.
        let mut r = Rollup {
            dead: 2,
            ..Rollup::default()
        };
        r.observe_latency(70);
        let key = (s.tenant.clone(), wf.id.clone(), minute);
        crate::metrics::add(&s.db, &[(key.clone(), r)])
            .await
            .unwrap();
        crate::metrics::add(&s.db, &[(key, r)]).await.unwrap();
        let minutes = crate::metrics::since(&s.db, Span::Minute, minute)
            .await
            .unwrap();
        assert_eq!(minutes.len(), 1);
        assert_eq!(minutes[0].rollup.dead, 4);
        assert_eq!(minutes[0].rollup.latency[3], 2);
        let hours = crate::metrics::since(&s.db, Span::Hour, Span::Hour.start(now))
            .await
            .unwrap();
        assert_eq!(hours[0].rollup.dead, 4);
        // An older minute, then the bands: the last minute, the last hour.
        let older = (
            s.tenant.clone(),
            wf.id.clone(),
            minute - chrono::Duration::minutes(30),
        );
        crate::metrics::add(&s.db, &[(older, r)]).await.unwrap();
        let banded = crate::metrics::sums_in_bands(
            &s.db,
            Span::Minute,
            &[minute, minute - chrono::Duration::minutes(60)],
        )
        .await
        .unwrap();
        let bands = &banded[&(s.tenant.clone(), wf.id.clone())];
        assert_eq!((bands[0].dead, bands[1].dead), (4, 2));
        assert_eq!(watched(&s.db).await.unwrap().len(), 1);
        assert_eq!(backfill_defaults(&s.db, now).await.unwrap(), 0);
        // A kind of rule added after the workflow was made is backfilled,
        // alone.
        alert_rule::Entity::delete_many()
            .filter(alert_rule::Column::Kind.eq("review_overdue"))
            .exec(s.db.conn())
            .await
            .unwrap();
        assert_eq!(backfill_defaults(&s.db, now).await.unwrap(), 1);
        assert_eq!(list(&s.db, &s.tenant, Some(&wf.id)).await.unwrap().len(), 7);
        assert_eq!(backfill_defaults(&s.db, now).await.unwrap(), 0);
    }
}
