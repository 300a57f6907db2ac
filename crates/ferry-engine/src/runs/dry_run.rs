//! The builder's dry run of a draft on a sample payload: nothing written.

use super::*;

/// One step of a dry run, as shown to the builder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DryStep {
    /// The step's key.
    pub key: String,
    /// action, validate, map, wait, condition.
    pub kind: &'static str,
    /// ok, failed, skipped (a write not made), stopped, waiting.
    pub status: &'static str,
    /// What the step was given (PII redacted).
    pub input: Value,
    /// What it produced (PII redacted).
    pub output: Value,
    /// Why it failed, or what a real run would do here.
    pub note: String,
}

impl Engine {
    /// Runs `definition` on a sample trigger payload without writing
    /// anything: mappings, validation and conditions are evaluated, actions
    /// that only read are called through their bound connections, actions
    /// with side effects are shown with the input they would get and not
    /// called, and waits are assumed to time out. Stops at the first failure.
    pub async fn dry_run(
        &self,
        tenant: &TenantId,
        definition: &Definition,
        bindings: &workflows::Bindings,
        trigger: Value,
    ) -> Vec<DryStep> {
        let trigger = if definition.trigger.connector == ConnectorKey::Webhook {
            json!({ "body": trigger })
        } else {
            trigger
        };
        let mut context = json!({ "trigger": trigger, "steps": {} });
        let mut out = Vec::new();
        for step in &definition.steps {
            let data = data(&context);
            let mut row = DryStep {
                key: step.key.clone(),
                kind: kind_name(&step.kind),
                status: "ok",
                input: Value::Null,
                output: Value::Null,
                note: String::new(),
            };
            let mut output = Value::Null;
            match &step.kind {
                StepKind::Action {
                    connector,
                    action,
                    input,
                    ..
                } => {
                    let Some(def) = connector.def().action(action) else {
                        row.status = "failed";
                        row.note = format!("{} has no action {action}", connector.def().name);
                        out.push(row);
                        break;
                    };
                    let (value, problem) = action_input(def, input, &data);
                    row.input = redact(def.input, def.output, &value);
                    if let Some(f) = problem {
                        row.status = "failed";
                        row.note = f;
                        out.push(row);
                        break;
                    }
                    if def.side_effect {
                        row.status = "skipped";
                        row.note = "not called: a dry run writes nothing".into();
                    } else {
                        let called = match bindings.get(connector.as_str()) {
                            None => Err(format!("no {} connection is bound", connector.def().name)),
                            Some(c) => match self.connections.context(tenant, c).await {
                                Err(e) => Err(e.to_string()),
                                Ok((_, ctx)) => match self.connections.registry().get(*connector) {
                                    None => Err(format!("no connector {connector}")),
                                    Some(conn) => conn
                                        .call(action, &value, &ctx)
                                        .await
                                        .map_err(|e| e.to_string()),
                                },
                            },
                        };
                        match called {
                            Ok(v) => {
                                row.output = redact(def.output, &[], &v);
                                row.note = "read from the bound connection".into();
                                output = v;
                            }
                            Err(e) => {
                                row.status = "failed";
                                row.note = e;
                                out.push(row);
                                break;
                            }
                        }
                    }
                }
                StepKind::Validate { rules } => {
                    row.input = json!(rules.iter().map(|r| r.path.to_string()).collect::<Vec<_>>());
                    let violations = validate(rules, &data);
                    if !violations.is_empty() {
                        row.status = "failed";
                        row.output = json!({ "violations": violations });
                        row.note =
                            "validation failed: a real run would stop here and write nothing"
                                .into();
                        out.push(row);
                        break;
                    }
                    output = json!({ "valid": true });
                    row.output = output.clone();
                }
                StepKind::Map { output: fields } => {
                    let mut m = serde_json::Map::new();
                    for (name, e) in fields {
                        m.insert(name.clone(), e.eval(&data).unwrap_or(Value::Null));
                    }
                    output = Value::Object(m);
                    row.output = redact_all(&output);
                }
                StepKind::Wait {
                    connector,
                    event,
                    correlation,
                    timeout_secs,
                    ..
                } => {
                    let value = correlation.eval(&data).unwrap_or(Value::Null);
                    row.status = "waiting";
                    row.input = json!({ "correlation": value });
                    row.note = format!(
                        "a real run waits up to {} for {} {event}; the dry run goes on as if it timed out",
                        human_secs(*timeout_secs),
                        connector.def().name
                    );
                    output = json!({ "timed_out": true });
                    row.output = output.clone();
                }
                StepKind::Condition {
                    path,
                    equals,
                    negate,
                } => {
                    let v = path.get(&data).cloned().unwrap_or(Value::Null);
                    let passed = (&v == equals) != *negate;
                    row.input = json!({ "path": path.to_string() });
                    row.output = json!({ "passed": passed });
                    if !passed {
                        row.status = "stopped";
                        row.note = "the condition is not met: a real run ends here".into();
                        out.push(row);
                        break;
                    }
                    output = json!({ "passed": true });
                }
            }
            context["steps"][&step.key] = output;
            out.push(row);
        }
        out
    }
}
