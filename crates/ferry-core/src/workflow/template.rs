//! The workflows Ferry offers to start from.

use super::{Definition, RetryPolicy, Step, StepKind, Trigger};
use crate::catalog::ConnectorKey;
use crate::mapping::{Expr, FieldPath, Transform};
use crate::validate::{Check, Rule};
use serde_json::json;

pub(super) fn path(p: &str) -> Expr {
    Expr::Path {
        path: FieldPath::trusted(p),
    }
}

/// The reference workflow: a new HubSpot contact → fetch it → validate
/// names and email → start a check (idempotency key from the run) → wait up
/// to 24 h for `check.completed` → map the result to pass / needs review / fail / pending (the
/// provider's `consider` asks a person to look: it is not a fail) →
/// write only the outcome and the check reference back to the contact.
pub fn reference_template() -> Definition {
    let outcome = Expr::Path {
        path: FieldPath::trusted("steps.wait_result.check.result"),
    }
    .then(Transform::Lookup {
        table: [
            ("clear".to_owned(), json!("pass")),
            ("consider".to_owned(), json!("needs_review")),
            ("rejected".to_owned(), json!("fail")),
        ]
        .into(),
        fallback: Some(json!("pending")),
    });
    Definition {
        trigger: Trigger {
            connector: ConnectorKey::HubSpot,
            event: "contact.creation".into(),
        },
        steps: vec![
            Step {
                key: "fetch_contact".into(),
                label: Some("Fetch the new contact".into()),
                kind: StepKind::Action {
                    connector: ConnectorKey::HubSpot,
                    action: "get_contact".into(),
                    input: [("contact_id".to_owned(), path("trigger.objectId"))].into(),
                    retry: RetryPolicy::default(),
                },
            },
            Step {
                key: "validate_contact".into(),
                label: Some("Check name and email".into()),
                kind: StepKind::Validate {
                    rules: vec![
                        Rule {
                            path: FieldPath::trusted("steps.fetch_contact.firstname"),
                            check: Check::Required,
                        },
                        Rule {
                            path: FieldPath::trusted("steps.fetch_contact.lastname"),
                            check: Check::Required,
                        },
                        Rule {
                            path: FieldPath::trusted("steps.fetch_contact.email"),
                            check: Check::Required,
                        },
                        Rule {
                            path: FieldPath::trusted("steps.fetch_contact.email"),
                            check: Check::Email,
                        },
                    ],
                },
            },
            Step {
                key: "start_check".into(),
                label: Some("Start the identity check".into()),
                kind: StepKind::Action {
                    connector: ConnectorKey::Verification,
                    action: "create_check".into(),
                    input: [
                        (
                            "first_name".to_owned(),
                            path("steps.fetch_contact.firstname").then(Transform::Trim),
                        ),
                        (
                            "last_name".to_owned(),
                            path("steps.fetch_contact.lastname").then(Transform::Trim),
                        ),
                        (
                            "email".to_owned(),
                            path("steps.fetch_contact.email")
                                .then(Transform::Trim)
                                .then(Transform::Lower),
                        ),
                        ("reference".to_owned(), path("trigger.objectId")),
                    ]
                    .into(),
                    retry: RetryPolicy::default(),
                },
            },
            Step {
                key: "wait_result".into(),
                label: Some("Wait for the result".into()),
                kind: StepKind::Wait {
                    connector: ConnectorKey::Verification,
                    event: "check.completed".into(),
                    correlation: path("steps.start_check.id"),
                    event_field: "check.id".into(),
                    timeout_secs: 24 * 3600,
                },
            },
            Step {
                key: "write_back".into(),
                label: Some("Write the outcome back".into()),
                kind: StepKind::Action {
                    connector: ConnectorKey::HubSpot,
                    action: "update_contact".into(),
                    // Only the outcome and the check reference: never
                    // identity data or a date of birth.
                    input: [
                        ("contact_id".to_owned(), path("trigger.objectId")),
                        (
                            "properties".to_owned(),
                            Expr::Object {
                                fields: [
                                    ("identity_verification_status".to_owned(), outcome),
                                    (
                                        "identity_verification_ref".to_owned(),
                                        path("steps.start_check.id"),
                                    ),
                                ]
                                .into(),
                            },
                        ),
                    ]
                    .into(),
                    retry: RetryPolicy::default(),
                },
            },
        ],
    }
}

/// The smallest useful start: a new HubSpot contact, fetched.
pub fn starting_point() -> Definition {
    Definition {
        trigger: Trigger {
            connector: ConnectorKey::HubSpot,
            event: "contact.creation".into(),
        },
        steps: vec![Step {
            key: "fetch_contact".into(),
            label: None,
            kind: StepKind::Action {
                connector: ConnectorKey::HubSpot,
                action: "get_contact".into(),
                input: [("contact_id".to_owned(), path("trigger.objectId"))].into(),
                retry: RetryPolicy::default(),
            },
        }],
    }
}
