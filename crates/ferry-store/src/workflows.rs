//! Workflows: a checked draft, and immutable published versions. A run will
//! record the version it ran; rolling back points the workflow at an earlier
//! version without changing any.

use crate::entities::{workflow, workflow_version};
use crate::{Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::workflow::Definition;
use ferry_core::{ConnectionId, Environment, TenantId, UserId, WorkflowId, WorkflowVersionId};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use std::collections::BTreeMap;

/// Which connection each connector of a workflow uses (connector key -> id).
pub type Bindings = BTreeMap<String, ConnectionId>;

/// A workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// Its id.
    pub id: WorkflowId,
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The person responsible.
    pub owner_id: UserId,
    /// Sandbox or production connections.
    pub environment: Environment,
    /// The draft (always parsed and checked).
    pub draft: Definition,
    /// Connections used.
    pub bindings: Bindings,
    /// The version runs use, if published.
    pub published_version: Option<i32>,
    /// Since when it is paused (events are kept, runs held), if it is.
    pub paused_at: Option<DateTime<Utc>>,
    /// When its next review is due (set at its first publish).
    pub review_due_at: Option<DateTime<Utc>>,
    /// What the admin told Ferry about it for the inventory and the
    /// documentation (JSON object; null when nothing yet).
    pub profile: serde_json::Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A published version.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    /// 1, 2, 3, …
    pub version: i32,
    /// The definition as published.
    pub definition: Definition,
    /// The connections as published.
    pub bindings: Bindings,
    /// Who published it.
    pub published_by: UserId,
    /// When.
    pub published_at: DateTime<Utc>,
    /// Why, in the publisher's words.
    pub change_note: Option<String>,
    /// The publish checklist's evidence (JSON), when it ran.
    pub gate: Option<serde_json::Value>,
}

/// The days between reviews.
pub const REVIEW_DAYS: i64 = 90;

fn corrupt(c: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |_| StoreError::Corrupt(c)
}

impl TryFrom<workflow::Model> for Workflow {
    type Error = StoreError;
    fn try_from(m: workflow::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m
                .id
                .parse()
                .map_err(|_| StoreError::Corrupt("workflows.id"))?,
            name: m.name,
            description: m.description,
            owner_id: m
                .owner_id
                .parse()
                .map_err(|_| StoreError::Corrupt("workflows.owner_id"))?,
            environment: Environment::parse(&m.environment)
                .ok_or(StoreError::Corrupt("workflows.environment"))?,
            draft: serde_json::from_str(&m.draft).map_err(corrupt("workflows.draft"))?,
            bindings: serde_json::from_str(&m.bindings).map_err(corrupt("workflows.bindings"))?,
            published_version: m.published_version,
            paused_at: m.paused_at,
            review_due_at: m.review_due_at,
            profile: m
                .profile
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(corrupt("workflows.profile"))?
                .unwrap_or(serde_json::Value::Null),
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|_| StoreError::Corrupt("serialising a workflow"))
}

/// What a new workflow starts with.
#[derive(Debug, Clone)]
pub struct NewWorkflow<'a> {
    /// Its name.
    pub name: &'a str,
    /// What it is for.
    pub description: &'a str,
    /// The person responsible.
    pub owner_id: &'a UserId,
    /// Sandbox or production.
    pub environment: Environment,
    /// The first draft (checked by the caller).
    pub draft: &'a Definition,
    /// Connections used.
    pub bindings: &'a Bindings,
}

/// Stores a new workflow.
pub async fn create(
    db: &impl Exec,
    tenant: &TenantId,
    new: NewWorkflow<'_>,
    now: DateTime<Utc>,
) -> Result<Workflow, StoreError> {
    workflow::ActiveModel {
        id: Set(WorkflowId::generate().to_string()),
        tenant_id: Set(tenant.to_string()),
        name: Set(new.name.to_owned()),
        description: Set(new.description.to_owned()),
        owner_id: Set(new.owner_id.to_string()),
        environment: Set(new.environment.as_str().to_owned()),
        draft: Set(to_json(new.draft)?),
        bindings: Set(to_json(new.bindings)?),
        published_version: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        paused_at: Set(None),
        deleted_at: Set(None),
        ..Default::default()
    }
    .insert(db.conn())
    .await?
    .try_into()
}

/// The tenant's workflows, by name (not the deleted ones).
pub async fn list(db: &impl Exec, tenant: &TenantId) -> Result<Vec<Workflow>, StoreError> {
    workflow::Entity::find()
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::DeletedAt.is_null())
        .order_by_asc(workflow::Column::Name)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Workflow::try_from)
        .collect()
}

/// One workflow of the tenant.
pub async fn get(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
) -> Result<Workflow, StoreError> {
    workflow::Entity::find_by_id(id.to_string())
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::DeletedAt.is_null())
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// A workflow's name, deleted or not (runs and incidents outlive it), with
/// whether it was deleted.
pub async fn name_of(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
) -> Result<(String, bool), StoreError> {
    let row: Option<(String, Option<DateTime<Utc>>)> = workflow::Entity::find_by_id(id.to_string())
        .select_only()
        .column(workflow::Column::Name)
        .column(workflow::Column::DeletedAt)
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .into_tuple()
        .one(db.conn())
        .await?;
    row.map(|(name, deleted)| (name, deleted.is_some()))
        .ok_or(StoreError::NotFound)
}

/// A change to a live workflow's row (not deleted, of the tenant); `NotFound`
/// when there is none.
async fn change(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    now: DateTime<Utc>,
    set: impl FnOnce(sea_orm::UpdateMany<workflow::Entity>) -> sea_orm::UpdateMany<workflow::Entity>,
) -> Result<(), StoreError> {
    let update = workflow::Entity::update_many()
        .col_expr(workflow::Column::UpdatedAt, Expr::value(now))
        .filter(workflow::Column::Id.eq(id.to_string()))
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::DeletedAt.is_null());
    if set(update).exec(db.conn()).await?.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Pauses (`Some(since)`) or resumes (`None`) a workflow.
pub async fn set_paused(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    paused: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    change(db, tenant, id, now, |u| {
        u.col_expr(workflow::Column::PausedAt, Expr::value(paused))
    })
    .await
}

/// Unpublishes a workflow: new events start nothing; its versions stay.
pub async fn unpublish(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    change(db, tenant, id, now, |u| {
        u.col_expr(
            workflow::Column::PublishedVersion,
            Expr::value(Option::<i32>::None),
        )
    })
    .await
}

/// Renames a workflow.
pub async fn rename(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    name: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    change(db, tenant, id, now, |u| {
        u.col_expr(workflow::Column::Name, Expr::value(name.to_owned()))
    })
    .await
}

/// Deletes a workflow from every list and page; the row, its versions and
/// its runs stay for the audit. Unpublished and unpaused at once.
pub async fn delete(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    change(db, tenant, id, now, |u| {
        u.col_expr(workflow::Column::DeletedAt, Expr::value(Some(now)))
            .col_expr(
                workflow::Column::PublishedVersion,
                Expr::value(Option::<i32>::None),
            )
            .col_expr(
                workflow::Column::PausedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
    })
    .await
}

/// Replaces the draft (checked by the caller) and its bindings, if the
/// workflow is as the caller read it (`read_at`, its last change):
/// `Conflict` when someone else changed it meanwhile (two tabs, two
/// admins), so neither change silently undoes the other.
pub async fn save_draft(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    draft: &Definition,
    bindings: &Bindings,
    read_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = workflow::Entity::update_many()
        .col_expr(workflow::Column::Draft, Expr::value(to_json(draft)?))
        .col_expr(workflow::Column::Bindings, Expr::value(to_json(bindings)?))
        .col_expr(workflow::Column::UpdatedAt, Expr::value(now))
        .filter(workflow::Column::Id.eq(id.to_string()))
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::DeletedAt.is_null())
        .filter(workflow::Column::UpdatedAt.eq(read_at))
        .exec(db.conn())
        .await?;
    if result.rows_affected == 0 {
        // Gone, or changed since it was read.
        get(db, tenant, id).await?;
        return Err(StoreError::Conflict(
            "Someone changed this workflow while you were editing it. Nothing was saved: reload the page and make your change again.".into(),
        ));
    }
    Ok(())
}

/// What a publish records beside the definition.
#[derive(Debug, Clone, Copy, Default)]
pub struct Publication<'a> {
    /// Why (the publisher's change note).
    pub note: Option<&'a str>,
    /// The publish checklist's evidence, JSON.
    pub gate: Option<&'a serde_json::Value>,
    /// The draft's last change as the checklist saw it: a draft changed
    /// since is refused (`Conflict`), so what is published is what passed.
    pub checked_at: Option<DateTime<Utc>>,
}

/// Publishes the draft as the next immutable version; returns its number.
/// The first publish sets the review due date.
pub async fn publish(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    by: &UserId,
    publication: Publication<'_>,
    now: DateTime<Utc>,
) -> Result<i32, StoreError> {
    let txn = db.begin_write().await?;
    let wf = workflow::Entity::find_by_id(id.to_string())
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::DeletedAt.is_null())
        .one(&txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    if publication.checked_at.is_some_and(|t| t != wf.updated_at) {
        return Err(StoreError::Conflict(
            "The draft changed while the publish checklist ran: nothing was published. Publish again to check the draft as it is now.".into(),
        ));
    }
    let last = workflow_version::Entity::find()
        .filter(workflow_version::Column::WorkflowId.eq(id.to_string()))
        .order_by_desc(workflow_version::Column::Version)
        .one(&txn)
        .await?
        .map_or(0, |v| v.version);
    let version = last + 1;
    workflow_version::ActiveModel {
        id: Set(WorkflowVersionId::generate().to_string()),
        tenant_id: Set(tenant.to_string()),
        workflow_id: Set(id.to_string()),
        version: Set(version),
        definition: Set(wf.draft.clone()),
        bindings: Set(wf.bindings.clone()),
        published_by: Set(by.to_string()),
        published_at: Set(now),
        change_note: Set(publication.note.map(str::to_owned)),
        gate: Set(publication.gate.map(ToString::to_string)),
    }
    .insert(&txn)
    .await?;
    let due = wf
        .review_due_at
        .unwrap_or(now + chrono::Duration::days(REVIEW_DAYS));
    workflow::Entity::update_many()
        .col_expr(workflow::Column::PublishedVersion, Expr::value(version))
        .col_expr(workflow::Column::ReviewDueAt, Expr::value(Some(due)))
        .col_expr(workflow::Column::UpdatedAt, Expr::value(now))
        .filter(workflow::Column::Id.eq(id.to_string()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(version)
}

/// One published version.
pub async fn version(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    version: i32,
) -> Result<Version, StoreError> {
    let m = workflow_version::Entity::find()
        .filter(workflow_version::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow_version::Column::WorkflowId.eq(id.to_string()))
        .filter(workflow_version::Column::Version.eq(version))
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    version_of(m)
}

fn version_of(m: workflow_version::Model) -> Result<Version, StoreError> {
    Ok(Version {
        version: m.version,
        definition: serde_json::from_str(&m.definition)
            .map_err(corrupt("workflow_versions.definition"))?,
        bindings: serde_json::from_str(&m.bindings)
            .map_err(corrupt("workflow_versions.bindings"))?,
        published_by: m
            .published_by
            .parse()
            .map_err(|_| StoreError::Corrupt("workflow_versions.published_by"))?,
        published_at: m.published_at,
        change_note: m.change_note,
        gate: m
            .gate
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(corrupt("workflow_versions.gate"))?,
    })
}

/// Every published version, newest first.
pub async fn versions(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
) -> Result<Vec<Version>, StoreError> {
    workflow_version::Entity::find()
        .filter(workflow_version::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow_version::Column::WorkflowId.eq(id.to_string()))
        .order_by_desc(workflow_version::Column::Version)
        .all(db.conn())
        .await?
        .into_iter()
        .map(version_of)
        .collect()
}

/// Points the workflow at an earlier published version (no version changes).
pub async fn roll_back(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    version: i32,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let exists = workflow_version::Entity::find()
        .filter(workflow_version::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow_version::Column::WorkflowId.eq(id.to_string()))
        .filter(workflow_version::Column::Version.eq(version))
        .one(db.conn())
        .await?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    workflow::Entity::update_many()
        .col_expr(workflow::Column::PublishedVersion, Expr::value(version))
        .col_expr(workflow::Column::UpdatedAt, Expr::value(now))
        .filter(workflow::Column::Id.eq(id.to_string()))
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// The builder's sample of a workflow: its label, sealed data and when it
/// was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// What record it is, for the admin ("Ada Lovelace (#101)").
    pub label: String,
    /// The run data, sealed (aad: `sample:<workflow id>`).
    pub sealed: String,
    /// When.
    pub taken_at: DateTime<Utc>,
}

/// Keeps `sample` as the workflow's sample (replacing any).
pub async fn save_sample(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    sample: &Sample,
) -> Result<(), StoreError> {
    use crate::entities::workflow_sample;
    use sea_orm::sea_query::OnConflict;
    workflow_sample::Entity::insert(workflow_sample::ActiveModel {
        workflow_id: Set(id.to_string()),
        tenant_id: Set(tenant.to_string()),
        label: Set(sample.label.clone()),
        sealed: Set(sample.sealed.clone()),
        taken_at: Set(sample.taken_at),
    })
    .on_conflict(
        OnConflict::column(workflow_sample::Column::WorkflowId)
            .update_columns([
                workflow_sample::Column::Label,
                workflow_sample::Column::Sealed,
                workflow_sample::Column::TakenAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db.conn())
    .await?;
    Ok(())
}

/// The workflow's sample, if a test was run.
pub async fn sample(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
) -> Result<Option<Sample>, StoreError> {
    use crate::entities::workflow_sample;
    Ok(workflow_sample::Entity::find_by_id(id.to_string())
        .filter(workflow_sample::Column::TenantId.eq(tenant.to_string()))
        .one(db.conn())
        .await?
        .map(|m| Sample {
            label: m.label,
            sealed: m.sealed,
            taken_at: m.taken_at,
        }))
}

/// Whether any of the tenant's workflows was tested (has a sample).
pub async fn any_sample(db: &impl Exec, tenant: &TenantId) -> Result<bool, StoreError> {
    use crate::entities::workflow_sample;
    use sea_orm::PaginatorTrait;
    Ok(workflow_sample::Entity::find()
        .filter(workflow_sample::Column::TenantId.eq(tenant.to_string()))
        .count(db.conn())
        .await?
        > 0)
}

/// Forgets a workflow's sample (its test data).
pub async fn delete_sample(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
) -> Result<(), StoreError> {
    use crate::entities::workflow_sample;
    workflow_sample::Entity::delete_many()
        .filter(workflow_sample::Column::WorkflowId.eq(id.to_string()))
        .filter(workflow_sample::Column::TenantId.eq(tenant.to_string()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Replaces the workflow's profile (the admin's inventory answers).
pub async fn set_profile(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    profile: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = workflow::Entity::update_many()
        .col_expr(
            workflow::Column::Profile,
            Expr::value(Some(profile.to_string())),
        )
        .col_expr(workflow::Column::UpdatedAt, Expr::value(now))
        .filter(workflow::Column::Id.eq(id.to_string()))
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::DeletedAt.is_null())
        .exec(db.conn())
        .await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// A stored review.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    /// Its id.
    pub id: String,
    /// Who reviewed (as the audit log names them).
    pub reviewer: String,
    /// The answers (JSON object).
    pub answers: serde_json::Value,
    /// Their notes.
    pub notes: String,
    /// What Ferry measured when the form was opened (JSON object).
    pub measured: serde_json::Value,
    /// When.
    pub reviewed_at: DateTime<Utc>,
}

/// A review to record.
#[derive(Debug, Clone)]
pub struct NewReview<'a> {
    /// Who.
    pub reviewer_id: &'a UserId,
    /// As the audit log names them.
    pub reviewer_label: &'a str,
    /// The answers.
    pub answers: &'a serde_json::Value,
    /// Notes.
    pub notes: &'a str,
    /// What was measured.
    pub measured: &'a serde_json::Value,
}

/// Records a review and moves the due date `REVIEW_DAYS` on.
pub async fn add_review(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
    review: NewReview<'_>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, StoreError> {
    use crate::entities::workflow_review;
    let due = now + chrono::Duration::days(REVIEW_DAYS);
    let done = workflow::Entity::update_many()
        .col_expr(workflow::Column::ReviewDueAt, Expr::value(Some(due)))
        .filter(workflow::Column::Id.eq(id.to_string()))
        .filter(workflow::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow::Column::DeletedAt.is_null())
        .exec(db.conn())
        .await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    workflow_review::ActiveModel {
        id: Set(crate::new_token()[..32].to_owned()),
        tenant_id: Set(tenant.to_string()),
        workflow_id: Set(id.to_string()),
        reviewer_user_id: Set(Some(review.reviewer_id.to_string())),
        reviewer_label: Set(review.reviewer_label.to_owned()),
        answers: Set(review.answers.to_string()),
        notes: Set(review.notes.to_owned()),
        measured: Set(review.measured.to_string()),
        reviewed_at: Set(now),
    }
    .insert(db.conn())
    .await?;
    Ok(due)
}

/// A workflow's reviews, newest first.
pub async fn reviews(
    db: &impl Exec,
    tenant: &TenantId,
    id: &WorkflowId,
) -> Result<Vec<Review>, StoreError> {
    use crate::entities::workflow_review;
    workflow_review::Entity::find()
        .filter(workflow_review::Column::TenantId.eq(tenant.to_string()))
        .filter(workflow_review::Column::WorkflowId.eq(id.to_string()))
        .order_by_desc(workflow_review::Column::ReviewedAt)
        .all(db.conn())
        .await?
        .into_iter()
        .map(|m| {
            Ok(Review {
                id: m.id,
                reviewer: m.reviewer_label,
                answers: serde_json::from_str(&m.answers)
                    .map_err(corrupt("workflow_reviews.answers"))?,
                notes: m.notes,
                measured: serde_json::from_str(&m.measured)
                    .map_err(corrupt("workflow_reviews.measured"))?,
                reviewed_at: m.reviewed_at,
            })
        })
        .collect()
}

/// A published workflow whose review is due by `by` (every tenant): for
/// reminders. `(tenant, workflow, name, owner, due)`.
pub async fn reviews_due(
    db: &impl Exec,
    by: DateTime<Utc>,
) -> Result<Vec<(TenantId, WorkflowId, String, UserId, DateTime<Utc>)>, StoreError> {
    workflow::Entity::find()
        .filter(workflow::Column::DeletedAt.is_null())
        .filter(workflow::Column::PublishedVersion.is_not_null())
        .filter(workflow::Column::ReviewDueAt.lte(by))
        .order_by_asc(workflow::Column::ReviewDueAt)
        .all(db.conn())
        .await?
        .into_iter()
        .map(|m| {
            Ok((
                m.tenant_id
                    .parse()
                    .map_err(|_| StoreError::Corrupt("workflows.tenant_id"))?,
                m.id.parse()
                    .map_err(|_| StoreError::Corrupt("workflows.id"))?,
                m.name,
                m.owner_id
                    .parse()
                    .map_err(|_| StoreError::Corrupt("workflows.owner_id"))?,
                m.review_due_at.unwrap_or(by),
            ))
        })
        .collect()
}
