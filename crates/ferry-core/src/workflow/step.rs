//! What a step's own rules decide from the run's data, before any I/O: the
//! one place step semantics live. A real run and the builder's dry run both
//! call [`evaluate`]; they differ only in what they do with an action call
//! (made, or shown and skipped) and a wait (parked, or assumed to time out).

use super::StepKind;
use crate::catalog::{ActionDef, ConnectorKey, FieldSchema, FieldType};
use crate::mapping::Expr;
use crate::redact::{redact, redact_all};
use crate::validate::{validate, validate_input};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// What the step's rules decided; an action call or a wait carries what
/// the caller needs to make it, borrowed from the step.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision<'a> {
    /// The step is done; its output.
    Next(Value),
    /// The run fails here, nothing written; why.
    Fail(String),
    /// A condition is not met: the run ends here; why.
    Stop(String),
    /// The connector's action is to be called with this input.
    Call {
        /// The connector.
        connector: ConnectorKey,
        /// The action's key.
        action: &'a str,
        /// The action's input (unredacted: it is sent).
        input: Value,
        /// Whether the action writes somewhere.
        side_effect: bool,
        /// The shape of its output (to redact what comes back).
        output: &'static [FieldSchema],
    },
    /// The run waits for the event whose field carries this value (none:
    /// the value is empty, which a real run cannot wait on).
    Wait {
        /// The connector whose event is awaited.
        connector: ConnectorKey,
        /// The event's key.
        event: &'a str,
        /// How long to wait at most.
        timeout_secs: u64,
        /// The correlation value.
        value: Option<String>,
    },
}

/// A step evaluated: the decision, and what the step record shows of its
/// input and output (personal data redacted).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated<'a> {
    /// What happens next.
    pub decision: Decision<'a>,
    /// The input, as recorded.
    pub input: Value,
    /// The output, as recorded (null when the decision is a call or a wait).
    pub output: Value,
}

/// The name of a step's kind, as records show it.
pub fn kind_name(k: &StepKind) -> &'static str {
    match k {
        StepKind::Action { .. } => "action",
        StepKind::Validate { .. } => "validate",
        StepKind::Map { .. } => "map",
        StepKind::Wait { .. } => "wait",
        StepKind::Condition { .. } => "condition",
    }
}

/// A number mapped into a text or id field becomes its decimal text (a
/// HubSpot `objectId` is a number in events, a string in paths).
fn coerce(schema: &[FieldSchema], name: &str, v: Value) -> Value {
    match (schema.iter().find(|f| f.name == name).map(|f| f.ty), v) {
        (Some(FieldType::Id | FieldType::Text), Value::Number(n)) => Value::String(n.to_string()),
        (_, v) => v,
    }
}

/// An action's input from the run's data: each mapped field, then the
/// schema's checks. The problem, if any, is a mapping error or the
/// validation failure ("nothing written").
pub fn action_input(
    def: &ActionDef,
    input: &BTreeMap<String, Expr>,
    data: &Value,
) -> (Value, Option<String>) {
    let mut values = Map::new();
    for (name, e) in input {
        match e.eval(data) {
            Ok(Value::Null) => {}
            Ok(v) => {
                values.insert(name.clone(), coerce(def.input, name, v));
            }
            Err(err) => {
                return (
                    Value::Object(values),
                    Some(format!("mapping {name}: {}", err.0)),
                );
            }
        }
    }
    let violations = validate_input(def.input, &values);
    let problem = (!violations.is_empty()).then(|| {
        format!(
            "validation failed, nothing written: {}",
            violations
                .iter()
                .map(|v| format!("{}: {}", v.field, v.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    });
    (Value::Object(values), problem)
}

/// Evaluates a step on the run's data (`{"trigger": …, "steps": {…}}`).
pub fn evaluate<'a>(kind: &'a StepKind, data: &Value) -> Evaluated<'a> {
    let done = |decision, input, output| Evaluated {
        decision,
        input,
        output,
    };
    match kind {
        StepKind::Action {
            connector,
            action,
            input,
            ..
        } => {
            let Some(def) = connector.def().action(action) else {
                return done(
                    Decision::Fail(format!("{} has no action {action}", connector.def().name)),
                    Value::Null,
                    Value::Null,
                );
            };
            let (value, problem) = action_input(def, input, data);
            let shown = redact(def.input, def.output, &value);
            // Validation before every write: nothing invalid leaves Ferry.
            let decision = match problem {
                Some(p) => Decision::Fail(p),
                None => Decision::Call {
                    connector: *connector,
                    action,
                    input: value,
                    side_effect: def.side_effect,
                    output: def.output,
                },
            };
            done(decision, shown, Value::Null)
        }
        StepKind::Validate { rules } => {
            let input = json!(rules.iter().map(|r| r.path.to_string()).collect::<Vec<_>>());
            let violations = validate(rules, data);
            if violations.is_empty() {
                let out = json!({ "valid": true });
                done(Decision::Next(out.clone()), input, out)
            } else {
                let reasons: Vec<String> = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.message))
                    .collect();
                done(
                    Decision::Fail(format!(
                        "validation failed, nothing written: {}",
                        reasons.join("; ")
                    )),
                    input,
                    json!({ "valid": false, "violations": violations }),
                )
            }
        }
        StepKind::Map { output } => {
            let mut out = Map::new();
            let mut failed = None;
            for (name, e) in output {
                match e.eval(data) {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    Err(err) => failed = Some(format!("{name}: {}", err.0)),
                }
            }
            let out = Value::Object(out);
            let shown = redact_all(&out);
            let decision = match failed {
                Some(f) => Decision::Fail(format!("mapping failed: {f}")),
                None => Decision::Next(out),
            };
            done(decision, Value::Null, shown)
        }
        StepKind::Wait {
            connector,
            event,
            correlation,
            timeout_secs,
            ..
        } => {
            let value = match correlation.eval(data) {
                Ok(Value::String(s)) if !s.is_empty() => Some(s),
                Ok(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            done(
                Decision::Wait {
                    connector: *connector,
                    event,
                    timeout_secs: *timeout_secs,
                    value,
                },
                Value::Null,
                Value::Null,
            )
        }
        StepKind::Condition {
            path,
            equals,
            negate,
        } => {
            let v = path.get(data).cloned().unwrap_or(Value::Null);
            let matched = (&v == equals) != *negate;
            let input = json!({ "path": path.to_string() });
            let decision = if matched {
                Decision::Next(json!({ "passed": true }))
            } else {
                Decision::Stop(format!("condition on {path} not met: the run ends here"))
            };
            done(decision, input, json!({ "passed": matched }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::reference_template;

    fn step(key: &str) -> StepKind {
        reference_template()
            .steps
            .into_iter()
            .find(|s| s.key == key)
            .unwrap()
            .kind
    }

    #[test]
    fn validation_fails_naming_the_field_and_never_the_value() {
        let data = json!({ "trigger": {}, "steps": { "fetch_contact": { "properties": { "firstname": "Ada", "email": "ada@example.com" } } } });
        let validate = step("validate_contact");
        let e = evaluate(&validate, &data);
        let Decision::Fail(why) = &e.decision else {
            panic!("{e:?}")
        };
        assert!(why.contains("lastname"), "{why}");
        assert!(!why.contains("Ada") && !why.contains("ada@example.com"));
        assert_eq!(e.output["valid"], false);
    }

    #[test]
    fn an_action_is_called_with_its_mapped_input_and_the_record_is_redacted() {
        let data = json!({ "trigger": { "objectId": 7 }, "steps": {} });
        let fetch = step("fetch_contact");
        let e = evaluate(&fetch, &data);
        match e.decision {
            Decision::Call {
                input, side_effect, ..
            } => {
                assert_eq!(input["contact_id"], "7", "a number made text for an id");
                assert!(!side_effect);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_wait_needs_a_correlation_value() {
        let wait = step("wait_result");
        let value_of = |data: &Value| match evaluate(&wait, data).decision {
            Decision::Wait { value, .. } => value,
            other => panic!("{other:?}"),
        };
        let empty = json!({ "trigger": {}, "steps": {} });
        assert_eq!(value_of(&empty), None);
        let started = json!({ "trigger": {}, "steps": { "start_check": { "id": "chk_1" } } });
        assert_eq!(value_of(&started), Some("chk_1".into()));
    }
}
