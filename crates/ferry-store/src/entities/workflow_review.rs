//! One 90-day review of a workflow: the three answers, notes, and what
//! Ferry measured when the review was opened.
use sea_orm::entity::prelude::*;

/// A stored review.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workflow_reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub workflow_id: String,
    pub reviewer_user_id: Option<String>,
    pub reviewer_label: String,
    #[sea_orm(column_type = "Text")]
    pub answers: String,
    #[sea_orm(column_type = "Text")]
    pub notes: String,
    #[sea_orm(column_type = "Text")]
    pub measured: String,
    pub reviewed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
