//! Email. `Mailer::send` stores the message (the outbox) and wakes the
//! delivery loop; `MailDelivery` hands queued messages to SMTP with retries
//! and back-off. With no SMTP configured, messages stay in the outbox, which
//! the UI shows, so nothing is ever silently dropped.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use ferry_core::{Clock, EmailAddress, TenantId};
use ferry_store::{Db, emails};
pub use lettre::message::Mailbox;
use lettre::message::MultiPart;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::Notify;

/// Where and as whom to send mail.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `smtp://user:pass@host:port` (plain or STARTTLS with `?tls=required`)
    /// or `smtps://…` (implicit TLS). A secret: it may hold a password.
    pub url: SecretString,
    /// The From header.
    pub from: Mailbox,
}

/// An email to send.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    /// The tenant the email concerns, if any.
    pub tenant: Option<TenantId>,
    /// The recipient: one person, never a list.
    pub to: EmailAddress,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// The same content as HTML, if any (sent as an alternative).
    pub html: Option<String>,
}

/// Accepts emails for delivery. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Mailer {
    db: Db,
    clock: Arc<dyn Clock>,
    smtp_configured: bool,
    wake: Arc<Notify>,
}

impl Mailer {
    /// A mailer writing to `db`; `smtp_configured` decides whether messages
    /// are queued for SMTP or kept in the outbox.
    pub fn new(db: Db, clock: Arc<dyn Clock>, smtp_configured: bool) -> Self {
        Self {
            db,
            clock,
            smtp_configured,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Whether messages go to SMTP (true) or stay in the local outbox.
    pub fn smtp_configured(&self) -> bool {
        self.smtp_configured
    }

    /// The status a new email starts with: queued for SMTP, or kept in
    /// the outbox.
    pub fn status(&self) -> &'static str {
        if self.smtp_configured {
            emails::STATUS_QUEUED
        } else {
            emails::STATUS_OUTBOX
        }
    }

    /// Wakes the delivery loop (after a transaction that stored emails
    /// itself committed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The signal the delivery loop waits on.
    pub fn wake_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Stores the email durably, then wakes the delivery loop.
    pub async fn send(&self, email: OutgoingEmail) -> anyhow::Result<emails::Email> {
        let stored = emails::insert(
            &self.db,
            emails::Draft {
                tenant: email.tenant.as_ref(),
                to: email.to.as_str(),
                subject: &email.subject,
                text: &email.body,
                html: email.html.as_deref(),
            },
            self.status(),
            self.clock.now(),
        )
        .await
        .context("storing an outgoing email")?;
        self.wake.notify_one();
        Ok(stored)
    }
}

/// Shutdown signal for background loops: a watch channel that flips to true.
pub type CancelSignal = tokio::sync::watch::Receiver<bool>;

/// Delivers queued emails over SMTP.
pub struct MailDelivery {
    db: Db,
    clock: Arc<dyn Clock>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Back-off between delivery attempts; after the last one the email is
/// marked failed (and stays visible with its error).
const RETRY_DELAYS_SECS: [i64; 7] = [10, 60, 300, 1800, 7200, 18000, 36000];

impl MailDelivery {
    /// Builds the SMTP transport from the settings.
    pub fn new(db: Db, clock: Arc<dyn Clock>, smtp: &SmtpSettings) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp.url.expose_secret())
            .context("FERRY_SMTP_URL is not a valid smtp:// or smtps:// URL")?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        Ok(Self {
            db,
            clock,
            transport,
            from: smtp.from.clone(),
        })
    }

    /// Delivers every due email once; returns how many were sent.
    pub async fn deliver_due(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let due = ferry_store::system::due(&self.db, now, 50).await?;
        let mut sent = 0;
        for email in due {
            // A lease, so two workers never send the same email at once.
            let lease = now + Duration::minutes(2);
            if !emails::claim(&self.db, &email.id, now, lease).await? {
                continue;
            }
            match self.deliver(&email).await {
                Ok(()) => {
                    emails::mark_sent(&self.db, &email.id, self.clock.now()).await?;
                    tracing::info!(email_id = %email.id, "email delivered");
                    sent += 1;
                }
                Err(error) => {
                    let attempt = usize::try_from(email.attempts).unwrap_or(0);
                    let retry_at: Option<DateTime<Utc>> = RETRY_DELAYS_SECS
                        .get(attempt)
                        .map(|secs| self.clock.now() + Duration::seconds(*secs));
                    tracing::warn!(email_id = %email.id, attempt = attempt + 1, final_attempt = retry_at.is_none(), error = %format!("{error:#}"), "email delivery failed");
                    emails::mark_attempt_failed(
                        &self.db,
                        &email.id,
                        &format!("{error:#}"),
                        retry_at,
                    )
                    .await?;
                }
            }
        }
        Ok(sent)
    }

    async fn deliver(&self, email: &emails::Email) -> anyhow::Result<()> {
        let to: Mailbox = email.to.parse().context("recipient address")?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone());
        let message = match &email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                email.body.clone(),
                html.clone(),
            )),
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(email.body.clone()),
        }
        .context("building the message")?;
        self.transport
            .send(message)
            .await
            .map_err(|e| anyhow::anyhow!(smtp_failure(&e)))?;
        Ok(())
    }

    /// Runs until `stop` flips: delivers when woken or every few seconds (so
    /// a worker process picks up mail queued by a web process).
    pub async fn run(self, wake: Arc<Notify>, mut stop: CancelSignal) {
        loop {
            if let Err(error) = self.deliver_due().await {
                tracing::error!(error = %format!("{error:#}"), "mail delivery loop failed; retrying");
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(3)) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

/// What went wrong with an SMTP delivery, for the log and the outbox row:
/// the kind and the reply code, never the server's text (which may quote the
/// recipient's address).
fn smtp_failure(e: &lettre::transport::smtp::Error) -> String {
    let kind = if e.is_permanent() {
        "the SMTP server refused the message permanently"
    } else if e.is_transient() {
        "the SMTP server refused the message for now"
    } else if e.is_timeout() {
        "the SMTP server did not answer in time"
    } else if e.is_tls() {
        "TLS with the SMTP server failed"
    } else {
        "the SMTP server was unreachable or broke the connection"
    };
    match e.status() {
        Some(code) => format!("{kind} (reply {code})"),
        None => kind.to_owned(),
    }
}
