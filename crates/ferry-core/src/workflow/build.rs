//! What the builder offers at a point of the workflow: the fields a step
//! may read there (the trigger's, then each earlier step's output), and
//! suggested values for a new step's inputs (by name and type, the way a
//! person would match them), so that adding a step is one choice.

use super::{Definition, StepKind, compatible};
use crate::catalog::{ActionDef, ConnectorKey, FieldSchema, FieldType, PiiClass};
use crate::mapping::{Expr, FieldPath};
use std::collections::BTreeMap;

/// A field a step may read.
#[derive(Debug, Clone, PartialEq)]
pub struct Available {
    /// Its path (`trigger.objectId`, `steps.fetch_contact.email`).
    pub path: String,
    /// The step it comes from (none: the trigger).
    pub step: Option<String>,
    /// Where it comes from, in words ("Trigger", "Get a contact").
    pub source: String,
    /// The field's own name for people ("Email").
    pub label: String,
    /// Its machine name under the step.
    pub name: String,
    /// Its type, when the schema says.
    pub ty: Option<FieldType>,
    /// How sensitive it is.
    pub pii: PiiClass,
}

impl Definition {
    /// The fields a step at position `at` may read, trigger first.
    pub fn fields_before(&self, at: usize) -> Vec<Available> {
        let from = |step: Option<&str>, source: String, fields: &[FieldSchema]| {
            fields
                .iter()
                .map(|f| Available {
                    path: match step {
                        Some(k) => format!("steps.{k}.{}", f.name),
                        None => format!("trigger.{}", f.name),
                    },
                    step: step.map(str::to_owned),
                    source: source.clone(),
                    label: f.label.to_owned(),
                    name: f.name.to_owned(),
                    ty: Some(f.ty),
                    pii: f.pii,
                })
                .collect::<Vec<_>>()
        };
        let mut out = self
            .trigger
            .connector
            .def()
            .trigger(&self.trigger.event)
            .map(|t| from(None, "Trigger".into(), t.fields))
            .unwrap_or_default();
        for s in self.steps.iter().take(at) {
            let title = s.title();
            match &s.kind {
                StepKind::Action {
                    connector, action, ..
                } => {
                    if let Some(a) = connector.def().action(action) {
                        out.extend(from(Some(&s.key), title, a.output));
                    }
                }
                StepKind::Wait {
                    connector, event, ..
                } => {
                    if let Some(t) = connector.def().trigger(event) {
                        out.extend(from(Some(&s.key), title, t.fields));
                    }
                }
                StepKind::Map { output } => out.extend(output.keys().map(|k| Available {
                    path: format!("steps.{}.{k}", s.key),
                    step: Some(s.key.clone()),
                    source: title.clone(),
                    label: k.replace('_', " "),
                    name: k.clone(),
                    ty: None,
                    // Computed from anything: treated as personal.
                    pii: PiiClass::Contact,
                })),
                StepKind::Validate { .. } | StepKind::Condition { .. } => {}
            }
        }
        out
    }

    /// Values for an action's inputs at position `at`: each input matched
    /// to the latest earlier field with the same name or label and a
    /// compatible type. Identity data (a date of birth, a document) is
    /// never suggested: sending it anywhere is a person's choice.
    pub fn suggest_inputs(&self, at: usize, action: &ActionDef) -> BTreeMap<String, Expr> {
        let fields = self.fields_before(at);
        let norm = |s: &str| {
            s.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let mut out = BTreeMap::new();
        for input in action.input {
            if input.pii == PiiClass::Identity || input.ty == FieldType::Object {
                continue;
            }
            let best = fields
                .iter()
                .filter(|f| f.ty.is_some_and(|t| compatible(t, input.ty)))
                .filter_map(|f| {
                    let score = if norm(&f.name) == norm(input.name) {
                        3
                    } else if norm(&f.label) == norm(input.label) {
                        2
                    } else {
                        0
                    };
                    (score > 0).then_some((score, f))
                })
                // The best score; among equals the latest field
                // (max_by_key keeps the last maximum).
                .max_by_key(|(score, _)| *score);
            if let Some((_, f)) = best
                && let Ok(path) = FieldPath::parse(&f.path)
            {
                out.insert(input.name.to_owned(), Expr::Path { path });
            }
        }
        out
    }

    /// The value a new wait on `connector` should correlate on: the id
    /// output of the latest earlier action of that connector, else the
    /// latest earlier id field.
    pub fn suggest_correlation(&self, at: usize, connector: ConnectorKey) -> Option<FieldPath> {
        let from_action = self
            .steps
            .iter()
            .take(at)
            .rev()
            .find_map(|s| match &s.kind {
                StepKind::Action {
                    connector: c,
                    action,
                    ..
                } if *c == connector => c
                    .def()
                    .action(action)?
                    .output
                    .iter()
                    .find(|f| f.ty == FieldType::Id)
                    .map(|f| format!("steps.{}.{}", s.key, f.name)),
                _ => None,
            });
        let path = from_action.or_else(|| {
            self.fields_before(at)
                .into_iter()
                .rev()
                .find(|f| f.ty == Some(FieldType::Id))
                .map(|f| f.path)
        })?;
        FieldPath::parse(&path).ok()
    }
}

/// A step key from a label: lower-case letters, digits and `_`, at most
/// 32 characters, unique among `taken` (`_2`, `_3`… when needed).
pub fn derive_key(label: &str, taken: &dyn Fn(&str) -> bool) -> String {
    let mut base = String::new();
    for c in label.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            base.push(c);
        } else if !base.ends_with('_') && !base.is_empty() {
            base.push('_');
        }
        if base.len() >= 32 {
            break;
        }
    }
    let mut base = base.trim_end_matches('_').to_owned();
    if base.is_empty() {
        base = "step".into();
    }
    if base.starts_with(|c: char| c.is_ascii_digit()) {
        base = format!("s_{base}");
    }
    base.truncate(32);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{}_{n}", base.chars().take(28).collect::<String>()))
        .find(|k| !taken(k))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{NewStep, StepOp, Trigger};

    fn blank() -> Definition {
        Definition {
            trigger: Trigger {
                connector: ConnectorKey::HubSpot,
                event: "contact.creation".into(),
            },
            steps: vec![],
        }
    }

    fn insert(d: &mut Definition, step: NewStep) -> String {
        let at = d.steps.len();
        d.apply(StepOp::Insert {
            at,
            step,
            label: None,
        })
        .unwrap();
        d.steps[at].key.clone()
    }

    #[test]
    fn keys_are_derived_from_labels_and_unique() {
        let taken = |k: &str| k == "get_a_contact";
        assert_eq!(derive_key("Get a contact", &taken), "get_a_contact_2");
        assert_eq!(derive_key("Zoë's  check!", &|_| false), "zo_s_check");
        assert_eq!(derive_key("  ", &|_| false), "step");
        assert_eq!(derive_key("1st", &|_| false), "s_1st");
    }

    #[test]
    fn the_reference_flow_is_mostly_filled_in_by_suggestions() {
        let mut d = blank();
        let fetch = insert(
            &mut d,
            NewStep::Action {
                connector: ConnectorKey::HubSpot,
                action: "get_contact".into(),
            },
        );
        let check = insert(
            &mut d,
            NewStep::Action {
                connector: ConnectorKey::Verification,
                action: "create_check".into(),
            },
        );
        let wait = insert(
            &mut d,
            NewStep::Wait {
                connector: ConnectorKey::Verification,
                event: "check.completed".into(),
                correlation: None,
            },
        );
        assert_eq!(d.check(), vec![], "{d:#?}");
        let StepKind::Action { input, .. } = &d.steps[0].kind else {
            panic!()
        };
        assert_eq!(input["contact_id"], Expr::path("trigger.objectId").unwrap());
        let StepKind::Action { input, .. } = &d.steps[1].kind else {
            panic!()
        };
        for (to, from) in [
            ("first_name", "firstname"),
            ("last_name", "lastname"),
            ("email", "email"),
        ] {
            assert_eq!(
                input[to],
                Expr::path(&format!("steps.{fetch}.{from}")).unwrap()
            );
        }
        assert!(
            !input.contains_key("date_of_birth"),
            "identity data is never suggested"
        );
        let StepKind::Wait { correlation, .. } = &d.steps[2].kind else {
            panic!()
        };
        assert_eq!(
            *correlation,
            Expr::path(&format!("steps.{check}.id")).unwrap()
        );
        assert_eq!(wait, "wait_for_a_check_completes");
        assert_eq!(d.steps[1].title(), "Start a check");
    }
}
