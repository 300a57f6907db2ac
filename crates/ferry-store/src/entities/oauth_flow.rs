//! An OAuth authorization in progress: the state (hashed) and the sealed
//! PKCE verifier, single use.
use sea_orm::entity::prelude::*;

/// A stored OAuth flow.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_flows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    pub tenant_id: String,
    pub user_id: String,
    pub connector: String,
    pub name: String,
    pub environment: String,
    #[sea_orm(column_type = "Text")]
    pub scopes: String,
    #[sea_orm(column_type = "Text")]
    pub verifier_ciphertext: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub reconnect_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
