//! Login attempts, for throttling guessers per (account, client) pair and
//! credential stuffing per client address. `client` is whatever key the web
//! layer throttles a client by (an IPv4 address, or an IPv6 /64).

use crate::entities::login_attempt;
use crate::{Db, StoreError};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// Records one attempt.
pub async fn record(
    db: &Db,
    email: &str,
    client: &str,
    succeeded: bool,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    login_attempt::ActiveModel {
        id: NotSet,
        email: Set(email.to_owned()),
        client_ip: Set(client.to_owned()),
        succeeded: Set(succeeded),
        created_at: Set(now),
    }
    .insert(&db.conn)
    .await?;
    Ok(())
}

/// What one client did with one account lately.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairHistory {
    /// Its last successful sign-in from this client, if any is still kept.
    pub last_success: Option<DateTime<Utc>>,
    /// Its failures from this client after that success (or since the
    /// window began, if later), newest first, at most the number asked for.
    pub failures: Vec<DateTime<Utc>>,
}

/// The history of `email` from `client`: the last success and up to `limit`
/// failures after it and after `since`.
pub async fn pair_history(
    db: &Db,
    email: &str,
    client: &str,
    since: DateTime<Utc>,
    limit: u64,
) -> Result<PairHistory, StoreError> {
    let pair = || {
        login_attempt::Entity::find()
            .select_only()
            .column(login_attempt::Column::CreatedAt)
            .filter(login_attempt::Column::Email.eq(email))
            .filter(login_attempt::Column::ClientIp.eq(client))
    };
    let last_success: Option<DateTime<Utc>> = pair()
        .filter(login_attempt::Column::Succeeded.eq(true))
        .order_by_desc(login_attempt::Column::CreatedAt)
        .into_tuple()
        .one(&db.conn)
        .await?;
    let from = last_success.map_or(since, |t| t.max(since));
    let failures: Vec<DateTime<Utc>> = pair()
        .filter(login_attempt::Column::Succeeded.eq(false))
        .filter(login_attempt::Column::CreatedAt.gt(from))
        .order_by_desc(login_attempt::Column::CreatedAt)
        .limit(limit)
        .into_tuple()
        .all(&db.conn)
        .await?;
    Ok(PairHistory {
        last_success,
        failures,
    })
}

/// For each distinct account that failed to sign in from `client` since
/// `since`, the time of its latest failure; oldest first. (Its length is the
/// number of accounts tried; the list is short, because an address that tried
/// too many is refused before its attempts are recorded.)
pub async fn accounts_failed_from(
    db: &Db,
    client: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let mut latest: Vec<DateTime<Utc>> = login_attempt::Entity::find()
        .select_only()
        .column_as(login_attempt::Column::CreatedAt.max(), "latest")
        .filter(login_attempt::Column::ClientIp.eq(client))
        .filter(login_attempt::Column::Succeeded.eq(false))
        .filter(login_attempt::Column::CreatedAt.gte(since))
        .group_by(login_attempt::Column::Email)
        .into_tuple()
        .all(&db.conn)
        .await?;
    latest.sort_unstable();
    Ok(latest)
}

/// Deletes attempts older than `before`; returns how many.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(login_attempt::Entity::delete_many()
        .filter(login_attempt::Column::CreatedAt.lt(before))
        .exec(&db.conn)
        .await?
        .rows_affected)
}
