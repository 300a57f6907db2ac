//! The builder: the workflow as a vertical sequence of cards (the trigger,
//! then each step), each opening in place to edit. A field is filled with
//! fixed text, data pills (`{{…}}`, chosen from the fields before the step,
//! shown with the last test's values), or both, and one finishing touch
//! (trim, case, phone, date, default, a lookup table). Every card is a
//! plain form: it works without JavaScript; `builder.js` only inserts pills
//! where the cursor is and shows the controls a choice needs.

use super::*;
use ferry_core::catalog::{FieldSchema, FieldType, PiiClass};
use ferry_core::mapping::Expr;
use ferry_core::validate::{Check, Rule};
use ferry_core::workflow::text::{Shape, from_text, to_text};
use ferry_core::workflow::{Available, RetryPolicy, Step};

/// A submitted form, one value per name.
pub(super) type Form = BTreeMap<String, String>;

/// Rows of a lookup table shown at least.
const LOOKUP_ROWS: usize = 4;
/// Free rows (an object's own keys, a map step's outputs) offered at least.
const FREE_ROWS: usize = 3;

/// A field that can be inserted as a pill.
pub(super) struct Pill {
    pub(super) path: String,
    pub(super) label: String,
    /// The values the field can take, comma-separated (a lookup table's
    /// first column is filled with them).
    pub(super) values: String,
}

/// One field's editor.
pub(super) struct Row {
    pub(super) name: String,
    pub(super) dom: String,
    pub(super) label: String,
    /// A free row's name box: its form name and text.
    pub(super) key_text: Option<(String, String)>,
    pub(super) about: String,
    pub(super) required: bool,
    pub(super) text: String,
    pub(super) shape: String,
    pub(super) arg: String,
    pub(super) lookup: Vec<(String, String)>,
    pub(super) lookup_else: String,
    pub(super) to_choices: Vec<String>,
    pub(super) error: Option<String>,
    pub(super) kept: bool,
}

/// An object field (a set of named values).
pub(super) struct Group {
    pub(super) label: String,
    pub(super) about: String,
    pub(super) rows: Vec<Row>,
}

/// One validation choice per field.
pub(super) struct RuleRow {
    pub(super) path: String,
    pub(super) source: String,
    pub(super) label: String,
    pub(super) choice: String,
    pub(super) format: Option<String>,
    pub(super) max: String,
}

/// What a step's card edits.
pub(super) enum Editor {
    Action {
        rows: Vec<Row>,
        groups: Vec<Group>,
        attempts: u32,
    },
    Validate {
        rows: Vec<RuleRow>,
    },
    Map {
        rows: Vec<Row>,
    },
    Wait {
        correlation: String,
        choices: Vec<(String, String)>,
        hours: u64,
    },
    Condition {
        path: String,
        choices: Vec<(String, String)>,
        equals: String,
        negate: bool,
    },
}

/// A step's card.
pub(super) struct Card {
    pub(super) key: String,
    pub(super) number: usize,
    pub(super) index: usize,
    pub(super) title: String,
    pub(super) label_value: String,
    pub(super) kind: &'static str,
    pub(super) summary: String,
    pub(super) open: bool,
    pub(super) editor: Editor,
    pub(super) pills: Vec<Pill>,
    pub(super) issues: Vec<String>,
    pub(super) first: bool,
    pub(super) last: bool,
}

/// A step of a test, for the page.
pub(super) struct TestRow {
    pub(super) title: String,
    pub(super) status: &'static str,
    pub(super) note: String,
    pub(super) input: String,
    pub(super) output: String,
}

/// What a refused change or a test shows when the builder is rendered.
#[derive(Default)]
pub(super) struct BuildFeedback {
    /// The card to show open.
    pub(super) open: Option<String>,
    /// The values that card was submitted with (kept as typed).
    pub(super) form: Option<Form>,
    /// Field name -> message, for that card.
    pub(super) field_errors: BTreeMap<String, String>,
    /// Problems naming step and field.
    pub(super) issues: Vec<String>,
    /// A test's steps.
    pub(super) test: Option<(Vec<TestRow>, bool)>,
    /// Why the test could not start.
    pub(super) test_error: Option<String>,
}

#[derive(Template)]
#[template(path = "builder.html")]
pub(super) struct BuilderPage {
    pub(super) layout: Layout,
    pub(super) shapes: &'static [(&'static str, &'static str)],
    pub(super) script: &'static str,
    pub(super) id: String,
    pub(super) name: String,
    pub(super) environment: &'static str,
    pub(super) status: String,
    pub(super) unpublished: Vec<String>,
    pub(super) trigger_title: String,
    pub(super) trigger_value: String,
    pub(super) triggers: Vec<(String, String)>,
    pub(super) cards: Vec<Card>,
    pub(super) choices: Vec<(String, Vec<(String, String)>)>,
    pub(super) issues: Vec<String>,
    pub(super) bindings: Vec<BindingRow>,
    pub(super) records: Vec<(String, String)>,
    pub(super) records_error: Option<String>,
    pub(super) sample: Option<String>,
    pub(super) test: Option<(Vec<TestRow>, bool)>,
    pub(super) test_error: Option<String>,
}

fn dom(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// How a field is described beside its box: type, required, sensitivity.
fn about(ty: FieldType, required: bool, pii: PiiClass) -> String {
    let mut parts = vec![match ty {
        FieldType::Enum(values) => format!("one of: {}", values.join(", ")),
        FieldType::Date => "a date, YYYY-MM-DD".into(),
        FieldType::Phone => "a phone number, +44…".into(),
        FieldType::Country => "a country code (GB, FR…)".into(),
        other => ferry_core::workflow::type_name(other).to_owned(),
    }];
    parts.push(if required { "required" } else { "optional" }.into());
    parts.push(
        match pii {
            PiiClass::None => "not personal",
            PiiClass::Contact => "personal: contact details",
            PiiClass::Identity => "personal: identity data",
        }
        .into(),
    );
    parts.join(" · ")
}

/// A sample value as a pill shows it: short, on one line.
fn short(v: &serde_json::Value) -> Option<String> {
    let text = match v {
        serde_json::Value::Null => return None,
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let one_line: String = text.chars().filter(|c| !c.is_control()).collect();
    Some(if one_line.chars().count() > 40 {
        format!("{}…", one_line.chars().take(39).collect::<String>())
    } else {
        one_line
    })
}

fn pills(fields: &[Available], sample: Option<&serde_json::Value>) -> Vec<Pill> {
    fields
        .iter()
        .map(|f| {
            let value = sample.and_then(|d| {
                ferry_core::mapping::FieldPath::parse(&f.path)
                    .ok()
                    .and_then(|p| p.get(d).and_then(short))
            });
            Pill {
                path: f.path.clone(),
                values: match f.ty {
                    Some(FieldType::Enum(values)) => values.join(","),
                    _ => String::new(),
                },
                label: match value {
                    Some(v) => format!("{} → {}: {v}", f.source, f.label),
                    None => format!("{} → {}", f.source, f.label),
                },
            }
        })
        .collect()
}

/// The enum values of the field a single pill reads, if it is one.
fn source_values(text: &str, fields: &[Available]) -> Vec<String> {
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .map(str::trim);
    match inner.and_then(|p| fields.iter().find(|f| f.path == p)) {
        Some(Available {
            ty: Some(FieldType::Enum(values)),
            ..
        }) => values.iter().map(|v| (*v).to_owned()).collect(),
        _ => vec![],
    }
}

/// What a row needs to be drawn.
struct RowSpec<'a> {
    name: String,
    label: String,
    key_text: Option<(String, String)>,
    ty: FieldType,
    required: bool,
    pii: PiiClass,
    expr: Option<&'a Expr>,
}

fn make_row(
    spec: RowSpec<'_>,
    form: Option<&Form>,
    errors: &BTreeMap<String, String>,
    fields: &[Available],
) -> Row {
    let name = spec.name;
    let get = |k: String| form.and_then(|f| f.get(&k)).cloned().unwrap_or_default();
    let (text, shape, arg, mut lookup, lookup_else, kept) = match form {
        Some(_) => {
            let table = (0..20)
                .filter_map(|i| {
                    let from = form?.get(&format!("lk.{name}.from.{i}"))?;
                    Some((from.clone(), get(format!("lk.{name}.to.{i}"))))
                })
                .collect();
            (
                get(format!("v.{name}")),
                get(format!("tf.{name}")),
                get(format!("arg.{name}")),
                table,
                get(format!("lk.{name}.else")),
                !get(format!("keep.{name}")).is_empty(),
            )
        }
        None => match spec.expr.map(to_text) {
            None => (
                String::new(),
                String::new(),
                String::new(),
                vec![],
                String::new(),
                false,
            ),
            Some(Some((text, shape))) => {
                let (table, fallback) = match &shape {
                    Shape::Lookup { table, fallback } => {
                        (table.clone(), fallback.clone().unwrap_or_default())
                    }
                    _ => (vec![], String::new()),
                };
                (
                    text,
                    shape.key().to_owned(),
                    shape.arg().to_owned(),
                    table,
                    fallback,
                    false,
                )
            }
            // Made in the JSON editor: shown, kept as it is.
            Some(None) => (
                serde_json::to_string(spec.expr.unwrap_or(&Expr::Literal {
                    value: serde_json::Value::Null,
                }))
                .unwrap_or_default(),
                String::new(),
                String::new(),
                vec![],
                String::new(),
                true,
            ),
        },
    };
    for v in source_values(&text, fields) {
        if !lookup.iter().any(|(from, _)| *from == v) {
            lookup.push((v, String::new()));
        }
    }
    while lookup.len() < LOOKUP_ROWS {
        lookup.push((String::new(), String::new()));
    }
    Row {
        dom: dom(&name),
        error: errors.get(&name).cloned(),
        label: spec.label,
        key_text: spec.key_text,
        about: about(spec.ty, spec.required, spec.pii),
        required: spec.required,
        to_choices: match spec.ty {
            FieldType::Enum(values) => values.iter().map(|v| (*v).to_owned()).collect(),
            _ => vec![],
        },
        name,
        text,
        shape,
        arg,
        lookup,
        lookup_else,
        kept,
    }
}

/// Rows for an object without known fields (a map step's outputs, a JSON
/// body): its own keys, then empty rows to add more.
fn free_rows(
    group: &str,
    current: Option<&BTreeMap<String, Expr>>,
    form: Option<&Form>,
    errors: &BTreeMap<String, String>,
    fields: &[Available],
) -> Vec<Row> {
    let count = match form {
        Some(f) => (0..50)
            .take_while(|i| f.contains_key(&format!("okey.{group}.{i}")))
            .count(),
        None => current.map_or(0, BTreeMap::len) + FREE_ROWS,
    };
    let existing: Vec<(&String, &Expr)> = current.map(|c| c.iter().collect()).unwrap_or_default();
    (0..count.max(FREE_ROWS))
        .map(|i| {
            let key_text = match form {
                Some(f) => f
                    .get(&format!("okey.{group}.{i}"))
                    .cloned()
                    .unwrap_or_default(),
                None => existing
                    .get(i)
                    .map(|(k, _)| (*k).clone())
                    .unwrap_or_default(),
            };
            make_row(
                RowSpec {
                    name: format!("{group}.~{i}"),
                    label: format!("Value {}", i + 1),
                    key_text: Some((format!("okey.{group}.{i}"), key_text)),
                    ty: FieldType::Text,
                    required: false,
                    pii: PiiClass::Contact,
                    expr: existing.get(i).map(|(_, e)| *e),
                },
                form,
                errors,
                fields,
            )
        })
        .collect()
}

/// A format check for a field type, with how it is said.
fn format_check(ty: Option<FieldType>) -> Option<(Check, String)> {
    Some(match ty? {
        FieldType::Email => (Check::Email, "an email".into()),
        FieldType::Phone => (Check::Phone, "a phone number (+44…)".into()),
        FieldType::Date => (Check::Date, "a date (YYYY-MM-DD)".into()),
        FieldType::Country => (Check::Country, "a country code".into()),
        FieldType::Enum(values) => (
            Check::OneOf {
                values: values.iter().map(|v| (*v).to_owned()).collect(),
            },
            format!("one of {}", values.join(", ")),
        ),
        _ => return None,
    })
}

fn rule_rows(rules: &[Rule], fields: &[Available], form: Option<&Form>) -> Vec<RuleRow> {
    // The earlier steps' fields first (what a check is usually about),
    // then the trigger's.
    let mut ordered: Vec<&Available> = fields.iter().filter(|f| f.step.is_some()).collect();
    ordered.extend(fields.iter().filter(|f| f.step.is_none()));
    let mut rows: Vec<RuleRow> = ordered
        .into_iter()
        .filter(|f| f.ty != Some(FieldType::Object))
        .map(|f| {
            let mine: Vec<&Rule> = rules
                .iter()
                .filter(|r| r.path.to_string() == f.path)
                .collect();
            let required = mine.iter().any(|r| r.check == Check::Required);
            let format = format_check(f.ty);
            let formatted = format.as_ref().is_some_and(|(c, _)| {
                mine.iter()
                    .any(|r| std::mem::discriminant(&r.check) == std::mem::discriminant(c))
            });
            let max = mine.iter().find_map(|r| match r.check {
                Check::MaxLen { max } => Some(max.to_string()),
                _ => None,
            });
            let choice = match (required, formatted) {
                (true, true) => "required_format",
                (true, false) => "required",
                (false, true) => "format",
                (false, false) => "",
            };
            RuleRow {
                source: f.source.clone(),
                label: f.label.clone(),
                choice: form
                    .and_then(|x| x.get(&format!("rule.{}", f.path)).cloned())
                    .unwrap_or_else(|| choice.to_owned()),
                format: format.map(|(_, said)| said),
                max: form
                    .and_then(|x| x.get(&format!("max.{}", f.path)).cloned())
                    .unwrap_or_else(|| max.unwrap_or_default()),
                path: f.path.clone(),
            }
        })
        .collect();
    // A rule on a field the builder does not list (made in the JSON
    // editor) gets its own row so that saving keeps it.
    for r in rules {
        let path = r.path.to_string();
        if !rows.iter().any(|row| row.path == path) {
            rows.push(RuleRow {
                source: "Other".into(),
                label: path.clone(),
                choice: if r.check == Check::Required {
                    "required"
                } else {
                    ""
                }
                .into(),
                format: None,
                max: String::new(),
                path,
            });
        }
    }
    rows
}

fn path_choices(fields: &[Available]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|f| (f.path.clone(), format!("{} → {}", f.source, f.label)))
        .collect()
}

fn card(
    d: &Definition,
    index: usize,
    step: &Step,
    feedback: &BuildFeedback,
    sample: Option<&serde_json::Value>,
) -> Card {
    let fields = d.fields_before(index);
    let open = feedback.open.as_deref() == Some(step.key.as_str());
    let form = if open { feedback.form.as_ref() } else { None };
    let no_errors = BTreeMap::new();
    let errors = if open {
        &feedback.field_errors
    } else {
        &no_errors
    };
    let editor = match &step.kind {
        StepKind::Action {
            connector,
            action,
            input,
            retry,
        } => {
            let def = connector.def().action(action);
            let mut rows = Vec::new();
            let mut groups = Vec::new();
            for f in def.map_or(&[][..], |a| a.input) {
                if f.ty == FieldType::Object {
                    let current = match input.get(f.name) {
                        Some(Expr::Object { fields }) => Some(fields),
                        _ => None,
                    };
                    let rows = if f.fields.is_empty() {
                        free_rows(f.name, current, form, errors, &fields)
                    } else {
                        f.fields
                            .iter()
                            .map(|sub: &FieldSchema| {
                                make_row(
                                    RowSpec {
                                        name: format!("{}.{}", f.name, sub.name),
                                        label: sub.label.to_owned(),
                                        key_text: None,
                                        ty: sub.ty,
                                        required: false,
                                        pii: sub.pii,
                                        expr: current.and_then(|c| c.get(sub.name)),
                                    },
                                    form,
                                    errors,
                                    &fields,
                                )
                            })
                            .collect()
                    };
                    groups.push(Group {
                        label: f.label.to_owned(),
                        about: format!(
                            "{}: fill in only what should be written",
                            if f.required { "required" } else { "optional" }
                        ),
                        rows,
                    });
                } else {
                    rows.push(make_row(
                        RowSpec {
                            name: f.name.to_owned(),
                            label: f.label.to_owned(),
                            key_text: None,
                            ty: f.ty,
                            required: f.required,
                            pii: f.pii,
                            expr: input.get(f.name),
                        },
                        form,
                        errors,
                        &fields,
                    ));
                }
            }
            Editor::Action {
                rows,
                groups,
                attempts: retry.attempts,
            }
        }
        StepKind::Validate { rules } => Editor::Validate {
            rows: rule_rows(rules, &fields, form),
        },
        StepKind::Map { output } => Editor::Map {
            rows: free_rows("out", Some(output), form, errors, &fields),
        },
        StepKind::Wait {
            correlation,
            timeout_secs,
            ..
        } => Editor::Wait {
            correlation: match correlation {
                Expr::Path { path } => path.to_string(),
                _ => String::new(),
            },
            choices: path_choices(&fields),
            hours: (timeout_secs / 3600).max(1),
        },
        StepKind::Condition {
            path,
            equals,
            negate,
        } => Editor::Condition {
            path: path.to_string(),
            choices: path_choices(&fields),
            equals: equals
                .as_str()
                .map_or_else(|| equals.to_string(), str::to_owned),
            negate: *negate,
        },
    };
    let (kind, summary) = summary(&step.kind);
    let prefix = format!("step {}", step.key);
    Card {
        number: index + 1,
        index,
        title: step.title(),
        label_value: form
            .and_then(|f| f.get("label").cloned())
            .unwrap_or_else(|| step.title()),
        kind,
        summary,
        open,
        pills: pills(&fields, sample),
        issues: feedback
            .issues
            .iter()
            .filter(|i| {
                i.starts_with(&format!("{prefix},")) || i.starts_with(&format!("{prefix}:"))
            })
            .cloned()
            .collect(),
        first: index == 0,
        last: index + 1 == d.steps.len(),
        key: step.key.clone(),
        editor,
    }
}

/// What "Add a step" offers, grouped for the select.
fn step_choices() -> Vec<(String, Vec<(String, String)>)> {
    let mut groups = Vec::new();
    for c in ConnectorKey::ALL {
        let def = c.def();
        let mut items: Vec<(String, String)> = def
            .actions
            .iter()
            .map(|a| {
                (
                    format!("action:{}:{}", c.as_str(), a.key),
                    a.label.to_owned(),
                )
            })
            .collect();
        items.extend(def.triggers.iter().map(|t| {
            (
                format!("wait:{}:{}", c.as_str(), t.key),
                format!("Wait for: {}", t.label),
            )
        }));
        if !items.is_empty() {
            groups.push((def.name.to_owned(), items));
        }
    }
    groups.push((
        "Logic".into(),
        vec![
            (
                "validate".into(),
                "Check the data (validation rules)".into(),
            ),
            ("condition".into(), "Only continue if…".into()),
            ("map".into(), "Compute values".into()),
        ],
    ));
    groups
}

/// Renders the builder.
pub(super) async fn builder_page(
    state: &AppState,
    req: &HttpRequest,
    admin: &Member,
    id: &WorkflowId,
    status_code: StatusCode,
    feedback: BuildFeedback,
) -> Result<HttpResponse, AppError> {
    let services = &state.services.workflows;
    let view = services.view(&admin.actor, id).await?;
    let sample = services.sample(&admin.actor, id).await?;
    let records = services.test_records(&admin.actor, id).await?;
    let wf = view.workflow;
    let d = &wf.draft;
    let cards = d
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| card(d, i, s, &feedback, sample.as_ref().map(|s| &s.data)))
        .collect();
    let bindings = binding_rows(&wf, &view.connections);
    let trigger_def = d.trigger.connector.def();
    let (records, records_error) = match records {
        Ok(r) => (r.into_iter().map(|r| (r.id, r.label)).collect(), None),
        Err(why) => (vec![], Some(why)),
    };
    render(
        req,
        status_code,
        &BuilderPage {
            layout: Layout::new(req, format!("Build: {}", wf.name), "/workflows"),
            shapes: &Shape::CHOICES,
            script: crate::assets::url("builder.js"),
            id: wf.id.to_string(),
            environment: wf.environment.as_str(),
            status: status(&wf),
            unpublished: view.unpublished_changes,
            trigger_title: format!(
                "{} — {}",
                trigger_def.name,
                trigger_def
                    .trigger(&d.trigger.event)
                    .map_or(d.trigger.event.as_str(), |t| t.label)
            ),
            trigger_value: format!("{}:{}", d.trigger.connector.as_str(), d.trigger.event),
            triggers: ConnectorKey::ALL
                .iter()
                .flat_map(|c| {
                    c.def().triggers.iter().map(move |t| {
                        (
                            format!("{}:{}", c.as_str(), t.key),
                            format!("{} — {}", c.def().name, t.label),
                        )
                    })
                })
                .collect(),
            cards,
            choices: step_choices(),
            issues: feedback.issues,
            bindings,
            records,
            records_error,
            sample: sample.map(|s| {
                format!(
                    "Values beside the fields are from the last test ({}, {}).",
                    s.label,
                    s.taken_at.format("%Y-%m-%d %H:%M UTC")
                )
            }),
            test: feedback.test,
            test_error: feedback.test_error,
            name: wf.name,
        },
    )
}

/// The builder's query: which card to show open.
#[derive(Debug, Default, serde::Deserialize)]
pub struct BuildQuery {
    #[serde(default)]
    open: String,
}

/// GET /workflows/{id}/build
pub async fn build(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    query: web::Query<BuildQuery>,
) -> Result<HttpResponse, AppError> {
    let open = Some(query.open.clone()).filter(|k| {
        !k.is_empty() && k.len() <= 40 && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    builder_page(
        &state,
        &req,
        &admin,
        &id.into_inner(),
        StatusCode::OK,
        BuildFeedback {
            open,
            ..BuildFeedback::default()
        },
    )
    .await
}

fn to_builder(id: &WorkflowId, key: Option<&str>, message: &str) -> HttpResponse {
    let target = match key {
        Some(k) => format!("/workflows/{id}/build?open={k}#step-{k}"),
        None => format!("/workflows/{id}/build"),
    };
    redirect_with_flash(&target, FlashKind::Success, message)
}

/// Re-renders the builder for a refused change.
pub(super) async fn refused_build(
    state: &AppState,
    req: &HttpRequest,
    admin: &Member,
    id: &WorkflowId,
    error: ferry_app::Error,
    feedback: BuildFeedback,
) -> Result<HttpResponse, AppError> {
    match error {
        ferry_app::Error::Invalid(errors) => {
            let feedback = BuildFeedback {
                issues: errors.iter().map(|e| e.message.clone()).collect(),
                ..feedback
            };
            builder_page(
                state,
                req,
                admin,
                id,
                StatusCode::UNPROCESSABLE_ENTITY,
                feedback,
            )
            .await
        }
        other => Err(other.into()),
    }
}

/// The insert form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct InsertForm {
    #[serde(default)]
    at: String,
    #[serde(default)]
    choice: String,
    #[serde(default)]
    label: String,
}

fn parse_choice(choice: &str) -> Result<NewStep, String> {
    let pair = |rest: &str| -> Option<(ConnectorKey, String)> {
        let (c, key) = rest.split_once(':')?;
        Some((ConnectorKey::parse(c)?, key.to_owned()))
    };
    let missing = || "Choose what the step does from the list.".to_owned();
    Ok(match choice.split_once(':') {
        Some(("action", rest)) => {
            let (connector, action) = pair(rest).ok_or_else(missing)?;
            NewStep::Action { connector, action }
        }
        Some(("wait", rest)) => {
            let (connector, event) = pair(rest).ok_or_else(missing)?;
            NewStep::Wait {
                connector,
                event,
                correlation: None,
            }
        }
        _ => match choice {
            "validate" => NewStep::Validate,
            "map" => NewStep::Map,
            "condition" => NewStep::Condition {
                path: None,
                equals: String::new(),
            },
            _ => return Err(missing()),
        },
    })
}

/// POST /workflows/{id}/build/insert: a step where the person chose.
pub async fn insert_step(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<InsertForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let label = form.label.trim();
    let op = parse_choice(form.choice.trim()).and_then(|step| {
        if label.chars().count() > ferry_core::workflow::MAX_LABEL {
            return Err(format!(
                "Give the step a name of at most {} characters.",
                ferry_core::workflow::MAX_LABEL
            ));
        }
        Ok(StepOp::Insert {
            at: form.at.trim().parse().unwrap_or(usize::MAX),
            step,
            label: Some(label.to_owned()).filter(|l| !l.is_empty()),
        })
    });
    let result = match op {
        Err(message) => Err(ferry_app::Error::field("step", message)),
        Ok(op) => state.services.workflows.edit(&admin.actor, &id, op).await,
    };
    match result {
        Ok(done) => Ok(to_builder(&id, done.key.as_deref(), &done.message)),
        Err(e) => refused_build(&state, &req, &admin, &id, e, BuildFeedback::default()).await,
    }
}

/// The trigger form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TriggerForm {
    #[serde(default)]
    trigger: String,
}

/// POST /workflows/{id}/build/trigger
pub async fn set_trigger(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<TriggerForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let op = form
        .trigger
        .split_once(':')
        .and_then(|(c, e)| Some((ConnectorKey::parse(c)?, e.to_owned())))
        .map(|(connector, event)| StepOp::Trigger { connector, event });
    let result = match op {
        None => Err(ferry_app::Error::field(
            "trigger",
            "Choose the event that starts the workflow.",
        )),
        Some(op) => state.services.workflows.edit(&admin.actor, &id, op).await,
    };
    match result {
        Ok(done) => Ok(to_builder(&id, None, &done.message)),
        Err(e) => refused_build(&state, &req, &admin, &id, e, BuildFeedback::default()).await,
    }
}

/// One row's expression from the form, or what is wrong with it.
fn parse_row(form: &Form, name: &str, ty: FieldType) -> Result<Option<Expr>, String> {
    let get = |k: String| form.get(&k).map_or("", String::as_str);
    let mut text = get(format!("v.{name}")).to_owned();
    let pick = get(format!("pick.{name}")).trim();
    if !pick.is_empty() {
        text.push_str(&format!("{{{{{pick}}}}}"));
    }
    let table = (0..20)
        .filter_map(|i| {
            let from = form.get(&format!("lk.{name}.from.{i}"))?;
            Some((from.clone(), get(format!("lk.{name}.to.{i}")).to_owned()))
        })
        .collect();
    let shape = Shape::parse(
        get(format!("tf.{name}")),
        get(format!("arg.{name}")),
        table,
        get(format!("lk.{name}.else")),
    )?;
    from_text(&text, ty, shape)
}

/// A row kept as made in the JSON editor, or parsed from the form.
fn row_value(
    form: &Form,
    name: &str,
    ty: FieldType,
    old: Option<&Expr>,
) -> Result<Option<Expr>, String> {
    if form.contains_key(&format!("keep.{name}")) {
        return Ok(old.cloned());
    }
    parse_row(form, name, ty)
}

/// Free rows (`okey.<group>.<i>` and their values) as named expressions.
fn parse_free(
    form: &Form,
    group: &str,
    old: Option<&BTreeMap<String, Expr>>,
    errors: &mut BTreeMap<String, String>,
) -> BTreeMap<String, Expr> {
    let mut out = BTreeMap::new();
    for i in 0..50 {
        let Some(key) = form.get(&format!("okey.{group}.{i}")) else {
            break;
        };
        let name = format!("{group}.~{i}");
        let key = key.trim();
        let value = form.get(&format!("v.{name}")).map_or("", String::as_str);
        if key.is_empty() {
            if !value.trim().is_empty()
                || form
                    .get(&format!("pick.{name}"))
                    .is_some_and(|p| !p.is_empty())
            {
                errors.insert(name, "Give this value a name.".into());
            }
            continue;
        }
        if key.len() > 64 || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.insert(name, "A name is letters, digits and _ (at most 64).".into());
            continue;
        }
        let previous = old.and_then(|o| o.get(key));
        match row_value(form, &name, FieldType::Text, previous) {
            Ok(Some(e)) => {
                out.insert(key.to_owned(), e);
            }
            Ok(None) => {}
            Err(m) => {
                errors.insert(name, m);
            }
        }
    }
    out
}

/// The step's new kind from its card's form; field name -> message when
/// something is wrong.
pub(super) fn kind_from_form(
    d: &Definition,
    index: usize,
    old: &StepKind,
    form: &Form,
) -> Result<StepKind, BTreeMap<String, String>> {
    let mut errors = BTreeMap::new();
    let fields = d.fields_before(index);
    let kind = match old {
        StepKind::Action {
            connector,
            action,
            input,
            retry,
        } => {
            let mut new_input = BTreeMap::new();
            if let Some(def) = connector.def().action(action) {
                for f in def.input {
                    if f.ty == FieldType::Object {
                        let previous = match input.get(f.name) {
                            Some(Expr::Object { fields }) => Some(fields),
                            _ => None,
                        };
                        let mut sub = BTreeMap::new();
                        if f.fields.is_empty() {
                            sub = parse_free(form, f.name, previous, &mut errors);
                        } else {
                            for s in f.fields {
                                let name = format!("{}.{}", f.name, s.name);
                                match row_value(
                                    form,
                                    &name,
                                    s.ty,
                                    previous.and_then(|p| p.get(s.name)),
                                ) {
                                    Ok(Some(e)) => {
                                        sub.insert(s.name.to_owned(), e);
                                    }
                                    Ok(None) => {}
                                    Err(m) => {
                                        errors.insert(name, m);
                                    }
                                }
                            }
                        }
                        if !sub.is_empty() || f.required {
                            new_input.insert(f.name.to_owned(), Expr::Object { fields: sub });
                        }
                        continue;
                    }
                    match row_value(form, f.name, f.ty, input.get(f.name)) {
                        Ok(Some(e)) => {
                            new_input.insert(f.name.to_owned(), e);
                        }
                        Ok(None) if f.required => {
                            errors.insert(
                                f.name.to_owned(),
                                format!("{} is required: pick a field or type a value.", f.label),
                            );
                        }
                        Ok(None) => {}
                        Err(m) => {
                            errors.insert(f.name.to_owned(), m);
                        }
                    }
                }
            }
            let attempts = match form.get("attempts").map(|a| a.trim().parse::<u32>()) {
                None => retry.attempts,
                Some(Ok(n)) if (1..=10).contains(&n) => n,
                Some(_) => {
                    errors.insert(
                        "attempts".into(),
                        "Attempts are a number from 1 to 10.".into(),
                    );
                    retry.attempts
                }
            };
            StepKind::Action {
                connector: *connector,
                action: action.clone(),
                input: new_input,
                retry: RetryPolicy { attempts, ..*retry },
            }
        }
        StepKind::Validate { rules } => {
            let mut new_rules = Vec::new();
            for row in rule_rows(rules, &fields, None) {
                let Ok(path) = ferry_core::mapping::FieldPath::parse(&row.path) else {
                    continue;
                };
                let choice = form
                    .get(&format!("rule.{}", row.path))
                    .map_or("", String::as_str);
                let ty = fields
                    .iter()
                    .find(|f| f.path == row.path)
                    .and_then(|f| f.ty);
                if choice.starts_with("required") {
                    new_rules.push(Rule {
                        path: path.clone(),
                        check: Check::Required,
                    });
                }
                if choice.ends_with("format")
                    && let Some((check, _)) = format_check(ty)
                {
                    new_rules.push(Rule {
                        path: path.clone(),
                        check,
                    });
                }
                let max = form
                    .get(&format!("max.{}", row.path))
                    .map_or("", |m| m.trim());
                if !max.is_empty() {
                    match max.parse::<usize>() {
                        Ok(n) if n > 0 => new_rules.push(Rule {
                            path,
                            check: Check::MaxLen { max: n },
                        }),
                        _ => {
                            errors.insert(
                                format!("max.{}", row.path),
                                "The longest length is a number above 0.".into(),
                            );
                        }
                    }
                }
            }
            StepKind::Validate { rules: new_rules }
        }
        StepKind::Map { output } => StepKind::Map {
            output: parse_free(form, "out", Some(output), &mut errors),
        },
        StepKind::Wait {
            connector,
            event,
            event_field,
            correlation,
            timeout_secs,
        } => {
            let correlation = match form.get("correlation") {
                Some(p) => match ferry_core::mapping::FieldPath::parse(p.trim()) {
                    Ok(path) => Expr::Path { path },
                    Err(_) => {
                        errors.insert(
                            "correlation".into(),
                            "Choose the field the awaited event carries.".into(),
                        );
                        correlation.clone()
                    }
                },
                None => correlation.clone(),
            };
            let timeout_secs = match form.get("hours").map(|h| h.trim().parse::<u64>()) {
                None => *timeout_secs,
                Some(Ok(h)) if (1..=720).contains(&h) => h * 3600,
                Some(_) => {
                    errors.insert("hours".into(), "Wait from 1 to 720 hours (30 days).".into());
                    *timeout_secs
                }
            };
            StepKind::Wait {
                connector: *connector,
                event: event.clone(),
                correlation,
                event_field: event_field.clone(),
                timeout_secs,
            }
        }
        StepKind::Condition { path, .. } => {
            let path = match form
                .get("path")
                .map(|p| ferry_core::mapping::FieldPath::parse(p.trim()))
            {
                Some(Ok(p)) => p,
                None => path.clone(),
                Some(Err(_)) => {
                    errors.insert("path".into(), "Choose the field to look at.".into());
                    path.clone()
                }
            };
            let equals = form.get("equals").map_or("", |e| e.trim());
            if equals.chars().count() > 500 {
                errors.insert("equals".into(), "Use at most 500 characters.".into());
            }
            StepKind::Condition {
                path,
                equals: serde_json::json!(equals),
                negate: form.get("negate").is_some_and(|n| !n.is_empty()),
            }
        }
    };
    if errors.is_empty() {
        Ok(kind)
    } else {
        Err(errors)
    }
}

/// POST /workflows/{id}/build/step/{key}: a card's buttons (save, move,
/// duplicate, remove).
pub async fn step_card(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    path: web::Path<(WorkflowId, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> Result<HttpResponse, AppError> {
    let (id, key) = path.into_inner();
    let form: Form = form.into_inner().into_iter().collect();
    let op_name = form.get("op").map_or("save", String::as_str);
    let op = match op_name {
        "up" | "down" => Ok(StepOp::Move {
            key: key.clone(),
            up: op_name == "up",
        }),
        "duplicate" => Ok(StepOp::Duplicate { key: key.clone() }),
        "remove" => Ok(StepOp::Remove { key: key.clone() }),
        "move_to" => form
            .get("to")
            .and_then(|t| t.trim().parse().ok())
            .map(|to| StepOp::MoveTo {
                key: key.clone(),
                to,
            })
            .ok_or_else(BTreeMap::new),
        _ => {
            let wf = state
                .services
                .workflows
                .view(&admin.actor, &id)
                .await?
                .workflow;
            let Some(index) = wf.draft.steps.iter().position(|s| s.key == key) else {
                return Err(AppError::NotFound);
            };
            let label = form.get("label").map(|l| l.trim().to_owned());
            let mut errors = BTreeMap::new();
            if let Some(l) = &label
                && (l.is_empty() || l.chars().count() > ferry_core::workflow::MAX_LABEL)
            {
                errors.insert(
                    "label".to_owned(),
                    format!(
                        "Give the step a name of 1 to {} characters.",
                        ferry_core::workflow::MAX_LABEL
                    ),
                );
            }
            match kind_from_form(&wf.draft, index, &wf.draft.steps[index].kind, &form) {
                Ok(kind) if errors.is_empty() => Ok(StepOp::Update {
                    key: key.clone(),
                    kind,
                    label,
                }),
                Ok(_) => Err(errors),
                Err(more) => {
                    errors.extend(more);
                    Err(errors)
                }
            }
        }
    };
    let result = match op {
        Ok(op) => state.services.workflows.edit(&admin.actor, &id, op).await,
        Err(field_errors) => {
            let count = field_errors.len().max(1);
            let feedback = BuildFeedback {
                open: Some(key.clone()),
                form: Some(form),
                issues: vec![format!(
                    "Not saved: {count} field{} of this step need{} attention (marked below).",
                    if count == 1 { "" } else { "s" },
                    if count == 1 { "s" } else { "" }
                )],
                field_errors,
                ..BuildFeedback::default()
            };
            return builder_page(
                &state,
                &req,
                &admin,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                feedback,
            )
            .await;
        }
    };
    match result {
        Ok(done) => {
            let open = if op_name == "remove" {
                None
            } else {
                done.key.as_deref()
            };
            Ok(to_builder(
                &id,
                open,
                &format!("{} Draft saved.", done.message),
            ))
        }
        Err(e) => {
            let keep_form = op_name == "save";
            refused_build(
                &state,
                &req,
                &admin,
                &id,
                e,
                BuildFeedback {
                    open: Some(key),
                    form: keep_form.then_some(form),
                    ..BuildFeedback::default()
                },
            )
            .await
        }
    }
}

/// The test form.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TestForm {
    #[serde(default)]
    record: String,
    #[serde(default)]
    record_id: String,
    #[serde(default)]
    writes: String,
}

/// POST /workflows/{id}/build/test: the draft on a real record, step by
/// step, shown unredacted here and stored nowhere but sealed.
pub async fn test_draft(
    state: web::Data<AppState>,
    req: HttpRequest,
    Admin(admin): Admin,
    id: web::Path<WorkflowId>,
    form: web::Form<TestForm>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let record = if form.record_id.trim().is_empty() {
        form.record.trim()
    } else {
        form.record_id.trim()
    };
    let result = state
        .services
        .workflows
        .test(&admin.actor, &id, record, !form.writes.is_empty())
        .await;
    let feedback = match result {
        Ok(tested) => {
            let d = state
                .services
                .workflows
                .view(&admin.actor, &id)
                .await?
                .workflow
                .draft;
            let title = |key: &str| {
                d.steps
                    .iter()
                    .find(|s| s.key == key)
                    .map_or_else(|| key.to_owned(), Step::title)
            };
            let pretty = |v: &serde_json::Value| {
                if v.is_null() {
                    String::new()
                } else {
                    serde_json::to_string_pretty(v).unwrap_or_default()
                }
            };
            BuildFeedback {
                test: Some((
                    tested
                        .run
                        .steps
                        .iter()
                        .map(|s| TestRow {
                            title: title(&s.key),
                            status: s.status,
                            note: s.note.clone(),
                            input: pretty(&s.input),
                            output: pretty(&s.output),
                        })
                        .collect(),
                    tested.writes,
                )),
                ..BuildFeedback::default()
            }
        }
        Err(ferry_app::Error::Invalid(errors)) => BuildFeedback {
            test_error: errors.iter().next().map(|e| e.message.clone()),
            ..BuildFeedback::default()
        },
        Err(e) => return Err(e.into()),
    };
    let status = if feedback.test_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    builder_page(&state, &req, &admin, &id, status, feedback).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::workflow::reference_template;

    fn form(pairs: &[(&str, &str)]) -> Form {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_write_back_card_builds_the_lookup_and_the_properties_object() {
        let d = reference_template();
        let index = d.steps.iter().position(|s| s.key == "write_back").unwrap();
        let f = form(&[
            ("v.contact_id", "{{trigger.objectId}}"),
            ("v.properties.identity_verification_status", ""),
            (
                "pick.properties.identity_verification_status",
                "steps.wait_result.check.result",
            ),
            ("tf.properties.identity_verification_status", "lookup"),
            ("lk.properties.identity_verification_status.from.0", "clear"),
            ("lk.properties.identity_verification_status.to.0", "pass"),
            (
                "lk.properties.identity_verification_status.from.1",
                "consider",
            ),
            (
                "lk.properties.identity_verification_status.to.1",
                "needs_review",
            ),
            (
                "lk.properties.identity_verification_status.from.2",
                "rejected",
            ),
            ("lk.properties.identity_verification_status.to.2", "fail"),
            ("lk.properties.identity_verification_status.else", "pending"),
            (
                "v.properties.identity_verification_ref",
                "{{steps.start_check.id}}",
            ),
            ("attempts", "3"),
        ]);
        let kind = kind_from_form(&d, index, &d.steps[index].kind, &f).unwrap();
        assert_eq!(kind, reference_template().steps[index].kind);
    }

    #[test]
    fn a_bad_value_is_named_at_its_field() {
        let d = reference_template();
        let index = d.steps.iter().position(|s| s.key == "start_check").unwrap();
        let f = form(&[
            ("v.first_name", "{{steps.fetch_contact.firstname"),
            ("v.last_name", ""),
            ("attempts", "99"),
        ]);
        let errors = kind_from_form(&d, index, &d.steps[index].kind, &f).unwrap_err();
        assert!(errors["first_name"].contains("not closed"));
        assert!(errors["last_name"].contains("required"));
        assert!(errors["attempts"].contains("1 to 10"));
    }
}
