//! An immutable published version of a workflow.
use sea_orm::entity::prelude::*;

/// A stored workflow version.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workflow_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub workflow_id: String,
    pub version: i32,
    #[sea_orm(column_type = "Text")]
    pub definition: String,
    #[sea_orm(column_type = "Text")]
    pub bindings: String,
    pub published_by: String,
    pub published_at: DateTimeUtc,
    #[sea_orm(column_type = "Text", nullable)]
    pub change_note: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub gate: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
