//! Storing accepted events with the runs they start and the waits they
//! resume, in one transaction; echo guards for Ferry's own writes.

use super::*;

/// A published workflow as events see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The workflow.
    pub id: WorkflowId,
    /// The version runs use.
    pub version: i32,
    /// Paused: its runs are created held.
    pub paused: bool,
}

/// Each of a tenant's published workflows (the engine matches them to
/// events; versions never change once published).
pub async fn published(db: &Db, tenant: &TenantId) -> Result<Vec<Published>, StoreError> {
    let rows: Vec<(String, Option<i32>, Option<DateTime<Utc>>)> = workflow::Entity::find()
        .select_only()
        .column(workflow::Column::Id)
        .column(workflow::Column::PublishedVersion)
        .column(workflow::Column::PausedAt)
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::PublishedVersion.is_not_null())
        .filter(workflow::Column::DeletedAt.is_null())
        .into_tuple()
        .all(&db.conn)
        .await?;
    rows.into_iter()
        .filter_map(|(id, v, paused)| v.map(|v| (id, v, paused.is_some())))
        .map(|(id, version, paused)| {
            Ok(Published {
                id: id
                    .parse()
                    .map_err(|_| StoreError::Corrupt("workflows.id"))?,
                version,
                paused,
            })
        })
        .collect()
}

/// A run to create with an event.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// Its id (generated before sealing: the context is bound to it).
    pub id: RunId,
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The version.
    pub version: i32,
    /// The record the event concerns.
    pub record_id: Option<String>,
    /// The sealed context.
    pub context: String,
    /// Skip the run when the workflow already processed this record.
    pub once_per_record: bool,
    /// The workflow is paused: the run is created held.
    pub held: bool,
}

/// What storing an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The event (new, or the first copy of a repeat).
    pub stored: Stored,
    /// Runs created queued (to enqueue).
    pub queued: Vec<RunId>,
    /// Runs created skipped (the record was processed already).
    pub skipped: Vec<RunId>,
    /// Runs created held (their workflow is paused).
    pub held: Vec<RunId>,
    /// Waiting runs this event resumed (to enqueue).
    pub resumed: Vec<RunId>,
    /// The event was Ferry's own write coming back: no run.
    pub echo: bool,
}

/// The echo guard an event matches: `(record id, property, value)`.
pub type EchoKey<'a> = (&'a str, &'a str, &'a str);

/// Whether an event matches an echo guard (Ferry's own write coming
/// back). Read before any transaction: on SQLite a transaction that reads
/// before it writes cannot take the write lock under contention.
pub async fn is_echo(
    db: &Db,
    tenant: &TenantId,
    echo: Option<EchoKey<'_>>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(match echo {
        Some((record, property, value)) => {
            echo_guard::Entity::find()
                .filter(echo_guard::Column::TenantId.eq(tenant.to_string()))
                .filter(echo_guard::Column::RecordId.eq(record))
                .filter(echo_guard::Column::Property.eq(property))
                .filter(echo_guard::Column::Value.eq(value))
                .filter(echo_guard::Column::ExpiresAt.gt(now))
                .count(&db.conn)
                .await?
                > 0
        }
        None => false,
    })
}

/// Stores an inbound event and, in the same transaction, its runs and the
/// resumption of runs waiting for it. A repeat of a stored event changes
/// nothing. An event matching an echo guard (Ferry's own write) is stored as
/// `echo` and starts nothing. (The engine stores events in batches, see
/// [`write_batch`]; this is the same write alone.)
pub async fn ingest(
    db: &Db,
    tenant: &TenantId,
    event: NewEvent<'_>,
    correlation_key: Option<&str>,
    echo: Option<EchoKey<'_>>,
    runs: Vec<NewRun>,
    now: DateTime<Utc>,
) -> Result<Ingested, StoreError> {
    let echo = is_echo(db, tenant, echo, now).await?;
    let write = Write::Event(Box::new(EventToStore::new(
        tenant,
        &event,
        correlation_key,
        echo,
        runs,
    )));
    match write_one(db, write, now).await? {
        Written::Event(i) => Ok(i),
        _ => Err(StoreError::Corrupt("ingest: not an event's result")),
    }
}

/// Stores one event with its runs within `c` (a transaction shared with
/// the rest of its batch). A repeat of a stored event (also earlier in the
/// same batch) inserts nothing and names the first copy.
pub(super) async fn store_event(
    c: &impl ConnectionTrait,
    e: &EventToStore,
    now: DateTime<Utc>,
) -> Result<Ingested, StoreError> {
    let tenant = &e.tenant;
    let event_id = EventId::generate();
    let inserted = inbound_event::Entity::insert(event_row(e, &event_id, now))
        .on_conflict(crate::inbound::repeat_inserts_nothing())
        .exec_without_returning(c)
        .await;
    let duplicate = match inserted {
        Ok(n) => n == 0,
        Err(DbErr::RecordNotInserted) => true,
        Err(e) => return Err(e.into()),
    };
    if duplicate {
        return Ok(Ingested {
            stored: Stored::Duplicate(crate::inbound::first_copy(c, tenant, &e.dedupe_key).await?),
            queued: vec![],
            skipped: vec![],
            held: vec![],
            resumed: vec![],
            echo: false,
        });
    }
    let mut out = Ingested {
        stored: Stored::New(event_id.clone()),
        queued: vec![],
        skipped: vec![],
        held: vec![],
        resumed: vec![],
        echo: e.echo,
    };
    if !e.echo {
        let mut rows = Vec::with_capacity(e.runs.len());
        for r in &e.runs {
            let earlier = match (&r.record_id, r.once_per_record) {
                (Some(record), true) => {
                    run::Entity::find()
                        .select_only()
                        .column(run::Column::Id)
                        .filter(run::Column::TenantId.eq(tenant.to_string()))
                        .filter(run::Column::WorkflowId.eq(r.workflow_id.to_string()))
                        .filter(run::Column::RecordId.eq(record.clone()))
                        .filter(run::Column::Status.ne(RunStatus::Skipped.as_str()))
                        .into_tuple::<String>()
                        .one(c)
                        .await?
                }
                _ => None,
            };
            let (status, error) = match &earlier {
                Some(first) => (
                    RunStatus::Skipped,
                    Some(format!(
                        "record {} was already processed by run {first}",
                        r.record_id.as_deref().unwrap_or("")
                    )),
                ),
                None if r.held => (RunStatus::Held, None),
                None => (RunStatus::Queued, None),
            };
            rows.push(run_row(tenant, &event_id, r, status, error, now));
            match status {
                RunStatus::Skipped => out.skipped.push(r.id.clone()),
                RunStatus::Held => out.held.push(r.id.clone()),
                _ => out.queued.push(r.id.clone()),
            }
        }
        if !rows.is_empty() {
            run::Entity::insert_many(rows)
                .exec_without_returning(c)
                .await?;
        }
    }
    if let Some(key) = &e.correlation_key {
        out.resumed = resume_waiting_on(c, tenant, key, now).await?;
    }
    Ok(out)
}

/// A new run's row.
pub(super) fn run_row(
    tenant: &TenantId,
    event_id: &EventId,
    r: &NewRun,
    status: RunStatus,
    error: Option<String>,
    now: DateTime<Utc>,
) -> run::ActiveModel {
    run::ActiveModel {
        id: Set(r.id.to_string()),
        tenant_id: Set(tenant.to_string()),
        workflow_id: Set(r.workflow_id.to_string()),
        version: Set(r.version),
        event_id: Set(event_id.to_string()),
        record_id: Set(r.record_id.clone()),
        status: Set(status.as_str().to_owned()),
        step_index: Set(0),
        step_attempt: Set(0),
        context: Set(r.context.clone()),
        wait_key: Set(None),
        wake_at: Set(None),
        // The caller enqueues at once; the sweeper nudges only later (a
        // held run waits for a person, not for the sweeper).
        lease_until: Set((status == RunStatus::Queued).then(|| now + chrono::Duration::seconds(60))),
        error: Set(error),
        replays: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(status.is_final().then_some(now)),
        record_label: Set(None),
        search_keys: Set(None),
        purged_at: Set(None),
    }
}

/// The row of an accepted event.
pub(super) fn event_row(
    e: &EventToStore,
    id: &EventId,
    now: DateTime<Utc>,
) -> inbound_event::ActiveModel {
    inbound_event::ActiveModel {
        id: Set(id.to_string()),
        tenant_id: Set(e.tenant.to_string()),
        connection_id: Set(e.connection_id.to_string()),
        source: Set(e.source.clone()),
        event_type: Set(e.event_type.clone()),
        dedupe_key: Set(e.dedupe_key.clone()),
        payload: Set(e.payload.clone()),
        status: Set(if e.echo { "echo" } else { "received" }.to_owned()),
        received_at: Set(now),
        correlation_key: Set(e.correlation_key.clone()),
    }
}

/// Moves a tenant's runs waiting on `key` back to the queue; returns them.
pub(super) async fn resume_waiting_on(
    conn: &impl ConnectionTrait,
    tenant: &TenantId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Vec<RunId>, StoreError> {
    let waiting: Vec<String> = run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .filter(run::Column::WaitKey.eq(key))
        .filter(run::Column::Status.eq(RunStatus::Waiting.as_str()))
        .into_tuple()
        .all(conn)
        .await?;
    let mut resumed = Vec::new();
    for id in waiting {
        if resume_waiting(conn, &id, now).await? {
            resumed.push(id.parse().map_err(|_| StoreError::Corrupt("runs.id"))?);
        }
    }
    Ok(resumed)
}

pub(crate) async fn resume_waiting(
    conn: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let r = run::Entity::update_many()
        .col_expr(run::Column::Status, Expr::value(RunStatus::Queued.as_str()))
        .col_expr(
            run::Column::WakeAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            run::Column::LeaseUntil,
            Expr::value(Some(now + chrono::Duration::seconds(60))),
        )
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::Id.eq(id))
        .filter(run::Column::Status.eq(RunStatus::Waiting.as_str()))
        .exec(conn)
        .await?;
    Ok(r.rows_affected == 1)
}

/// The event with this correlation key, if it arrived: its dedupe key and
/// its (sealed) payload.
pub async fn correlated_event(
    db: &Db,
    tenant: &TenantId,
    key: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(inbound_event::Entity::find()
        .filter(inbound_event::Column::TenantId.eq(tenant.to_string()))
        .filter(inbound_event::Column::CorrelationKey.eq(key))
        .order_by_asc(inbound_event::Column::ReceivedAt)
        .one(&db.conn)
        .await?
        .map(|m| (m.dedupe_key, m.payload)))
}

/// Remembers a property value Ferry wrote, so the change event it causes
/// is recognised as an echo until `expires_at`.
pub async fn guard_echo(
    db: &Db,
    tenant: &TenantId,
    record: &str,
    property: &str,
    value: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    echo_guard::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        record_id: Set(record.to_owned()),
        property: Set(property.to_owned()),
        value: Set(value.to_owned()),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(&db.conn)
    .await?;
    Ok(())
}
