//! A property value Ferry wrote itself: the change event it causes is an
//! echo, not a trigger.
use sea_orm::entity::prelude::*;

/// A recent write.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "echo_guards")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: String,
    pub record_id: String,
    pub property: String,
    #[sea_orm(column_type = "Text")]
    pub value: String,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
