//! A tenant's connection to an app; its credentials are sealed by the vault.
use sea_orm::entity::prelude::*;

/// A stored connection.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub connector: String,
    pub name: String,
    pub environment: String,
    pub status: String,
    pub status_reason: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub scopes: String,
    pub external_account: Option<String>,
    pub base_url: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub secret_ciphertext: String,
    pub access_expires_at: Option<DateTimeUtc>,
    pub credential_expires_at: Option<DateTimeUtc>,
    pub needs_rotation: bool,
    pub version: i64,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
    pub refresh_lease_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
