//! sea-orm entities: the storage shape. They never leave this crate's query
//! functions except as plain data; pages and forms have their own types.

pub mod audit_event;
pub mod email;
pub mod invite;
pub mod login_attempt;
pub mod membership;
pub mod session;
pub mod tenant;
pub mod user;
