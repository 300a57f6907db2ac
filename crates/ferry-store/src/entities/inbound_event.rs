//! A signed inbound request, stored before it is answered.
use sea_orm::entity::prelude::*;

/// A stored inbound event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbound_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub connection_id: String,
    pub source: String,
    pub event_type: String,
    pub dedupe_key: String,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub status: String,
    pub received_at: DateTimeUtc,
    pub correlation_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
