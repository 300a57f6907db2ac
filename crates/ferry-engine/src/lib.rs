//! Background work: the run engine and its queue, the mailer (every email is
//! written to the outbox table first, then delivered by SMTP when one is
//! configured), token refresh, the metrics it keeps as it works, the alert
//! evaluation, and the housekeeping that expires sessions, old login
//! attempts and old rollups.

pub mod alerts;
pub mod connections;
pub mod evidence;
pub mod housekeeping;
pub mod mail;
pub mod metrics;
pub mod queue;
pub mod runs;
pub mod writer;

pub use mail::{MailDelivery, Mailer, OutgoingEmail, SmtpSettings};
