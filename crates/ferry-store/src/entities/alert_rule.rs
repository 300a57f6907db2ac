//! An alert rule watching one workflow, with the state of its incident.
use sea_orm::entity::prelude::*;

/// A stored alert rule.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub tenant_id: String,
    pub workflow_id: String,
    pub kind: String,
    pub threshold: f64,
    pub window_minutes: i32,
    pub min_runs: i64,
    pub recipient_id: String,
    pub escalation_id: Option<String>,
    pub escalate_after_minutes: i32,
    pub enabled: bool,
    pub firing: bool,
    pub since: Option<DateTimeUtc>,
    pub acknowledged: bool,
    pub escalated: bool,
    pub resolved_at: Option<DateTimeUtc>,
    pub incident_id: Option<String>,
    pub version: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
