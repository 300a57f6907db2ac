//! Signing in and out, and one-time links (invites, password resets):
//! the throttle, the password check, the account's and firm's status, the
//! new session, and the audit entries. The door owns the cookie; this
//! service hands it the session token to set.

use crate::password::{hash_password, verify_password};
use crate::throttle::{self, LoginLocks, Reason, Verdict};
use crate::{Error, Parts};
use ferry_core::{
    AuditAction, EmailAddress, FieldError, FieldErrors, InviteKind, Password, TenantId,
    TenantStatus, UserId, UserStatus,
};
use ferry_store::invites::{self, Invite, LinkState};
use ferry_store::{
    StoreError, audit, login_attempts, new_token, sessions, tenants, token_hash, users,
};
use std::sync::Arc;

/// What a failed sign-in says when the account is not proven.
pub const GENERIC_FAILURE: &str = "Invalid email or password.";

/// Sign-in and links.
#[derive(Clone)]
pub struct Auth {
    parts: Arc<Parts>,
    /// Attempts of one (account, client) pair queue behind each other.
    locks: LoginLocks,
}

impl Auth {
    pub(crate) fn new(parts: Arc<Parts>) -> Self {
        Self {
            parts,
            locks: LoginLocks::default(),
        }
    }
}

/// A sign-in attempt, as typed.
#[derive(Debug)]
pub struct SignIn<'a> {
    /// The email as typed.
    pub email: &'a str,
    /// The password as typed.
    pub password: String,
    /// The client's address (the throttle's key).
    pub client_ip: &'a str,
    /// The session the browser already had (ended: a new id at every login).
    pub previous_session: Option<&'a str>,
}

/// How a sign-in ended.
#[derive(Debug)]
pub enum SignInOutcome {
    /// Signed in: the new session's token (for the cookie).
    SignedIn {
        /// The session token.
        token: String,
        /// Whether the account is a platform operator.
        operator: bool,
    },
    /// Too many failures: wait this long (whole seconds, at least 1).
    Throttled {
        /// What to tell the person.
        message: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The form is incomplete.
    Invalid(FieldErrors),
    /// Email or password wrong (nothing said about which).
    Failed,
    /// The password proved who this is, and access is refused: why.
    Refused(String),
}

/// A one-time link that may be used, with what its page says.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// The invite or reset.
    pub invite: Invite,
    /// The page's heading.
    pub heading: String,
    /// The page's introduction.
    pub intro: String,
}

/// A link that cannot be used.
#[derive(Debug, Clone)]
pub enum LinkProblem {
    /// No such link (or one of the other kind): a 404.
    Unknown,
    /// Expired or used: a 410 saying what to do.
    Gone(String),
}

impl Auth {
    /// Signs in: the throttle first (per account and client), then the
    /// password, then the account's and firm's status; records the attempt.
    pub async fn sign_in(&self, attempt: SignIn<'_>) -> Result<SignInOutcome, Error> {
        let db = &self.parts.db;
        let key: String = attempt
            .email
            .trim()
            .to_lowercase()
            .chars()
            .take(254)
            .collect();
        let client = throttle::client_key(attempt.client_ip);
        // The check, the password and the record of the outcome happen as
        // one step per (account, client) pair, so parallel guesses queue.
        let _turn = self.locks.lock(&key, &client).await;
        let now = self.parts.clock.now();
        if let Verdict::Wait { until, reason } = throttle::check(db, &key, &client, now).await? {
            let wait = throttle::describe_wait(until - now);
            let message = match reason {
                Reason::Pair => format!(
                    "Too many failed sign-in attempts for this email address from your network. \
                     Try again in {wait}, or reset your password."
                ),
                Reason::Address => format!(
                    "Too many failed sign-in attempts from your network. Try again in {wait}."
                ),
            };
            tracing::warn!(client_ip = %attempt.client_ip, ?reason, "login throttled");
            let retry_after_secs = u64::try_from((until - now).num_milliseconds())
                .unwrap_or(0)
                .div_ceil(1000)
                .max(1);
            return Ok(SignInOutcome::Throttled {
                message,
                retry_after_secs,
            });
        }

        let mut errors = FieldErrors::new();
        let email = errors.check(EmailAddress::parse("email", attempt.email));
        if attempt.password.is_empty() {
            errors.push(FieldError::new("password", "Enter your password."));
        }
        let Some(email) = email.filter(|_| errors.is_empty()) else {
            return Ok(SignInOutcome::Invalid(errors));
        };

        let user = users::find_by_email(db, &email).await?;
        let verified = verify_password(
            attempt.password,
            user.as_ref().and_then(|u| u.password_hash.clone()),
        )
        .await;
        let Some(user) = user.filter(|_| verified) else {
            login_attempts::record(db, &key, &client, false, now).await?;
            return Ok(SignInOutcome::Failed);
        };

        // The password proved who this is, so a specific reason may be given.
        let refuse = |message: String| Ok(SignInOutcome::Refused(message));
        if user.status != UserStatus::Active {
            return refuse("Your access to Ferry has been deactivated.".into());
        }
        let tenant = if user.is_operator {
            None
        } else {
            match users::membership_of(db, &user.id).await? {
                Some(m) if m.tenant.status == TenantStatus::Suspended => {
                    return refuse(
                        "Your firm's access to Ferry is suspended. Contact your Ferry operator."
                            .into(),
                    );
                }
                Some(m) if m.status != UserStatus::Active => {
                    return refuse(format!(
                        "Your access to {} has been deactivated. Ask an admin of your firm.",
                        m.tenant.name
                    ));
                }
                Some(m) => Some(m.tenant.id),
                None => return refuse("Your account does not belong to a firm.".into()),
            }
        };

        login_attempts::record(db, &key, &client, true, now).await?;
        // A new session id at every login: a planted cookie is worth nothing.
        if let Some(old) = attempt.previous_session {
            sessions::delete(db, old).await?;
        }
        let token = new_token();
        sessions::create(
            db,
            &token_hash(&token),
            &user.id,
            tenant.as_ref(),
            &new_token(),
            attempt.client_ip,
            now,
        )
        .await?;
        users::record_login(db, &user.id, now).await?;
        self.record(
            tenant.as_ref(),
            &user.id,
            &user.email,
            AuditAction::UserLoggedIn,
            serde_json::json!({}),
            attempt.client_ip,
            now,
        )
        .await?;
        Ok(SignInOutcome::SignedIn {
            token,
            operator: user.is_operator,
        })
    }

    /// Ends a session on the server and records it.
    pub async fn sign_out(
        &self,
        session_hash: &str,
        user: &UserId,
        label: &str,
        tenant: Option<&TenantId>,
        client_ip: &str,
    ) -> Result<(), Error> {
        sessions::delete(&self.parts.db, session_hash).await?;
        self.record(
            tenant,
            user,
            label,
            AuditAction::UserLoggedOut,
            serde_json::json!({}),
            client_ip,
            self.parts.clock.now(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)] // one audit row's columns, named at the call
    async fn record(
        &self,
        tenant: Option<&TenantId>,
        user: &UserId,
        label: &str,
        action: AuditAction,
        details: serde_json::Value,
        client_ip: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        audit::record(
            &self.parts.db,
            audit::NewAuditEvent {
                tenant_id: tenant,
                actor_user_id: Some(user),
                actor_label: label,
                action,
                target_kind: "user",
                target_id: user.as_str(),
                details,
                client_ip,
            },
            now,
        )
        .await?;
        Ok(())
    }

    /// The link for `token` if it can still be used for `kind`.
    pub async fn link(
        &self,
        token: &str,
        kind: InviteKind,
    ) -> Result<Result<LinkView, LinkProblem>, Error> {
        if token.len() != 64 {
            return Ok(Err(LinkProblem::Unknown));
        }
        let db = &self.parts.db;
        let invite = match invites::lookup(db, &token_hash(token), self.parts.clock.now()).await? {
            LinkState::Valid(invite) if invite.kind == kind => invite,
            LinkState::Valid(_) | LinkState::Unknown => return Ok(Err(LinkProblem::Unknown)),
            LinkState::Expired => {
                return Ok(Err(LinkProblem::Gone(
                    "This link has expired. Ask whoever sent it for a new one, or use “Forgot your password?” on the sign-in page.".into(),
                )));
            }
            LinkState::Used => {
                return Ok(Err(LinkProblem::Gone(
                    "This link was already used. Sign in with your password, or use “Forgot your password?” on the sign-in page.".into(),
                )));
            }
        };
        let (heading, intro) = match (invite.kind, &invite.tenant_id) {
            (InviteKind::Invite, Some(tenant_id)) => {
                let tenant = tenants::get(db, tenant_id).await?;
                let role = invite.role.map_or("member", |r| r.label());
                (
                    format!("Join {}", tenant.name),
                    format!(
                        "You were invited as {}. Choose a password to finish setting up your account.",
                        role.to_lowercase()
                    ),
                )
            }
            (InviteKind::Invite, None) => (
                "Join the Ferry platform".to_owned(),
                "You were invited as a platform operator. Choose a password to finish setting up your account.".to_owned(),
            ),
            (InviteKind::PasswordReset, _) => (
                "Choose a new password".to_owned(),
                "Signing in again will be needed everywhere.".to_owned(),
            ),
        };
        Ok(Ok(LinkView {
            invite,
            heading,
            intro,
        }))
    }

    /// Uses the link: the account is created (invite) or its password
    /// replaced (reset, every session ended), once. This client's failures
    /// on the account no longer delay it (whoever set the password holds
    /// the mailbox).
    pub async fn redeem(
        &self,
        token: &str,
        invite: &Invite,
        password: Password,
        client_ip: &str,
    ) -> Result<Result<(), LinkProblem>, Error> {
        let db = &self.parts.db;
        let hash = hash_password(password.expose().to_owned()).await?;
        let user = match invites::redeem(db, &token_hash(token), hash, self.parts.clock.now()).await
        {
            Ok(user) => user,
            Err(StoreError::Conflict(message)) => return Ok(Err(LinkProblem::Gone(message))),
            Err(e) => return Err(e.into()),
        };
        let action = match invite.kind {
            InviteKind::Invite => AuditAction::InviteAccepted,
            InviteKind::PasswordReset => AuditAction::UserPasswordReset,
        };
        // A tenant member's reset belongs in their tenant's log (the reset
        // link itself names no tenant); an operator's in the platform log.
        let tenant = match invite.kind {
            InviteKind::Invite => invite.tenant_id.clone(),
            InviteKind::PasswordReset => users::membership_of(db, &user.id)
                .await?
                .map(|m| m.tenant.id),
        };
        login_attempts::record(
            db,
            &user.email.to_lowercase(),
            &throttle::client_key(client_ip),
            true,
            self.parts.clock.now(),
        )
        .await?;
        self.record(
            tenant.as_ref(),
            &user.id,
            &user.email,
            action,
            serde_json::json!({ "invite_id": invite.id.as_str() }),
            client_ip,
            self.parts.clock.now(),
        )
        .await?;
        Ok(Ok(()))
    }
}
