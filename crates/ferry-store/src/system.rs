//! Every query that crosses tenants, in one place for a reviewer: the
//! background work that must find work wherever it is (the run sweeper,
//! token refresh, mail delivery, echo-guard purge) and the inbound hooks
//! that learn the tenant from what arrives (a connection id in the URL, a
//! HubSpot portal id). Everything else in this crate takes a `TenantId`
//! first and never reads another tenant's rows.

use crate::connections::{HookTarget, secret_aad};
use crate::emails::{Email, STATUS_QUEUED};
use crate::entities::{connection, echo_guard, email, run};
use crate::runs::{RunStatus, Sweep, resume_waiting};
use crate::vault::Vault;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::catalog::ConnectorKey;
use ferry_core::{ConnectionId, ConnectionStatus, RunId, TenantId, TenantStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

// ---------------------------------------------------------------- from runs

/// Finds work whose time has come, across tenants: waits past their
/// deadline and runs of dead workers go back to the queue; queued runs that
/// are due and not recently enqueued are marked enqueued for a minute.
pub async fn sweep(db: &Db, now: DateTime<Utc>, limit: u64) -> Result<Sweep, StoreError> {
    let mut out = Sweep::default();
    let one = |(tenant, id): (String, String)| -> Result<(TenantId, RunId), StoreError> {
        Ok((
            tenant
                .parse()
                .map_err(|_| StoreError::Corrupt("runs.tenant_id"))?,
            id.parse().map_err(|_| StoreError::Corrupt("runs.id"))?,
        ))
    };
    let parse = |v: Vec<(String, String)>| -> Result<Vec<(TenantId, RunId)>, StoreError> {
        v.into_iter().map(one).collect()
    };
    let none = Option::<DateTime<Utc>>::None;
    // Worker died: lease lapsed while running.
    let orphaned: Vec<(String, String)> = run::Entity::find()
        .select_only()
        .column(run::Column::TenantId)
        .column(run::Column::Id)
        .filter(run::Column::Status.eq(RunStatus::Running.as_str()))
        .filter(run::Column::LeaseUntil.lt(now))
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    for (_, id) in &orphaned {
        run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
            .col_expr(run::Column::LeaseUntil, Expr::value(none))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(id.clone()))
            .filter(run::Column::Status.eq(RunStatus::Running.as_str()))
            .filter(run::Column::LeaseUntil.lt(now))
            .exec(&db.conn)
            .await?;
    }
    out.orphaned = parse(orphaned)?;
    // Waits past their deadline: back to the queue; the worker records the
    // timeout when it finds no event.
    let timed_out: Vec<(String, String)> = run::Entity::find()
        .select_only()
        .column(run::Column::TenantId)
        .column(run::Column::Id)
        .filter(run::Column::Status.eq(RunStatus::Waiting.as_str()))
        .filter(run::Column::WakeAt.lte(now))
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    for (_, id) in &timed_out {
        resume_waiting(&db.conn, id, now).await?;
    }
    out.timed_out = parse(timed_out)?;
    // Safety net: waiting runs whose event is already stored.
    let matched: Vec<(String, String)> = run::Entity::find()
        .select_only()
        .column(run::Column::TenantId)
        .column(run::Column::Id)
        .filter(run::Column::Status.eq(RunStatus::Waiting.as_str()))
        .filter(Expr::cust(
            "EXISTS (SELECT 1 FROM inbound_events ie WHERE ie.tenant_id = runs.tenant_id AND ie.correlation_key = runs.wait_key)",
        ))
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    for row in matched {
        if resume_waiting(&db.conn, &row.1, now).await? {
            out.timed_out.push(one(row)?);
        }
    }
    // Held runs whose workflow is no longer paused (an event stored while
    // the workflow was being resumed): back to the queue; the executor
    // ends them if the workflow was deleted.
    let unheld: Vec<(String, String)> = run::Entity::find()
        .select_only()
        .column(run::Column::TenantId)
        .column(run::Column::Id)
        .filter(run::Column::Status.eq(RunStatus::Held.as_str()))
        .filter(Expr::cust(
            "NOT EXISTS (SELECT 1 FROM workflows w WHERE w.id = runs.workflow_id AND w.paused_at IS NOT NULL AND w.deleted_at IS NULL)",
        ))
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    for (_, id) in &unheld {
        run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
            .col_expr(run::Column::LeaseUntil, Expr::value(none))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(id.clone()))
            .filter(run::Column::Status.eq(RunStatus::Held.as_str()))
            .exec(&db.conn)
            .await?;
    }
    // Queued and due, not enqueued in the last minute.
    let due: Vec<(String, String)> = run::Entity::find()
        .select_only()
        .column(run::Column::TenantId)
        .column(run::Column::Id)
        .filter(run::Column::Status.eq(RunStatus::Queued.as_str()))
        .filter(
            Condition::any()
                .add(run::Column::WakeAt.is_null())
                .add(run::Column::WakeAt.lte(now)),
        )
        .filter(
            Condition::any()
                .add(run::Column::LeaseUntil.is_null())
                .add(run::Column::LeaseUntil.lt(now)),
        )
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    for row in due {
        let id = row.1.clone();
        let r = run::Entity::update_many()
            .col_expr(
                run::Column::LeaseUntil,
                Expr::value(Some(now + chrono::Duration::seconds(60))),
            )
            .filter(run::Column::Id.eq(id.clone()))
            .filter(run::Column::Status.eq(RunStatus::Queued.as_str()))
            .filter(
                Condition::any()
                    .add(run::Column::LeaseUntil.is_null())
                    .add(run::Column::LeaseUntil.lt(now)),
            )
            .exec(&db.conn)
            .await?;
        if r.rows_affected == 1 {
            out.enqueue.push(one(row)?);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- from runs

/// Deletes echo guards that expired; returns how many.
pub async fn purge_echo_guards(db: &Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(echo_guard::Entity::delete_many()
        .filter(echo_guard::Column::ExpiresAt.lt(now))
        .exec(&db.conn)
        .await?
        .rows_affected)
}

// ---------------------------------------------------------------- from connections

/// See [`HookTarget`].
pub async fn for_hook(db: &Db, vault: &Vault, id: &ConnectionId) -> Result<HookTarget, StoreError> {
    let (tenant, connector, sealed, status): (String, String, String, Option<String>) =
        connection::Entity::find_by_id(id.to_string())
            .select_only()
            .column(connection::Column::TenantId)
            .column(connection::Column::Connector)
            .column(connection::Column::SecretCiphertext)
            .column_as(
                Expr::cust("(SELECT t.status FROM tenants t WHERE t.id = connections.tenant_id)"),
                "tenant_status",
            )
            .into_tuple()
            .one(&db.conn)
            .await?
            .ok_or(StoreError::NotFound)?;
    let tenant: TenantId = tenant
        .parse()
        .map_err(|_| StoreError::Corrupt("connections.tenant_id"))?;
    let plain = vault.open(&tenant, &sealed, &secret_aad(id)).await?;
    Ok(HookTarget {
        tenant_status: status
            .as_deref()
            .and_then(TenantStatus::parse)
            .ok_or(StoreError::Corrupt("tenants.status"))?,
        connector: ConnectorKey::parse(&connector)
            .ok_or(StoreError::Corrupt("connections.connector"))?,
        credentials: serde_json::from_slice(&plain)
            .map_err(|_| StoreError::Crypto("credentials did not parse"))?,
        tenant,
    })
}

// ---------------------------------------------------------------- from connections

/// Healthy OAuth connections of every tenant whose access token expires
/// before `before` (for the refresher; it acts per tenant afterwards).
pub async fn due_for_refresh(
    db: &Db,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<(TenantId, ConnectionId)>, StoreError> {
    let rows: Vec<(String, String)> = connection::Entity::find()
        .select_only()
        .column(connection::Column::TenantId)
        .column(connection::Column::Id)
        .filter(connection::Column::Status.eq(ConnectionStatus::Healthy.as_str()))
        .filter(connection::Column::AccessExpiresAt.lt(before))
        .order_by_asc(connection::Column::AccessExpiresAt)
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    rows.into_iter()
        .map(|(t, c)| {
            Ok((
                t.parse()
                    .map_err(|_| StoreError::Corrupt("connections.tenant_id"))?,
                c.parse()
                    .map_err(|_| StoreError::Corrupt("connections.id"))?,
            ))
        })
        .collect()
}

// ---------------------------------------------------------------- from inbound

/// The connection a HubSpot portal's events belong to, in one environment:
/// its tenant, id and the tenant's status. The oldest connection wins when
/// one tenant connected the portal twice; when connections of different
/// tenants name the same portal, nobody gets its events (`None`, logged):
/// a portal's data never goes to a tenant it might not belong to.
pub async fn hubspot_connection_for_portal(
    db: &Db,
    environment: ferry_core::Environment,
    portal: &str,
) -> Result<Option<(TenantId, ConnectionId, TenantStatus)>, StoreError> {
    let rows: Vec<(String, String, Option<String>)> = connection::Entity::find()
        .select_only()
        .column(connection::Column::TenantId)
        .column(connection::Column::Id)
        .column_as(
            Expr::cust("(SELECT t.status FROM tenants t WHERE t.id = connections.tenant_id)"),
            "tenant_status",
        )
        .filter(connection::Column::Connector.eq(ConnectorKey::HubSpot.as_str()))
        .filter(connection::Column::Environment.eq(environment.as_str()))
        .filter(connection::Column::ExternalAccount.eq(portal))
        .order_by_asc(connection::Column::CreatedAt)
        .limit(16)
        .into_tuple()
        .all(&db.conn)
        .await?;
    let Some((tenant, id, status)) = rows.first().cloned() else {
        return Ok(None);
    };
    if rows.iter().any(|(t, _, _)| *t != tenant) {
        tracing::warn!(
            environment = environment.as_str(),
            "HubSpot portal connected by more than one tenant: its events are refused"
        );
        return Ok(None);
    }
    Ok(Some((
        tenant
            .parse()
            .map_err(|_| StoreError::Corrupt("connections.tenant_id"))?,
        id.parse()
            .map_err(|_| StoreError::Corrupt("connections.id"))?,
        status
            .as_deref()
            .and_then(TenantStatus::parse)
            .ok_or(StoreError::Corrupt("tenants.status"))?,
    )))
}

// ---------------------------------------------------------------- from emails

/// Queued emails whose next attempt is due, oldest first.
pub async fn due(db: &Db, now: DateTime<Utc>, limit: u64) -> Result<Vec<Email>, StoreError> {
    email::Entity::find()
        .filter(email::Column::Status.eq(STATUS_QUEUED))
        .filter(email::Column::NextAttemptAt.lte(now))
        .order_by_asc(email::Column::CreatedAt)
        .limit(limit)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(Email::try_from)
        .collect()
}

/// Every tenant's runs that have not ended, by state, for `/metrics`:
/// `due` (queued and due: the queue's depth), `scheduled` (queued for a
/// retry or resume later), `held` (a worker has it), `parked` (waiting for
/// an event).
pub async fn open_runs(
    db: &Db,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    use sea_orm::PaginatorTrait;
    let count =
        |status: RunStatus| run::Entity::find().filter(run::Column::Status.eq(status.as_str()));
    let scheduled = count(RunStatus::Queued)
        .filter(run::Column::WakeAt.gt(now))
        .count(&db.conn)
        .await?;
    let queued = count(RunStatus::Queued).count(&db.conn).await?;
    Ok(vec![
        ("due", queued.saturating_sub(scheduled)),
        ("scheduled", scheduled),
        ("held", count(RunStatus::Running).count(&db.conn).await?),
        ("parked", count(RunStatus::Waiting).count(&db.conn).await?),
    ])
}
