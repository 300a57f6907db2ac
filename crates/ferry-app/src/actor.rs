//! Who is acting: resolved once by a door (the session, an API token, the
//! command line) and passed to every service call.

use crate::Error;
use ferry_core::{Role, TenantId, UserId};

/// A member of one tenant, acting in it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Their user id.
    pub user_id: UserId,
    /// Their tenant (from the session, never from the request).
    pub tenant_id: TenantId,
    /// Their role there.
    pub role: Role,
    /// Their display name (emails name the inviter).
    pub name: String,
    /// How the audit log names them (their login address).
    pub label: String,
    /// The client address of the request, or "-" (the command line).
    pub client_ip: String,
}

impl Member {
    /// `Forbidden` unless the member is an admin of their tenant.
    pub fn require_admin(&self) -> Result<(), Error> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// A platform operator: manages tenants, sees no tenant's data.
#[derive(Debug, Clone)]
pub struct Operator {
    /// Their user id.
    pub user_id: UserId,
    /// Their display name.
    pub name: String,
    /// How the audit log names them.
    pub label: String,
    /// The client address of the request, or "-".
    pub client_ip: String,
}

/// Who the audit log names for an action.
pub(crate) struct Actor<'a> {
    pub tenant: Option<&'a TenantId>,
    pub user: &'a UserId,
    pub label: &'a str,
    pub client_ip: &'a str,
}

impl Member {
    pub(crate) fn actor(&self) -> Actor<'_> {
        Actor {
            tenant: Some(&self.tenant_id),
            user: &self.user_id,
            label: &self.label,
            client_ip: &self.client_ip,
        }
    }
}

impl Operator {
    pub(crate) fn actor(&self) -> Actor<'_> {
        Actor {
            tenant: None,
            user: &self.user_id,
            label: &self.label,
            client_ip: &self.client_ip,
        }
    }
}
