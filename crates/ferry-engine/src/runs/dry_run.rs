//! The builder's dry run of a draft on a sample payload (nothing written),
//! and its test run on a real record: shown unredacted to the admin, never
//! stored but sealed; against sandbox connections (or when the admin
//! confirms) the writes are really made and the waits really waited for,
//! briefly.

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
    /// Calls made (with retries, each attempt).
    pub attempts: u32,
    /// The HTTP exchanges made (method, path, status, duration, attempt).
    pub calls: Vec<ferry_connectors::connector::HttpCall>,
}

/// How a test run treats writes and waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestMode {
    /// Make the actions that write (sandbox, or confirmed by the admin).
    pub writes: bool,
    /// How long to wait for an awaited event before going on as if it
    /// timed out.
    pub wait: std::time::Duration,
    /// A dry run: nothing written, no waiting, personal data redacted (the
    /// overview's JSON dry run) rather than shown.
    pub dry: bool,
    /// Retry a failed call as the step's policy says, this many
    /// milliseconds apart (doubling); none: one attempt.
    pub retry_backoff_ms: Option<u64>,
    /// The same seed gives the same idempotency keys (a repeated event).
    pub seed: Option<u64>,
}

impl TestMode {
    /// The dry run's mode.
    pub const DRY: Self = Self {
        writes: false,
        wait: std::time::Duration::ZERO,
        dry: true,
        retry_backoff_ms: None,
        seed: None,
    };
}

/// A test run: each step, unredacted, and the run's data at the end (the
/// builder's sample values).
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The steps, in order; inputs and outputs as they were.
    pub steps: Vec<DryStep>,
    /// `{"trigger": …, "steps": {…}}` at the end.
    pub data: Value,
}

impl Engine {
    /// Runs `definition` on a real trigger payload step by step, showing
    /// every input and output as it was (for the admin's screen only).
    /// Reads are made through the bound connections; writes only when
    /// `mode.writes`; a wait looks for its event for up to `mode.wait`.
    /// Stops at the first failure.
    pub async fn test_run(
        &self,
        tenant: &TenantId,
        definition: &Definition,
        bindings: &workflows::Bindings,
        trigger: Value,
        mode: TestMode,
    ) -> TestRun {
        let trigger = if definition.trigger.connector == ConnectorKey::Webhook {
            json!({ "body": trigger })
        } else {
            trigger
        };
        let mut context = json!({ "trigger": trigger, "steps": {} });
        let mut out = Vec::new();
        let test_id = format!(
            "test_{:016x}",
            mode.seed.unwrap_or_else(rand::random::<u64>)
        );
        for step in &definition.steps {
            let data = data(&context);
            let mut row = DryStep {
                key: step.key.clone(),
                kind: kind_name(&step.kind),
                status: "ok",
                input: Value::Null,
                output: Value::Null,
                note: String::new(),
                attempts: 0,
                calls: Vec::new(),
            };
            let evaluated = evaluate(&step.kind, &data);
            row.input = evaluated.input;
            row.output = evaluated.output;
            let output = match evaluated.decision {
                Decision::Next(v) => {
                    if !mode.dry {
                        row.output = v.clone();
                    }
                    v
                }
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
                    side_effect: true,
                    input,
                    ..
                } if !mode.writes => {
                    row.status = "skipped";
                    row.note = if mode.dry {
                        "not called: a dry run writes nothing".into()
                    } else {
                        row.input = input;
                        "not called: this test makes no writes (production connections; tick the box to make them)".into()
                    };
                    Value::Null
                }
                Decision::Call {
                    connector,
                    action,
                    input,
                    side_effect,
                    output: schema,
                } => {
                    if !mode.dry {
                        row.input = input.clone();
                    }
                    if side_effect {
                        self.guard_test_write(tenant, connector, action, &input)
                            .await;
                    }
                    let key = side_effect.then(|| format!("{test_id}:{}", step.key));
                    let attempts = match (&step.kind, mode.retry_backoff_ms) {
                        (StepKind::Action { retry, .. }, Some(_)) => retry.attempts.max(1),
                        _ => 1,
                    };
                    let mut outcome = Err(String::new());
                    for attempt in 1..=attempts {
                        let (result, calls) = self
                            .call_bound(tenant, connector, action, bindings, &input, key.clone())
                            .await;
                        row.attempts = attempt;
                        row.calls.extend(calls.into_iter().map(|mut c| {
                            c.attempt = attempt;
                            c
                        }));
                        outcome = result;
                        if outcome.is_ok() || attempt == attempts {
                            break;
                        }
                        let base = mode.retry_backoff_ms.unwrap_or(0);
                        tokio::time::sleep(std::time::Duration::from_millis(
                            base.saturating_mul(1 << (attempt - 1).min(10)),
                        ))
                        .await;
                    }
                    match outcome {
                        Ok(v) => {
                            row.output = if mode.dry {
                                redact(schema, &[], &v)
                            } else {
                                v.clone()
                            };
                            row.note = if side_effect {
                                "written through the bound connection".into()
                            } else {
                                "read from the bound connection".into()
                            };
                            v
                        }
                        Err(e) => {
                            row.status = "failed";
                            row.note = e;
                            out.push(row);
                            break;
                        }
                    }
                }
                Decision::Wait {
                    connector,
                    event,
                    timeout_secs,
                    value,
                } if mode.dry => {
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
                Decision::Wait { value: None, .. } => {
                    row.status = "failed";
                    row.note = "the value to wait on is empty".into();
                    out.push(row);
                    break;
                }
                Decision::Wait {
                    connector,
                    event,
                    value: Some(value),
                    ..
                } => {
                    row.input = json!({ "correlation": value });
                    let key = correlation_key(connector, event, &value);
                    match self.await_event(tenant, &key, mode.wait).await {
                        Some(payload) => {
                            row.output = payload.clone();
                            row.note = format!("{} {event} arrived", connector.def().name);
                            payload
                        }
                        None => {
                            row.status = "waiting";
                            row.note = format!(
                                "{} {event} did not arrive within {} s; the test goes on as if it timed out (a real run waits)",
                                connector.def().name,
                                mode.wait.as_secs()
                            );
                            let timed_out = json!({ "timed_out": true });
                            row.output = timed_out.clone();
                            timed_out
                        }
                    }
                }
            };
            context["steps"][&step.key] = output;
            out.push(row);
        }
        TestRun {
            steps: out,
            data: data(&context),
        }
    }

    /// The awaited event's payload, looked for until `within` passes.
    async fn await_event(
        &self,
        tenant: &TenantId,
        key: &str,
        within: std::time::Duration,
    ) -> Option<Value> {
        let until = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(bytes)) = self.correlated_payload(tenant, key).await {
                return serde_json::from_slice(&bytes).ok();
            }
            if std::time::Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// The newest records behind `connector`'s trigger, through the bound
    /// connection (a CRM's latest contacts), for choosing a test record.
    pub async fn recent_records(
        &self,
        tenant: &TenantId,
        connector: ConnectorKey,
        bindings: &workflows::Bindings,
        limit: usize,
    ) -> Result<Vec<Value>, String> {
        let connection = bindings
            .get(connector.as_str())
            .ok_or_else(|| format!("no {} connection is chosen", connector.def().name))?;
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
        conn.recent(&ctx, limit).await.map_err(|e| e.to_string())
    }

    /// A test's write to a contact comes back as change events: remember
    /// it first, as a run does, so they are recognised as echoes.
    async fn guard_test_write(
        &self,
        tenant: &TenantId,
        connector: ConnectorKey,
        action: &str,
        input: &Value,
    ) {
        if connector != ConnectorKey::HubSpot || action != "update_contact" {
            return;
        }
        let contact = input["contact_id"].as_str().unwrap_or("");
        let until = self.clock.now() + ChronoDuration::seconds(ECHO_SECS);
        for (k, v) in input["properties"].as_object().into_iter().flatten() {
            let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            if let Err(e) = runs::guard_echo(&self.db, tenant, contact, k, &value, until).await {
                tracing::warn!(error = %e, "could not record a test write's echo guard");
            }
        }
    }

    /// Runs `definition` on a sample trigger payload without writing
    /// anything: mappings, validation and conditions are evaluated, actions
    /// that only read are called through their bound connections, actions
    /// with side effects are shown with the input they would get and not
    /// called, and waits are assumed to time out; personal data is
    /// redacted. Stops at the first failure.
    pub async fn dry_run(
        &self,
        tenant: &TenantId,
        definition: &Definition,
        bindings: &workflows::Bindings,
        trigger: Value,
    ) -> Vec<DryStep> {
        self.test_run(tenant, definition, bindings, trigger, TestMode::DRY)
            .await
            .steps
    }

    /// Calls an action through the step's bound connection (a write with
    /// its idempotency key).
    async fn call_bound(
        &self,
        tenant: &TenantId,
        connector: ConnectorKey,
        action: &str,
        bindings: &workflows::Bindings,
        input: &Value,
        idempotency_key: Option<String>,
    ) -> (
        Result<Value, String>,
        Vec<ferry_connectors::connector::HttpCall>,
    ) {
        let Some(connection) = bindings.get(connector.as_str()) else {
            return (
                Err(format!("no {} connection is bound", connector.def().name)),
                vec![],
            );
        };
        let mut ctx = match self.connections.context(tenant, connection).await {
            Ok((_, ctx)) => ctx,
            Err(e) => return (Err(e.to_string()), vec![]),
        };
        ctx.idempotency_key = idempotency_key;
        let Some(conn) = self.connections.registry().get(connector) else {
            return (Err(format!("no connector {connector}")), vec![]);
        };
        let result = conn
            .call(action, input, &ctx)
            .await
            .map_err(|e| e.to_string());
        let calls = ctx.log.lock().map(|l| l.clone()).unwrap_or_default();
        (result, calls)
    }
}
