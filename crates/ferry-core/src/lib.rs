//! Ferry's domain: typed ids, parsed values and rules. No I/O lives here, so
//! every other crate can depend on it and tests can exercise it directly.

pub mod alerts;
pub mod audit;
pub mod catalog;
pub mod clock;
pub mod ids;
pub mod metrics;
pub mod values;

pub use audit::AuditAction;
pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{
    AlertRuleId, AuditEventId, AuthEventId, ConnectionId, EmailId, EventId, IncidentId, InviteId,
    RunId, TenantId, UserId, WorkflowId, WorkflowVersionId,
};
pub use values::{
    ConnectionStatus, Credentials, EmailAddress, Environment, FieldError, FieldErrors, InviteKind,
    Password, PersonName, Role, Secret, TenantName, TenantStatus, UserStatus,
};
pub mod mapping;
pub mod redact;
pub mod search;
pub mod validate;
pub mod workflow;
