//! People and their memberships. Tenant-scoped functions take the tenant
//! first and answer `NotFound` for a person of another tenant.

use crate::entities::{membership, session, user};
use crate::tenants::Tenant;
use crate::{Backend, Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{EmailAddress, Role, TenantId, UserId, UserStatus};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, Statement,
};

/// A person who can log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: UserId,
    /// Login address, lower-cased.
    pub email: String,
    /// Display name.
    pub name: String,
    /// A platform operator (not a member of any tenant).
    pub is_operator: bool,
    /// Active or deactivated platform-wide.
    pub status: UserStatus,
    /// The argon2id PHC string, once a password was set.
    pub password_hash: Option<String>,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
    /// The last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl TryFrom<user::Model> for User {
    type Error = StoreError;
    fn try_from(m: user::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m.id.parse().map_err(|_| StoreError::Corrupt("users.id"))?,
            email: m.email,
            name: m.name,
            is_operator: m.is_operator,
            status: UserStatus::parse(&m.status).ok_or(StoreError::Corrupt("users.status"))?,
            password_hash: m.password_hash,
            created_at: m.created_at,
            last_login_at: m.last_login_at,
        })
    }
}

/// A person as a member of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The person.
    pub user: User,
    /// Their role in the tenant.
    pub role: Role,
    /// Whether they may still log in to the tenant.
    pub status: UserStatus,
    /// When they joined.
    pub joined_at: DateTime<Utc>,
}

/// The tenant a user logs in to, with their role there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The tenant.
    pub tenant: Tenant,
    /// Their role.
    pub role: Role,
    /// Their membership's status.
    pub status: UserStatus,
}

fn parse_member(m: membership::Model, u: user::Model) -> Result<Member, StoreError> {
    Ok(Member {
        user: u.try_into()?,
        role: Role::parse(&m.role).ok_or(StoreError::Corrupt("memberships.role"))?,
        status: UserStatus::parse(&m.status).ok_or(StoreError::Corrupt("memberships.status"))?,
        joined_at: m.created_at,
    })
}

/// The account with this email, if any.
pub async fn find_by_email(
    db: &impl Exec,
    email: &EmailAddress,
) -> Result<Option<User>, StoreError> {
    user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db.conn())
        .await?
        .map(User::try_from)
        .transpose()
}

/// One account by id (platform-wide; for the session layer and operators).
pub async fn get(db: &impl Exec, id: &UserId) -> Result<User, StoreError> {
    user::Entity::find_by_id(id.to_string())
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)?
        .try_into()
}

/// The tenant a user belongs to (the first, while a user has one), if any.
pub async fn membership_of(db: &impl Exec, id: &UserId) -> Result<Option<Membership>, StoreError> {
    let Some(m) = membership::Entity::find()
        .filter(membership::Column::UserId.eq(id.to_string()))
        .order_by_asc(membership::Column::CreatedAt)
        .one(db.conn())
        .await?
    else {
        return Ok(None);
    };
    let tenant = crate::tenants::get(
        db,
        &m.tenant_id
            .parse()
            .map_err(|_| StoreError::Corrupt("memberships.tenant_id"))?,
    )
    .await?;
    Ok(Some(Membership {
        tenant,
        role: Role::parse(&m.role).ok_or(StoreError::Corrupt("memberships.role"))?,
        status: UserStatus::parse(&m.status).ok_or(StoreError::Corrupt("memberships.status"))?,
    }))
}

pub(crate) async fn insert_user<C: ConnectionTrait>(
    conn: &C,
    email: &str,
    name: &str,
    password_hash: Option<String>,
    is_operator: bool,
    now: DateTime<Utc>,
) -> Result<User, StoreError> {
    let exists = user::Entity::find()
        .filter(user::Column::Email.eq(email))
        .count(conn)
        .await?;
    if exists > 0 {
        return Err(StoreError::Conflict(
            "This person already has a Ferry account.".into(),
        ));
    }
    user::ActiveModel {
        id: Set(UserId::generate().to_string()),
        email: Set(email.to_owned()),
        name: Set(name.to_owned()),
        password_hash: Set(password_hash),
        is_operator: Set(is_operator),
        status: Set(UserStatus::Active.as_str().to_owned()),
        created_at: Set(now),
        last_login_at: Set(None),
    }
    .insert(conn)
    .await?
    .try_into()
}

/// Creates a platform operator, with a password hash or none (then an
/// invite link sets it).
pub async fn create_operator(
    db: &impl Exec,
    email: &EmailAddress,
    name: &str,
    password_hash: Option<String>,
    now: DateTime<Utc>,
) -> Result<User, StoreError> {
    insert_user(db.conn(), email.as_str(), name, password_hash, true, now).await
}

/// Replaces a password hash and ends every session of the account.
pub async fn set_password(
    db: &impl Exec,
    id: &UserId,
    password_hash: String,
) -> Result<(), StoreError> {
    let txn = db.begin_write().await?;
    let found = user::Entity::find_by_id(id.to_string())
        .one(&txn)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut active: user::ActiveModel = found.into();
    active.password_hash = Set(Some(password_hash));
    active.update(&txn).await?;
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(id.to_string()))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Notes a successful login.
pub async fn record_login(
    db: &impl Exec,
    id: &UserId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    user::Entity::update_many()
        .col_expr(
            user::Column::LastLoginAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(user::Column::Id.eq(id.to_string()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// The tenant's members, by name.
pub async fn members(db: &impl Exec, tenant: &TenantId) -> Result<Vec<Member>, StoreError> {
    let rows = membership::Entity::find()
        .filter(membership::Column::TenantId.eq(tenant.to_string()))
        .find_also_related(user::Entity)
        .order_by_asc(membership::Column::CreatedAt)
        .all(db.conn())
        .await?;
    rows.into_iter()
        .filter_map(|(m, u)| u.map(|u| parse_member(m, u)))
        .collect()
}

/// One member of the tenant; `NotFound` for anyone else.
pub async fn member(db: &impl Exec, tenant: &TenantId, id: &UserId) -> Result<Member, StoreError> {
    member_in(db.conn(), tenant, id).await
}

async fn member_in<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    id: &UserId,
) -> Result<Member, StoreError> {
    let (m, u) = membership::Entity::find_by_id((tenant.to_string(), id.to_string()))
        .find_also_related(user::Entity)
        .one(conn)
        .await?
        .ok_or(StoreError::NotFound)?;
    parse_member(m, u.ok_or(StoreError::NotFound)?)
}

/// Serialises changes to one tenant's memberships, so two admins demoting
/// each other at once cannot leave the tenant with none. SQLite serialises
/// writers already; PostgreSQL needs the row lock.
async fn lock_tenant(
    db: &impl Exec,
    txn: &impl ConnectionTrait,
    tenant: &TenantId,
) -> Result<(), StoreError> {
    if db.backend() == Backend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT id FROM tenants WHERE id = $1 FOR UPDATE",
            [tenant.to_string().into()],
        ))
        .await?;
    }
    Ok(())
}

async fn other_active_admins(
    txn: &impl ConnectionTrait,
    tenant: &TenantId,
    id: &UserId,
) -> Result<u64, StoreError> {
    Ok(membership::Entity::find()
        .filter(membership::Column::TenantId.eq(tenant.to_string()))
        .filter(membership::Column::UserId.ne(id.to_string()))
        .filter(membership::Column::Role.eq(Role::Admin.as_str()))
        .filter(membership::Column::Status.eq(UserStatus::Active.as_str()))
        .count(txn)
        .await?)
}

const LAST_ADMIN: &str = "At least one active admin must remain in the firm.";

/// Changes a member's role; refuses to demote the last active admin.
pub async fn set_role(
    db: &impl Exec,
    tenant: &TenantId,
    id: &UserId,
    role: Role,
) -> Result<Member, StoreError> {
    let txn = db.begin_write().await?;
    lock_tenant(db, &txn, tenant).await?;
    let current = member_in(&txn, tenant, id).await?;
    if current.role == Role::Admin
        && role != Role::Admin
        && current.status == UserStatus::Active
        && other_active_admins(&txn, tenant, id).await? == 0
    {
        return Err(StoreError::Conflict(LAST_ADMIN.into()));
    }
    membership::Entity::update_many()
        .col_expr(
            membership::Column::Role,
            sea_orm::sea_query::Expr::value(role.as_str()),
        )
        .filter(membership::Column::TenantId.eq(tenant.to_string()))
        .filter(membership::Column::UserId.eq(id.to_string()))
        .exec(&txn)
        .await?;
    let updated = member_in(&txn, tenant, id).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deactivates or reactivates a member. Deactivating ends their sessions and
/// refuses to remove the last active admin.
pub async fn set_member_status(
    db: &impl Exec,
    tenant: &TenantId,
    id: &UserId,
    status: UserStatus,
) -> Result<Member, StoreError> {
    let txn = db.begin_write().await?;
    lock_tenant(db, &txn, tenant).await?;
    let current = member_in(&txn, tenant, id).await?;
    if status == UserStatus::Deactivated
        && current.role == Role::Admin
        && other_active_admins(&txn, tenant, id).await? == 0
    {
        return Err(StoreError::Conflict(LAST_ADMIN.into()));
    }
    membership::Entity::update_many()
        .col_expr(
            membership::Column::Status,
            sea_orm::sea_query::Expr::value(status.as_str()),
        )
        .filter(membership::Column::TenantId.eq(tenant.to_string()))
        .filter(membership::Column::UserId.eq(id.to_string()))
        .exec(&txn)
        .await?;
    if status == UserStatus::Deactivated {
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(id.to_string()))
            .filter(session::Column::TenantId.eq(tenant.to_string()))
            .exec(&txn)
            .await?;
    }
    let updated = member_in(&txn, tenant, id).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Adds a person straight into a tenant with a password (the demo and the
/// command line; people in the UI join through invites).
pub async fn create_member(
    db: &impl Exec,
    tenant: &TenantId,
    email: &EmailAddress,
    name: &str,
    password_hash: String,
    role: Role,
    now: DateTime<Utc>,
) -> Result<User, StoreError> {
    let txn = db.begin_write().await?;
    let user = insert_user(&txn, email.as_str(), name, Some(password_hash), false, now).await?;
    membership::ActiveModel {
        tenant_id: Set(tenant.to_string()),
        user_id: Set(user.id.to_string()),
        role: Set(role.as_str().to_owned()),
        status: Set(UserStatus::Active.as_str().to_owned()),
        created_at: Set(now),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Every active platform operator (for platform alerts).
pub async fn operators(db: &impl Exec) -> Result<Vec<User>, StoreError> {
    user::Entity::find()
        .filter(user::Column::IsOperator.eq(true))
        .filter(user::Column::Status.eq(UserStatus::Active.as_str()))
        .order_by_asc(user::Column::Email)
        .all(db.conn())
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
}
