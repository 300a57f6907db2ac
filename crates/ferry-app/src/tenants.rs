//! Tenants, for platform operators: create (with an invite to the first
//! admin), suspend, reactivate, delete with the name typed to confirm.

use crate::audit::{self, Target};
use crate::links::{self, LinkRequest};
use crate::{Error, Operator, Parts};
use ferry_core::{
    AuditAction, EmailAddress, FieldError, FieldErrors, InviteKind, PersonName, Role, TenantId,
    TenantName, TenantStatus,
};
use ferry_store::tenants::{self, Tenant, TenantSummary};
use ferry_store::users;
use serde_json::json;
use std::sync::Arc;

/// Tenants. Every method needs an operator.
#[derive(Clone)]
pub struct Tenants(pub(crate) Arc<Parts>);

/// A new tenant and who its first admin is.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// The firm's name.
    pub name: TenantName,
    /// The first admin's name.
    pub admin_name: PersonName,
    /// The first admin's address (the invite goes there).
    pub admin_email: EmailAddress,
}

/// One tenant with its number of members.
#[derive(Debug, Clone)]
pub struct TenantView {
    /// The tenant.
    pub tenant: Tenant,
    /// How many people belong to it.
    pub members: u64,
}

impl Tenants {
    /// Every tenant with counts.
    pub async fn list(&self, _op: &Operator) -> Result<Vec<TenantSummary>, Error> {
        Ok(tenants::list_with_counts(&self.0.db).await?)
    }

    /// One tenant.
    pub async fn get(&self, _op: &Operator, id: &TenantId) -> Result<TenantView, Error> {
        let tenant = tenants::get(&self.0.db, id).await?;
        let members = tenants::member_count(&self.0.db, id).await?;
        Ok(TenantView { tenant, members })
    }

    /// Creates the tenant and invites its first admin.
    pub async fn create(&self, op: &Operator, new: NewTenant) -> Result<Tenant, Error> {
        let db = &self.0.db;
        if users::find_by_email(db, &new.admin_email).await?.is_some() {
            return Err(Error::field(
                "admin_email",
                "This person already has a Ferry account; invite someone else.",
            ));
        }
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        let tenant = tenants::create(&tx, &new.name, now).await?;
        let link = links::create(
            &tx,
            &self.0.links,
            LinkRequest {
                kind: InviteKind::Invite,
                email: &new.admin_email,
                name: new.admin_name.as_str(),
                tenant: Some((&tenant.id, &tenant.name, Role::Admin)),
                user_id: None,
                invited_by: Some((&op.user_id, &op.name)),
                already_registered: false,
            },
            now,
        )
        .await?;
        audit::record(
            &tx,
            &op.actor(),
            AuditAction::TenantCreated,
            Target("tenant", tenant.id.as_str()),
            json!({ "name": tenant.name }),
            now,
        )
        .await?;
        tx.commit().await?;
        link.send(&self.0.mailer).await?;
        Ok(tenant)
    }

    /// Suspends (users signed out, sign-in refused) or reactivates.
    pub async fn set_status(
        &self,
        op: &Operator,
        id: &TenantId,
        status: TenantStatus,
    ) -> Result<Tenant, Error> {
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        let tenant = tenants::set_status(&tx, id, status, now).await?;
        let action = match status {
            TenantStatus::Suspended => AuditAction::TenantSuspended,
            TenantStatus::Active => AuditAction::TenantReactivated,
        };
        audit::record(
            &tx,
            &op.actor(),
            action,
            Target("tenant", tenant.id.as_str()),
            json!({ "name": tenant.name }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(tenant)
    }

    /// Deletes the tenant and everything it owns, only when `confirm_name`
    /// is its name exactly.
    pub async fn delete(
        &self,
        op: &Operator,
        id: &TenantId,
        confirm_name: &str,
    ) -> Result<Tenant, Error> {
        let tenant = tenants::get(&self.0.db, id).await?;
        if confirm_name.trim() != tenant.name {
            return Err(Error::Invalid(FieldErrors::from(FieldError::new(
                "confirm_name",
                "Type the tenant's name exactly as shown to confirm.",
            ))));
        }
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        tenants::delete(&tx, id).await?;
        audit::record(
            &tx,
            &op.actor(),
            AuditAction::TenantDeleted,
            Target("tenant", id.as_str()),
            json!({ "name": tenant.name, "data_key": "destroyed" }),
            now,
        )
        .await?;
        tx.commit().await?;
        self.0.connections.vault().forget(id);
        Ok(tenant)
    }
}
