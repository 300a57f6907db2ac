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
            let evaluated = evaluate(&step.kind, &data);
            row.input = evaluated.input;
            row.output = evaluated.output;
            let output = match evaluated.decision {
                Decision::Next(v) => v,
                Decision::Fail(why) => {
                    row.status = "failed";
                    row.note = why;
                    out.push(row);
                    break;
                }
                Decision::Stop(_) => {
                    row.status = "stopped";
                    row.note = "the condition is not met: a real run ends here".into();
                    out.push(row);
                    break;
                }
                Decision::Call {
                    side_effect: true, ..
                } => {
                    row.status = "skipped";
                    row.note = "not called: a dry run writes nothing".into();
                    Value::Null
                }
                Decision::Call {
                    connector,
                    action,
                    input,
                    output: schema,
                    ..
                } => match self.read(tenant, connector, action, bindings, &input).await {
                    Ok(v) => {
                        row.output = redact(schema, &[], &v);
                        row.note = "read from the bound connection".into();
                        v
                    }
                    Err(e) => {
                        row.status = "failed";
                        row.note = e;
                        out.push(row);
                        break;
                    }
                },
                Decision::Wait {
                    connector,
                    event,
                    timeout_secs,
                    value,
                } => {
                    row.status = "waiting";
                    row.input = json!({ "correlation": value });
                    row.note = format!(
                        "a real run waits up to {} for {} {event}; the dry run goes on as if it timed out",
                        human_secs(timeout_secs),
                        connector.def().name
                    );
                    let timed_out = json!({ "timed_out": true });
                    row.output = timed_out.clone();
                    timed_out
                }
            };
            context["steps"][&step.key] = output;
            out.push(row);
        }
        out
    }

    /// Calls a read-only action through the step's bound connection.
    async fn read(
        &self,
        tenant: &TenantId,
        connector: ConnectorKey,
        action: &str,
        bindings: &workflows::Bindings,
        input: &Value,
    ) -> Result<Value, String> {
        let connection = bindings
            .get(connector.as_str())
            .ok_or_else(|| format!("no {} connection is bound", connector.def().name))?;
        let (_, ctx) = self
            .connections
            .context(tenant, connection)
            .await
            .map_err(|e| e.to_string())?;
        let conn = self
            .connections
            .registry()
            .get(connector)
            .ok_or_else(|| format!("no connector {connector}"))?;
        conn.call(action, input, &ctx)
            .await
            .map_err(|e| e.to_string())
    }
}
