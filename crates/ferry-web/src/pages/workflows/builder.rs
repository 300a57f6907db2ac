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

pub(super) fn default_for(ty: ferry_core::catalog::FieldType) -> Expr {
    use ferry_core::catalog::FieldType as T;
    Expr::Literal {
        value: match ty {
            T::Number => json!(0),
            T::Boolean => json!(false),
            T::Object => json!({}),
            _ => json!(""),
        },
    }
}

/// Applies one builder operation to a draft; `Err` is a message for the
/// person (the draft is then left as it was).
pub(super) fn apply_step_op(d: &mut Definition, f: &StepForm) -> Result<String, String> {
    let index = |key: &str| {
        d.steps
            .iter()
            .position(|s| s.key == key)
            .ok_or_else(|| format!("There is no step {key}."))
    };
    let path = |raw: &str| {
        FieldPath::parse(raw.trim())
            .map_err(|_| format!("Choose a field to read ({raw:?} is not one)."))
    };
    match f.op.as_str() {
        "up" | "down" => {
            let i = index(&f.key)?;
            let j = if f.op == "up" {
                i.checked_sub(1).ok_or("The step is first already.")?
            } else if i + 1 < d.steps.len() {
                i + 1
            } else {
                return Err("The step is last already.".into());
            };
            d.steps.swap(i, j);
            Ok(format!("Step {} moved {}.", f.key, f.op))
        }
        "remove" => {
            let i = index(&f.key)?;
            d.steps.remove(i);
            Ok(format!("Step {} removed.", f.key))
        }
        "add" => {
            let key = f.new_key.trim().to_owned();
            let kind = match f.kind.as_str() {
                "action" => {
                    let (c, a) = f.action.split_once(':').ok_or("Choose an action.")?;
                    let connector = ConnectorKey::parse(c).ok_or("Choose an action.")?;
                    let def = connector.def().action(a).ok_or("Choose an action.")?;
                    StepKind::Action {
                        connector,
                        action: a.to_owned(),
                        input: def
                            .input
                            .iter()
                            .filter(|i| i.required)
                            .map(|i| (i.name.to_owned(), default_for(i.ty)))
                            .collect(),
                        retry: RetryPolicy::default(),
                    }
                }
                "validate" => StepKind::Validate { rules: vec![] },
                "map" => StepKind::Map {
                    output: BTreeMap::new(),
                },
                "wait" => {
                    let (c, e) = f
                        .event
                        .split_once(':')
                        .ok_or("Choose the event to wait for.")?;
                    let connector =
                        ConnectorKey::parse(c).ok_or("Choose the event to wait for.")?;
                    let trigger = connector
                        .def()
                        .trigger(e)
                        .ok_or("Choose the event to wait for.")?;
                    let field = trigger
                        .fields
                        .iter()
                        .find(|x| x.ty == ferry_core::catalog::FieldType::Id)
                        .or_else(|| trigger.fields.first())
                        .ok_or("That event carries no field to correlate on.")?;
                    StepKind::Wait {
                        connector,
                        event: e.to_owned(),
                        correlation: Expr::Path {
                            path: path(&f.source)?,
                        },
                        event_field: field.name.to_owned(),
                        timeout_secs: 24 * 3600,
                    }
                }
                "condition" => StepKind::Condition {
                    path: path(&f.source)?,
                    equals: json!(f.arg.trim()),
                    negate: false,
                },
                _ => return Err("Choose the kind of step.".into()),
            };
            d.steps.push(Step {
                key: key.clone(),
                kind,
            });
            Ok(format!("Step {key} added."))
        }
        "map" => {
            let (step, field) = f
                .target
                .split_once(':')
                .ok_or("Choose the field to fill.")?;
            let i = index(step)?;
            let mut expr = Expr::Path {
                path: path(&f.source)?,
            };
            expr = match f.transform.as_str() {
                "" => expr,
                "trim" => expr.then(Transform::Trim),
                "lower" => expr.then(Transform::Trim).then(Transform::Lower),
                "upper" => expr.then(Transform::Trim).then(Transform::Upper),
                _ => return Err("Choose a transform from the list.".into()),
            };
            match &mut d.steps[i].kind {
                StepKind::Action { input, .. } => {
                    input.insert(field.to_owned(), expr);
                }
                StepKind::Map { output } => {
                    output.insert(field.to_owned(), expr);
                }
                _ => return Err(format!("Step {step} has no fields to fill.")),
            }
            Ok(format!("{step}.{field} now reads {}.", f.source.trim()))
        }
        "rule" => {
            let i = index(&f.key)?;
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
            let StepKind::Validate { rules } = &mut d.steps[i].kind else {
                return Err(format!("Step {} is not a validation step.", f.key));
            };
            rules.push(Rule {
                path: path(&f.source)?,
                check,
            });
            Ok(format!("Rule added to {}.", f.key))
        }
        _ => Err("Unknown operation.".into()),
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
    let wf = store::get(&state.db, &admin.tenant_id, &id).await?;
    let mut draft = wf.draft.clone();
    let issues = match apply_step_op(&mut draft, &form) {
        Err(message) => vec![message],
        Ok(done) => {
            let found = draft.check();
            if found.is_empty() {
                return save_checked(
                    &state,
                    &req,
                    &admin,
                    &wf,
                    &draft,
                    json!({ "op": form.op }),
                    &format!("{done} Draft saved."),
                )
                .await;
            }
            found.iter().map(ToString::to_string).collect()
        }
    };
    workflow_page(
        &state,
        &req,
        &admin,
        wf,
        StatusCode::UNPROCESSABLE_ENTITY,
        Feedback {
            issues,
            ..Feedback::default()
        },
    )
    .await
}
