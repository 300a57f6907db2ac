//! One execution of a workflow version for one event.
use sea_orm::entity::prelude::*;

/// A run.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub workflow_id: String,
    pub version: i32,
    pub event_id: String,
    pub record_id: Option<String>,
    pub status: String,
    pub step_index: i32,
    pub step_attempt: i32,
    #[sea_orm(column_type = "Text")]
    pub context: String,
    pub wait_key: Option<String>,
    pub wake_at: Option<DateTimeUtc>,
    pub lease_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub replays: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    /// The record's name for people, sealed (aad `label:<run id>`).
    #[sea_orm(column_type = "Text", nullable)]
    pub record_label: Option<String>,
    /// Keyed hashes of the record's name words and email, space-delimited.
    #[sea_orm(column_type = "Text", nullable)]
    pub search_keys: Option<String>,
    pub purged_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
