//! Editing a definition one typed operation at a time (the builder's
//! buttons): insert, move, duplicate, rename, remove a step, save a step's
//! card, change the trigger.
//! An operation that does not apply leaves the definition as it was and
//! says why in words for the person; the result is then checked like any
//! draft.

use super::{Definition, MAX_LABEL, RetryPolicy, Step, StepKind, default_label, derive_key};
use crate::catalog::{ConnectorKey, FieldType};
use crate::mapping::{Expr, FieldPath};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// A step to add, as the builder offers them.
#[derive(Debug, Clone, PartialEq)]
pub enum NewStep {
    /// A connector action, its required inputs pre-filled with empty values.
    Action {
        /// The connector.
        connector: ConnectorKey,
        /// The action's key.
        action: String,
    },
    /// Validation rules (none yet).
    Validate,
    /// Computed values (none yet).
    Map,
    /// Wait for a connector's event whose id field equals `correlation`
    /// (none: the builder suggests it).
    Wait {
        /// The connector.
        connector: ConnectorKey,
        /// The event's key.
        event: String,
        /// The field of the run whose value the event must carry.
        correlation: Option<FieldPath>,
    },
    /// Continue only when `path` equals `equals` (none: the latest field
    /// before it, to be chosen in the step's card).
    Condition {
        /// The field compared.
        path: Option<FieldPath>,
        /// The value it must equal.
        equals: String,
    },
}

/// One change to a definition.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOp {
    /// Swap a step with the one before (`up`) or after it.
    Move {
        /// The step.
        key: String,
        /// Towards the trigger.
        up: bool,
    },
    /// Remove a step.
    Remove {
        /// The step.
        key: String,
    },
    /// Insert a step at position `at` (0: first after the trigger), its key
    /// derived from its label (or from what it does); an action's inputs
    /// and a wait's correlation are suggested from the fields before it.
    Insert {
        /// Where.
        at: usize,
        /// What it does.
        step: NewStep,
        /// Its name for people, if given.
        label: Option<String>,
    },
    /// Move a step to position `to` (drag and drop).
    MoveTo {
        /// The step.
        key: String,
        /// Its new position.
        to: usize,
    },
    /// Insert a copy of a step right after it.
    Duplicate {
        /// The step.
        key: String,
    },
    /// Give a step a new name (its key stays, so nothing reading it breaks).
    Rename {
        /// The step.
        key: String,
        /// The name.
        label: String,
    },
    /// Start the workflow with another event.
    Trigger {
        /// The connector.
        connector: ConnectorKey,
        /// Its event.
        event: String,
    },
    /// Replace what a step does with `kind` (the step's card, saved),
    /// keeping its kind of step, and its name when `label` is given.
    Update {
        /// The step.
        key: String,
        /// What it now does.
        kind: StepKind,
        /// Its new name, if it changes.
        label: Option<String>,
    },
}

impl StepOp {
    /// A short name for the audit log (`add`, `up`, `map`…).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Move { up: true, .. } => "up",
            Self::Move { up: false, .. } => "down",
            Self::Remove { .. } => "remove",
            Self::Insert { .. } => "insert",
            Self::MoveTo { .. } => "move",
            Self::Duplicate { .. } => "duplicate",
            Self::Rename { .. } => "rename",
            Self::Update { .. } => "update",
            Self::Trigger { .. } => "trigger",
        }
    }
}

/// An empty value of a field's type, for a required input not yet mapped.
pub fn default_for(ty: FieldType) -> Expr {
    Expr::Literal {
        value: match ty {
            FieldType::Number => json!(0),
            FieldType::Boolean => json!(false),
            FieldType::Object => json!({}),
            _ => json!(""),
        },
    }
}

impl Definition {
    /// The connectors the trigger and steps use.
    pub fn connectors(&self) -> BTreeSet<ConnectorKey> {
        let mut used = BTreeSet::new();
        used.insert(self.trigger.connector);
        for s in &self.steps {
            if let StepKind::Action { connector, .. } | StepKind::Wait { connector, .. } = &s.kind {
                used.insert(*connector);
            }
        }
        used
    }

    fn index_of(&self, key: &str) -> Result<usize, String> {
        self.steps
            .iter()
            .position(|s| s.key == key)
            .ok_or_else(|| format!("There is no step {key}."))
    }

    /// What a new step at position `at` does, with its suggested values.
    fn new_kind(&self, at: usize, step: NewStep) -> Result<StepKind, String> {
        Ok(match step {
            NewStep::Action { connector, action } => {
                let def = connector.def().action(&action).ok_or("Choose an action.")?;
                let mut input = self.suggest_inputs(at, def);
                for i in def.input.iter().filter(|i| i.required) {
                    input
                        .entry(i.name.to_owned())
                        .or_insert_with(|| default_for(i.ty));
                }
                StepKind::Action {
                    connector,
                    input,
                    action,
                    retry: RetryPolicy::default(),
                }
            }
            NewStep::Validate => StepKind::Validate { rules: vec![] },
            NewStep::Map => StepKind::Map {
                output: BTreeMap::new(),
            },
            NewStep::Wait {
                connector,
                event,
                correlation,
            } => {
                let trigger = connector
                    .def()
                    .trigger(&event)
                    .ok_or("Choose the event to wait for.")?;
                let field = trigger
                    .fields
                    .iter()
                    .find(|x| x.ty == FieldType::Id)
                    .or_else(|| trigger.fields.first())
                    .ok_or("That event carries no field to correlate on.")?;
                let correlation = correlation
                    .or_else(|| self.suggest_correlation(at, connector))
                    .ok_or("Nothing before this step has an id to wait on.")?;
                StepKind::Wait {
                    connector,
                    event,
                    correlation: Expr::Path { path: correlation },
                    event_field: field.name.to_owned(),
                    timeout_secs: 24 * 3600,
                }
            }
            NewStep::Condition { path, equals } => {
                let path = match path {
                    Some(p) => p,
                    None => self
                        .fields_before(at)
                        .last()
                        .and_then(|f| FieldPath::parse(&f.path).ok())
                        .ok_or("There is no field before this step to look at.")?,
                };
                StepKind::Condition {
                    path,
                    equals: json!(equals.trim()),
                    negate: false,
                }
            }
        })
    }

    /// Applies `op`; on success says what changed. On `Err` (a message for
    /// the person) the definition is unchanged.
    pub fn apply(&mut self, op: StepOp) -> Result<String, String> {
        match op {
            StepOp::Move { key, up } => {
                let i = self.index_of(&key)?;
                let j = if up {
                    i.checked_sub(1).ok_or("The step is first already.")?
                } else if i + 1 < self.steps.len() {
                    i + 1
                } else {
                    return Err("The step is last already.".into());
                };
                self.steps.swap(i, j);
                Ok(format!(
                    "Step {key} moved {}.",
                    if up { "up" } else { "down" }
                ))
            }
            StepOp::Remove { key } => {
                let i = self.index_of(&key)?;
                self.steps.remove(i);
                Ok(format!("Step {key} removed."))
            }
            StepOp::Insert { at, step, label } => {
                let at = at.min(self.steps.len());
                let kind = self.new_kind(at, step)?;
                let label = label.map(|l| l.trim().to_owned()).filter(|l| !l.is_empty());
                let title = label.clone().unwrap_or_else(|| default_label(&kind));
                let key = derive_key(&title, &|k| self.steps.iter().any(|s| s.key == k));
                self.steps.insert(at, Step { key, label, kind });
                Ok(format!("“{title}” added."))
            }
            StepOp::MoveTo { key, to } => {
                let i = self.index_of(&key)?;
                let step = self.steps.remove(i);
                let title = step.title();
                self.steps.insert(to.min(self.steps.len()), step);
                Ok(format!("“{title}” moved."))
            }
            StepOp::Duplicate { key } => {
                let i = self.index_of(&key)?;
                let mut copy = self.steps[i].clone();
                let title = format!("Copy of {}", copy.title());
                copy.key = derive_key(&title, &|k| self.steps.iter().any(|s| s.key == k));
                copy.label = Some(title.chars().take(MAX_LABEL).collect());
                self.steps.insert(i + 1, copy);
                Ok(format!("“{title}” added after the original."))
            }
            StepOp::Rename { key, label } => {
                let i = self.index_of(&key)?;
                let label = label.trim().to_owned();
                if label.is_empty() {
                    return Err("Give the step a name.".into());
                }
                self.steps[i].label = Some(label.clone());
                Ok(format!("Step renamed “{label}”."))
            }
            StepOp::Trigger { connector, event } => {
                let t = connector
                    .def()
                    .trigger(&event)
                    .ok_or("Choose the event that starts the workflow.")?;
                let said = format!("Starts when: {} — {}.", connector.def().name, t.label);
                self.trigger = super::Trigger { connector, event };
                Ok(said)
            }
            StepOp::Update { key, kind, label } => {
                let i = self.index_of(&key)?;
                if std::mem::discriminant(&self.steps[i].kind) != std::mem::discriminant(&kind) {
                    return Err("A step keeps its kind: add a new step instead.".into());
                }
                self.steps[i].kind = kind;
                if let Some(label) = label.map(|l| l.trim().to_owned()) {
                    self.steps[i].label = (!label.is_empty()
                        && label != default_label(&self.steps[i].kind))
                    .then_some(label);
                }
                Ok(format!("“{}” saved.", self.steps[i].title()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{reference_template, starting_point};

    #[test]
    fn the_starting_point_passes_the_check() {
        assert!(starting_point().check().is_empty());
    }

    #[test]
    fn a_failed_operation_leaves_the_definition_as_it_was() {
        let mut d = reference_template();
        let before = d.clone();
        let first = d.steps[0].key.clone();
        assert_eq!(
            d.apply(StepOp::Move {
                key: first,
                up: true
            }),
            Err("The step is first already.".to_owned())
        );
        assert!(d.apply(StepOp::Remove { key: "nope".into() }).is_err());
        assert_eq!(d, before);
    }

    #[test]
    fn moving_adding_and_mapping_change_the_steps() {
        let mut d = starting_point();
        d.apply(StepOp::Insert {
            at: 1,
            step: NewStep::Map,
            label: Some("tidy".into()),
        })
        .unwrap();
        let email = Expr::path("steps.fetch_contact.properties.email")
            .unwrap()
            .then(crate::mapping::Transform::Trim)
            .then(crate::mapping::Transform::Lower);
        d.apply(StepOp::Update {
            key: "tidy".into(),
            kind: StepKind::Map {
                output: [("email".to_owned(), email)].into(),
            },
            label: None,
        })
        .unwrap();
        d.apply(StepOp::Move {
            key: "tidy".into(),
            up: true,
        })
        .unwrap();
        assert_eq!(d.steps[0].key, "tidy");
        let StepKind::Map { output } = &d.steps[0].kind else {
            panic!("a map step")
        };
        assert!(output.contains_key("email"));
        assert_eq!(
            d.connectors().into_iter().collect::<Vec<_>>(),
            vec![ConnectorKey::HubSpot]
        );
    }
}
