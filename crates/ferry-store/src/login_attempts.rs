//! Login attempts, for throttling guessers per account and per client.

use crate::entities::login_attempt;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

/// Recent failures that count towards a lock-out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentFailures {
    /// Failures for the account since its last success, inside the window.
    pub for_email: u64,
    /// Failures from the client address inside the window.
    pub for_client: u64,
    /// Oldest failure still inside the window (from either count), to say
    /// when the lock lifts.
    pub oldest: Option<DateTime<Utc>>,
}

/// Records one attempt.
pub async fn record(
    db: &Db,
    email: &str,
    client_ip: &str,
    succeeded: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    login_attempt::ActiveModel {
        id: NotSet,
        email: Set(email.to_owned()),
        client_ip: Set(client_ip.to_owned()),
        succeeded: Set(succeeded),
        created_at: Set(now),
    }
    .insert(&db.conn)
    .await?;
    Ok(())
}

/// Failures since `since` for this account (after its last success) and for
/// this client address.
pub async fn recent_failures(
    db: &Db,
    email: &str,
    client_ip: &str,
    since: DateTime<Utc>,
) -> Result<RecentFailures, StoreError> {
    let last_success: Option<DateTime<Utc>> = login_attempt::Entity::find()
        .select_only()
        .column(login_attempt::Column::CreatedAt)
        .filter(login_attempt::Column::Email.eq(email))
        .filter(login_attempt::Column::Succeeded.eq(true))
        .filter(login_attempt::Column::CreatedAt.gte(since))
        .order_by_desc(login_attempt::Column::CreatedAt)
        .into_tuple()
        .one(&db.conn)
        .await?;
    let email_since = last_success.map_or(since, |t| t.max(since));
    let by_email = login_attempt::Entity::find()
        .filter(login_attempt::Column::Email.eq(email))
        .filter(login_attempt::Column::Succeeded.eq(false))
        .filter(login_attempt::Column::CreatedAt.gt(email_since));
    let by_client = login_attempt::Entity::find()
        .filter(login_attempt::Column::ClientIp.eq(client_ip))
        .filter(login_attempt::Column::Succeeded.eq(false))
        .filter(login_attempt::Column::CreatedAt.gte(since));
    let for_email = by_email.clone().count(&db.conn).await?;
    let for_client = by_client.clone().count(&db.conn).await?;
    let oldest_email: Option<DateTime<Utc>> = by_email
        .select_only()
        .column(login_attempt::Column::CreatedAt)
        .order_by_asc(login_attempt::Column::CreatedAt)
        .into_tuple()
        .one(&db.conn)
        .await?;
    let oldest_client: Option<DateTime<Utc>> = by_client
        .select_only()
        .column(login_attempt::Column::CreatedAt)
        .order_by_asc(login_attempt::Column::CreatedAt)
        .into_tuple()
        .one(&db.conn)
        .await?;
    Ok(RecentFailures {
        for_email,
        for_client,
        oldest: oldest_email.into_iter().chain(oldest_client).min(),
    })
}

/// Deletes attempts older than `before`; returns how many.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(login_attempt::Entity::delete_many()
        .filter(login_attempt::Column::CreatedAt.lt(before))
        .exec(&db.conn)
        .await?
        .rows_affected)
}
