//! Values parsed at the edge. Past a handler, code sees only these types, so
//! an unchecked string never reaches storage.

use std::fmt;

/// A message about one form or API field, shown next to it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field's name as it appears in the form or JSON body.
    pub field: &'static str,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl FieldError {
    /// A message about `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// The field errors of one form or request, in order; looked up by field
/// name when a form is shown again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// No errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an error.
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    /// Keeps the value, or records its error.
    pub fn check<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    /// The message for `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    /// Whether the input was valid.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many fields are wrong.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Every error, in order.
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    /// `Ok(())` when empty, else the errors.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<FieldError> for FieldErrors {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// An email address, trimmed and lower-cased, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Longest address SMTP can carry (RFC 5321 path limit less the brackets).
    pub const MAX_LEN: usize = 254;

    /// Parses a user-supplied address; `field` names the input for the message.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new(field, "Enter an email address."));
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                format!("An email address has at most {} characters.", Self::MAX_LEN),
            ));
        }
        let lowered = trimmed.to_lowercase();
        // The crate accepts RFC 5322 forms (quoted locals, IP literals) that
        // mail providers do not; a firm's users need a plain domain address.
        let valid = email_address::EmailAddress::parse_with_options(
            &lowered,
            email_address::Options::default()
                .without_display_text()
                .with_required_tld(),
        )
        .is_ok()
            && !lowered.contains(['"', '[', ']', ' ', '<', '>']);
        if !valid {
            return Err(FieldError::new(
                field,
                "Enter an email address like name@example.com.",
            ));
        }
        Ok(Self(lowered))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bounded_text(
    field: &'static str,
    raw: &str,
    what: &str,
    max: usize,
) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, format!("Enter {what}.")));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("Use at most {max} characters."),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "Remove line breaks and control characters.",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A tenant's (firm's) display name: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    /// Parses a user-supplied firm name.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        bounded_text(field, raw, "the firm's name", 100).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's display name: 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    /// Parses a user-supplied name.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        bounded_text(field, raw, "a name", 100).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password that meets the policy (OWASP ASVS 5.0 §6.2: at least 12
/// characters, up to 128, any characters, no composition rules).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Shortest accepted password.
    pub const MIN_LEN: usize = 12;
    /// Longest accepted password.
    pub const MAX_LEN: usize = 128;

    /// Checks a new password and its confirmation.
    pub fn parse_new(
        field: &'static str,
        raw: &str,
        confirmation: &str,
    ) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(FieldError::new(
                field,
                format!("Use at least {} characters.", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                format!("Use at most {} characters.", Self::MAX_LEN),
            ));
        }
        if raw != confirmation {
            return Err(FieldError::new(
                "password_confirmation",
                "The two passwords do not match.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in display order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored and submitted form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Parses the stored or submitted form.
            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What a member of a tenant may do.
    Role {
        /// Connects apps, builds workflows, manages the tenant's users.
        Admin => "admin",
        /// Reads statuses and run history; changes nothing.
        Staff => "staff",
    }
);

string_enum!(
    /// Whether a tenant's users may log in.
    TenantStatus {
        /// Normal operation.
        Active => "active",
        /// Set by an operator: nobody in the tenant can log in.
        Suspended => "suspended",
    }
);

string_enum!(
    /// Whether a person may log in.
    UserStatus {
        /// May log in (once a password is set).
        Active => "active",
        /// Deactivated by an admin: cannot log in, sessions ended.
        Deactivated => "deactivated",
    }
);

string_enum!(
    /// What a one-time emailed link does.
    InviteKind {
        /// Join a tenant (or the platform) and set a first password.
        Invite => "invite",
        /// Set a new password.
        PasswordReset => "reset",
    }
);

string_enum!(
    /// Whether a connection reaches the real app or a simulator.
    Environment {
        /// A simulator (or a vendor's sandbox): safe to test against.
        Sandbox => "sandbox",
        /// The real system.
        Production => "production",
    }
);

string_enum!(
    /// A connection's stored health.
    ConnectionStatus {
        /// Working, as far as Ferry knows.
        Healthy => "healthy",
        /// A refresh failed, the grant was revoked or the key was refused.
        Broken => "broken",
    }
);

/// A secret text (a token, a key, a signing secret): zeroized when dropped,
/// `[REDACTED]` in `Debug`, read only through [`Secret::expose`]. It
/// serializes to its text because credentials are serialized for one
/// purpose: to be sealed by the vault.
#[derive(Clone)]
pub struct Secret(secrecy::SecretString);

impl Secret {
    /// The secret's text, for the one call that needs it.
    pub fn expose(&self) -> &str {
        secrecy::ExposeSecret::expose_secret(&self.0)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s.into())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// A connection's secrets. Never rendered, logged or put in an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Credentials {
    /// OAuth access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// OAuth refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// API key, bearer token or SMTP password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Secret that signs inbound webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<Secret>,
    /// SMTP user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl Credentials {
    /// The access token's text.
    pub fn access_token(&self) -> Option<&str> {
        self.access_token.as_ref().map(Secret::expose)
    }

    /// The refresh token's text.
    pub fn refresh_token(&self) -> Option<&str> {
        self.refresh_token.as_ref().map(Secret::expose)
    }

    /// The API key's text.
    pub fn api_key(&self) -> Option<&str> {
        self.api_key.as_ref().map(Secret::expose)
    }

    /// The signing secret's text.
    pub fn signing_secret(&self) -> Option<&str> {
        self.signing_secret.as_ref().map(Secret::expose)
    }
}

impl Role {
    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Admin => "Admin",
            Self::Staff => "Staff",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        let e = EmailAddress::parse("email", "  Alice.Smith+kyc@Example.COM ");
        assert_eq!(e.map(|e| e.0), Ok("alice.smith+kyc@example.com".to_owned()));
        for bad in [
            "",
            "   ",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "a b@example.com",
            "<script>@x.com",
            "\"quoted\"@example.com",
            "alice@[127.0.0.1]",
            "Alice <alice@example.com>",
            "x@example.com' OR '1'='1",
        ] {
            assert!(
                EmailAddress::parse("email", bad).is_err(),
                "accepted {bad:?}"
            );
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse("email", &long).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            TenantName::parse("name", "  Acme & Co  ").map(|n| n.0),
            Ok("Acme & Co".to_owned())
        );
        assert!(TenantName::parse("name", "").is_err());
        assert!(TenantName::parse("name", &"x".repeat(10_000)).is_err());
        assert!(TenantName::parse("name", "two\nlines").is_err());
        // Markup is allowed as data; templates escape it.
        assert!(PersonName::parse("name", "<script>alert(1)</script>").is_ok());
    }

    #[test]
    fn password_policy() {
        assert!(Password::parse_new("password", "short", "short").is_err());
        assert!(Password::parse_new("password", "long enough pass", "different pass").is_err());
        assert!(Password::parse_new("password", &"p".repeat(129), &"p".repeat(129)).is_err());
        let ok = Password::parse_new("password", "correct horse battery", "correct horse battery");
        assert!(ok.is_ok());
        assert_eq!(format!("{ok:?}"), "Ok(Password([redacted]))");
    }

    #[test]
    fn credentials_debug_never_shows_secrets() {
        let c = Credentials {
            api_key: Some("sk_live_very_secret".into()),
            ..Credentials::default()
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("very_secret"));
        assert!(shown.contains("api_key"));
    }

    #[test]
    fn enums_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
        }
        assert_eq!(Role::parse("operator"), None);
        assert_eq!(InviteKind::parse("reset"), Some(InviteKind::PasswordReset));
    }
}
