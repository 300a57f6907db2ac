//! Platform operators, created from the command line (there is no
//! operator before the first one): with a password, or with a one-time
//! invite link to print. Runs without the rest of the services (no mail,
//! no queue), so `ferry admin create-operator` works on a stopped Ferry.

use crate::Error;
use chrono::{DateTime, Duration, Utc};
use ferry_core::{AuditAction, EmailAddress, InviteKind, Password, PersonName};
use ferry_store::{Db, audit, invites, new_token, token_hash, users};

/// How the new operator gets in.
#[derive(Debug)]
pub enum Access {
    /// With this password.
    Password(Password),
    /// With a one-time invite link valid this long.
    Invite(Duration),
}

/// A new operator.
#[derive(Debug)]
pub struct NewOperator {
    /// Their login email.
    pub email: EmailAddress,
    /// Their name.
    pub name: PersonName,
    /// How they get in.
    pub access: Access,
}

/// What was created.
#[derive(Debug)]
pub enum Created {
    /// The account, with its password.
    WithPassword,
    /// An invite: the token to print in its link (shown once, stored hashed).
    Invited {
        /// The link's token.
        token: String,
    },
}

/// Whether an account already uses `email` (asked before prompting for a
/// password).
pub async fn email_taken(db: &Db, email: &EmailAddress) -> Result<bool, Error> {
    Ok(users::find_by_email(db, email).await?.is_some())
}

/// Creates an operator (or their invite) and records it in the platform
/// audit log as done from the command line, in one transaction.
pub async fn create(db: &Db, new: NewOperator, now: DateTime<Utc>) -> Result<Created, Error> {
    if users::find_by_email(db, &new.email).await?.is_some() {
        return Err(Error::field(
            "email",
            "An account with this email already exists.",
        ));
    }
    // Hashing is slow: before the transaction.
    let hash = match &new.access {
        Access::Password(p) => Some(crate::password::hash_password(p.expose().to_owned()).await?),
        Access::Invite(_) => None,
    };
    let tx = db.begin().await?;
    let (created, action, target) = match (new.access, hash) {
        (Access::Invite(ttl), _) => {
            let token = new_token();
            let invite = invites::create(
                &tx,
                invites::NewInvite {
                    kind: InviteKind::Invite,
                    email: &new.email,
                    name: new.name.as_str(),
                    tenant_id: None,
                    role: None,
                    user_id: None,
                    invited_by: None,
                    expires_at: now + ttl,
                },
                &token_hash(&token),
                now,
            )
            .await?;
            (
                Created::Invited { token },
                AuditAction::OperatorInvited,
                invite.id.to_string(),
            )
        }
        (Access::Password(_), hash) => {
            let user =
                users::create_operator(&tx, &new.email, new.name.as_str(), hash, now).await?;
            (
                Created::WithPassword,
                AuditAction::OperatorCreated,
                user.id.to_string(),
            )
        }
    };
    audit::record(
        &tx,
        audit::NewAuditEvent {
            tenant_id: None,
            actor_user_id: None,
            actor_label: "command line",
            action,
            target_kind: "user",
            target_id: &target,
            details: serde_json::json!({ "email": new.email.as_str() }),
            client_ip: "-",
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}
