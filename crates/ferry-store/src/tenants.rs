//! Tenants, for operators. Operators see names, statuses and counts, never a
//! tenant's data.

use crate::entities::{membership, tenant, user};
use crate::{Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{TenantId, TenantName, TenantStatus};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use std::collections::HashMap;

/// A tenant as the rest of Ferry sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// The firm's name.
    pub name: String,
    /// Active or suspended.
    pub status: TenantStatus,
    /// When an operator created it.
    pub created_at: DateTime<Utc>,
    /// Days run payloads are kept after a run ends.
    pub retention_days: i32,
}

/// The shortest and longest retention periods, in days.
pub const RETENTION_DAYS: std::ops::RangeInclusive<i32> = 7..=3650;

/// A row of the operator console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    /// The tenant.
    pub tenant: Tenant,
    /// How many people belong to it (any status).
    pub users: u64,
}

impl TryFrom<tenant::Model> for Tenant {
    type Error = StoreError;
    fn try_from(m: tenant::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m
                .id
                .parse()
                .map_err(|_| StoreError::Corrupt("tenants.id"))?,
            name: m.name,
            status: TenantStatus::parse(&m.status).ok_or(StoreError::Corrupt("tenants.status"))?,
            created_at: m.created_at,
            retention_days: m.retention_days,
        })
    }
}

/// Creates an active tenant.
pub async fn create(
    db: &impl Exec,
    name: &TenantName,
    now: DateTime<Utc>,
) -> Result<Tenant, StoreError> {
    let model = tenant::ActiveModel {
        id: Set(TenantId::generate().to_string()),
        name: Set(name.as_str().to_owned()),
        status: Set(TenantStatus::Active.as_str().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db.conn())
    .await?;
    model.try_into()
}

/// One tenant by id.
pub async fn get(db: &impl Exec, id: &TenantId) -> Result<Tenant, StoreError> {
    tenant::Entity::find_by_id(id.to_string())
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// The tenant with exactly this name, if any (the demo finds its tenant so).
pub async fn find_by_name(db: &impl Exec, name: &str) -> Result<Option<Tenant>, StoreError> {
    tenant::Entity::find()
        .filter(tenant::Column::Name.eq(name))
        .one(db.conn())
        .await?
        .map(Tenant::try_from)
        .transpose()
}

/// Every tenant with its member count, newest first.
pub async fn list_with_counts(db: &impl Exec) -> Result<Vec<TenantSummary>, StoreError> {
    let tenants = tenant::Entity::find()
        .order_by_desc(tenant::Column::CreatedAt)
        .all(db.conn())
        .await?;
    let counts: Vec<(String, i64)> = membership::Entity::find()
        .select_only()
        .column(membership::Column::TenantId)
        .column_as(Expr::col(membership::Column::UserId).count(), "users")
        .group_by(membership::Column::TenantId)
        .into_tuple()
        .all(db.conn())
        .await?;
    let counts: HashMap<String, i64> = counts.into_iter().collect();
    tenants
        .into_iter()
        .map(|m| {
            let users = u64::try_from(counts.get(&m.id).copied().unwrap_or(0)).unwrap_or(0);
            Ok(TenantSummary {
                tenant: m.try_into()?,
                users,
            })
        })
        .collect()
}

/// How many people belong to the tenant (any status).
pub async fn member_count(db: &impl Exec, id: &TenantId) -> Result<u64, StoreError> {
    Ok(membership::Entity::find()
        .filter(membership::Column::TenantId.eq(id.to_string()))
        .count(db.conn())
        .await?)
}

/// Suspends or reactivates a tenant. Suspending also ends its users' sessions.
pub async fn set_status(
    db: &impl Exec,
    id: &TenantId,
    status: TenantStatus,
    now: DateTime<Utc>,
) -> Result<Tenant, StoreError> {
    let txn = db.begin_write().await?;
    let found = tenant::Entity::find_by_id(id.to_string())
        .one(&txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut active: tenant::ActiveModel = found.into();
    active.status = Set(status.as_str().to_owned());
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    if status == TenantStatus::Suspended {
        crate::entities::session::Entity::delete_many()
            .filter(crate::entities::session::Column::TenantId.eq(id.to_string()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    updated.try_into()
}

/// Deletes a tenant, its memberships, sessions, invites and mail, and the
/// accounts of people who belonged to no other tenant. Its data key is
/// overwritten, then removed first (crypto-shredding: whatever was sealed
/// with it and survives somewhere — a copied row, a log — cannot be opened
/// with this database any more; a backup taken before holds the wrapped key
/// too, so backups expire on their own schedule). Audit events stay.
pub async fn delete(db: &impl Exec, id: &TenantId) -> Result<(), StoreError> {
    let txn = db.begin_write().await?;
    tenant::Entity::find_by_id(id.to_string())
        .one(&txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    crate::entities::tenant_key::Entity::update_many()
        .col_expr(
            crate::entities::tenant_key::Column::WrappedKey,
            Expr::value(String::new()),
        )
        .filter(crate::entities::tenant_key::Column::TenantId.eq(id.to_string()))
        .exec(&txn)
        .await?;
    crate::entities::tenant_key::Entity::delete_many()
        .filter(crate::entities::tenant_key::Column::TenantId.eq(id.to_string()))
        .exec(&txn)
        .await?;
    let member_ids: Vec<String> = membership::Entity::find()
        .select_only()
        .column(membership::Column::UserId)
        .filter(membership::Column::TenantId.eq(id.to_string()))
        .into_tuple()
        .all(&txn)
        .await?;
    tenant::Entity::delete_by_id(id.to_string())
        .exec(&txn)
        .await?;
    for user_id in member_ids {
        let elsewhere = membership::Entity::find()
            .filter(membership::Column::UserId.eq(user_id.clone()))
            .count(&txn)
            .await?;
        if elsewhere == 0 {
            user::Entity::delete_by_id(user_id).exec(&txn).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

/// Sets how many days run payloads are kept.
pub async fn set_retention(
    db: &impl Exec,
    id: &TenantId,
    days: i32,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = tenant::Entity::update_many()
        .col_expr(tenant::Column::RetentionDays, Expr::value(days))
        .col_expr(tenant::Column::UpdatedAt, Expr::value(now))
        .filter(tenant::Column::Id.eq(id.to_string()))
        .exec(db.conn())
        .await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Every tenant with its retention period, for the purge.
pub async fn retention_periods(db: &impl Exec) -> Result<Vec<(TenantId, i32)>, StoreError> {
    let rows: Vec<(String, i32)> = tenant::Entity::find()
        .select_only()
        .column(tenant::Column::Id)
        .column(tenant::Column::RetentionDays)
        .into_tuple()
        .all(db.conn())
        .await?;
    rows.into_iter()
        .map(|(id, d)| {
            Ok((
                id.parse().map_err(|_| StoreError::Corrupt("tenants.id"))?,
                d,
            ))
        })
        .collect()
}

/// The tenant's reclassified fields (`<connector>.<field>` → class).
pub async fn field_classes(
    db: &impl Exec,
    id: &TenantId,
) -> Result<ferry_core::catalog::FieldClasses, StoreError> {
    let raw: Option<Option<String>> = tenant::Entity::find_by_id(id.to_string())
        .select_only()
        .column(tenant::Column::FieldClasses)
        .into_tuple()
        .one(db.conn())
        .await?;
    let Some(Some(raw)) = raw else {
        return Ok(Default::default());
    };
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&raw).map_err(|_| StoreError::Corrupt("tenants.field_classes"))?;
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| ferry_core::catalog::PiiClass::parse(&v).map(|c| (k, c)))
        .collect())
}

/// Replaces the tenant's reclassified fields.
pub async fn set_field_classes(
    db: &impl Exec,
    id: &TenantId,
    classes: &ferry_core::catalog::FieldClasses,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let map: std::collections::BTreeMap<&String, &str> =
        classes.iter().map(|(k, v)| (k, v.as_str())).collect();
    let json = serde_json::to_string(&map).map_err(|_| StoreError::Corrupt("field classes"))?;
    let done = tenant::Entity::update_many()
        .col_expr(tenant::Column::FieldClasses, Expr::value(Some(json)))
        .col_expr(tenant::Column::UpdatedAt, Expr::value(now))
        .filter(tenant::Column::Id.eq(id.to_string()))
        .exec(db.conn())
        .await?;
    if done.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}
