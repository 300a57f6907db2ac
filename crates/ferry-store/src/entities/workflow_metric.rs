//! One workflow's metric rollup over one minute or one hour (`span`, in
//! minutes), with its latency histogram in `l00` … `l15`.
use sea_orm::entity::prelude::*;

/// A stored rollup.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "workflow_metrics")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub workflow_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub span: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub at: DateTimeUtc,
    pub events: i64,
    pub started: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub dead: i64,
    pub writes: i64,
    pub writes_failed: i64,
    pub deadlines_missed: i64,
    pub latency_sum_ms: i64,
    pub l00: i64,
    pub l01: i64,
    pub l02: i64,
    pub l03: i64,
    pub l04: i64,
    pub l05: i64,
    pub l06: i64,
    pub l07: i64,
    pub l08: i64,
    pub l09: i64,
    pub l10: i64,
    pub l11: i64,
    pub l12: i64,
    pub l13: i64,
    pub l14: i64,
    pub l15: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
