//! Runs: one execution of a published workflow version for one inbound
//! event. The database is the source of truth for runs; the queue only
//! nudges workers. A run's working data (its context: the trigger payload and
//! every step's full output) is sealed with the tenant's data key; what pages
//! and exports show are the step records, whose PII fields are redacted
//! before they are stored.

mod batch;
mod ingest;
mod lifecycle;
mod query;
mod views;

pub use batch::*;
pub use ingest::*;
pub use lifecycle::*;
pub use query::*;
pub use views::*;

use crate::entities::{echo_guard, inbound_event, run, run_step, verification, workflow};
use crate::inbound::{NewEvent, Stored};
use crate::{Db, Exec, StoreError};
use chrono::{DateTime, Utc};
use ferry_core::{ConnectionId, EventId, RunId, TenantId, WorkflowId};
use sea_orm::sea_query::{Expr, ExprTrait, Order};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker (new, retrying after a back-off, or resumed).
    Queued,
    /// A worker holds it.
    Running,
    /// Parked until its event arrives or its timeout passes.
    Waiting,
    /// Every step done (or a condition ended it).
    Succeeded,
    /// Stopped for good by a non-retryable error or a validation failure.
    Failed,
    /// The last retry failed: dead-lettered, needs a person.
    Dead,
    /// Not run: the record was processed already, or an admin discarded
    /// it while the workflow was paused.
    Skipped,
    /// The workflow was paused when its event came: kept until an admin
    /// runs or discards it.
    Held,
}

impl RunStatus {
    /// Every status, for filters.
    pub const ALL: [Self; 8] = [
        Self::Queued,
        Self::Running,
        Self::Waiting,
        Self::Succeeded,
        Self::Failed,
        Self::Dead,
        Self::Skipped,
        Self::Held,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Waiting => "waiting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Skipped => "skipped",
            Self::Held => "held",
        }
    }

    /// From storage or a filter.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The status in plain words ("failed permanently", not "dead").
    pub fn words(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Waiting => "waiting for an event",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "failed permanently",
            Self::Skipped => "skipped",
            Self::Held => "held while paused",
        }
    }

    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Dead | Self::Skipped
        )
    }
}

/// A run as pages show it (no context).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The workflow.
    pub workflow_id: WorkflowId,
    /// The version it runs.
    pub version: i32,
    /// The event that started it.
    pub event_id: EventId,
    /// The record it concerns (e.g. the HubSpot contact id).
    pub record_id: Option<String>,
    /// The record's name for people, sealed (never exported as is).
    #[serde(skip)]
    pub record_label: Option<String>,
    /// Where it is.
    pub status: RunStatus,
    /// The step it is at (0-based).
    pub step_index: i32,
    /// Attempts made at that step.
    pub step_attempt: i32,
    /// When it will next be looked at (back-off or wait deadline).
    pub wake_at: Option<DateTime<Utc>>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// How often it was replayed.
    pub replays: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// When its payloads were purged (retention), if they were.
    pub purged_at: Option<DateTime<Utc>>,
}

impl TryFrom<run::Model> for Run {
    type Error = StoreError;
    fn try_from(m: run::Model) -> Result<Self, StoreError> {
        Ok(Self {
            id: m.id.parse().map_err(|_| StoreError::Corrupt("runs.id"))?,
            workflow_id: m
                .workflow_id
                .parse()
                .map_err(|_| StoreError::Corrupt("runs.workflow_id"))?,
            version: m.version,
            event_id: m
                .event_id
                .parse()
                .map_err(|_| StoreError::Corrupt("runs.event_id"))?,
            record_id: m.record_id,
            record_label: m.record_label,
            status: RunStatus::parse(&m.status).ok_or(StoreError::Corrupt("runs.status"))?,
            step_index: m.step_index,
            step_attempt: m.step_attempt,
            wake_at: m.wake_at,
            error: m.error,
            replays: m.replays,
            created_at: m.created_at,
            updated_at: m.updated_at,
            finished_at: m.finished_at,
            purged_at: m.purged_at,
        })
    }
}

/// A run a worker holds, with its sealed context.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The run.
    pub run: Run,
    /// The sealed context.
    pub context: String,
    /// The tenant.
    pub tenant: TenantId,
    /// Its workflow's gate, when the claim read it (a batch reads the
    /// gates of all its claims at once).
    pub gate: Option<Gate>,
}

#[cfg(test)]
mod tests;
