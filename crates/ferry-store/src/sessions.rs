//! Server-side sessions. The cookie carries a random token; only its SHA-256
//! is stored, so a copy of the database does not hand out live sessions.

use crate::entities::session;
use crate::{Db, StoreError};
use chrono::{DateTime, Duration, Utc};
use ferry_core::{TenantId, UserId};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie token.
    pub token_hash: String,
    /// Who is logged in.
    pub user_id: UserId,
    /// The tenant they act in (none for an operator).
    pub tenant_id: Option<TenantId>,
    /// The anti-forgery token for this session's forms.
    pub csrf_token: String,
    /// Login time (for the absolute timeout).
    pub created_at: DateTime<Utc>,
    /// Last request (for the idle timeout).
    pub last_seen_at: DateTime<Utc>,
}

impl TryFrom<session::Model> for Session {
    type Error = StoreError;
    fn try_from(m: session::Model) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: m.token_hash,
            user_id: m
                .user_id
                .parse()
                .map_err(|_| StoreError::Corrupt("sessions.user_id"))?,
            tenant_id: m
                .tenant_id
                .map(|t| {
                    t.parse()
                        .map_err(|_| StoreError::Corrupt("sessions.tenant_id"))
                })
                .transpose()?,
            csrf_token: m.csrf_token,
            created_at: m.created_at,
            last_seen_at: m.last_seen_at,
        })
    }
}

/// Stores a new session.
pub async fn create(
    db: &Db,
    token_hash: &str,
    user_id: &UserId,
    tenant_id: Option<&TenantId>,
    csrf_token: &str,
    client_ip: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    session::ActiveModel {
        token_hash: Set(token_hash.to_owned()),
        user_id: Set(user_id.to_string()),
        tenant_id: Set(tenant_id.map(ToString::to_string)),
        csrf_token: Set(csrf_token.to_owned()),
        created_at: Set(now),
        last_seen_at: Set(now),
        client_ip: Set(client_ip.to_owned()),
    }
    .insert(&db.conn)
    .await?;
    Ok(())
}

/// The session with this token hash, if it exists.
pub async fn find(db: &Db, token_hash: &str) -> Result<Option<Session>, StoreError> {
    session::Entity::find_by_id(token_hash.to_owned())
        .one(&db.conn)
        .await?
        .map(Session::try_from)
        .transpose()
}

/// Records activity on a session.
pub async fn touch(db: &Db, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(now))
        .filter(session::Column::TokenHash.eq(token_hash))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Ends one session.
pub async fn delete(db: &Db, token_hash: &str) -> Result<(), StoreError> {
    session::Entity::delete_by_id(token_hash.to_owned())
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Deletes sessions past their idle or absolute timeout; returns how many.
pub async fn delete_expired(
    db: &Db,
    now: DateTime<Utc>,
    idle: Duration,
    absolute: Duration,
) -> Result<u64, StoreError> {
    let result = session::Entity::delete_many()
        .filter(
            Condition::any()
                .add(session::Column::LastSeenAt.lt(now - idle))
                .add(session::Column::CreatedAt.lt(now - absolute)),
        )
        .exec(&db.conn)
        .await?;
    Ok(result.rows_affected)
}
