//! A tenant's team: who is on it, invites, roles, deactivation (which flags
//! the credentials the person issued), and password-reset links.

use crate::audit::{self, Target};
use crate::links::{self, LinkRequest};
use crate::{Error, Member, Parts};
use chrono::Duration;
use ferry_core::{AuditAction, EmailAddress, InviteKind, PersonName, Role, UserId, UserStatus};
use ferry_engine::OutgoingEmail;
use ferry_store::{Exec, connections, invites, tenants, users};
use serde_json::json;
use std::sync::Arc;

/// At most this many reset emails per address and hour.
pub const MAX_RESETS_PER_HOUR: u64 = 3;

/// The team.
#[derive(Clone)]
pub struct Users(pub(crate) Arc<Parts>);

/// Someone to invite.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// Their name.
    pub name: PersonName,
    /// Where the invite goes.
    pub email: EmailAddress,
    /// The role they will have.
    pub role: Role,
}

/// The team page's content.
#[derive(Debug, Clone)]
pub struct Team {
    /// Members, active and not.
    pub members: Vec<users::Member>,
    /// Invites not yet accepted (admins only; empty for staff).
    pub invites: Vec<invites::Invite>,
}

impl Users {
    /// The team; pending invites only for admins.
    pub async fn team(&self, who: &Member) -> Result<Team, Error> {
        let members = users::members(&self.0.db, &who.tenant_id).await?;
        let invites = if who.role == Role::Admin {
            invites::pending_for_tenant(&self.0.db, &who.tenant_id, self.0.clock.now()).await?
        } else {
            Vec::new()
        };
        Ok(Team { members, invites })
    }

    /// One member (admins).
    pub async fn member(&self, admin: &Member, id: &UserId) -> Result<users::Member, Error> {
        admin.require_admin()?;
        Ok(users::member(&self.0.db, &admin.tenant_id, id).await?)
    }

    /// Active members who can own a workflow.
    pub async fn active(&self, who: &Member) -> Result<Vec<users::Member>, Error> {
        Ok(users::members(&self.0.db, &who.tenant_id)
            .await?
            .into_iter()
            .filter(|m| m.status == UserStatus::Active)
            .collect())
    }

    /// Invites someone to the team by email. An address with an account
    /// elsewhere looks like any invite to the inviter; its owner is told by
    /// email, and the link cannot create a second account.
    pub async fn invite(&self, admin: &Member, new: NewInvite) -> Result<invites::Invite, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let mut already_registered = false;
        if let Some(existing) = users::find_by_email(db, &new.email).await? {
            let on_this_team = users::membership_of(db, &existing.id)
                .await?
                .is_some_and(|m| m.tenant.id == admin.tenant_id);
            if on_this_team {
                return Err(Error::field(
                    "email",
                    "This person is already on your team.",
                ));
            }
            already_registered = true;
        }
        let tenant = tenants::get(db, &admin.tenant_id).await?;
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        let link = links::create(
            &tx,
            &self.0.links,
            LinkRequest {
                kind: InviteKind::Invite,
                email: &new.email,
                name: new.name.as_str(),
                tenant: Some((&tenant.id, &tenant.name, new.role)),
                user_id: None,
                invited_by: Some((&admin.user_id, &admin.name)),
                already_registered,
            },
            now,
        )
        .await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::UserInvited,
            Target("invite", link.invite.id.as_str()),
            json!({ "email": new.email.as_str(), "role": new.role.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(link.send(&self.0.mailer).await?)
    }

    /// Changes a member's role (the last active admin keeps theirs).
    pub async fn change_role(
        &self,
        admin: &Member,
        id: &UserId,
        role: Role,
    ) -> Result<users::Member, Error> {
        admin.require_admin()?;
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        let before = users::member(&tx, &admin.tenant_id, id).await?;
        let after = users::set_role(&tx, &admin.tenant_id, id, role).await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::UserRoleChanged,
            Target("user", id.as_str()),
            json!({ "from": before.role.as_str(), "to": after.role.as_str() }),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Deactivates (signed out, sign-in refused; the connections they
    /// created are flagged for a new credential and the admins told) or
    /// reactivates a member.
    pub async fn set_status(
        &self,
        admin: &Member,
        id: &UserId,
        status: UserStatus,
    ) -> Result<users::Member, Error> {
        admin.require_admin()?;
        let now = self.0.clock.now();
        let tx = self.0.db.begin().await?;
        let m = users::set_member_status(&tx, &admin.tenant_id, id, status).await?;
        let action = match status {
            UserStatus::Deactivated => AuditAction::UserDeactivated,
            UserStatus::Active => AuditAction::UserReactivated,
        };
        audit::record(
            &tx,
            &admin.actor(),
            action,
            Target("user", id.as_str()),
            json!({}),
            now,
        )
        .await?;
        let flagged = if status == UserStatus::Deactivated {
            flag_connections_of(&tx, admin, &m.user, now).await?
        } else {
            Vec::new()
        };
        tx.commit().await?;
        if !flagged.is_empty() {
            self.tell_admins(admin, &m.user, &flagged).await?;
        }
        Ok(m)
    }

    async fn tell_admins(
        &self,
        admin: &Member,
        person: &users::User,
        names: &[String],
    ) -> Result<(), Error> {
        let base = self.0.links.public_url.as_str().trim_end_matches('/');
        for m in users::members(&self.0.db, &admin.tenant_id).await? {
            if m.role != Role::Admin || m.status != UserStatus::Active {
                continue;
            }
            let Ok(to) = EmailAddress::parse("email", &m.user.email) else {
                continue;
            };
            self.0
                .mailer
                .send(OutgoingEmail {
                    tenant: Some(admin.tenant_id.clone()),
                    to,
                    subject: "Connections need new credentials".into(),
                    body: format!(
                        "Hello {},\n\n{} was deactivated. These connections use credentials they issued, \
                         which must not outlive their access. Reconnect or replace the credential of each:\n\n{}\n\n{base}/connections\n",
                        m.user.name,
                        person.name,
                        names.join("\n")
                    ),
                    html: None,
                })
                .await?;
        }
        Ok(())
    }

    /// Emails a password-reset link to an active account's address, at most
    /// [`MAX_RESETS_PER_HOUR`] times an hour. Says nothing either way: the
    /// door must not reveal whether the account exists.
    pub async fn request_password_reset(&self, email: &EmailAddress) -> Result<(), Error> {
        let db = &self.0.db;
        let now = self.0.clock.now();
        let recent = invites::sent_since(
            db,
            InviteKind::PasswordReset,
            email,
            now - Duration::hours(1),
        )
        .await?;
        if recent >= MAX_RESETS_PER_HOUR {
            tracing::warn!("password reset refused: hourly limit for this address reached");
            return Ok(());
        }
        let Some(user) = users::find_by_email(db, email).await? else {
            return Ok(());
        };
        if user.status != UserStatus::Active {
            return Ok(());
        }
        let link = links::create(
            db,
            &self.0.links,
            LinkRequest {
                kind: InviteKind::PasswordReset,
                email,
                name: &user.name,
                tenant: None,
                user_id: Some(&user.id),
                invited_by: None,
                already_registered: false,
            },
            now,
        )
        .await?;
        link.send(&self.0.mailer).await?;
        tracing::info!(user_id = %user.id, "password reset link sent");
        Ok(())
    }
}

/// Credentials must not outlive the access of the person who issued them:
/// flags their connections for rotation and records why; returns the
/// connections' names for the admins' email.
async fn flag_connections_of(
    tx: &impl Exec,
    admin: &Member,
    person: &users::User,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, Error> {
    let flagged = connections::flag_created_by(tx, &admin.tenant_id, &person.id, now).await?;
    let mut names = Vec::new();
    for c in &flagged {
        let message = format!(
            "{} created this connection and was deactivated: replace its credential.",
            person.name
        );
        connections::record_auth_event(
            tx,
            &admin.tenant_id,
            &c.id,
            "creator_deactivated",
            &message,
            now,
        )
        .await?;
        names.push(format!("- {} ({})", c.name, c.connector.def().name));
    }
    Ok(names)
}
