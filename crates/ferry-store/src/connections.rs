//! Connections: a tenant's credentials for one app, sealed in the vault;
//! OAuth flows in progress; authentication events. Every function takes the
//! tenant first; another tenant's connection is `NotFound`.

use crate::entities::{auth_event, connection, oauth_flow};
use crate::vault::Vault;
use crate::{Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::catalog::ConnectorKey;
use ferry_core::{
    AuthEventId, ConnectionId, ConnectionStatus, Credentials, Environment, TenantId, TenantStatus,
    UserId,
};
use sea_orm::Condition;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

/// A connection, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Its id.
    pub id: ConnectionId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Which connector.
    pub connector: ConnectorKey,
    /// The name the admin gave it.
    pub name: String,
    /// Sandbox or production.
    pub environment: Environment,
    /// Healthy or broken.
    pub status: ConnectionStatus,
    /// Why it is broken, in words for people (never a secret).
    pub status_reason: Option<String>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// The remote account (HubSpot portal id, ...).
    pub external_account: Option<String>,
    /// The remote base URL.
    pub base_url: Option<String>,
    /// When the current access token expires (OAuth).
    pub access_expires_at: Option<DateTime<Utc>>,
    /// When the credential should be rotated or renewed.
    pub credential_expires_at: Option<DateTime<Utc>>,
    /// Its creator lost access: the credential must be replaced.
    pub needs_rotation: bool,
    /// Bumped at every credential change (optimistic concurrency).
    pub version: i64,
    /// Who created it.
    pub created_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl TryFrom<connection::Model> for Connection {
    type Error = StoreError;
    fn try_from(m: connection::Model) -> Result<Self, StoreError> {
        let corrupt = |c: &'static str| StoreError::Corrupt(c);
        Ok(Self {
            id: m.id.parse().map_err(|_| corrupt("connections.id"))?,
            tenant_id: m
                .tenant_id
                .parse()
                .map_err(|_| corrupt("connections.tenant_id"))?,
            connector: ConnectorKey::parse(&m.connector)
                .ok_or_else(|| corrupt("connections.connector"))?,
            name: m.name,
            environment: Environment::parse(&m.environment)
                .ok_or_else(|| corrupt("connections.environment"))?,
            status: ConnectionStatus::parse(&m.status)
                .ok_or_else(|| corrupt("connections.status"))?,
            status_reason: m.status_reason,
            scopes: serde_json::from_str(&m.scopes).map_err(|_| corrupt("connections.scopes"))?,
            external_account: m.external_account,
            base_url: m.base_url,
            access_expires_at: m.access_expires_at,
            credential_expires_at: m.credential_expires_at,
            needs_rotation: m.needs_rotation,
            version: m.version,
            created_by: m
                .created_by
                .parse()
                .map_err(|_| corrupt("connections.created_by"))?,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
        })
    }
}

/// What to store for a new connection.
#[derive(Debug, Clone)]
pub struct NewConnection<'a> {
    /// Which connector.
    pub connector: ConnectorKey,
    /// Its name.
    pub name: &'a str,
    /// Sandbox or production.
    pub environment: Environment,
    /// Scopes granted.
    pub scopes: &'a [String],
    /// Remote account id.
    pub external_account: Option<&'a str>,
    /// Remote base URL.
    pub base_url: Option<&'a str>,
    /// Access-token expiry.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// Rotation date.
    pub credential_expires_at: Option<DateTime<Utc>>,
    /// Creator.
    pub created_by: &'a UserId,
}

pub(crate) fn secret_aad(id: &ConnectionId) -> String {
    format!("connection:{id}")
}

async fn seal(
    vault: &Vault,
    tenant: &TenantId,
    id: &ConnectionId,
    credentials: &Credentials,
) -> Result<String, StoreError> {
    let json = serde_json::to_vec(credentials)
        .map_err(|_| StoreError::Crypto("credentials did not serialise"))?;
    vault.seal(tenant, &json, &secret_aad(id)).await
}

/// Stores a connection with its credentials sealed.
pub async fn create(
    db: &impl Exec,
    vault: &Vault,
    tenant: &TenantId,
    new: NewConnection<'_>,
    credentials: &Credentials,
    now: DateTime<Utc>,
) -> Result<Connection, StoreError> {
    let id = ConnectionId::generate();
    let sealed = seal(vault, tenant, &id, credentials).await?;
    connection::ActiveModel {
        id: Set(id.to_string()),
        tenant_id: Set(tenant.to_string()),
        connector: Set(new.connector.as_str().to_owned()),
        name: Set(new.name.to_owned()),
        environment: Set(new.environment.as_str().to_owned()),
        status: Set(ConnectionStatus::Healthy.as_str().to_owned()),
        status_reason: Set(None),
        scopes: Set(serde_json::to_string(new.scopes).unwrap_or_else(|_| "[]".into())),
        external_account: Set(new.external_account.map(str::to_owned)),
        base_url: Set(new.base_url.map(str::to_owned)),
        secret_ciphertext: Set(sealed),
        access_expires_at: Set(new.access_expires_at),
        credential_expires_at: Set(new.credential_expires_at),
        needs_rotation: Set(false),
        version: Set(1),
        created_by: Set(new.created_by.to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        last_used_at: Set(None),
        refresh_lease_until: Set(None),
    }
    .insert(db.conn())
    .await?
    .try_into()
}

/// The tenant's connections, newest first.
pub async fn list(db: &impl Exec, tenant: &TenantId) -> Result<Vec<Connection>, StoreError> {
    connection::Entity::find()
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .order_by_desc(connection::Column::CreatedAt)
        .all(db.conn())
        .await?
        .into_iter()
        .map(Connection::try_from)
        .collect()
}

async fn find_model(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<connection::Model, StoreError> {
    connection::Entity::find_by_id(id.to_string())
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)
}

/// One connection of the tenant.
pub async fn get(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<Connection, StoreError> {
    find_model(db, tenant, id).await?.try_into()
}

/// One connection with its opened credentials.
pub async fn with_credentials(
    db: &impl Exec,
    vault: &Vault,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<(Connection, Credentials), StoreError> {
    let model = find_model(db, tenant, id).await?;
    let plain = vault
        .open(tenant, &model.secret_ciphertext, &secret_aad(id))
        .await?;
    let credentials = serde_json::from_slice(&plain)
        .map_err(|_| StoreError::Crypto("credentials did not parse"))?;
    Ok((model.try_into()?, credentials))
}

/// The connection an inbound hook URL names (no tenant is known yet: the
/// URL says which connection), read with its tenant's status in one query.
#[derive(Debug, Clone)]
pub struct HookTarget {
    /// Its tenant.
    pub tenant: TenantId,
    /// The tenant's status (a suspended tenant's events are refused).
    pub tenant_status: TenantStatus,
    /// Its connector.
    pub connector: ConnectorKey,
    /// Its credentials (the signing secret).
    pub credentials: Credentials,
}

#[allow(clippy::too_many_arguments)]
/// Replaces the credentials if nobody else did since `expected_version`
/// (a refresh racing another process); returns false when someone did.
pub async fn update_credentials(
    db: &impl Exec,
    vault: &Vault,
    tenant: &TenantId,
    id: &ConnectionId,
    expected_version: i64,
    credentials: &Credentials,
    access_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let sealed = seal(vault, tenant, id, credentials).await?;
    let result = connection::Entity::update_many()
        .col_expr(connection::Column::SecretCiphertext, Expr::value(sealed))
        .col_expr(
            connection::Column::AccessExpiresAt,
            Expr::value(access_expires_at),
        )
        .col_expr(
            connection::Column::Version,
            Expr::value(expected_version + 1),
        )
        .col_expr(
            connection::Column::Status,
            Expr::value(ConnectionStatus::Healthy.as_str()),
        )
        .col_expr(
            connection::Column::StatusReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(connection::Column::UpdatedAt, Expr::value(now))
        .filter(connection::Column::Id.eq(id.to_string()))
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .filter(connection::Column::Version.eq(expected_version))
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected == 1)
}

/// Takes the refresh lease until `until` unless another process holds an
/// unexpired one; true when taken.
pub async fn claim_refresh(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = connection::Entity::update_many()
        .col_expr(connection::Column::RefreshLeaseUntil, Expr::value(until))
        .filter(connection::Column::Id.eq(id.to_string()))
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .filter(
            Condition::any()
                .add(connection::Column::RefreshLeaseUntil.is_null())
                .add(connection::Column::RefreshLeaseUntil.lt(now)),
        )
        .exec(db.conn())
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives the refresh lease back.
pub async fn release_refresh(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<(), StoreError> {
    connection::Entity::update_many()
        .col_expr(
            connection::Column::RefreshLeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(connection::Column::Id.eq(id.to_string()))
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .exec(db.conn())
        .await?;
    Ok(())
}

/// Marks a connection broken with a reason for people.
pub async fn mark_broken(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    set_status(db, tenant, id, ConnectionStatus::Broken, Some(reason), now).await
}

/// Marks a connection healthy and notes its use.
pub async fn mark_used(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    connection::Entity::update_many()
        .col_expr(connection::Column::LastUsedAt, Expr::value(now))
        .col_expr(
            connection::Column::Status,
            Expr::value(ConnectionStatus::Healthy.as_str()),
        )
        .col_expr(
            connection::Column::StatusReason,
            Expr::value(Option::<String>::None),
        )
        .filter(connection::Column::Id.eq(id.to_string()))
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .exec(db.conn())
        .await?;
    Ok(())
}

async fn set_status(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
    status: ConnectionStatus,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let result = connection::Entity::update_many()
        .col_expr(connection::Column::Status, Expr::value(status.as_str()))
        .col_expr(
            connection::Column::StatusReason,
            Expr::value(reason.map(str::to_owned)),
        )
        .col_expr(connection::Column::UpdatedAt, Expr::value(now))
        .filter(connection::Column::Id.eq(id.to_string()))
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .exec(db.conn())
        .await?;
    if result.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Deletes a connection (its sealed credentials with it).
pub async fn delete(
    db: &impl Exec,
    tenant: &TenantId,
    id: &ConnectionId,
) -> Result<(), StoreError> {
    let result = connection::Entity::delete_many()
        .filter(connection::Column::Id.eq(id.to_string()))
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .exec(db.conn())
        .await?;
    if result.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// Flags every connection `user` created in the tenant for credential
/// rotation; returns them.
pub async fn flag_created_by(
    db: &impl Exec,
    tenant: &TenantId,
    user: &UserId,
    now: DateTime<Utc>,
) -> Result<Vec<Connection>, StoreError> {
    connection::Entity::update_many()
        .col_expr(connection::Column::NeedsRotation, Expr::value(true))
        .col_expr(connection::Column::UpdatedAt, Expr::value(now))
        .filter(connection::Column::TenantId.eq(tenant.to_string()))
        .filter(connection::Column::CreatedBy.eq(user.to_string()))
        .exec(db.conn())
        .await?;
    Ok(list(db, tenant)
        .await?
        .into_iter()
        .filter(|c| &c.created_by == user)
        .collect())
}

/// An OAuth authorization in progress.
#[derive(Debug, Clone)]
pub struct OAuthFlow {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Who started it (must finish it).
    pub user_id: UserId,
    /// Which connector.
    pub connector: ConnectorKey,
    /// The connection's name.
    pub name: String,
    /// Sandbox or production.
    pub environment: Environment,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// The PKCE verifier.
    pub pkce_verifier: String,
    /// After this, the flow is void.
    pub expires_at: DateTime<Utc>,
    /// The connection this attempt signs in again (none: a new one).
    pub reconnect: Option<ConnectionId>,
}

/// Stores a flow under the hash of its `state`, the verifier sealed.
pub async fn start_oauth(
    db: &impl Exec,
    vault: &Vault,
    state_hash: &str,
    flow: &OAuthFlow,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let sealed = vault
        .seal(
            &flow.tenant_id,
            flow.pkce_verifier.as_bytes(),
            &format!("oauth:{state_hash}"),
        )
        .await?;
    oauth_flow::ActiveModel {
        state_hash: Set(state_hash.to_owned()),
        tenant_id: Set(flow.tenant_id.to_string()),
        user_id: Set(flow.user_id.to_string()),
        connector: Set(flow.connector.as_str().to_owned()),
        name: Set(flow.name.clone()),
        environment: Set(flow.environment.as_str().to_owned()),
        scopes: Set(serde_json::to_string(&flow.scopes).unwrap_or_else(|_| "[]".into())),
        verifier_ciphertext: Set(sealed),
        created_at: Set(now),
        expires_at: Set(flow.expires_at),
        reconnect_id: Set(flow.reconnect.as_ref().map(ToString::to_string)),
    }
    .insert(db.conn())
    .await?;
    Ok(())
}

/// Takes (deletes and returns) the tenant's flow for `state_hash`: a state is
/// good for one callback only.
pub async fn take_oauth(
    db: &impl Exec,
    vault: &Vault,
    tenant: &TenantId,
    state_hash: &str,
) -> Result<OAuthFlow, StoreError> {
    let model = oauth_flow::Entity::find_by_id(state_hash.to_owned())
        .filter(oauth_flow::Column::TenantId.eq(tenant.to_string()))
        .one(db.conn())
        .await?
        .ok_or(StoreError::NotFound)?;
    let deleted = oauth_flow::Entity::delete_many()
        .filter(oauth_flow::Column::StateHash.eq(state_hash))
        .exec(db.conn())
        .await?;
    if deleted.rows_affected != 1 {
        return Err(StoreError::NotFound);
    }
    let verifier = vault
        .open(
            tenant,
            &model.verifier_ciphertext,
            &format!("oauth:{state_hash}"),
        )
        .await?;
    Ok(OAuthFlow {
        tenant_id: tenant.clone(),
        user_id: model
            .user_id
            .parse()
            .map_err(|_| StoreError::Corrupt("oauth_flows.user_id"))?,
        connector: ConnectorKey::parse(&model.connector)
            .ok_or(StoreError::Corrupt("oauth_flows.connector"))?,
        name: model.name,
        environment: Environment::parse(&model.environment)
            .ok_or(StoreError::Corrupt("oauth_flows.environment"))?,
        scopes: serde_json::from_str(&model.scopes)
            .map_err(|_| StoreError::Corrupt("oauth_flows.scopes"))?,
        pkce_verifier: String::from_utf8(verifier)
            .map_err(|_| StoreError::Corrupt("oauth_flows.verifier"))?,
        expires_at: model.expires_at,
        reconnect: match model.reconnect_id {
            None => None,
            Some(id) => Some(
                id.parse()
                    .map_err(|_| StoreError::Corrupt("oauth_flows.reconnect_id"))?,
            ),
        },
    })
}

/// Deletes OAuth attempts that expired unanswered; returns how many.
pub async fn purge_expired_flows(db: &impl Exec, now: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(oauth_flow::Entity::delete_many()
        .filter(oauth_flow::Column::ExpiresAt.lt(now))
        .exec(db.conn())
        .await?
        .rows_affected)
}

/// An authentication event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthEvent {
    /// Its id.
    pub id: AuthEventId,
    /// The connection.
    pub connection_id: String,
    /// `refresh_failed`, `revoked`, `unauthorized`, `creator_deactivated`, ...
    pub kind: String,
    /// What happened, for people.
    pub message: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Records an authentication event.
pub async fn record_auth_event(
    db: &impl Exec,
    tenant: &TenantId,
    connection: &ConnectionId,
    kind: &str,
    message: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    auth_event::ActiveModel {
        id: Set(AuthEventId::generate().to_string()),
        tenant_id: Set(tenant.to_string()),
        connection_id: Set(connection.to_string()),
        kind: Set(kind.to_owned()),
        message: Set(message.to_owned()),
        created_at: Set(now),
    }
    .insert(db.conn())
    .await?;
    Ok(())
}

/// A connection's authentication events, newest first.
pub async fn auth_events(
    db: &impl Exec,
    tenant: &TenantId,
    connection: &ConnectionId,
    limit: u64,
) -> Result<Vec<AuthEvent>, StoreError> {
    auth_event::Entity::find()
        .filter(auth_event::Column::TenantId.eq(tenant.to_string()))
        .filter(auth_event::Column::ConnectionId.eq(connection.to_string()))
        .order_by_desc(auth_event::Column::CreatedAt)
        .limit(limit)
        .all(db.conn())
        .await?
        .into_iter()
        .map(|m| {
            Ok(AuthEvent {
                id: m
                    .id
                    .parse()
                    .map_err(|_| StoreError::Corrupt("auth_events.id"))?,
                connection_id: m.connection_id,
                kind: m.kind,
                message: m.message,
                created_at: m.created_at,
            })
        })
        .collect()
}
