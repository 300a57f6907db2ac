//! The mail outbox. Every email is stored first; the notifier then delivers
//! it by SMTP when one is configured, retrying with back-off, or leaves it in
//! the outbox for the UI to show when none is.

use crate::entities::email;
use crate::{Db, Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{EmailId, TenantId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// Waiting for SMTP delivery.
pub const STATUS_QUEUED: &str = "queued";
/// Delivered to the SMTP server.
pub const STATUS_SENT: &str = "sent";
/// Kept in the local outbox (no SMTP configured).
pub const STATUS_OUTBOX: &str = "outbox";
/// Given up after the last attempt.
pub const STATUS_FAILED: &str = "failed";

/// What replaces the body of a delivered email.
pub const BODY_PURGED: &str = "(delivered; body purged from the outbox)";

/// A stored email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// Its id.
    pub id: EmailId,
    /// The tenant it concerns, if any.
    pub tenant_id: Option<TenantId>,
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// HTML body (the same content), if any.
    pub html: Option<String>,
    /// queued, sent, outbox or failed.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// When it was written.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<email::Model> for Email {
    type Error = StoreError;
    fn try_from(m: email::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m.id.parse().map_err(|_| StoreError::Corrupt("emails.id"))?,
            tenant_id: m
                .tenant_id
                .map(|t| {
                    t.parse()
                        .map_err(|_| StoreError::Corrupt("emails.tenant_id"))
                })
                .transpose()?,
            to: m.to_address,
            subject: m.subject,
            body: m.body_text,
            html: m.body_html,
            status: m.status,
            attempts: m.attempts,
            created_at: m.created_at,
        })
    }
}

/// An email to store.
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    /// The tenant it concerns, if any.
    pub tenant: Option<&'a TenantId>,
    /// Recipient.
    pub to: &'a str,
    /// Subject line.
    pub subject: &'a str,
    /// Plain-text body.
    pub text: &'a str,
    /// HTML body (the same content), if any.
    pub html: Option<&'a str>,
}

/// Stores an email with the given initial status (in the caller's
/// transaction when given one: an alert's email lands with its incident).
pub async fn insert(
    db: &impl Exec,
    draft: Draft<'_>,
    status: &str,
    now: DateTime<Utc>,
) -> Result<Email, StoreError> {
    email::ActiveModel {
        id: Set(EmailId::generate().to_string()),
        tenant_id: Set(draft.tenant.map(ToString::to_string)),
        to_address: Set(draft.to.to_owned()),
        subject: Set(draft.subject.to_owned()),
        body_text: Set(draft.text.to_owned()),
        body_html: Set(draft.html.map(str::to_owned)),
        status: Set(status.to_owned()),
        attempts: Set(0),
        last_error: Set(None),
        next_attempt_at: Set(now),
        created_at: Set(now),
        sent_at: Set(None),
    }
    .insert(db.conn())
    .await?
    .try_into()
}

/// Claims a queued email for one delivery attempt by pushing its next
/// attempt into the future; false if another worker claimed it first.
pub async fn claim(
    db: &Db,
    id: &EmailId,
    seen_next_attempt: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = email::Entity::update_many()
        .col_expr(email::Column::NextAttemptAt, Expr::value(lease_until))
        .filter(email::Column::Id.eq(id.to_string()))
        .filter(email::Column::Status.eq(STATUS_QUEUED))
        .filter(email::Column::NextAttemptAt.lte(seen_next_attempt))
        .exec(&db.conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Records a successful delivery and purges the body: it may hold a one-time
/// link whose token is otherwise stored only hashed.
pub async fn mark_sent(db: &Db, id: &EmailId, now: DateTime<Utc>) -> Result<(), StoreError> {
    email::Entity::update_many()
        .col_expr(email::Column::Status, Expr::value(STATUS_SENT))
        .col_expr(email::Column::BodyText, Expr::value(BODY_PURGED))
        .col_expr(email::Column::BodyHtml, Expr::value(Option::<String>::None))
        .col_expr(email::Column::SentAt, Expr::value(now))
        .col_expr(
            email::Column::Attempts,
            Expr::col(email::Column::Attempts).add(1),
        )
        .filter(email::Column::Id.eq(id.to_string()))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// Records a failed attempt: retried at `retry_at`, or failed for good.
pub async fn mark_attempt_failed(
    db: &Db,
    id: &EmailId,
    error: &str,
    retry_at: Option<DateTime<Utc>>,
) -> Result<(), StoreError> {
    let mut update = email::Entity::update_many()
        .col_expr(
            email::Column::LastError,
            Expr::value(error.chars().take(500).collect::<String>()),
        )
        .col_expr(
            email::Column::Attempts,
            Expr::col(email::Column::Attempts).add(1),
        );
    update = match retry_at {
        Some(at) => update.col_expr(email::Column::NextAttemptAt, Expr::value(at)),
        None => update.col_expr(email::Column::Status, Expr::value(STATUS_FAILED)),
    };
    update
        .filter(email::Column::Id.eq(id.to_string()))
        .exec(&db.conn)
        .await?;
    Ok(())
}

/// The newest emails in the outbox, every tenant's (the outbox is a
/// development aid shown only to local requests).
pub async fn recent(db: &Db, limit: u64) -> Result<Vec<Email>, StoreError> {
    email::Entity::find()
        .order_by_desc(email::Column::CreatedAt)
        .limit(limit)
        .all(&db.conn)
        .await?
        .into_iter()
        .map(Email::try_from)
        .collect()
}

/// One email by id.
pub async fn get(db: &Db, id: &EmailId) -> Result<Email, StoreError> {
    email::Entity::find_by_id(id.to_string())
        .one(&db.conn)
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}
