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
        Ok(Overview {
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
