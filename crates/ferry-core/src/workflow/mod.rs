//! Workflows: one trigger and ordered steps. A workflow is checked when it
//! is saved against the connectors' field schemas: an unknown field, a type
//! mismatch, a missing required mapping or a reference to a later step is an
//! error that names the step and the field.

use crate::catalog::{ConnectorKey, FieldSchema, FieldType};
use crate::mapping::{Expr, FieldPath, Transform};
use crate::validate::{Check, Rule};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

mod build;
pub mod describe;
mod diff;
mod edit;
mod step;
mod template;
pub mod text;

pub use build::{Available, derive_key};
pub use diff::changes;
pub use edit::{NewStep, StepOp};
pub use step::{Decision, Evaluated, action_input, evaluate, kind_name};
pub use template::{reference_template, starting_point};

/// What starts a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The connector.
    pub connector: ConnectorKey,
    /// Its event, e.g. `contact.creation`.
    pub event: String,
}

/// How a failed call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// First back-off, milliseconds; doubles each time, with jitter.
    pub backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff_ms: 1000,
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    /// Call a connector action with mapped input.
    Action {
        /// The connector.
        connector: ConnectorKey,
        /// Its action.
        action: String,
        /// Input field -> expression.
        input: BTreeMap<String, Expr>,
        /// Retries.
        #[serde(default)]
        retry: RetryPolicy,
    },
    /// Check values; a failure stops the run (nothing is written).
    Validate {
        /// The rules.
        rules: Vec<Rule>,
    },
    /// Compute named values for later steps.
    Map {
        /// Output field -> expression.
        output: BTreeMap<String, Expr>,
    },
    /// Wait for an event that carries the correlation value, or time out.
    Wait {
        /// The connector whose event is awaited.
        connector: ConnectorKey,
        /// The event.
        event: String,
        /// The value the event must carry.
        correlation: Expr,
        /// Path in the event holding it, e.g. `check.id`.
        event_field: String,
        /// Give up after this many seconds.
        timeout_secs: u64,
    },
    /// Go on only when the value at `path` is (or is not) `equals`.
    Condition {
        /// What to look at.
        path: FieldPath,
        /// The value to compare with.
        equals: Value,
        /// Go on when it differs instead.
        negate: bool,
    },
}

/// One step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// A key unique in the workflow; later steps read `steps.<key>.…`.
    /// Derived from the label when the builder adds the step, then stable
    /// (renaming changes the label, so nothing that reads it breaks).
    pub key: String,
    /// What people call it ("Start the identity check").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
}

/// The longest step label.
pub const MAX_LABEL: usize = 80;

impl Step {
    /// Its name for people: the label, else what its kind does.
    pub fn title(&self) -> String {
        self.label
            .clone()
            .unwrap_or_else(|| default_label(&self.kind))
    }
}

/// What a step of this kind does, in words ("Get a contact").
pub fn default_label(kind: &StepKind) -> String {
    match kind {
        StepKind::Action {
            connector, action, ..
        } => connector
            .def()
            .action(action)
            .map_or_else(|| action.clone(), |a| a.label.to_owned()),
        StepKind::Validate { .. } => "Check the data".into(),
        StepKind::Map { .. } => "Compute values".into(),
        StepKind::Wait {
            connector, event, ..
        } => format!(
            "Wait for: {}",
            connector
                .def()
                .trigger(event)
                .map_or(event.as_str(), |t| t.label)
        ),
        StepKind::Condition { .. } => "Only continue if".into(),
    }
}

/// A workflow definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// What starts it.
    pub trigger: Trigger,
    /// What it does, in order.
    pub steps: Vec<Step>,
}

/// A problem found when a workflow is saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// The step (`trigger` for the trigger).
    pub step: String,
    /// The field concerned, if any.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "step {}, field {}: {}", self.step, field, self.message),
            None => write!(f, "step {}: {}", self.step, self.message),
        }
    }
}

/// The longest a wait may last (30 days).
pub const MAX_WAIT_SECS: u64 = 30 * 24 * 3600;

/// What is known about the fields a path may read.
enum Source {
    Schema(&'static [FieldSchema]),
    Open,
}

/// A field type as named to people ("an email").
pub fn type_name(t: FieldType) -> &'static str {
    match t {
        FieldType::Text => "text",
        FieldType::Email => "an email",
        FieldType::Phone => "a phone number",
        FieldType::Date => "a date",
        FieldType::Country => "a country",
        FieldType::Enum(_) => "a choice",
        FieldType::Number => "a number",
        FieldType::Boolean => "true/false",
        FieldType::Id => "an id",
        FieldType::Object => "an object",
    }
}

/// The schema field a path reads: a field named by the whole remainder
/// (`check.result`), or by its first segment.
fn schema_field(fields: &'static [FieldSchema], path: &FieldPath) -> Option<&'static FieldSchema> {
    let rest = path.rest();
    fields
        .iter()
        .find(|f| f.name == rest)
        .or_else(|| fields.iter().find(|f| f.name == path.field()))
}

/// Whether a value of type `from` may feed a field of type `to`.
fn compatible(from: FieldType, to: FieldType) -> bool {
    use FieldType as T;
    match (from, to) {
        (_, T::Text) | (_, T::Id) => !matches!(from, T::Object | T::Boolean),
        (T::Object, T::Object) => true,
        (_, T::Object) | (T::Object, _) => false,
        (T::Number, T::Number) | (T::Boolean, T::Boolean) => true,
        (T::Number | T::Boolean, _) | (_, T::Number | T::Boolean) => false,
        // Text may hold any format; validation checks the value at run time.
        (T::Text, _) => true,
        (a, b) => std::mem::discriminant(&a) == std::mem::discriminant(&b),
    }
}

/// The type an expression produces, when it can be known.
fn expr_type(e: &Expr, sources: &BTreeMap<String, Source>, trigger: &Source) -> Option<FieldType> {
    match e {
        Expr::Literal { value } => Some(match value {
            Value::Number(_) => FieldType::Number,
            Value::Bool(_) => FieldType::Boolean,
            Value::Object(_) | Value::Array(_) => FieldType::Object,
            _ => FieldType::Text,
        }),
        Expr::Concat { .. } => Some(FieldType::Text),
        Expr::Object { .. } => Some(FieldType::Object),
        Expr::Apply { transform, input } => match transform {
            Transform::PhoneE164 { .. } => Some(FieldType::Phone),
            Transform::Date { .. } => Some(FieldType::Text),
            Transform::Lookup { .. } | Transform::Default { .. } => None,
            _ => expr_type(input, sources, trigger).map(|t| {
                if matches!(t, FieldType::Email) {
                    t
                } else {
                    FieldType::Text
                }
            }),
        },
        Expr::Path { path } => {
            let source = match path.step() {
                Some(step) => sources.get(step)?,
                None => trigger,
            };
            match source {
                Source::Schema(fields) => schema_field(fields, path).map(|f| f.ty),
                Source::Open => None,
            }
        }
    }
}

impl Definition {
    /// What stops publishing besides [`Definition::check`]: a workflow
    /// with no step does nothing.
    pub fn publish_issues(&self) -> Vec<Issue> {
        let mut issues = self.check();
        if self.steps.is_empty() {
            issues.push(Issue {
                step: "trigger".into(),
                field: None,
                message: "a workflow needs at least one step".into(),
            });
        }
        issues
    }

    /// Every problem, in step order; empty when the draft can be saved (an
    /// empty draft can: the builder starts from one).
    pub fn check(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        let issue = |step: &str, field: Option<&str>, message: String| Issue {
            step: step.to_owned(),
            field: field.map(str::to_owned),
            message,
        };
        let trigger_def = self.trigger.connector.def();
        let trigger = match trigger_def.trigger(&self.trigger.event) {
            Some(t) => Source::Schema(t.fields),
            None => {
                issues.push(issue(
                    "trigger",
                    None,
                    format!("{} has no event {}", trigger_def.name, self.trigger.event),
                ));
                Source::Open
            }
        };
        let mut sources: BTreeMap<String, Source> = BTreeMap::new();
        let check_paths = |step: &str,
                           field: Option<&str>,
                           e: &Expr,
                           sources: &BTreeMap<String, Source>,
                           issues: &mut Vec<Issue>| {
            for p in e.paths() {
                let known = match p.step() {
                    Some(s) => match sources.get(s) {
                        Some(src) => src,
                        None => {
                            issues.push(issue(
                                step,
                                field,
                                format!("{p} reads step {s}, which does not come before this one"),
                            ));
                            continue;
                        }
                    },
                    None => &trigger,
                };
                if let Source::Schema(fields) = known {
                    match schema_field(fields, p) {
                        None => issues.push(issue(
                            step,
                            field,
                            format!("{p}: there is no field {}", p.rest()),
                        )),
                        Some(f) if f.name != p.rest() && f.ty != FieldType::Object => {
                            issues.push(issue(
                                step,
                                field,
                                format!(
                                    "{p}: {} is {}, which has no fields",
                                    f.name,
                                    type_name(f.ty)
                                ),
                            ));
                        }
                        Some(_) => {}
                    }
                }
            }
        };
        for step in &self.steps {
            let key = step.key.as_str();
            if key.is_empty()
                || key.len() > 40
                || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                issues.push(issue(
                    key,
                    None,
                    "a step key is 1 to 40 letters, digits or _".into(),
                ));
            }
            if sources.contains_key(key) {
                issues.push(issue(key, None, "two steps have this key".into()));
            }
            if let Some(label) = &step.label
                && (label.trim().is_empty()
                    || label.chars().count() > MAX_LABEL
                    || label.chars().any(char::is_control))
            {
                issues.push(issue(
                    key,
                    Some("label"),
                    format!("a step's name is 1 to {MAX_LABEL} characters, on one line"),
                ));
            }
            let produced = match &step.kind {
                StepKind::Action {
                    connector,
                    action,
                    input,
                    retry,
                } => {
                    let def = connector.def();
                    match def.action(action) {
                        None => {
                            issues.push(issue(
                                key,
                                None,
                                format!("{} has no action {action}", def.name),
                            ));
                            Source::Open
                        }
                        Some(a) => {
                            for (name, e) in input {
                                match a.input.iter().find(|f| f.name == name) {
                                    None => issues.push(issue(
                                        key,
                                        Some(name),
                                        format!("{} has no input field {name}", a.label),
                                    )),
                                    Some(f) => {
                                        if let (false, Expr::Object { fields }) =
                                            (f.fields.is_empty(), e)
                                        {
                                            for (sub, se) in fields {
                                                match f.fields.iter().find(|x| x.name == sub) {
                                                    None => issues.push(issue(
                                                        key,
                                                        Some(name),
                                                        format!("{} has no field {sub}", f.label),
                                                    )),
                                                    Some(x) => {
                                                        if let Some(t) =
                                                            expr_type(se, &sources, &trigger)
                                                            && !compatible(t, x.ty)
                                                        {
                                                            issues.push(issue(
                                                                key,
                                                                Some(name),
                                                                format!(
                                                                    "{} → {} expects {}, but is given {}",
                                                                    f.label,
                                                                    x.label,
                                                                    type_name(x.ty),
                                                                    type_name(t)
                                                                ),
                                                            ));
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                        if let Some(t) = expr_type(e, &sources, &trigger)
                                            && !compatible(t, f.ty)
                                        {
                                            issues.push(issue(
                                                key,
                                                Some(name),
                                                format!(
                                                    "{} expects {}, but is given {}",
                                                    f.label,
                                                    type_name(f.ty),
                                                    type_name(t)
                                                ),
                                            ));
                                        }
                                    }
                                }
                                check_paths(key, Some(name), e, &sources, &mut issues);
                            }
                            for f in a.input.iter().filter(|f| f.required) {
                                if !input.contains_key(f.name) {
                                    issues.push(issue(
                                        key,
                                        Some(f.name),
                                        format!("{} is required and not mapped", f.label),
                                    ));
                                }
                            }
                            if retry.attempts == 0 || retry.attempts > 10 {
                                issues.push(issue(
                                    key,
                                    Some("retry"),
                                    "attempts must be from 1 to 10".into(),
                                ));
                            }
                            Source::Schema(a.output)
                        }
                    }
                }
                StepKind::Validate { rules } => {
                    for r in rules {
                        check_paths(
                            key,
                            Some(&r.path.to_string()),
                            &Expr::Path {
                                path: r.path.clone(),
                            },
                            &sources,
                            &mut issues,
                        );
                        if let Check::OneOf { values } = &r.check
                            && values.is_empty()
                        {
                            issues.push(issue(
                                key,
                                Some(&r.path.to_string()),
                                "a choice needs at least one value".into(),
                            ));
                        }
                    }
                    Source::Open
                }
                StepKind::Map { output } => {
                    for (name, e) in output {
                        check_paths(key, Some(name), e, &sources, &mut issues);
                    }
                    Source::Open
                }
                StepKind::Wait {
                    connector,
                    event,
                    correlation,
                    timeout_secs,
                    ..
                } => {
                    let def = connector.def();
                    let src = match def.trigger(event) {
                        Some(t) => Source::Schema(t.fields),
                        None => {
                            issues.push(issue(
                                key,
                                None,
                                format!("{} has no event {event}", def.name),
                            ));
                            Source::Open
                        }
                    };
                    check_paths(key, Some("correlation"), correlation, &sources, &mut issues);
                    if *timeout_secs == 0 || *timeout_secs > MAX_WAIT_SECS {
                        issues.push(issue(
                            key,
                            Some("timeout"),
                            "the timeout must be from 1 second to 30 days".into(),
                        ));
                    }
                    src
                }
                StepKind::Condition { path, .. } => {
                    check_paths(
                        key,
                        Some(&path.to_string()),
                        &Expr::Path { path: path.clone() },
                        &sources,
                        &mut issues,
                    );
                    Source::Open
                }
            };
            sources.insert(key.to_owned(), produced);
        }
        issues
    }
}

#[cfg(test)]
mod tests {
    use super::template::path;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_reference_template_is_valid() {
        let t = reference_template();
        assert_eq!(t.check(), vec![]);
        // Every path it was built with is one `parse` accepts.
        let text = serde_json::to_value(&t).unwrap().to_string();
        assert!(serde_json::from_str::<Definition>(&text).is_ok());
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Definition>(&text).unwrap(), t);
    }

    #[test]
    fn the_template_writes_back_only_the_outcome_and_the_reference() {
        let t = reference_template();
        let Some(Step {
            kind: StepKind::Action { action, input, .. },
            ..
        }) = t.steps.last()
        else {
            panic!("last step is an action")
        };
        assert_eq!(action, "update_contact");
        let Some(Expr::Object { fields }) = input.get("properties") else {
            panic!("properties is an object")
        };
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            vec!["identity_verification_ref", "identity_verification_status"]
        );
        // Evaluated against a run: clear -> pass, consider -> needs review, anything else -> pending.
        for (result, outcome) in [
            ("clear", "pass"),
            ("consider", "needs_review"),
            ("rejected", "fail"),
            ("in_progress", "pending"),
        ] {
            let data = json!({ "trigger": { "objectId": "7" }, "steps": { "start_check": { "id": "chk_1" }, "wait_result": { "check": { "result": result } } } });
            let props = input["properties"].eval(&data).unwrap();
            assert_eq!(
                props,
                json!({ "identity_verification_status": outcome, "identity_verification_ref": "chk_1" })
            );
        }
    }

    fn action(
        key: &str,
        connector: ConnectorKey,
        action_name: &str,
        input: Vec<(&str, Expr)>,
    ) -> Step {
        Step {
            key: key.into(),
            label: None,
            kind: StepKind::Action {
                connector,
                action: action_name.into(),
                input: input.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                retry: RetryPolicy::default(),
            },
        }
    }

    #[test]
    fn errors_name_the_step_and_the_field() {
        let wf = Definition {
            trigger: Trigger {
                connector: ConnectorKey::HubSpot,
                event: "contact.creation".into(),
            },
            steps: vec![
                action(
                    "fetch",
                    ConnectorKey::HubSpot,
                    "get_contact",
                    vec![("contact_id", path("trigger.objectId"))],
                ),
                action(
                    "check",
                    ConnectorKey::Verification,
                    "create_check",
                    vec![
                        ("first_name", path("steps.fetch.firstname")),
                        ("email", path("steps.fetch.favourite_colour")),
                        ("nickname", Expr::Literal { value: json!("x") }),
                        ("date_of_birth", Expr::Literal { value: json!(17) }),
                        ("reference", path("steps.later.id")),
                    ],
                ),
            ],
        };
        let issues: Vec<String> = wf.check().iter().map(ToString::to_string).collect();
        let expect = [
            "step check, field email: steps.fetch.favourite_colour: there is no field favourite_colour",
            "step check, field nickname: Start a check has no input field nickname",
            "step check, field date_of_birth: Date of birth expects a date, but is given a number",
            "step check, field reference: steps.later.id reads step later, which does not come before this one",
            "step check, field last_name: Last name is required and not mapped",
        ];
        for e in expect {
            assert!(
                issues.iter().any(|i| i == e),
                "missing {e:?} in {issues:#?}"
            );
        }
        assert_eq!(issues.len(), expect.len(), "{issues:#?}");
    }

    #[test]
    fn unknown_triggers_actions_and_bad_waits_are_reported() {
        let wf = Definition {
            trigger: Trigger {
                connector: ConnectorKey::HubSpot,
                event: "deal.creation".into(),
            },
            steps: vec![
                action("x", ConnectorKey::HubSpot, "delete_everything", vec![]),
                Step {
                    key: "x".into(),
                    label: None,
                    kind: StepKind::Wait {
                        connector: ConnectorKey::Verification,
                        event: "check.completed".into(),
                        correlation: path("trigger.objectId"),
                        event_field: "check.id".into(),
                        timeout_secs: 0,
                    },
                },
            ],
        };
        let issues: Vec<String> = wf.check().iter().map(ToString::to_string).collect();
        assert!(
            issues.contains(&"step trigger: HubSpot CRM has no event deal.creation".to_owned()),
            "{issues:?}"
        );
        assert!(issues.contains(&"step x: HubSpot CRM has no action delete_everything".to_owned()));
        assert!(issues.contains(&"step x: two steps have this key".to_owned()));
        assert!(issues.contains(
            &"step x, field timeout: the timeout must be from 1 second to 30 days".to_owned()
        ));
    }
}
