//! Inbound events: stored durably before Ferry answers the sender, once per
//! dedupe key per tenant (the same event delivered twice is one row). They
//! are written with their runs by [`crate::runs::ingest`].

use crate::entities::inbound_event;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{ConnectionId, EventId, TenantId};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

/// A new event to store.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// Which connection it came through.
    pub connection_id: &'a ConnectionId,
    /// `hubspot`, `webhook`, ...
    pub source: &'a str,
    /// The event's type, e.g. `contact.creation`.
    pub event_type: &'a str,
    /// The source's event id, or a hash of the payload.
    pub dedupe_key: &'a str,
    /// The event as received (JSON text); the engine stores it sealed with
    /// the tenant's data key (see [`payload_aad`]).
    pub payload: &'a str,
}

/// The associated data an event's payload is sealed with: its dedupe key,
/// so a sealed payload cannot be moved to another event's row.
pub fn payload_aad(dedupe_key: &str) -> String {
    format!("inbound:{dedupe_key}")
}

/// Whether the event was new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored now.
    New(EventId),
    /// Seen before: the first copy's id.
    Duplicate(EventId),
}

/// The id of the first stored copy of an event, read through `c` (a
/// batch's transaction sees the copy it stored itself).
pub async fn first_copy(
    c: &impl ConnectionTrait,
    tenant: &TenantId,
    dedupe_key: &str,
) -> Result<EventId, StoreError> {
    let id: String = inbound_event::Entity::find()
        .select_only()
        .column(inbound_event::Column::Id)
        .filter(inbound_event::Column::TenantId.eq(tenant.to_string()))
        .filter(inbound_event::Column::DedupeKey.eq(dedupe_key))
        .into_tuple()
        .one(c)
        .await?
        .ok_or(StoreError::NotFound)?;
    id.parse()
        .map_err(|_| StoreError::Corrupt("inbound_events.id"))
}

/// An event's repeat (same tenant, same dedupe key) inserts nothing.
pub(crate) fn repeat_inserts_nothing() -> sea_orm::sea_query::OnConflict {
    sea_orm::sea_query::OnConflict::columns([
        inbound_event::Column::TenantId,
        inbound_event::Column::DedupeKey,
    ])
    .do_nothing()
    .to_owned()
}

/// How many events arrived through a connection, and the latest arrival.
pub async fn stats(
    db: &Db,
    tenant: &TenantId,
    connection: &ConnectionId,
) -> Result<(u64, Option<DateTime<Utc>>), StoreError> {
    let q = inbound_event::Entity::find()
        .filter(inbound_event::Column::TenantId.eq(tenant.to_string()))
        .filter(inbound_event::Column::ConnectionId.eq(connection.to_string()));
    let count = q.clone().count(&db.conn).await?;
    let last = q
        .order_by_desc(inbound_event::Column::ReceivedAt)
        .one(&db.conn)
        .await?
        .map(|m| m.received_at);
    Ok((count, last))
}

/// An event as a record's trail shows it (no payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSummary {
    /// Its id.
    pub id: String,
    /// `hubspot`, `webhook`, …
    pub source: String,
    /// e.g. `contact.creation`.
    pub event_type: String,
    /// Its dedupe key (the source's event id, or a payload hash).
    pub dedupe_key: String,
    /// received, echo, …
    pub status: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// The tenant's events with these ids.
pub async fn summaries(
    db: &impl crate::Exec,
    tenant: &TenantId,
    ids: &[String],
) -> Result<Vec<EventSummary>, StoreError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        out.extend(
            inbound_event::Entity::find()
                .filter(inbound_event::Column::TenantId.eq(tenant.to_string()))
                .filter(inbound_event::Column::Id.is_in(chunk.to_vec()))
                .all(db.conn())
                .await?
                .into_iter()
                .map(|m| EventSummary {
                    id: m.id,
                    source: m.source,
                    event_type: m.event_type,
                    dedupe_key: m.dedupe_key,
                    status: m.status,
                    received_at: m.received_at,
                }),
        );
    }
    Ok(out)
}
