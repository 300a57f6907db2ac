//! The builder's step operations (add, move, map, validate, remove) and
//! the fields each step can read.

use super::*;

/// A field a mapping may read, for the builder's choices.
pub(crate) struct FieldChoice {
    pub path: String,
    pub label: String,
}

/// Every field the draft's steps can read: the trigger's, then each step's
/// output as its schema describes it (a map step's own names).
pub(crate) fn field_choices(d: &Definition) -> Vec<FieldChoice> {
    use ferry_core::catalog::FieldSchema;
    let describe = |prefix: &str, fields: &[FieldSchema]| -> Vec<FieldChoice> {
        fields
            .iter()
            .map(|f| FieldChoice {
                path: format!("{prefix}.{}", f.name),
                label: format!(
                    "{} — {}{}",
                    f.label,
                    ferry_core::workflow::type_name(f.ty),
                    if f.pii.is_pii() { ", personal" } else { "" }
                ),
            })
            .collect()
    };
    let mut out = d
        .trigger
        .connector
        .def()
        .trigger(&d.trigger.event)
        .map(|t| describe("trigger", t.fields))
        .unwrap_or_default();
    for s in &d.steps {
        let prefix = format!("steps.{}", s.key);
        match &s.kind {
            StepKind::Action {
                connector, action, ..
            } => {
                if let Some(a) = connector.def().action(action) {
                    out.extend(describe(&prefix, a.output));
                }
            }
            StepKind::Wait {
                connector, event, ..
            } => {
                if let Some(t) = connector.def().trigger(event) {
                    out.extend(describe(&prefix, t.fields));
                }
            }
            StepKind::Map { output } => out.extend(output.keys().map(|k| FieldChoice {
                path: format!("{prefix}.{k}"),
                label: "computed".into(),
            })),
            StepKind::Validate { .. } | StepKind::Condition { .. } => {}
        }
    }
    out
}

/// The step editor's form: one operation per submission.
#[derive(Debug, Default, serde::Deserialize)]
pub struct StepForm {
    #[serde(default)]
    pub(super) op: String,
    #[serde(default)]
    pub(super) key: String,
    #[serde(default)]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) new_key: String,
    #[serde(default)]
    pub(super) action: String,
    #[serde(default)]
    pub(super) event: String,
    #[serde(default)]
    pub(super) target: String,
    #[serde(default)]
    pub(super) source: String,
    #[serde(default)]
    pub(super) transform: String,
    #[serde(default)]
    pub(super) check: String,
    #[serde(default)]
    pub(super) arg: String,
}

/// The builder's form, as one typed operation; `Err` is a message for the
/// person (nothing is changed).
impl TryFrom<&StepForm> for StepOp {
    type Error = String;
    fn try_from(f: &StepForm) -> Result<Self, String> {
        let path = |raw: &str| {
            FieldPath::parse(raw.trim()).map_err(|_| "Choose a field to read.".to_owned())
        };
        let pair = |raw: &str, missing: &str| -> Result<(ConnectorKey, String), String> {
            let (c, rest) = raw.split_once(':').ok_or(missing)?;
            let connector = ConnectorKey::parse(c).ok_or(missing)?;
            Ok((connector, rest.to_owned()))
        };
        Ok(match f.op.as_str() {
            "up" | "down" => StepOp::Move {
                key: f.key.clone(),
                up: f.op == "up",
            },
            "remove" => StepOp::Remove { key: f.key.clone() },
            "add" => StepOp::Add {
                key: f.new_key.trim().to_owned(),
                step: match f.kind.as_str() {
                    "action" => {
                        let (connector, action) = pair(&f.action, "Choose an action.")?;
                        NewStep::Action { connector, action }
                    }
                    "validate" => NewStep::Validate,
                    "map" => NewStep::Map,
                    "wait" => {
                        let (connector, event) = pair(&f.event, "Choose the event to wait for.")?;
                        NewStep::Wait {
                            connector,
                            event,
                            correlation: Some(path(&f.source)?),
                        }
                    }
                    "condition" => NewStep::Condition {
                        path: Some(path(&f.source)?),
                        equals: f.arg.clone(),
                    },
                    _ => return Err("Choose the kind of step.".into()),
                },
            },
            "map" => {
                let (step, field) = f
                    .target
                    .split_once(':')
                    .ok_or("Choose the field to fill.")?;
                let transforms = match f.transform.as_str() {
                    "" => vec![],
                    "trim" => vec![Transform::Trim],
                    "lower" => vec![Transform::Trim, Transform::Lower],
                    "upper" => vec![Transform::Trim, Transform::Upper],
                    _ => return Err("Choose a transform from the list.".into()),
                };
                StepOp::Map {
                    step: step.to_owned(),
                    field: field.to_owned(),
                    source: path(&f.source)?,
                    transforms,
                }
            }
            "rule" => {
                let check = match f.check.as_str() {
                    "required" => Check::Required,
                    "email" => Check::Email,
                    "phone" => Check::Phone,
                    "date" => Check::Date,
                    "country" => Check::Country,
                    "max_len" => Check::MaxLen {
                        max: f
                            .arg
                            .trim()
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or("Enter the longest length allowed, a number above 0.")?,
                    },
                    "one_of" => {
                        let values: Vec<String> = f
                            .arg
                            .split(',')
                            .map(|v| v.trim().to_owned())
                            .filter(|v| !v.is_empty())
                            .collect();
                        if values.is_empty() {
                            return Err("List the allowed values, separated by commas.".into());
                        }
                        Check::OneOf { values }
                    }
                    _ => return Err("Choose a check from the list.".into()),
                };
                StepOp::Rule {
                    key: f.key.clone(),
                    rule: Rule {
                        path: path(&f.source)?,
                        check,
                    },
                }
            }
            _ => return Err("Unknown operation.".into()),
        })
    }
}

/// POST /workflows/{id}/steps (admin): add, move, remove a step, fill an
/// input from a field, add a validation rule. The result is checked like
/// any draft; a problem leaves the draft as it was and is shown (422).
pub async fn edit_steps(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<StepForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let result = match StepOp::try_from(&*form) {
        Err(message) => Err(ferry_app::Error::field("definition", message)),
        Ok(op) => {
            state
                .services
                .workflows
                .edit_steps(&admin.actor, &id, op)
                .await
        }
    };
    match result {
        Ok(done) => Ok(saved(&id, &format!("{done} Draft saved."))),
        Err(e) => {
            refused(&state, &req, &admin, &id, e, |errors| Feedback {
                issues: issues_of(&errors),
                ..Feedback::default()
            })
            .await
        }
    }
}
