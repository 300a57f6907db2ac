//! Writing an audit entry in the transaction of the change it records.

use crate::actor::Actor;
use ferry_core::AuditAction;
use ferry_store::{Exec, StoreError, audit};

/// What an entry is about: a kind of thing and its id.
pub(crate) struct Target<'a>(pub &'static str, pub &'a str);

/// Appends `action` by `actor` on `target` through `db` (the change's own
/// transaction).
pub(crate) async fn record(
    db: &impl Exec,
    actor: &Actor<'_>,
    action: AuditAction,
    target: Target<'_>,
    details: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    record_about(
        db,
        actor,
        action,
        target,
        audit::About::default(),
        details,
        now,
    )
    .await
}

/// As [`record`], naming the workflow and the record it concerns.
pub(crate) async fn record_about(
    db: &impl Exec,
    actor: &Actor<'_>,
    action: AuditAction,
    target: Target<'_>,
    about: audit::About<'_>,
    details: serde_json::Value,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    audit::record_about(
        db,
        audit::NewAuditEvent {
            tenant_id: actor.tenant,
            actor_user_id: Some(actor.user),
            actor_label: actor.label,
            action,
            target_kind: target.0,
            target_id: target.1,
            details,
            client_ip: actor.client_ip,
        },
        about,
        now,
    )
    .await
}
