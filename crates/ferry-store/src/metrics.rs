//! Per-workflow metric rollups: a row per workflow and minute (kept 48 h)
//! and per workflow and hour (kept 90 days). The engine counts in memory and
//! adds its counts here in batches; rows are only ever added to, so several
//! processes flushing at once sum up correctly.

use crate::entities::workflow_metric::{self, Column};
use crate::{Db, Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::metrics::{BUCKETS, Rollup, Span};
use ferry_core::{TenantId, WorkflowId};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use std::collections::HashMap;

/// One stored rollup.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its workflow.
    pub workflow_id: WorkflowId,
    /// The start of its minute or hour.
    pub at: DateTime<Utc>,
    /// The counts.
    pub rollup: Rollup,
}

/// Counts of one workflow in one minute, as the engine flushes them.
pub type Counted = ((TenantId, WorkflowId, DateTime<Utc>), Rollup);

const LATENCY: [Column; BUCKETS] = [
    Column::L00,
    Column::L01,
    Column::L02,
    Column::L03,
    Column::L04,
    Column::L05,
    Column::L06,
    Column::L07,
    Column::L08,
    Column::L09,
    Column::L10,
    Column::L11,
    Column::L12,
    Column::L13,
    Column::L14,
    Column::L15,
];

const COUNTS: [Column; 9] = [
    Column::Events,
    Column::Started,
    Column::Succeeded,
    Column::Failed,
    Column::Dead,
    Column::Writes,
    Column::WritesFailed,
    Column::DeadlinesMissed,
    Column::LatencySumMs,
];

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A stored row's latency columns as histogram counts.
fn latency(columns: [i64; BUCKETS]) -> [u64; BUCKETS] {
    columns.map(u)
}

fn row(
    (tenant, workflow): (&TenantId, &WorkflowId),
    span: Span,
    at: DateTime<Utc>,
    r: &Rollup,
) -> workflow_metric::ActiveModel {
    let l = r.latency;
    workflow_metric::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        workflow_id: Set(workflow.to_string()),
        span: Set(span.minutes()),
        at: Set(at),
        events: Set(n(r.events)),
        started: Set(n(r.started)),
        succeeded: Set(n(r.succeeded)),
        failed: Set(n(r.failed)),
        dead: Set(n(r.dead)),
        writes: Set(n(r.writes)),
        writes_failed: Set(n(r.writes_failed)),
        deadlines_missed: Set(n(r.deadlines_missed)),
        latency_sum_ms: Set(n(r.latency_sum_ms)),
        l00: Set(n(l[0])),
        l01: Set(n(l[1])),
        l02: Set(n(l[2])),
        l03: Set(n(l[3])),
        l04: Set(n(l[4])),
        l05: Set(n(l[5])),
        l06: Set(n(l[6])),
        l07: Set(n(l[7])),
        l08: Set(n(l[8])),
        l09: Set(n(l[9])),
        l10: Set(n(l[10])),
        l11: Set(n(l[11])),
        l12: Set(n(l[12])),
        l13: Set(n(l[13])),
        l14: Set(n(l[14])),
        l15: Set(n(l[15])),
    }
}

impl TryFrom<workflow_metric::Model> for Stored {
    type Error = StoreError;
    fn try_from(m: workflow_metric::Model) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: m
                .tenant_id
                .parse()
                .map_err(|_| StoreError::Corrupt("workflow_metrics.tenant_id"))?,
            workflow_id: m
                .workflow_id
                .parse()
                .map_err(|_| StoreError::Corrupt("workflow_metrics.workflow_id"))?,
            at: m.at,
            rollup: Rollup {
                events: u(m.events),
                started: u(m.started),
                succeeded: u(m.succeeded),
                failed: u(m.failed),
                dead: u(m.dead),
                writes: u(m.writes),
                writes_failed: u(m.writes_failed),
                deadlines_missed: u(m.deadlines_missed),
                latency: latency([
                    m.l00, m.l01, m.l02, m.l03, m.l04, m.l05, m.l06, m.l07, m.l08, m.l09, m.l10,
                    m.l11, m.l12, m.l13, m.l14, m.l15,
                ]),
                latency_sum_ms: u(m.latency_sum_ms),
            },
        })
    }
}

/// Rows per statement (well under SQLite's bound-parameter limit).
const CHUNK: usize = 400;

/// Adds the engine's per-minute counts to the minute rollups and, summed,
/// to the hour rollups, in one transaction.
pub async fn add(db: &Db, counted: &[Counted]) -> Result<(), StoreError> {
    if counted.is_empty() {
        return Ok(());
    }
    // One row per key and statement (PostgreSQL refuses to update a row
    // twice in one upsert): minutes are distinct; hours are summed first.
    let mut hours: HashMap<(&TenantId, &WorkflowId, DateTime<Utc>), Rollup> = HashMap::new();
    for ((tenant, workflow, minute), r) in counted {
        hours
            .entry((tenant, workflow, Span::Hour.start(*minute)))
            .or_default()
            .add(r);
    }
    let mut rows: Vec<workflow_metric::ActiveModel> = counted
        .iter()
        .map(|((t, w, at), r)| row((t, w), Span::Minute, Span::Minute.start(*at), r))
        .collect();
    rows.extend(
        hours
            .iter()
            .map(|((t, w, at), r)| row((t, w), Span::Hour, *at, r)),
    );
    let excluded = Alias::new("excluded");
    let mut conflict = OnConflict::columns([
        Column::TenantId,
        Column::WorkflowId,
        Column::Span,
        Column::At,
    ]);
    for c in COUNTS.iter().chain(LATENCY.iter()) {
        conflict.value(
            *c,
            Expr::col((workflow_metric::Entity, *c)).add(Expr::col((excluded.clone(), *c))),
        );
    }
    // A tenant deleted while its counts waited in memory: its counts go
    // (they would fail the whole batch on the foreign key, every flush).
    let tenants: Vec<String> = counted
        .iter()
        .map(|((t, _, _), _)| t.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let live: std::collections::HashSet<String> = crate::entities::tenant::Entity::find()
        .select_only()
        .column(crate::entities::tenant::Column::Id)
        .filter(crate::entities::tenant::Column::Id.is_in(tenants))
        .into_tuple::<String>()
        .all(db.conn())
        .await?
        .into_iter()
        .collect();
    rows.retain(|r| match &r.tenant_id {
        sea_orm::ActiveValue::Set(t) => live.contains(t),
        _ => false,
    });
    let tx = db.begin().await?;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        workflow_metric::Entity::insert_many(chunk)
            .on_conflict(conflict.clone())
            .exec_without_returning(tx.conn())
            .await?;
    }
    tx.commit().await
}

/// Every tenant's rollups of `span` from `from` on, oldest first (for the
/// alert evaluation).
pub async fn since(db: &Db, span: Span, from: DateTime<Utc>) -> Result<Vec<Stored>, StoreError> {
    workflow_metric::Entity::find()
        .filter(Column::Span.eq(span.minutes()))
        .filter(Column::At.gte(from))
        .order_by_asc(Column::At)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Stored::try_from)
        .collect()
}

/// One tenant's rollups of `span` from `from` on, oldest first, for one
/// workflow or all of them (charts).
pub async fn of_tenant(
    db: &impl Exec,
    tenant: &TenantId,
    workflow: Option<&WorkflowId>,
    span: Span,
    from: DateTime<Utc>,
) -> Result<Vec<Stored>, StoreError> {
    let mut q = workflow_metric::Entity::find()
        .filter(Column::TenantId.eq(tenant.to_string()))
        .filter(Column::Span.eq(span.minutes()))
        .filter(Column::At.gte(from));
    if let Some(w) = workflow {
        q = q.filter(Column::WorkflowId.eq(w.to_string()));
    }
    q.order_by_asc(Column::At)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Stored::try_from)
        .collect()
}

/// Drops rollups past their retention (minutes after 48 h, hours after 90
/// days); returns how many went.
pub async fn purge(db: &Db, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let mut gone = 0;
    for span in [Span::Minute, Span::Hour] {
        gone += workflow_metric::Entity::delete_many()
            .filter(Column::Span.eq(span.minutes()))
            .filter(Column::At.lt(now - span.retention()))
            .exec(db.conn())
            .await?
            .rows_affected;
    }
    Ok(gone)
}

/// Every tenant's rollups of `span`, summed per workflow by the database in
/// one pass, for windows that start at `starts` (most recent first): band
/// `i` holds the rows from `starts[i]` up to `starts[i - 1]` (band 0: up to
/// now), so the window from `starts[k]` is bands `0..=k` added up. What
/// the alert evaluation reads every minute.
pub async fn sums_in_bands(
    db: &Db,
    span: Span,
    starts: &[DateTime<Utc>],
) -> Result<HashMap<(TenantId, WorkflowId), Vec<Rollup>>, StoreError> {
    let Some(oldest) = starts.last() else {
        return Ok(HashMap::new());
    };
    let mut band = sea_orm::sea_query::CaseStatement::new();
    for (i, start) in starts.iter().enumerate() {
        band = band.case(
            Expr::col(Column::At).gte(*start),
            Expr::val(i32::try_from(i).unwrap_or(i32::MAX)),
        );
    }
    let band: Expr = band.finally(Expr::val(-1)).into();
    let mut q = workflow_metric::Entity::find()
        .select_only()
        .column(Column::TenantId)
        .column(Column::WorkflowId)
        .column_as(band.cast_as("integer"), "band");
    for (c, name) in COUNTS
        .iter()
        .zip(COUNT_NAMES)
        .chain(LATENCY.iter().zip(LATENCY_NAMES))
    {
        q = q.column_as(Expr::col(*c).sum().cast_as("bigint"), name);
    }
    let rows: Vec<Summed> = q
        .filter(Column::Span.eq(span.minutes()))
        .filter(Column::At.gte(*oldest))
        .group_by(Column::TenantId)
        .group_by(Column::WorkflowId)
        .group_by(Expr::col(Alias::new("band")))
        .into_model::<Summed>()
        .all(db.conn())
        .await?;
    let mut out: HashMap<(TenantId, WorkflowId), Vec<Rollup>> = HashMap::new();
    for r in rows {
        let Ok(i) = usize::try_from(r.band) else {
            continue;
        };
        let key = (
            r.tenant_id
                .parse()
                .map_err(|_| StoreError::Corrupt("workflow_metrics.tenant_id"))?,
            r.workflow_id
                .parse()
                .map_err(|_| StoreError::Corrupt("workflow_metrics.workflow_id"))?,
        );
        let bands = out
            .entry(key)
            .or_insert_with(|| vec![Rollup::default(); starts.len()]);
        if let Some(slot) = bands.get_mut(i) {
            *slot = r.rollup();
        }
    }
    Ok(out)
}

impl Summed {
    fn rollup(&self) -> Rollup {
        let r = self;
        Rollup {
            events: u(r.events),
            started: u(r.started),
            succeeded: u(r.succeeded),
            failed: u(r.failed),
            dead: u(r.dead),
            writes: u(r.writes),
            writes_failed: u(r.writes_failed),
            deadlines_missed: u(r.deadlines_missed),
            latency: latency([
                r.l00, r.l01, r.l02, r.l03, r.l04, r.l05, r.l06, r.l07, r.l08, r.l09, r.l10, r.l11,
                r.l12, r.l13, r.l14, r.l15,
            ]),
            latency_sum_ms: u(r.latency_sum_ms),
        }
    }
}

const COUNT_NAMES: [&str; 9] = [
    "events",
    "started",
    "succeeded",
    "failed",
    "dead",
    "writes",
    "writes_failed",
    "deadlines_missed",
    "latency_sum_ms",
];

const LATENCY_NAMES: [&str; BUCKETS] = [
    "l00", "l01", "l02", "l03", "l04", "l05", "l06", "l07", "l08", "l09", "l10", "l11", "l12",
    "l13", "l14", "l15",
];

#[derive(Debug, sea_orm::FromQueryResult)]
struct Summed {
    tenant_id: String,
    workflow_id: String,
    band: i32,
    events: i64,
    started: i64,
    succeeded: i64,
    failed: i64,
    dead: i64,
    writes: i64,
    writes_failed: i64,
    deadlines_missed: i64,
    latency_sum_ms: i64,
    l00: i64,
    l01: i64,
    l02: i64,
    l03: i64,
    l04: i64,
    l05: i64,
    l06: i64,
    l07: i64,
    l08: i64,
    l09: i64,
    l10: i64,
    l11: i64,
    l12: i64,
    l13: i64,
    l14: i64,
    l15: i64,
}

/// One workflow's hour, as baselines need it: its events and latency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hour {
    /// The hour's start.
    pub at: DateTime<Utc>,
    /// Events received.
    pub events: u64,
    /// Runs that ended, per latency bucket.
    pub latency: [u64; BUCKETS],
}

#[derive(Debug, sea_orm::FromQueryResult)]
struct HourRow {
    tenant_id: String,
    workflow_id: String,
    at: DateTime<Utc>,
    events: i64,
    l00: i64,
    l01: i64,
    l02: i64,
    l03: i64,
    l04: i64,
    l05: i64,
    l06: i64,
    l07: i64,
    l08: i64,
    l09: i64,
    l10: i64,
    l11: i64,
    l12: i64,
    l13: i64,
    l14: i64,
    l15: i64,
}

/// Every tenant's hours in `[from, to)`, per workflow (keyed by the ids'
/// text), oldest first: what the baselines are computed from, once an
/// hour.
pub async fn hours_between(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<HashMap<(String, String), Vec<Hour>>, StoreError> {
    let mut q = workflow_metric::Entity::find()
        .select_only()
        .column(Column::TenantId)
        .column(Column::WorkflowId)
        .column(Column::At)
        .column(Column::Events);
    for c in LATENCY {
        q = q.column(c);
    }
    let rows: Vec<HourRow> = q
        .filter(Column::Span.eq(Span::Hour.minutes()))
        .filter(Column::At.gte(from))
        .filter(Column::At.lt(to))
        .order_by_asc(Column::At)
        .into_model::<HourRow>()
        .all(db.conn())
        .await?;
    let mut out: HashMap<(String, String), Vec<Hour>> = HashMap::new();
    for r in rows {
        out.entry((r.tenant_id, r.workflow_id))
            .or_default()
            .push(Hour {
                at: r.at,
                events: u(r.events),
                latency: latency([
                    r.l00, r.l01, r.l02, r.l03, r.l04, r.l05, r.l06, r.l07, r.l08, r.l09, r.l10,
                    r.l11, r.l12, r.l13, r.l14, r.l15,
                ]),
            });
    }
    Ok(out)
}
