//! sea-orm entities: the storage shape. They never leave this crate's query
//! functions except as plain data; pages and forms have their own types.

pub mod alert_incident;
pub mod alert_notice;
pub mod alert_rule;
pub mod audit_event;
pub mod audit_head;
pub mod auth_event;
pub mod connection;
pub mod echo_guard;
pub mod email;
pub mod inbound_event;
pub mod invite;
pub mod login_attempt;
pub mod membership;
pub mod oauth_flow;
pub mod run;
pub mod run_step;
pub mod scheduler_tick;
pub mod session;
pub mod tenant;
pub mod tenant_key;
pub mod user;
pub mod verification;
pub mod workflow;
pub mod workflow_metric;
pub mod workflow_review;
pub mod workflow_sample;
pub mod workflow_version;
