//! The append-only audit log. This module offers no update or delete: an
//! event, once written, stays.

use crate::entities::audit_event;
use crate::{Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{AuditEventId, TenantId, UserId};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
};

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
    /// Structured details; never a secret.
    pub details: serde_json::Value,
    /// The client address of the request, or "-".
    pub client_ip: &'a str,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Details, as JSON text.
    pub details: String,
    /// From where.
    pub client_ip: String,
    /// When.
    pub created_at: DateTime<Utc>,
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
            details: m.details,
            client_ip: m.client_ip,
            created_at: m.created_at,
        }
    }
}

/// Appends an event.
pub async fn record(
    db: &impl Exec,
    event: NewAuditEvent<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    audit_event::ActiveModel {
        seq: NotSet,
        id: Set(AuditEventId::generate().to_string()),
        tenant_id: Set(event.tenant_id.map(ToString::to_string)),
        actor_user_id: Set(event.actor_user_id.map(ToString::to_string)),
        actor_label: Set(event.actor_label.to_owned()),
        action: Set(event.action.as_str().to_owned()),
        target_kind: Set(event.target_kind.to_owned()),
        target_id: Set(event.target_id.to_owned()),
        details: Set(event.details.to_string()),
        client_ip: Set(event.client_ip.to_owned()),
        created_at: Set(now),
    }
    .insert(db.conn())
    .await?;
    Ok(())
}

/// The tenant's newest events.
pub async fn for_tenant(
    db: &impl Exec,
    tenant: &TenantId,
    limit: u64,
) -> Result<Vec<AuditEvent>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::TenantId.eq(tenant.to_string()))
        .order_by_desc(audit_event::Column::Seq)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
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
