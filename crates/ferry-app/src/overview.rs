//! Read-only views that span capabilities: a member's overview page, an
//! account, the audit logs, and the local mail outbox.

use crate::{Error, Member, Operator, Parts};
use ferry_core::{EmailId, Role, UserId, UserStatus};
use ferry_store::audit::{self, AuditEvent};
use ferry_store::runs::{self, RunStatus};
use ferry_store::{emails, invites, users};
use std::sync::Arc;

/// Read-only views.
#[derive(Clone)]
pub struct Views(pub(crate) Arc<Parts>);

/// A member's overview.
#[derive(Debug, Clone)]
pub struct Overview {
    /// Active members.
    pub active_members: usize,
    /// Active admins.
    pub admins: usize,
    /// Invites not yet accepted (admins only; 0 for staff).
    pub pending_invites: usize,
    /// The newest audit events (admins only).
    pub activity: Vec<AuditEvent>,
    /// Runs by status, those with any.
    pub runs: Vec<(RunStatus, u64)>,
    /// Whether the tenant has a sandbox HubSpot portal (admins only).
    pub sandbox_portal: bool,
    /// Getting started, for admins until every step is done (empty then,
    /// and for staff).
    pub onboarding: Vec<Onboarding>,
}

/// A step of getting started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarding {
    /// What to do.
    pub label: &'static str,
    /// Where to do it.
    pub href: &'static str,
    /// Done already.
    pub done: bool,
}

impl Views {
    /// The overview page's content.
    pub async fn overview(&self, who: &Member) -> Result<Overview, Error> {
        let db = &self.0.db;
        let members = users::members(db, &who.tenant_id).await?;
        let active: Vec<_> = members
            .iter()
            .filter(|m| m.status == UserStatus::Active)
            .collect();
        let is_admin = who.role == Role::Admin;
        let (pending_invites, activity) = if is_admin {
            (
                invites::pending_for_tenant(db, &who.tenant_id, self.0.clock.now())
                    .await?
                    .len(),
                audit::for_tenant(db, &who.tenant_id, 8).await?,
            )
        } else {
            (0, Vec::new())
        };
        let counts = runs::count_by_status(db, &who.tenant_id).await?;
        let runs = RunStatus::ALL
            .iter()
            .map(|s| {
                (
                    *s,
                    counts.iter().find(|(c, _)| c == s).map_or(0, |(_, n)| *n),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let connections = crate::connections::Connections(self.0.clone());
        let sandbox_portal = is_admin
            && connections.sandbox_available()
            && connections.sandbox_portal(who).await?.is_some();
        let onboarding = if is_admin {
            let conns = ferry_store::connections::list(db, &who.tenant_id).await?;
            let flows = ferry_store::workflows::list(db, &who.tenant_id).await?;
            let has = |k: ferry_core::catalog::ConnectorKey| conns.iter().any(|c| c.connector == k);
            let tested = ferry_store::workflows::any_sample(db, &who.tenant_id).await?;
            let staff = members.iter().any(|m| m.role == Role::Staff) || pending_invites > 0;
            let steps = vec![
                Onboarding {
                    label: "Connect HubSpot",
                    href: "/connections/new/hubspot",
                    done: has(ferry_core::catalog::ConnectorKey::HubSpot),
                },
                Onboarding {
                    label: "Connect your identity-verification provider",
                    href: "/connections/new/verification",
                    done: has(ferry_core::catalog::ConnectorKey::Verification),
                },
                Onboarding {
                    label: "Create a workflow from the template, or build one",
                    href: "/workflows/new",
                    done: !flows.is_empty(),
                },
                Onboarding {
                    label: "Test it on a real record",
                    href: "/workflows",
                    done: tested,
                },
                Onboarding {
                    label: "Publish it",
                    href: "/workflows",
                    done: flows.iter().any(|w| w.published_version.is_some()),
                },
                Onboarding {
                    label: "Invite your staff",
                    href: "/users",
                    done: staff,
                },
            ];
            if steps.iter().all(|s| s.done) {
                vec![]
            } else {
                steps
            }
        } else {
            vec![]
        };
        Ok(Overview {
            onboarding,
            active_members: active.len(),
            admins: active.iter().filter(|m| m.role == Role::Admin).count(),
            pending_invites,
            activity,
            runs,
            sandbox_portal,
        })
    }

    /// A signed-in person's own account.
    pub async fn account(&self, user: &UserId) -> Result<users::User, Error> {
        Ok(users::get(&self.0.db, user).await?)
    }

    /// The tenant's audit log, newest first (admins).
    pub async fn tenant_audit(&self, admin: &Member, limit: u64) -> Result<Vec<AuditEvent>, Error> {
        admin.require_admin()?;
        Ok(audit::for_tenant(&self.0.db, &admin.tenant_id, limit).await?)
    }

    /// The platform's audit log (operators' actions), newest first.
    pub async fn platform_audit(
        &self,
        _op: &Operator,
        limit: u64,
    ) -> Result<Vec<AuditEvent>, Error> {
        Ok(audit::platform(&self.0.db, limit).await?)
    }

    /// The newest emails of the outbox (a local Ferry's operator only; the
    /// door decides whether the outbox is shown at all).
    pub async fn outbox(&self, _op: &Operator, limit: u64) -> Result<Vec<emails::Email>, Error> {
        Ok(emails::recent(&self.0.db, limit).await?)
    }

    /// One email of the outbox.
    pub async fn outbox_email(&self, _op: &Operator, id: &EmailId) -> Result<emails::Email, Error> {
        Ok(emails::get(&self.0.db, id).await?)
    }
}
