//! An entry of the append-only audit log.
use sea_orm::entity::prelude::*;

/// A stored audit event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    #[sea_orm(unique)]
    pub id: String,
    pub tenant_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub actor_label: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    #[sea_orm(column_type = "Text")]
    pub details: String,
    pub client_ip: String,
    pub created_at: DateTimeUtc,
    pub chain: Option<String>,
    pub chain_seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
    pub workflow_id: Option<String>,
    pub record_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
