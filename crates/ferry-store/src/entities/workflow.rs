//! A workflow: its draft definition and which version is published.
use sea_orm::entity::prelude::*;

/// A stored workflow.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workflows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub owner_id: String,
    pub environment: String,
    #[sea_orm(column_type = "Text")]
    pub draft: String,
    #[sea_orm(column_type = "Text")]
    pub bindings: String,
    pub published_version: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub paused_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    pub review_due_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub profile: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
