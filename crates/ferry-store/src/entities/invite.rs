//! A one-time emailed link: an invite or a password reset. Only the token's
//! SHA-256 is stored.
use sea_orm::entity::prelude::*;

/// A stored one-time link.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "invites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub kind: String,
    pub email: String,
    pub name: String,
    pub tenant_id: Option<String>,
    pub role: Option<String>,
    pub user_id: Option<String>,
    pub invited_by: Option<String>,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
