//! Background work. For now: the mailer (every email is written to the
//! outbox table first, then delivered by SMTP when one is configured) and the
//! housekeeping that expires sessions and old login attempts.

pub mod connections;
pub mod housekeeping;
pub mod mail;
pub mod queue;
pub mod runs;

pub use mail::{MailDelivery, Mailer, OutgoingEmail, SmtpSettings};
