//! A tenant's data key, wrapped (encrypted) by the master key.
use sea_orm::entity::prelude::*;

/// A stored wrapped data key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(column_type = "Text")]
    pub wrapped_key: String,
    pub master_key_id: String,
    pub created_at: DateTimeUtc,
    pub rotated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
