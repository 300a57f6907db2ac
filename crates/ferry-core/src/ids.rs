//! Typed, prefixed, random ids. A `TenantId` cannot be passed where a
//! `UserId` is expected, and parsing rejects an id with the wrong prefix, so
//! an id pasted into the wrong URL is a 404, not a confusing lookup.

use std::fmt;
use std::str::FromStr;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct IdError {
    kind: &'static str,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new random id (128 bits of randomness).
            pub fn generate() -> Self {
                Self(format!("{}_{:032x}", $prefix, rand::random::<u128>()))
            }

            /// The id as stored and shown.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let valid = s
                    .strip_prefix(concat!($prefix, "_"))
                    .is_some_and(|rest| {
                        rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    });
                if valid { Ok(Self(s.to_owned())) } else { Err(IdError { kind: $kind }) }
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

typed_id!(
    /// A tenant: one firm.
    TenantId, "ten", "tenant"
);
typed_id!(
    /// A person who can log in.
    UserId, "usr", "user"
);
typed_id!(
    /// An invite or password-reset link.
    InviteId, "inv", "invite"
);
typed_id!(
    /// An email in the outbox.
    EmailId, "eml", "email"
);
typed_id!(
    /// An entry of the audit log.
    AuditEventId, "aud", "audit event"
);

typed_id!(
    /// A connection: one tenant's credentials for one app.
    ConnectionId, "con", "connection"
);
typed_id!(
    /// An authentication event (failed refresh, revoked grant, ...).
    AuthEventId, "aev", "authentication event"
);

typed_id!(
    /// An inbound event (a signed webhook request Ferry accepted).
    EventId, "evt", "event"
);

typed_id!(
    /// A workflow.
    WorkflowId, "wf", "workflow"
);
typed_id!(
    /// An immutable published version of a workflow.
    WorkflowVersionId, "wfv", "workflow version"
);
typed_id!(
    /// One execution of a workflow version for one event.
    RunId, "run", "run"
);
typed_id!(
    /// An alert rule watching one workflow.
    AlertRuleId, "alr", "alert rule"
);
typed_id!(
    /// One incident of an alert rule: from firing to resolved.
    IncidentId, "inc", "incident"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_are_distinct() {
        let a = TenantId::generate();
        let b = TenantId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().parse::<TenantId>(), Ok(a.clone()));
        assert!(a.as_str().starts_with("ten_"));
    }

    #[test]
    fn wrong_prefix_or_shape_is_rejected() {
        let user = UserId::generate();
        assert!(user.as_str().parse::<TenantId>().is_err());
        assert!("ten_".parse::<TenantId>().is_err());
        assert!("ten_1234".parse::<TenantId>().is_err());
        assert!("ten_' OR 1=1 --".parse::<TenantId>().is_err());
        let upper = format!("ten_{}", "A".repeat(32));
        assert!(upper.parse::<TenantId>().is_err());
    }
}
