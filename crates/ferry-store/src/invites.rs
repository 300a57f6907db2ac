//! One-time emailed links: invites (join a tenant or the platform, set a
//! first password) and password resets. The token is stored hashed, expires,
//! and is used at most once, even when two requests race.

use crate::entities::{invite, membership, session, user};
use crate::users::{User, insert_user};
use crate::{Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{EmailAddress, InviteId, InviteKind, Role, TenantId, UserId, UserStatus};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};

/// A stored one-time link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// Its id.
    pub id: InviteId,
    /// Invite or reset.
    pub kind: InviteKind,
    /// Who it was sent to.
    pub email: String,
    /// The invitee's name, as the inviter typed it.
    pub name: String,
    /// The tenant joined (none: a platform operator invite, or a reset).
    pub tenant_id: Option<TenantId>,
    /// The role granted by an invite.
    pub role: Option<Role>,
    /// The account a reset is for.
    pub user_id: Option<UserId>,
    /// Who sent it.
    pub invited_by: Option<UserId>,
    /// After this the link no longer works.
    pub expires_at: DateTime<Utc>,
    /// Set once the link was used.
    pub used_at: Option<DateTime<Utc>>,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
}

impl TryFrom<invite::Model> for Invite {
    type Error = StoreError;
    fn try_from(m: invite::Model) -> Result<Self, StoreError> {
        let corrupt = |c| move |_| StoreError::Corrupt(c);
        Ok(Self {
            id: m.id.parse().map_err(corrupt("invites.id"))?,
            kind: InviteKind::parse(&m.kind).ok_or(StoreError::Corrupt("invites.kind"))?,
            email: m.email,
            name: m.name,
            tenant_id: m
                .tenant_id
                .map(|t| t.parse())
                .transpose()
                .map_err(corrupt("invites.tenant_id"))?,
            role: m
                .role
                .map(|r| Role::parse(&r).ok_or(StoreError::Corrupt("invites.role")))
                .transpose()?,
            user_id: m
                .user_id
                .map(|u| u.parse())
                .transpose()
                .map_err(corrupt("invites.user_id"))?,
            invited_by: m
                .invited_by
                .map(|u| u.parse())
                .transpose()
                .map_err(corrupt("invites.invited_by"))?,
            expires_at: m.expires_at,
            used_at: m.used_at,
            created_at: m.created_at,
        })
    }
}

/// What to store for a new link.
#[derive(Debug, Clone)]
pub struct NewInvite<'a> {
    /// Invite or reset.
    pub kind: InviteKind,
    /// The recipient.
    pub email: &'a EmailAddress,
    /// The recipient's name.
    pub name: &'a str,
    /// The tenant to join, for a tenant invite.
    pub tenant_id: Option<&'a TenantId>,
    /// The role to grant, for a tenant invite.
    pub role: Option<Role>,
    /// The account, for a reset.
    pub user_id: Option<&'a UserId>,
    /// The sender.
    pub invited_by: Option<&'a UserId>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// The state of a link someone opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Usable.
    Valid(Invite),
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
    /// No such link.
    Unknown,
}

/// Stores a link under the hash of its token.
pub async fn create(
    db: &impl Exec,
    new: NewInvite<'_>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Invite, StoreError> {
    invite::ActiveModel {
        id: Set(InviteId::generate().to_string()),
        token_hash: Set(token_hash.to_owned()),
        kind: Set(new.kind.as_str().to_owned()),
        email: Set(new.email.as_str().to_owned()),
        name: Set(new.name.to_owned()),
        tenant_id: Set(new.tenant_id.map(ToString::to_string)),
        role: Set(new.role.map(|r| r.as_str().to_owned())),
        user_id: Set(new.user_id.map(ToString::to_string)),
        invited_by: Set(new.invited_by.map(ToString::to_string)),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        created_at: Set(now),
    }
    .insert(db.conn())
    .await?
    .try_into()
}

/// Looks a link up by the hash of its token.
pub async fn lookup(
    db: &impl Exec,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<LinkState, StoreError> {
    let Some(found) = invite::Entity::find()
        .filter(invite::Column::TokenHash.eq(token_hash))
        .one(db.conn())
        .await?
    else {
        return Ok(LinkState::Unknown);
    };
    let invite = Invite::try_from(found)?;
    Ok(if invite.used_at.is_some() {
        LinkState::Used
    } else if invite.expires_at <= now {
        LinkState::Expired
    } else {
        LinkState::Valid(invite)
    })
}

/// How many links of `kind` were sent to `email` since `since` (to cap
/// password-reset mail per account).
pub async fn sent_since(
    db: &impl Exec,
    kind: InviteKind,
    email: &EmailAddress,
    since: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(invite::Entity::find()
        .filter(invite::Column::Kind.eq(kind.as_str()))
        .filter(invite::Column::Email.eq(email.as_str()))
        .filter(invite::Column::CreatedAt.gte(since))
        .count(db.conn())
        .await?)
}

/// Pending (unused, unexpired) invites of a tenant, newest first.
pub async fn pending_for_tenant(
    db: &impl Exec,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<Vec<Invite>, StoreError> {
    invite::Entity::find()
        .filter(invite::Column::TenantId.eq(tenant.to_string()))
        .filter(invite::Column::Kind.eq(InviteKind::Invite.as_str()))
        .filter(invite::Column::UsedAt.is_null())
        .filter(invite::Column::ExpiresAt.gt(now))
        .order_by_desc(invite::Column::CreatedAt)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Invite::try_from)
        .collect()
}

/// Uses a valid link: an invite creates the account (and membership); a reset
/// replaces the password and ends the account's sessions. The link is
/// claimed with a conditional update, so of two racing requests one wins and
/// the other gets `Conflict`.
pub async fn redeem(
    db: &impl Exec,
    token_hash: &str,
    password_hash: String,
    now: DateTime<Utc>,
) -> Result<User, StoreError> {
    let txn = db.begin_write().await?;
    let found = invite::Entity::find()
        .filter(invite::Column::TokenHash.eq(token_hash))
        .one(&txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let invite = Invite::try_from(found)?;
    if invite.used_at.is_some() || invite.expires_at <= now {
        return Err(StoreError::Conflict(
            "This link has expired or was already used.".into(),
        ));
    }
    let claimed = invite::Entity::update_many()
        .col_expr(invite::Column::UsedAt, Expr::value(now))
        .filter(invite::Column::Id.eq(invite.id.to_string()))
        .filter(invite::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected != 1 {
        return Err(StoreError::Conflict(
            "This link has expired or was already used.".into(),
        ));
    }
    let user = match invite.kind {
        InviteKind::Invite => {
            let user = insert_user(
                &txn,
                &invite.email,
                &invite.name,
                Some(password_hash),
                invite.tenant_id.is_none(),
                now,
            )
            .await?;
            if let Some(tenant) = &invite.tenant_id {
                membership::ActiveModel {
                    tenant_id: Set(tenant.to_string()),
                    user_id: Set(user.id.to_string()),
                    role: Set(invite.role.unwrap_or(Role::Staff).as_str().to_owned()),
                    status: Set(UserStatus::Active.as_str().to_owned()),
                    created_at: Set(now),
                }
                .insert(&txn)
                .await?;
            }
            user
        }
        InviteKind::PasswordReset => {
            let user_id = invite
                .user_id
                .ok_or(StoreError::Corrupt("invites.user_id"))?;
            let found = user::Entity::find_by_id(user_id.to_string())
                .one(&txn)
                .await?
                .ok_or(StoreError::NotFound)?;
            let mut active: user::ActiveModel = found.into();
            active.password_hash = Set(Some(password_hash));
            let updated = active.update(&txn).await?;
            session::Entity::delete_many()
                .filter(session::Column::UserId.eq(user_id.to_string()))
                .exec(&txn)
                .await?;
            updated.try_into()?
        }
    };
    txn.commit().await?;
    Ok(user)
}
