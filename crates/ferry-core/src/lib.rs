//! Ferry's domain: typed ids, parsed values and rules. No I/O lives here, so
//! every other crate can depend on it and tests can exercise it directly.

pub mod clock;
pub mod ids;
pub mod values;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ids::{AuditEventId, EmailId, InviteId, TenantId, UserId};
pub use values::{
    EmailAddress, FieldError, InviteKind, Password, PersonName, Role, TenantName, TenantStatus,
    UserStatus,
};
