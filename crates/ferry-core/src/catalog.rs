//! The connector catalog as data: what each connector is, how it
//! authenticates, which scopes each trigger and action needs, and the field
//! schema of each (type, required, format, PII class). The workflow builder
//! and validator read this; the connectors crate implements the calls.

use std::fmt;

/// How a connector proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// OAuth 2.0 authorization code with PKCE; tokens refresh.
    OAuth2,
    /// A static secret sent with each call (API key, bearer token, SMTP password).
    ApiKey,
    /// A shared secret that signs inbound requests.
    HmacSecret,
    /// Nothing.
    None,
}

impl AuthKind {
    /// The label shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::OAuth2 => "OAuth 2.0",
            Self::ApiKey => "API key",
            Self::HmacSecret => "HMAC secret",
            Self::None => "none",
        }
    }
}

/// A value's type and format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Free text.
    Text,
    /// An email address.
    Email,
    /// A phone number (E.164 once formatted).
    Phone,
    /// A calendar date, YYYY-MM-DD.
    Date,
    /// An ISO 3166-1 alpha-2 country code.
    Country,
    /// One of the listed values.
    Enum(&'static [&'static str]),
    /// A number.
    Number,
    /// True or false.
    Boolean,
    /// An identifier issued by the remote system.
    Id,
    /// A JSON object (e.g. a map of properties).
    Object,
}

/// How sensitive a field is. PII fields are redacted from logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PiiClass {
    /// Not personal.
    None,
    /// Contact details: name, email, phone.
    Contact,
    /// Identity data: date of birth, document numbers.
    Identity,
}

impl PiiClass {
    /// Whether logs must redact it.
    pub fn is_pii(self) -> bool {
        self != Self::None
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Contact => "contact",
            Self::Identity => "identity",
        }
    }

    /// Parses the stored form.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::None, Self::Contact, Self::Identity]
            .into_iter()
            .find(|c| c.as_str() == raw)
    }

    /// In words, for people.
    pub fn label(self) -> &'static str {
        match self {
            Self::None => "not personal",
            Self::Contact => "contact data",
            Self::Identity => "identity data",
        }
    }
}

/// A tenant's reclassified fields: `<connector>.<field>` → the class it
/// gives them. Only ever stricter than the catalog: a field the catalog
/// calls personal stays personal.
pub type FieldClasses = std::collections::BTreeMap<String, PiiClass>;

/// Every field a connector's triggers and actions carry, once per name
/// (objects' known fields too), in catalog order: what a tenant may
/// reclassify.
pub fn classifiable(connector: ConnectorKey) -> Vec<&'static FieldSchema> {
    let def = connector.def();
    let mut out: Vec<&'static FieldSchema> = Vec::new();
    let mut add = |f: &'static FieldSchema| {
        if f.ty != FieldType::Object && !out.iter().any(|o| o.name == f.name) {
            out.push(f);
        }
    };
    for t in def.triggers {
        t.fields.iter().for_each(&mut add);
    }
    for a in def.actions {
        for f in a.input.iter().chain(a.output) {
            add(f);
            f.fields.iter().for_each(&mut add);
        }
    }
    out
}

/// The class of `field` of `connector` for a tenant: the stricter of the
/// catalog's and the tenant's.
pub fn class_of(
    connector: ConnectorKey,
    field: &FieldSchema,
    overrides: &FieldClasses,
) -> PiiClass {
    let chosen = overrides
        .get(&format!("{}.{}", connector.as_str(), field.name))
        .copied()
        .unwrap_or(PiiClass::None);
    chosen.max(field.pii)
}

/// One field of a trigger's payload or an action's input or output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSchema {
    /// Machine name (a path segment in mappings).
    pub name: &'static str,
    /// Label for people.
    pub label: &'static str,
    /// Type and format.
    pub ty: FieldType,
    /// Whether a value must be present.
    pub required: bool,
    /// Longest accepted text, if bounded.
    pub max_len: Option<usize>,
    /// Sensitivity.
    pub pii: PiiClass,
    /// An object's known fields (e.g. the contact properties one may set);
    /// empty when any may be given.
    pub fields: &'static [FieldSchema],
}

/// An object field whose known fields are `fields`.
const fn object(
    name: &'static str,
    label: &'static str,
    required: bool,
    pii: PiiClass,
    fields: &'static [FieldSchema],
) -> FieldSchema {
    FieldSchema {
        fields,
        ..field(name, label, FieldType::Object, required, pii)
    }
}

const fn field(
    name: &'static str,
    label: &'static str,
    ty: FieldType,
    required: bool,
    pii: PiiClass,
) -> FieldSchema {
    FieldSchema {
        name,
        label,
        ty,
        required,
        max_len: None,
        pii,
        fields: &[],
    }
}

/// An event a connector can start a workflow with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerDef {
    /// Machine name, e.g. `contact.creation`.
    pub key: &'static str,
    /// Label for people.
    pub label: &'static str,
    /// Scopes the connection needs for it.
    pub scopes: &'static [&'static str],
    /// Its payload.
    pub fields: &'static [FieldSchema],
}

/// A call a workflow step can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionDef {
    /// Machine name, e.g. `update_contact`.
    pub key: &'static str,
    /// Label for people.
    pub label: &'static str,
    /// Scopes the connection needs for it.
    pub scopes: &'static [&'static str],
    /// Whether it changes the remote system (and so carries an idempotency key).
    pub side_effect: bool,
    /// What it takes.
    pub input: &'static [FieldSchema],
    /// What it returns.
    pub output: &'static [FieldSchema],
}

/// The connectors Ferry ships.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKey {
    /// HubSpot CRM.
    HubSpot,
    /// The identity-verification (KYC/AML) provider.
    Verification,
    /// Generic outbound HTTP/REST with JSON.
    Http,
    /// Generic inbound webhook, HMAC-signed (Standard Webhooks compatible).
    Webhook,
    /// Email over SMTP.
    Smtp,
}

impl ConnectorKey {
    /// Every connector, in catalog order.
    pub const ALL: [Self; 5] = [
        Self::HubSpot,
        Self::Verification,
        Self::Http,
        Self::Webhook,
        Self::Smtp,
    ];

    /// The stored and URL form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HubSpot => "hubspot",
            Self::Verification => "verification",
            Self::Http => "http",
            Self::Webhook => "webhook",
            Self::Smtp => "smtp",
        }
    }

    /// Parses the stored or URL form.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The connector's definition.
    pub fn def(self) -> &'static ConnectorDef {
        match self {
            Self::HubSpot => &HUBSPOT,
            Self::Verification => &VERIFICATION,
            Self::Http => &HTTP,
            Self::Webhook => &WEBHOOK,
            Self::Smtp => &SMTP,
        }
    }
}

impl fmt::Display for ConnectorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Requests allowed per window by the remote platform, per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests.
    pub max: u32,
    /// Window, in milliseconds.
    pub per_ms: u64,
}

/// What a connector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorDef {
    /// Which.
    pub key: ConnectorKey,
    /// Its name.
    pub name: &'static str,
    /// One line for the catalog.
    pub description: &'static str,
    /// How it authenticates.
    pub auth: AuthKind,
    /// Its events.
    pub triggers: &'static [TriggerDef],
    /// Its calls.
    pub actions: &'static [ActionDef],
    /// The remote platform's limit per connection, if any.
    pub rate_limit: Option<RateLimit>,
}

impl ConnectorDef {
    /// Every scope any trigger or action needs, deduplicated, in order.
    pub fn all_scopes(&self) -> Vec<&'static str> {
        let mut scopes: Vec<&'static str> = Vec::new();
        let all = self
            .triggers
            .iter()
            .flat_map(|t| t.scopes)
            .chain(self.actions.iter().flat_map(|a| a.scopes));
        for s in all {
            if !scopes.contains(s) {
                scopes.push(s);
            }
        }
        scopes
    }

    /// An action by key.
    pub fn action(&self, key: &str) -> Option<&'static ActionDef> {
        self.actions.iter().find(|a| a.key == key)
    }

    /// A trigger by key.
    pub fn trigger(&self, key: &str) -> Option<&'static TriggerDef> {
        self.triggers.iter().find(|t| t.key == key)
    }
}

use FieldType as T;
use PiiClass as P;

/// HubSpot's scope to read contacts.
pub const HUBSPOT_CONTACTS_READ: &str = "crm.objects.contacts.read";
/// HubSpot's scope to write contacts.
pub const HUBSPOT_CONTACTS_WRITE: &str = "crm.objects.contacts.write";

const HUBSPOT_EVENT: &[FieldSchema] = &[
    field("eventId", "Event id", T::Id, true, P::None),
    field("portalId", "Portal (account) id", T::Id, true, P::None),
    field("objectId", "Contact id", T::Id, true, P::None),
    field("occurredAt", "Occurred at (ms)", T::Number, true, P::None),
    field("subscriptionType", "Event type", T::Text, true, P::None),
    field("propertyName", "Changed property", T::Text, false, P::None),
    field("propertyValue", "New value", T::Text, false, P::Contact),
];

const CONTACT: &[FieldSchema] = &[
    field("id", "Contact id", T::Id, true, P::None),
    field("firstname", "First name", T::Text, false, P::Contact),
    field("lastname", "Last name", T::Text, false, P::Contact),
    field("email", "Email", T::Email, false, P::Contact),
    field("phone", "Phone", T::Phone, false, P::Contact),
    field(
        "date_of_birth",
        "Date of birth",
        T::Date,
        false,
        P::Identity,
    ),
    field("country", "Country", T::Country, false, P::None),
    field(
        "identity_verification_status",
        "Verification status",
        T::Enum(&["pass", "needs_review", "fail", "pending"]),
        false,
        P::None,
    ),
    field(
        "identity_verification_ref",
        "Verification reference",
        T::Text,
        false,
        P::None,
    ),
];

static HUBSPOT: ConnectorDef = ConnectorDef {
    key: ConnectorKey::HubSpot,
    name: "HubSpot CRM",
    description: "Contacts in HubSpot: react to new or changed contacts, read them, write properties back.",
    auth: AuthKind::OAuth2,
    triggers: &[
        TriggerDef {
            key: "contact.creation",
            label: "A contact is created",
            scopes: &[HUBSPOT_CONTACTS_READ],
            fields: HUBSPOT_EVENT,
        },
        TriggerDef {
            key: "contact.propertyChange",
            label: "A contact property changes",
            scopes: &[HUBSPOT_CONTACTS_READ],
            fields: HUBSPOT_EVENT,
        },
    ],
    actions: &[
        ActionDef {
            key: "get_contact",
            label: "Get a contact",
            scopes: &[HUBSPOT_CONTACTS_READ],
            side_effect: false,
            input: &[field("contact_id", "Contact id", T::Id, true, P::None)],
            output: CONTACT,
        },
        ActionDef {
            key: "update_contact",
            label: "Update contact properties",
            scopes: &[HUBSPOT_CONTACTS_WRITE],
            side_effect: true,
            input: &[
                field("contact_id", "Contact id", T::Id, true, P::None),
                object(
                    "properties",
                    "Properties to set",
                    true,
                    P::Contact,
                    CONTACT_PROPERTIES,
                ),
            ],
            output: CONTACT,
        },
    ],
    rate_limit: Some(RateLimit {
        max: 100,
        per_ms: 10_000,
    }),
};

/// What may be written to a contact: every property but its id.
const CONTACT_PROPERTIES: &[FieldSchema] = CONTACT.split_at(1).1;

const CHECK: &[FieldSchema] = &[
    field("id", "Check id", T::Id, true, P::None),
    field(
        "status",
        "Status",
        T::Enum(&["in_progress", "complete"]),
        true,
        P::None,
    ),
    field(
        "result",
        "Result",
        T::Enum(&["clear", "consider", "rejected"]),
        false,
        P::None,
    ),
    field("reference", "Your reference", T::Text, false, P::None),
];

static VERIFICATION: ConnectorDef = ConnectorDef {
    key: ConnectorKey::Verification,
    name: "Identity verification",
    description: "KYC/AML checks: start a check, receive its result by signed webhook.",
    auth: AuthKind::ApiKey,
    triggers: &[TriggerDef {
        key: "check.completed",
        label: "A check completes",
        scopes: &[],
        fields: &[
            field("type", "Event type", T::Text, true, P::None),
            field("check.id", "Check id", T::Id, true, P::None),
            field(
                "check.result",
                "Result",
                T::Enum(&["clear", "consider", "rejected"]),
                true,
                P::None,
            ),
        ],
    }],
    actions: &[
        ActionDef {
            key: "create_check",
            label: "Start a check",
            scopes: &[],
            side_effect: true,
            input: &[
                field("first_name", "First name", T::Text, true, P::Contact),
                field("last_name", "Last name", T::Text, true, P::Contact),
                field("email", "Email", T::Email, true, P::Contact),
                field(
                    "date_of_birth",
                    "Date of birth",
                    T::Date,
                    false,
                    P::Identity,
                ),
                field(
                    "document_type",
                    "Document type",
                    T::Enum(&["passport", "driving_licence", "national_id"]),
                    false,
                    P::None,
                ),
                field("reference", "Your reference", T::Text, false, P::None),
            ],
            output: CHECK,
        },
        ActionDef {
            key: "get_check",
            label: "Get a check",
            scopes: &[],
            side_effect: false,
            input: &[field("check_id", "Check id", T::Id, true, P::None)],
            output: CHECK,
        },
    ],
    rate_limit: Some(RateLimit {
        max: 50,
        per_ms: 1_000,
    }),
};

static HTTP: ConnectorDef = ConnectorDef {
    key: ConnectorKey::Http,
    name: "HTTP / REST",
    description: "Call any JSON API with an API key or bearer token.",
    auth: AuthKind::ApiKey,
    triggers: &[],
    actions: &[ActionDef {
        key: "post_json",
        label: "POST JSON",
        scopes: &[],
        side_effect: true,
        input: &[
            field("path", "Path", T::Text, true, P::None),
            field("body", "Body", T::Object, true, P::Contact),
        ],
        output: &[
            field("status", "HTTP status", T::Number, true, P::None),
            field("body", "Response body", T::Object, false, P::Contact),
        ],
    }],
    rate_limit: None,
};

static WEBHOOK: ConnectorDef = ConnectorDef {
    key: ConnectorKey::Webhook,
    name: "Inbound webhook",
    description: "Start a workflow from any system that can POST signed JSON (Standard Webhooks).",
    auth: AuthKind::HmacSecret,
    triggers: &[TriggerDef {
        key: "webhook.received",
        label: "A signed request arrives",
        scopes: &[],
        fields: &[field("body", "Body", T::Object, true, P::Contact)],
    }],
    actions: &[],
    rate_limit: None,
};

static SMTP: ConnectorDef = ConnectorDef {
    key: ConnectorKey::Smtp,
    name: "Email (SMTP)",
    description: "Send email through your own mail server.",
    auth: AuthKind::ApiKey,
    triggers: &[],
    actions: &[ActionDef {
        key: "send_email",
        label: "Send an email",
        scopes: &[],
        side_effect: true,
        input: &[
            field("to", "To", T::Email, true, P::Contact),
            field("from", "From", T::Email, false, P::None),
            field("subject", "Subject", T::Text, true, P::None),
            field("body", "Body", T::Text, true, P::Contact),
        ],
        output: &[field(
            "accepted",
            "Accepted by the server",
            T::Boolean,
            true,
            P::None,
        )],
    }],
    rate_limit: None,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connector_round_trips_and_declares_its_scopes() {
        for key in ConnectorKey::ALL {
            assert_eq!(ConnectorKey::parse(key.as_str()), Some(key));
            assert_eq!(key.def().key, key);
        }
        assert_eq!(
            ConnectorKey::HubSpot.def().all_scopes(),
            vec![HUBSPOT_CONTACTS_READ, HUBSPOT_CONTACTS_WRITE]
        );
        assert!(ConnectorKey::Verification.def().all_scopes().is_empty());
    }

    #[test]
    fn identity_fields_are_classified_as_pii() {
        let create = ConnectorKey::Verification
            .def()
            .action("create_check")
            .unwrap();
        let dob = create
            .input
            .iter()
            .find(|f| f.name == "date_of_birth")
            .unwrap();
        assert_eq!(dob.pii, PiiClass::Identity);
        assert!(dob.pii.is_pii());
        assert!(create.side_effect);
    }
}
