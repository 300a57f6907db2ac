//! Reading runs: one run and its steps, the filtered keyset list, runs
//! that ended dead in a period.

use super::*;

/// A run's step attempts, in order.
pub async fn steps(db: &Db, tenant: &TenantId, run: &RunId) -> Result<Vec<StepRecord>, StoreError> {
    Ok(steps_with_ids(db, tenant, run)
        .await?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// A run's step attempts with their row ids (what the audit chain's
/// `run.step` entries name), in order.
pub async fn steps_with_ids(
    db: &Db,
    tenant: &TenantId,
    run: &RunId,
) -> Result<Vec<(i64, StepRecord)>, StoreError> {
    run_step::Entity::find()
        .filter(run_step::Column::TenantId.eq(tenant.to_string()))
        .filter(run_step::Column::RunId.eq(run.to_string()))
        .order_by_asc(run_step::Column::Id)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(|m| {
            let json =
                |s: &str| serde_json::from_str(s).map_err(|_| StoreError::Corrupt("run_steps"));
            Ok((
                m.id,
                StepRecord {
                    step_index: m.step_index,
                    step_key: m.step_key,
                    kind: m.kind,
                    attempt: m.attempt,
                    status: m.status,
                    input: json(&m.input)?,
                    output: json(&m.output)?,
                    http_calls: json(&m.http_calls)?,
                    error: m.error,
                    started_at: m.started_at,
                    finished_at: m.finished_at,
                },
            ))
        })
        .collect()
}

/// One run of the tenant.
pub async fn get(db: &Db, tenant: &TenantId, id: &RunId) -> Result<Run, StoreError> {
    run::Entity::find_by_id(id.to_string())
        .filter(run::Column::TenantId.eq(tenant.to_string()))
        .one(&db.conn)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// Filters for the run list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// One workflow.
    pub workflow: Option<WorkflowId>,
    /// One status.
    pub status: Option<RunStatus>,
    /// Created at or after.
    pub from: Option<DateTime<Utc>>,
    /// Created before.
    pub to: Option<DateTime<Utc>>,
    /// One record id.
    pub record: Option<String>,
    /// A keyed hash of a name word, a full name or an email the run's
    /// record has (see `Vault::keyed_hash`, purpose `record-search`).
    pub search_key: Option<String>,
}

/// A keyset cursor: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Its creation time.
    pub created_at: DateTime<Utc>,
    /// Its id.
    pub id: RunId,
}

impl Cursor {
    /// As it travels in a URL: `<micros>.<id>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.id)
    }

    /// From a URL; `None` when malformed.
    pub fn decode(s: &str) -> Option<Self> {
        let (t, id) = s.split_once('.')?;
        Some(Self {
            created_at: DateTime::from_timestamp_micros(t.parse().ok()?)?,
            id: id.parse().ok()?,
        })
    }
}

/// A page of runs, newest first, after `cursor`; the next cursor if more.
pub async fn list(
    db: &Db,
    tenant: &TenantId,
    filter: &Filter,
    after: Option<&Cursor>,
    limit: u64,
) -> Result<(Vec<Run>, Option<Cursor>), StoreError> {
    let mut q = run::Entity::find().filter(run::Column::TenantId.eq(tenant.to_string()));
    if let Some(w) = &filter.workflow {
        q = q.filter(run::Column::WorkflowId.eq(w.to_string()));
    }
    if let Some(s) = filter.status {
        q = q.filter(run::Column::Status.eq(s.as_str()));
    }
    if let Some(from) = filter.from {
        q = q.filter(run::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(run::Column::CreatedAt.lt(to));
    }
    if let Some(r) = &filter.record {
        q = q.filter(run::Column::RecordId.eq(r.clone()));
    }
    if let Some(k) = &filter.search_key {
        q = q.filter(run::Column::SearchKeys.like(format!("% {k} %")));
    }
    if let Some(c) = after {
        q = q.filter(
            Condition::any()
                .add(run::Column::CreatedAt.lt(c.created_at))
                .add(
                    Condition::all()
                        .add(run::Column::CreatedAt.eq(c.created_at))
                        .add(run::Column::Id.lt(c.id.to_string())),
                ),
        );
    }
    let rows = q
        .order_by(run::Column::CreatedAt, Order::Desc)
        .order_by(run::Column::Id, Order::Desc)
        .limit(limit + 1)
        .all(&db.conn)
        .await?;
    let more = rows.len() as u64 > limit;
    let runs: Vec<Run> = rows
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(Run::try_from)
        .collect::<Result<_, _>>()?;
    let next = if more {
        runs.last().map(|r| Cursor {
            created_at: r.created_at,
            id: r.id.clone(),
        })
    } else {
        None
    };
    Ok((runs, next))
}
