//! One-time links (invites, password resets): created hashed inside the
//! change's transaction, emailed once it has committed.

use chrono::{DateTime, Duration, Utc};
use ferry_core::{EmailAddress, InviteKind, Role, TenantId, UserId};
use ferry_engine::{Mailer, OutgoingEmail};
use ferry_store::{Exec, StoreError, invites, new_token, token_hash};

/// Where links point and how long they work.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Where users reach Ferry; links in emails start with it.
    pub public_url: url::Url,
    /// How long invite links work.
    pub link_ttl: Duration,
    /// How long password-reset links work.
    pub reset_ttl: Duration,
}

/// Who receives a one-time link, and what it grants.
pub(crate) struct LinkRequest<'a> {
    pub kind: InviteKind,
    pub email: &'a EmailAddress,
    pub name: &'a str,
    pub tenant: Option<(&'a TenantId, &'a str, Role)>,
    pub user_id: Option<&'a UserId>,
    /// The inviter's id and display name.
    pub invited_by: Option<(&'a UserId, &'a str)>,
    /// The address already has a Ferry account elsewhere: the email tells
    /// its owner so, without a usable link (and the inviter is not told).
    pub already_registered: bool,
}

/// A link stored but not yet emailed.
pub(crate) struct PendingLink {
    pub invite: invites::Invite,
    email: OutgoingEmail,
}

impl PendingLink {
    /// Emails the link (after the transaction that stored it committed).
    pub async fn send(self, mailer: &Mailer) -> anyhow::Result<invites::Invite> {
        mailer.send(self.email).await?;
        Ok(self.invite)
    }
}

/// Stores a one-time link (hashed) through `db` and writes its email.
pub(crate) async fn create(
    db: &impl Exec,
    settings: &LinkSettings,
    link: LinkRequest<'_>,
    now: DateTime<Utc>,
) -> Result<PendingLink, StoreError> {
    let token = new_token();
    let ttl = match link.kind {
        InviteKind::Invite => settings.link_ttl,
        InviteKind::PasswordReset => settings.reset_ttl,
    };
    let invite = invites::create(
        db,
        invites::NewInvite {
            kind: link.kind,
            email: link.email,
            name: link.name,
            tenant_id: link.tenant.map(|(t, _, _)| t),
            role: link.tenant.map(|(_, _, r)| r),
            user_id: link.user_id,
            invited_by: link.invited_by.map(|(id, _)| id),
            expires_at: now + ttl,
        },
        &token_hash(&token),
        now,
    )
    .await?;
    let (subject, body) = message(settings, &link, &token, ttl);
    Ok(PendingLink {
        invite,
        email: OutgoingEmail {
            tenant: link.tenant.map(|(t, _, _)| t.clone()),
            to: link.email.clone(),
            subject,
            body,
            html: None,
        },
    })
}

fn message(
    settings: &LinkSettings,
    link: &LinkRequest<'_>,
    token: &str,
    ttl: Duration,
) -> (String, String) {
    let base = settings.public_url.as_str().trim_end_matches('/');
    let hours = match ttl.num_hours() {
        1 => "1 hour".to_owned(),
        n => format!("{n} hours"),
    };
    let inviter = link.invited_by.map(|(_, name)| name);
    match link.kind {
        InviteKind::Invite if link.already_registered => {
            let tenant_name = link.tenant.map_or("a firm", |(_, n, _)| n);
            let inviter = inviter.unwrap_or("Someone");
            (
                "You are invited to Ferry".to_owned(),
                format!(
                    "Hello {name},\n\n{inviter} invited you to join {tenant_name} on Ferry.\n\n\
                     This email address already has a Ferry account, and an account belongs to \
                     one firm only, so this invitation cannot be accepted with it. If you should \
                     join {tenant_name}, reply to {inviter} with another address.\n\n\
                     If you did not expect this, ignore this email.\n",
                    name = link.name,
                ),
            )
        }
        InviteKind::Invite => {
            let what = match link.tenant {
                Some((_, tenant_name, role)) => {
                    format!(
                        "join {tenant_name} on Ferry as {}",
                        role.label().to_lowercase()
                    )
                }
                None => "become a Ferry platform operator".to_owned(),
            };
            let inviter = inviter.unwrap_or("Ferry");
            (
                "You are invited to Ferry".to_owned(),
                format!(
                    "Hello {name},\n\n{inviter} invited you to {what}.\n\n\
                     Choose your password here (the link works once, for {hours}):\n\
                     {base}/invite/{token}\n\n\
                     If you did not expect this, ignore this email.\n",
                    name = link.name,
                ),
            )
        }
        InviteKind::PasswordReset => (
            "Reset your Ferry password".to_owned(),
            format!(
                "Hello {name},\n\nSomeone (hopefully you) asked to reset your Ferry password.\n\n\
                 Choose a new password here (the link works once, for {hours}):\n\
                 {base}/password/reset/{token}\n\n\
                 If you did not ask for this, ignore this email: your password stays as it is.\n",
                name = link.name,
            ),
        ),
    }
}
