//! The staff verification view and run counts.

use super::*;

/// A client contact's verification, for staff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// The CRM record id.
    pub record_id: String,
    /// The contact's name.
    pub name: String,
    /// The contact's email, as sent to the provider (to tell people with
    /// the same name apart).
    pub email: Option<String>,
    /// pass, needs_review, fail or pending.
    pub outcome: String,
    /// When the outcome was known.
    pub checked_at: Option<DateTime<Utc>>,
    /// The provider's check id.
    pub check_ref: Option<String>,
    /// The run that produced it.
    pub run_id: RunId,
}

/// Records (or updates) a contact's verification.
pub async fn upsert_verification(
    db: &Db,
    tenant: &TenantId,
    v: &Verification,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let existing = verification::Entity::find()
        .filter(verification::Column::TenantId.eq(tenant.to_string()))
        .filter(verification::Column::RecordId.eq(v.record_id.clone()))
        .one(&db.conn)
        .await?;
    match existing {
        Some(m) => {
            let mut a: verification::ActiveModel = m.into();
            if !v.name.is_empty() {
                a.name = Set(v.name.clone());
            }
            if v.email.is_some() {
                a.email = Set(v.email.clone());
            }
            a.outcome = Set(v.outcome.clone());
            a.check_ref = Set(v.check_ref.clone());
            a.checked_at = Set(v.checked_at);
            a.run_id = Set(v.run_id.to_string());
            a.updated_at = Set(now);
            a.update(&db.conn).await?;
        }
        None => {
            verification::ActiveModel {
                id: Set(format!("ver_{}", hex::encode(rand::random::<[u8; 16]>()))),
                tenant_id: Set(tenant.to_string()),
                record_id: Set(v.record_id.clone()),
                name: Set(v.name.clone()),
                email: Set(v.email.clone()),
                outcome: Set(v.outcome.clone()),
                check_ref: Set(v.check_ref.clone()),
                checked_at: Set(v.checked_at),
                run_id: Set(v.run_id.to_string()),
                updated_at: Set(now),
            }
            .insert(&db.conn)
            .await?;
        }
    }
    Ok(())
}

/// The tenant's verifications matching `search` (part of a name, or a
/// whole email, record id or check reference) and `outcome`, by name.
pub async fn verifications(
    db: &Db,
    tenant: &TenantId,
    search: Option<&str>,
    outcome: Option<&str>,
    limit: u64,
) -> Result<Vec<Verification>, StoreError> {
    let mut q =
        verification::Entity::find().filter(verification::Column::TenantId.eq(tenant.to_string()));
    if let Some(o) = outcome {
        q = q.filter(verification::Column::Outcome.eq(o));
    }
    if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
        q = q.filter(
            Condition::any()
                .add(verification::Column::Name.contains(s))
                .add(verification::Column::RecordId.eq(s))
                .add(verification::Column::Email.eq(s.to_lowercase()))
                .add(verification::Column::CheckRef.eq(s)),
        );
    }
    q.order_by_asc(verification::Column::Name)
        .limit(limit)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| {
            Ok(Verification {
                record_id: m.record_id,
                name: m.name,
                email: m.email,
                outcome: m.outcome,
                checked_at: m.checked_at,
                check_ref: m.check_ref,
                run_id: m
                    .run_id
                    .parse()
                    .map_err(|_| StoreError::Corrupt("verifications.run_id"))?,
            })
        })
        .collect()
}

/// How many runs the tenant has per status (for the overview).
pub async fn count_by_status(
    db: &Db,
    tenant: &TenantId,
) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    per_status(
        db,
        run::Entity::find().filter(run::Column::TenantId.eq(tenant.to_string())),
    )
    .await
}

/// The runs `query` selects, counted per status.
async fn per_status(
    db: &Db,
    query: sea_orm::Select<run::Entity>,
) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    let rows: Vec<(String, i64)> = query
        .select_only()
        .column(run::Column::Status)
        .column_as(run::Column::Id.count(), "n")
        .group_by(run::Column::Status)
        .into_tuple()
        .all(&db.conn)
        .await?;
    rows.into_iter()
        .map(|(s, n)| {
            Ok((
                RunStatus::parse(&s).ok_or(StoreError::Corrupt("runs.status"))?,
                u64::try_from(n).unwrap_or(0),
            ))
        })
        .collect()
}

/// Inserts `n` finished runs of `workflow` (benchmarks: a large history
/// for the runs page), one second apart ending at `end`; returns how many.
pub async fn insert_history(
    db: &Db,
    tenant: &TenantId,
    workflow: &WorkflowId,
    n: usize,
    end: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(1000);
        let rows = (done..done + chunk).map(|i| {
            let at = end - chrono::Duration::seconds(i64::try_from(n - i).unwrap_or(0));
            let status = match i % 20 {
                0 => RunStatus::Failed,
                1 => RunStatus::Dead,
                2 => RunStatus::Skipped,
                _ => RunStatus::Succeeded,
            };
            run::ActiveModel {
                id: Set(RunId::generate().to_string()),
                tenant_id: Set(tenant.to_string()),
                workflow_id: Set(workflow.to_string()),
                version: Set(1),
                event_id: Set(EventId::generate().to_string()),
                record_id: Set(Some((i % 50_000).to_string())),
                status: Set(status.as_str().to_owned()),
                step_index: Set(1),
                step_attempt: Set(0),
                context: Set(String::new()),
                wait_key: Set(None),
                wake_at: Set(None),
                lease_until: Set(None),
                error: Set(None),
                replays: Set(0),
                created_at: Set(at),
                updated_at: Set(at),
                finished_at: Set(Some(at)),
                record_label: Set(None),
                search_keys: Set(None),
                purged_at: Set(None),
            }
        });
        let txn = db.begin_write().await?;
        run::Entity::insert_many(rows).exec(&txn).await?;
        txn.commit().await?;
        done += chunk;
    }
    Ok(done)
}

/// How many runs of `workflow` started in `[from, to)`, per status.
pub async fn counts_between(
    db: &Db,
    tenant: &TenantId,
    workflow: &WorkflowId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(RunStatus, u64)>, StoreError> {
    per_status(
        db,
        run::Entity::find()
            .filter(run::Column::TenantId.eq(tenant.to_string()))
            .filter(run::Column::WorkflowId.eq(workflow.to_string()))
            .filter(run::Column::CreatedAt.gte(from))
            .filter(run::Column::CreatedAt.lt(to)),
    )
    .await
}

/// Failed step attempts of `workflow`'s runs since `since`, per step kind
/// (`validate`, `action`, …): what a review reads as drift upstream.
pub async fn failed_steps_since(
    db: &Db,
    tenant: &TenantId,
    workflow: &WorkflowId,
    since: DateTime<Utc>,
) -> Result<Vec<(String, u64)>, StoreError> {
    use sea_orm::sea_query::Query;
    let runs_of = Query::select()
        .column(run::Column::Id)
        .from(run::Entity)
        .and_where(run::Column::TenantId.eq(tenant.to_string()))
        .and_where(run::Column::WorkflowId.eq(workflow.to_string()))
        .to_owned();
    let rows: Vec<(String, i64)> = run_step::Entity::find()
        .select_only()
        .column(run_step::Column::Kind)
        .column_as(run_step::Column::Id.count(), "n")
        .filter(run_step::Column::TenantId.eq(tenant.to_string()))
        .filter(run_step::Column::Status.is_in(["failed", "retrying"]))
        .filter(run_step::Column::FinishedAt.gte(since))
        .filter(run_step::Column::RunId.in_subquery(runs_of))
        .group_by(run_step::Column::Kind)
        .into_tuple()
        .all(&db.conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(k, n)| (k, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// What a retention purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Runs whose working data and record name were removed.
    pub runs: u64,
    /// Step attempts whose input and output were removed.
    pub steps: u64,
    /// Inbound events whose payload was removed.
    pub events: u64,
}

/// Removes the payloads of the tenant's runs that ended before `before`:
/// each run's sealed context, record name and search keys, its steps'
/// input and output, the client's name and email in the staff
/// verification view, and the payloads of events received before it. The
/// metadata stays (statuses, times, step outcomes, HTTP calls: method,
/// path, status), and so does the audit chain, which never held payloads.
pub async fn purge_payloads(
    db: &Db,
    tenant: &TenantId,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Purged, StoreError> {
    use sea_orm::sea_query::Query;
    let txn = db.begin_write().await?;
    let old = Query::select()
        .column(run::Column::Id)
        .from(run::Entity)
        .and_where(run::Column::TenantId.eq(tenant.to_string()))
        .and_where(run::Column::FinishedAt.lt(before))
        .and_where(run::Column::PurgedAt.is_null())
        .to_owned();
    let steps = run_step::Entity::update_many()
        .col_expr(run_step::Column::Input, Expr::value("null"))
        .col_expr(run_step::Column::Output, Expr::value("null"))
        .filter(run_step::Column::TenantId.eq(tenant.to_string()))
        .filter(run_step::Column::RunId.in_subquery(old))
        .exec(&txn)
        .await?
        .rows_affected;
    let runs = run::Entity::update_many()
        .col_expr(run::Column::Context, Expr::value(""))
        .col_expr(
            run::Column::RecordLabel,
            Expr::value(Option::<String>::None),
        )
        .col_expr(run::Column::SearchKeys, Expr::value(Option::<String>::None))
        .col_expr(run::Column::PurgedAt, Expr::value(Some(now)))
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::FinishedAt.lt(before))
        .filter(run::Column::PurgedAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    // Not the event of a run still under way (a long wait reads it).
    let live = Query::select()
        .column(run::Column::EventId)
        .from(run::Entity)
        .and_where(run::Column::TenantId.eq(tenant.to_string()))
        .and_where(run::Column::FinishedAt.is_null())
        .to_owned();
    let events = inbound_event::Entity::update_many()
        .col_expr(inbound_event::Column::Payload, Expr::value(""))
        .filter(inbound_event::Column::TenantId.eq(tenant.to_string()))
        .filter(inbound_event::Column::Id.not_in_subquery(live))
        .filter(inbound_event::Column::ReceivedAt.lt(before))
        .filter(inbound_event::Column::Payload.ne(""))
        .exec(&txn)
        .await?
        .rows_affected;
    // The staff view keeps the outcome per record, not who the client was.
    let named = Query::select()
        .column(run::Column::Id)
        .from(run::Entity)
        .and_where(run::Column::TenantId.eq(tenant.to_string()))
        .and_where(run::Column::PurgedAt.is_not_null())
        .to_owned();
    verification::Entity::update_many()
        .col_expr(verification::Column::Name, Expr::value(""))
        .col_expr(
            verification::Column::Email,
            Expr::value(Option::<String>::None),
        )
        .filter(verification::Column::TenantId.eq(tenant.to_string()))
        .filter(verification::Column::RunId.in_subquery(named))
        .filter(
            Condition::any()
                .add(verification::Column::Name.ne(""))
                .add(verification::Column::Email.is_not_null()),
        )
        .exec(&txn)
        .await?;
    crate::entities::workflow_sample::Entity::delete_many()
        .filter(crate::entities::workflow_sample::Column::TenantId.eq(tenant.to_string()))
        .filter(crate::entities::workflow_sample::Column::TakenAt.lt(before))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Purged {
        runs,
        steps,
        events,
    })
}
