//! The append-only, hash-chained audit log. Each tenant has a chain (and the
//! platform one): an entry stores its place in the chain, the previous
//! entry's hash and the hash of its own canonical content chained to it.
//! Appends lock the chain's head row, so they are serialised per chain, also
//! across processes (PostgreSQL row lock; SQLite's single writer). This
//! module offers no update or delete: an entry, once written, stays; a
//! change made behind Ferry's back is found by [`verify_chain`].

use crate::entities::{audit_event, audit_head, run, run_step};
use crate::{Exec, StoreError};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use ferry_core::{AuditEventId, TenantId, UserId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The platform's chain (operators' actions, tenants created and deleted).
pub const PLATFORM_CHAIN: &str = "platform";

/// The hash before the first entry of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, to what.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    /// The tenant it concerns (none: platform-level).
    pub tenant_id: Option<&'a TenantId>,
    /// Who did it (none: the system or the command line).
    pub actor_user_id: Option<&'a UserId>,
    /// How the actor is shown (their email, or "system"/"cli").
    pub actor_label: &'a str,
    /// Dotted verb, e.g. `tenant.created`, `user.role_changed`.
    pub action: ferry_core::AuditAction,
    /// The kind of thing acted on, e.g. `tenant`, `user`.
    pub target_kind: &'a str,
    /// Its id.
    pub target_id: &'a str,
    /// Structured details; never a secret, never personal data.
    pub details: serde_json::Value,
    /// The client address of the request, or "-".
    pub client_ip: &'a str,
}

/// What an entry is about beyond its target: the workflow and the CRM
/// record, for the audit page's filters and a record's trail.
#[derive(Debug, Clone, Copy, Default)]
pub struct About<'a> {
    /// The workflow.
    pub workflow_id: Option<&'a str>,
    /// The record (e.g. a HubSpot contact id).
    pub record_id: Option<&'a str>,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Order of writing.
    pub seq: i64,
    /// Its id.
    pub id: String,
    /// The tenant it concerns.
    pub tenant_id: Option<String>,
    /// Who.
    pub actor_label: String,
    /// What.
    pub action: String,
    /// On what kind of thing.
    pub target_kind: String,
    /// On which.
    pub target_id: String,
    /// The workflow it concerns.
    pub workflow_id: Option<String>,
    /// The record it concerns.
    pub record_id: Option<String>,
    /// Details, as JSON text.
    pub details: String,
    /// From where.
    pub client_ip: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Its place in its chain.
    pub chain_seq: Option<i64>,
    /// The hash chaining it.
    pub hash: Option<String>,
}

impl From<audit_event::Model> for AuditEvent {
    fn from(m: audit_event::Model) -> Self {
        Self {
            seq: m.seq,
            id: m.id,
            tenant_id: m.tenant_id,
            actor_label: m.actor_label,
            action: m.action,
            target_kind: m.target_kind,
            target_id: m.target_id,
            workflow_id: m.workflow_id,
            record_id: m.record_id,
            details: m.details,
            client_ip: m.client_ip,
            created_at: m.created_at,
            chain_seq: m.chain_seq,
            hash: m.hash,
        }
    }
}

/// The chain a tenant's entries go to.
pub fn chain_of(tenant: Option<&TenantId>) -> String {
    tenant.map_or_else(|| PLATFORM_CHAIN.to_owned(), ToString::to_string)
}

/// The content an entry's hash covers, in a fixed field order.
#[derive(Serialize)]
struct Canonical<'a> {
    chain: &'a str,
    seq: i64,
    id: &'a str,
    tenant_id: Option<&'a str>,
    actor_user_id: Option<&'a str>,
    actor_label: &'a str,
    action: &'a str,
    target_kind: &'a str,
    target_id: &'a str,
    workflow_id: Option<&'a str>,
    record_id: Option<&'a str>,
    details: &'a str,
    client_ip: &'a str,
    created_at: String,
}

/// The hash of an entry: SHA-256 over the previous hash and the entry's
/// canonical JSON, hex.
fn entry_hash(prev: &str, m: &audit_event::Model, chain: &str, seq: i64) -> String {
    let canonical = Canonical {
        chain,
        seq,
        id: &m.id,
        tenant_id: m.tenant_id.as_deref(),
        actor_user_id: m.actor_user_id.as_deref(),
        actor_label: &m.actor_label,
        action: &m.action,
        target_kind: &m.target_kind,
        target_id: &m.target_id,
        workflow_id: m.workflow_id.as_deref(),
        record_id: m.record_id.as_deref(),
        details: &m.details,
        client_ip: &m.client_ip,
        created_at: m.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    };
    let json = serde_json::to_string(&canonical).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(json.as_bytes());
    hex::encode(h.finalize())
}

/// Takes the chain's head (creating it at genesis), locking it until the
/// transaction ends: returns its sequence number and hash.
async fn lock_head(
    conn: &impl ConnectionTrait,
    chain: &str,
    now: DateTime<Utc>,
) -> Result<(i64, String), StoreError> {
    audit_head::Entity::insert(audit_head::ActiveModel {
        chain: Set(chain.to_owned()),
        seq: Set(0),
        hash: Set(GENESIS.to_owned()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(audit_head::Column::Chain)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    // A write: PostgreSQL locks the row until commit, and a waiting
    // appender then reads the head its predecessor left.
    let head = audit_head::Entity::update_many()
        .col_expr(audit_head::Column::UpdatedAt, Expr::value(now))
        .filter(audit_head::Column::Chain.eq(chain))
        .exec_with_returning(conn)
        .await?
        .pop()
        .ok_or(StoreError::Corrupt("audit_heads"))?;
    Ok((head.seq, head.hash))
}

/// Links `rows` (filled but for their chain columns) into `chain` after
/// its locked head, inserts them and moves the head. Returns the new head.
async fn append_locked(
    conn: &impl ConnectionTrait,
    chain: &str,
    head: (i64, String),
    rows: Vec<audit_event::Model>,
    now: DateTime<Utc>,
) -> Result<(i64, String), StoreError> {
    let (mut seq, mut prev) = head;
    let mut models = Vec::with_capacity(rows.len());
    for mut m in rows {
        seq += 1;
        let hash = entry_hash(&prev, &m, chain, seq);
        m.chain = Some(chain.to_owned());
        m.chain_seq = Some(seq);
        m.prev_hash = Some(prev);
        m.hash = Some(hash.clone());
        prev = hash;
        let mut am: audit_event::ActiveModel = m.into();
        am.seq = NotSet;
        models.push(am);
    }
    if models.is_empty() {
        return Ok((seq, prev));
    }
    for chunk in models.chunks(200) {
        audit_event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    move_head(conn, chain, seq, &prev, now).await?;
    Ok((seq, prev))
}

/// Points the chain's (locked) head at its new last entry.
async fn move_head(
    conn: &impl ConnectionTrait,
    chain: &str,
    seq: i64,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::Seq, Expr::value(seq))
        .col_expr(audit_head::Column::Hash, Expr::value(hash.to_owned()))
        .col_expr(audit_head::Column::UpdatedAt, Expr::value(now))
        .filter(audit_head::Column::Chain.eq(chain))
        .exec(conn)
        .await?;
    Ok(())
}

fn new_row(event: &NewAuditEvent<'_>, about: About<'_>, now: DateTime<Utc>) -> audit_event::Model {
    let workflow_id = about.workflow_id.map(str::to_owned).or_else(|| {
        (event.target_kind == "workflow" && !event.target_id.is_empty())
            .then(|| event.target_id.to_owned())
    });
    audit_event::Model {
        seq: 0,
        id: AuditEventId::generate().to_string(),
        tenant_id: event.tenant_id.map(ToString::to_string),
        actor_user_id: event.actor_user_id.map(ToString::to_string),
        actor_label: event.actor_label.to_owned(),
        action: event.action.as_str().to_owned(),
        target_kind: event.target_kind.to_owned(),
        target_id: event.target_id.to_owned(),
        details: event.details.to_string(),
        client_ip: event.client_ip.to_owned(),
        // What both databases keep: microseconds.
        created_at: now.trunc_subsecs(6),
        chain: None,
        chain_seq: None,
        prev_hash: None,
        hash: None,
        workflow_id,
        // The column holds 200 characters; a longer id (a sender's own
        // reference) is cut, never a reason to lose the entry.
        record_id: about.record_id.map(|r| r.chars().take(200).collect()),
    }
}

/// Appends an event to its chain (in `db`'s transaction, if it is one).
pub async fn record(
    db: &impl Exec,
    event: NewAuditEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    record_about(db, event, About::default(), now).await
}

/// Appends an event that concerns a workflow or a record.
pub async fn record_about(
    db: &impl Exec,
    event: NewAuditEvent<'_>,
    about: About<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let chain = chain_of(event.tenant_id);
    let row = new_row(&event, about, now);
    let txn = db.begin_write().await?;
    let head = lock_head(&txn, &chain, now).await?;
    append_locked(&txn, &chain, head, vec![row], now).await?;
    txn.commit().await?;
    Ok(())
}

/// Seals step attempts not yet in their tenant's chain: one entry each
/// (`run.step`: which run, step, attempt, outcome, whether it failed,
/// calls, and a digest of the step record; never a value or an error
/// text), up to `limit` per tenant per call. Returns how many were sealed. Several processes may call it: the head lock makes each
/// attempt sealed once.
pub async fn seal_steps(
    db: &impl Exec,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let tenants: Vec<String> = run_step::Entity::find()
        .select_only()
        .column(run_step::Column::TenantId)
        .filter(run_step::Column::AuditSeq.is_null())
        .distinct()
        .limit(100)
        .into_tuple()
        .all(db.conn())
        .await?;
    let mut sealed = 0;
    for tenant in tenants {
        // One tenant's trouble does not hold the others' sealing up.
        match seal_tenant(db, &tenant, limit, now).await {
            Ok(n) => sealed += n,
            Err(e) => {
                tracing::error!(tenant_id = %tenant, error = %e, "sealing step attempts failed")
            }
        }
    }
    Ok(sealed)
}

async fn seal_tenant(
    db: &impl Exec,
    tenant: &str,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let tenant = tenant.to_owned();
    let txn = db.begin_write().await?;
    let head = lock_head(&txn, &tenant, now).await?;
    // Read under the lock: another sealer's work is visible now.
    let steps = run_step::Entity::find()
        .filter(run_step::Column::TenantId.eq(tenant.clone()))
        .filter(run_step::Column::AuditSeq.is_null())
        .order_by_asc(run_step::Column::Id)
        .limit(limit)
        .all(&txn)
        .await?;
    if steps.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    let mut run_ids: Vec<String> = steps.iter().map(|s| s.run_id.clone()).collect();
    run_ids.sort();
    run_ids.dedup();
    let runs: std::collections::HashMap<String, (String, Option<String>)> = run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .column(run::Column::WorkflowId)
        .column(run::Column::RecordId)
        .filter(run::Column::TenantId.eq(tenant.clone()))
        .filter(run::Column::Id.is_in(run_ids))
        .into_tuple::<(String, String, Option<String>)>()
        .all(&txn)
        .await?
        .into_iter()
        .map(|(id, w, r)| (id, (w, r)))
        .collect();
    let tenant_id: TenantId = tenant
        .parse()
        .map_err(|_| StoreError::Corrupt("run_steps.tenant_id"))?;
    let rows: Vec<audit_event::Model> = steps
        .iter()
        .map(|s| {
            let (workflow, record) = runs.get(&s.run_id).cloned().unwrap_or_default();
            let calls: serde_json::Value =
                serde_json::from_str(&s.http_calls).unwrap_or(serde_json::Value::Null);
            let calls = calls.as_array().cloned().unwrap_or_default();
            let writes = calls
                .iter()
                .filter(|c| c["method"].as_str().is_some_and(|m| m != "GET"))
                .count();
            let mut digest = Sha256::new();
            for part in [&s.input, &s.output, &s.http_calls] {
                digest.update(part.as_bytes());
                digest.update(b"\n");
            }
            let event = NewAuditEvent {
                tenant_id: Some(&tenant_id),
                actor_user_id: None,
                actor_label: "Ferry engine",
                action: ferry_core::AuditAction::RunStep,
                target_kind: "run",
                target_id: &s.run_id,
                details: serde_json::json!({
                    "step": s.step_key,
                    "kind": s.kind,
                    "attempt": s.attempt,
                    "status": s.status,
                    "calls": calls.len(),
                    "writes": writes,
                    // Whether it failed, not why: an error text may quote
                    // what a provider answered, and the chain keeps it for
                    // ever (the reason stays on the step record, which
                    // retention governs).
                    "failed": s.error.is_some(),
                    "finished_at": s.finished_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    "step_record": s.id,
                    "record_digest": hex::encode(digest.finalize()),
                }),
                client_ip: "-",
            };
            new_row(
                &event,
                About {
                    workflow_id: (!workflow.is_empty()).then_some(workflow.as_str()),
                    record_id: record.as_deref(),
                },
                now,
            )
        })
        .collect();
    let ids: Vec<i64> = steps.iter().map(|s| s.id).collect();
    let (last, _) = append_locked(&txn, &tenant, head, rows, now).await?;
    for chunk in ids.chunks(500) {
        run_step::Entity::update_many()
            .col_expr(run_step::Column::AuditSeq, Expr::value(last))
            .filter(run_step::Column::Id.is_in(chunk.to_vec()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(ids.len())
}

/// Chains entries written before the log was chained (once: when no chain
/// exists yet), in the order they were written.
pub async fn chain_existing(db: &impl Exec, now: DateTime<Utc>) -> Result<u64, StoreError> {
    if audit_head::Entity::find().count(db.conn()).await? > 0 {
        return Ok(0);
    }
    let txn = db.begin_write().await?;
    let old = audit_event::Entity::find()
        .filter(audit_event::Column::Chain.is_null())
        .order_by_asc(audit_event::Column::Seq)
        .all(&txn)
        .await?;
    let n = old.len() as u64;
    let mut by_chain: std::collections::BTreeMap<String, Vec<audit_event::Model>> =
        std::collections::BTreeMap::new();
    for m in old {
        let chain = m
            .tenant_id
            .clone()
            .unwrap_or_else(|| PLATFORM_CHAIN.to_owned());
        by_chain.entry(chain).or_default().push(m);
    }
    for (chain, rows) in by_chain {
        let (mut seq, mut prev) = lock_head(&txn, &chain, now).await?;
        for mut m in rows {
            seq += 1;
            m.created_at = m.created_at.trunc_subsecs(6);
            let hash = entry_hash(&prev, &m, &chain, seq);
            audit_event::Entity::update_many()
                .col_expr(audit_event::Column::Chain, Expr::value(chain.clone()))
                .col_expr(audit_event::Column::ChainSeq, Expr::value(seq))
                .col_expr(audit_event::Column::PrevHash, Expr::value(prev.clone()))
                .col_expr(audit_event::Column::Hash, Expr::value(hash.clone()))
                .col_expr(audit_event::Column::CreatedAt, Expr::value(m.created_at))
                .filter(audit_event::Column::Seq.eq(m.seq))
                .exec(&txn)
                .await?;
            prev = hash;
        }
        move_head(&txn, &chain, seq, &prev, now).await?;
    }
    txn.commit().await?;
    Ok(n)
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The chain position at which it breaks.
    pub seq: i64,
    /// The entry found there, if any.
    pub entry_id: Option<String>,
    /// What is wrong, in words.
    pub reason: String,
}

/// The result of verifying one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// The chain (a tenant id, or `platform`).
    pub chain: String,
    /// Entries checked.
    pub entries: i64,
    /// The head hash the chain ends at (as recomputed, up to a break).
    pub head_hash: String,
    /// The first broken link; none: the chain verifies.
    pub broken: Option<Break>,
}

/// Every chain's name: those with a head, and those entries name (a
/// removed head row does not hide a chain from verification).
pub async fn chains(db: &impl Exec) -> Result<Vec<String>, StoreError> {
    let mut out: std::collections::BTreeSet<String> = audit_head::Entity::find()
        .select_only()
        .column(audit_head::Column::Chain)
        .into_tuple::<String>()
        .all(db.conn())
        .await?
        .into_iter()
        .collect();
    let named: Vec<(Option<String>, Option<String>)> = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Chain)
        .column(audit_event::Column::TenantId)
        .distinct()
        .into_tuple()
        .all(db.conn())
        .await?;
    for (chain, tenant) in named {
        out.insert(
            chain
                .or(tenant)
                .unwrap_or_else(|| PLATFORM_CHAIN.to_owned()),
        );
    }
    Ok(out.into_iter().collect())
}

/// The chain's head: its length and newest hash (genesis when empty).
pub async fn head(db: &impl Exec, chain: &str) -> Result<(i64, String), StoreError> {
    Ok(audit_head::Entity::find_by_id(chain.to_owned())
        .one(db.conn())
        .await?
        .map_or((0, GENESIS.to_owned()), |h| (h.seq, h.hash)))
}

/// Recomputes `chain` from genesis: every position present once, in order,
/// each entry linked to the one before and its content unchanged, the head
/// where the last entry is, and no entry of the chain's tenant outside it.
/// Names the first broken link.
pub async fn verify_chain(db: &crate::Db, chain: &str) -> Result<ChainReport, StoreError> {
    // One snapshot for the head and every entry: appends committed while
    // this runs are not seen, so an entry beyond the head is a forgery.
    let txn = match db.backend() {
        crate::Backend::Postgres => {
            db.conn()
                .begin_with_config(
                    Some(sea_orm::IsolationLevel::RepeatableRead),
                    Some(sea_orm::AccessMode::ReadOnly),
                )
                .await?
        }
        // WAL: a read transaction sees one snapshot from its first read.
        crate::Backend::Sqlite => db.conn().begin().await?,
    };
    let report = verify_in(&txn, chain).await;
    txn.commit().await?;
    report
}

async fn verify_in(
    conn: &sea_orm::DatabaseTransaction,
    chain: &str,
) -> Result<ChainReport, StoreError> {
    let head_row = audit_head::Entity::find_by_id(chain.to_owned())
        .one(conn)
        .await?;
    let has_head = head_row.is_some();
    let (head_seq, head_hash) = head_row.map_or((0, GENESIS.to_owned()), |h| (h.seq, h.hash));
    if !has_head {
        let any = audit_event::Entity::find()
            .filter(audit_event::Column::Chain.eq(chain))
            .one(conn)
            .await?;
        if let Some(m) = any {
            return Ok(ChainReport {
                chain: chain.to_owned(),
                entries: 0,
                head_hash: GENESIS.to_owned(),
                broken: Some(Break {
                    seq: 1,
                    entry_id: Some(m.id),
                    reason: "the chain's head record was removed".into(),
                }),
            });
        }
    }
    let mut report = ChainReport {
        chain: chain.to_owned(),
        entries: 0,
        head_hash: GENESIS.to_owned(),
        broken: None,
    };
    let mut expected = 1_i64;
    let mut prev = GENESIS.to_owned();
    let mut after = 0_i64;
    'pages: loop {
        let page = audit_event::Entity::find()
            .filter(audit_event::Column::Chain.eq(chain))
            .filter(audit_event::Column::ChainSeq.gt(after))
            .order_by_asc(audit_event::Column::ChainSeq)
            .limit(2000)
            .all(conn)
            .await?;
        if page.is_empty() {
            break;
        }
        for m in page {
            let seq = m.chain_seq.unwrap_or(0);
            after = seq;
            let broken = |reason: String| Break {
                seq: expected,
                entry_id: Some(m.id.clone()),
                reason,
            };
            if seq != expected {
                report.broken = Some(broken(format!(
                    "entry {expected} is missing: the next entry found is number {seq}"
                )));
                break 'pages;
            }
            if m.prev_hash.as_deref() != Some(prev.as_str()) {
                report.broken = Some(broken(
                    "it does not link to the entry before it (an entry was removed, inserted or moved)"
                        .into(),
                ));
                break 'pages;
            }
            let hash = entry_hash(&prev, &m, chain, seq);
            if m.hash.as_deref() != Some(hash.as_str()) {
                report.broken = Some(broken(
                    "its content does not match its hash (the entry was changed)".into(),
                ));
                break 'pages;
            }
            prev = hash;
            report.entries = seq;
            report.head_hash = prev.clone();
            expected += 1;
        }
    }
    if report.broken.is_none() {
        if report.entries > head_seq {
            report.broken = Some(Break {
                seq: head_seq + 1,
                entry_id: None,
                reason: format!(
                    "the chain goes on past its head (entry {head_seq}): entries were added outside Ferry"
                ),
            });
        } else if head_seq != report.entries || head_hash != report.head_hash {
            report.broken = Some(Break {
                seq: report.entries + 1,
                entry_id: None,
                reason: format!(
                    "the chain ends at entry {} but its head says {head_seq} (the newest entries were removed)",
                    report.entries
                ),
            });
        } else {
            // An entry of this chain's tenant that is not a link of it: no
            // chain, another chain, or no place in it. (Appends made while
            // this runs are links: they carry the chain and a place.)
            let stray = audit_event::Entity::find()
                .filter(if chain == PLATFORM_CHAIN {
                    Condition::all().add(audit_event::Column::TenantId.is_null())
                } else {
                    Condition::all().add(audit_event::Column::TenantId.eq(chain))
                })
                .filter(
                    Condition::any()
                        .add(audit_event::Column::Chain.is_null())
                        .add(audit_event::Column::Chain.ne(chain))
                        .add(audit_event::Column::ChainSeq.is_null())
                        .add(audit_event::Column::ChainSeq.lt(1)),
                )
                .one(conn)
                .await?;
            if let Some(m) = stray {
                report.broken = Some(Break {
                    seq: report.entries + 1,
                    entry_id: Some(m.id),
                    reason: "an entry was added outside the chain".into(),
                });
            }
        }
    }
    Ok(report)
}

/// What the audit page lists: filters, all optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The actor's label contains this.
    pub actor: Option<String>,
    /// The action code.
    pub action: Option<String>,
    /// The workflow.
    pub workflow_id: Option<String>,
    /// The record.
    pub record_id: Option<String>,
    /// From (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Until (exclusive).
    pub to: Option<DateTime<Utc>>,
    /// Entries older than this `seq` only (the next page).
    pub before_seq: Option<i64>,
}

/// The tenant's entries matching `filter`, newest first.
pub async fn search(
    db: &impl Exec,
    tenant: &TenantId,
    filter: &Filter,
    limit: u64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut q =
        audit_event::Entity::find().filter(audit_event::Column::TenantId.eq(tenant.to_string()));
    if let Some(actor) = filter.actor.as_deref().filter(|a| !a.is_empty()) {
        q = q.filter(audit_event::Column::ActorLabel.contains(actor));
    }
    if let Some(action) = &filter.action {
        q = q.filter(audit_event::Column::Action.eq(action.clone()));
    }
    if let Some(w) = &filter.workflow_id {
        q = q.filter(audit_event::Column::WorkflowId.eq(w.clone()));
    }
    if let Some(r) = &filter.record_id {
        q = q.filter(audit_event::Column::RecordId.eq(r.clone()));
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_event::Column::CreatedAt.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(audit_event::Column::CreatedAt.lt(to));
    }
    if let Some(before) = filter.before_seq {
        q = q.filter(audit_event::Column::Seq.lt(before));
    }
    Ok(q.order_by_desc(audit_event::Column::Seq)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}

/// The tenant's newest events.
pub async fn for_tenant(
    db: &impl Exec,
    tenant: &TenantId,
    limit: u64,
) -> Result<Vec<AuditEvent>, StoreError> {
    search(db, tenant, &Filter::default(), limit).await
}

/// Platform-level events (operators' actions), newest first.
pub async fn platform(db: &impl Exec, limit: u64) -> Result<Vec<AuditEvent>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::TenantId.is_null())
        .order_by_desc(audit_event::Column::Seq)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}
