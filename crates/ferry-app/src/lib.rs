//! Ferry's capabilities as services. A page, an API endpoint, a CLI command
//! and the demo that do the same thing call the same method here, with a
//! typed actor ([`Member`] or [`Operator`]) and parsed input; the service
//! checks the actor's role, applies the rules, writes the change and its
//! audit entry in one transaction, and returns a domain result or one
//! [`Error`].
//!
//! Why a crate between the engine and the web layer: the engine is the
//! background machinery (queue, executor, mail delivery, token refresh) and
//! must not know about people, roles or forms; the web layer is one door of
//! several. What a person may do, and what it records, lives here once.

mod actor;
pub mod alerts;
mod audit;
pub mod auth;
mod error;
mod links;

pub mod connections;
pub mod evidence;
pub mod hooks;
pub mod operators;
pub mod overview;
pub mod password;
pub mod runs;
pub mod sandbox;
pub mod tenants;
pub mod throttle;
pub mod users;
pub mod workflows;

use ferry_core::Clock;
use ferry_engine::Mailer;
use ferry_engine::connections::ConnectionService;
use ferry_engine::runs::Engine;
use ferry_store::Db;
use std::sync::Arc;

pub use actor::{Member, Operator};

/// A person's display name, or "a former member" when the account is gone.
pub(crate) async fn person_name(db: &Db, id: &ferry_core::UserId) -> String {
    ferry_store::users::get(db, id)
        .await
        .map_or_else(|_| "a former member".to_owned(), |u| u.name)
}
pub use error::Error;
pub use links::LinkSettings;
pub use sandbox::SandboxLink;

/// What the services are built from.
pub struct Parts {
    /// The database.
    pub db: Db,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Outgoing mail (the outbox, then SMTP).
    pub mailer: Mailer,
    /// Credentials, refresh, connector calls.
    pub connections: ConnectionService,
    /// The run engine.
    pub engine: Engine,
    /// This process's sandbox simulators, when enabled.
    pub sandbox: Option<SandboxLink>,
    /// Where links in emails point and how long they work.
    pub links: LinkSettings,
    /// The key evidence packs are signed with (derived from the master
    /// key; never shown).
    pub evidence_key: [u8; 32],
}

/// Every service. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Signing in and out, one-time links.
    pub auth: auth::Auth,
    /// Connecting apps: keys, OAuth, test, revoke, sandbox samples.
    pub connections: connections::Connections,
    /// Inbound events (webhooks).
    pub hooks: hooks::Hooks,
    /// Workflows: create, edit, bind, publish, roll back, dry run.
    pub workflows: workflows::Workflows,
    /// Runs: list, inspect, export, replay.
    pub runs: runs::Runs,
    /// A tenant's team: invite, roles, deactivation.
    pub users: users::Users,
    /// Tenants, for platform operators.
    pub tenants: tenants::Tenants,
    /// Read-only views across capabilities (overview, account, audit logs, outbox).
    pub views: overview::Views,
    /// Monitoring and alerts: dashboard, health, rules, incidents.
    pub alerts: alerts::Alerts,
    /// Compliance evidence: audit, record trails, documentation,
    /// inventory, reviews, evidence packs.
    pub evidence: evidence::Evidence,
}

impl Services {
    /// Builds every service over the same parts.
    pub fn new(parts: Parts) -> Self {
        let parts = Arc::new(parts);
        Self {
            auth: auth::Auth::new(parts.clone()),
            connections: connections::Connections(parts.clone()),
            hooks: hooks::Hooks(parts.clone()),
            workflows: workflows::Workflows(parts.clone()),
            runs: runs::Runs(parts.clone()),
            users: users::Users(parts.clone()),
            tenants: tenants::Tenants(parts.clone()),
            views: overview::Views(parts.clone()),
            alerts: alerts::Alerts(parts.clone()),
            evidence: evidence::Evidence(parts.clone()),
        }
    }
}
