//! Executing a run: claim it, then each step in order — mapped, validated,
//! called through its connection, retried with back-off, parked on a wait —
//! each attempt saved with the run.

use super::*;

/// An action call a step decided on.
pub(super) struct Call<'a> {
    pub(super) connector: ConnectorKey,
    pub(super) action: &'a str,
    pub(super) side_effect: bool,
    pub(super) connection: &'a ConnectionId,
    pub(super) step_key: &'a str,
    pub(super) input: &'a Value,
    pub(super) output_schema: &'a [FieldSchema],
}

/// What a step did.
pub(super) enum StepResult {
    /// Done; its output.
    Next(Value),
    /// Failed, may succeed later.
    Retry {
        error: String,
        retry_after: Option<std::time::Duration>,
    },
    /// Failed for good.
    Fail(String),
    /// Park until the event arrives.
    Wait {
        key: String,
        deadline: DateTime<Utc>,
    },
    /// A condition ended the run.
    Stop(String),
}

/// The run's working data (sealed at rest).
pub(super) fn data(context: &Value) -> Value {
    json!({ "trigger": context["trigger"], "steps": context["steps"] })
}

impl Engine {
    /// Executes a run of `tenant` as far as it can go now. Every log line
    /// inside (steps, connector calls, failures) carries the tenant, the
    /// workflow and the run.
    #[tracing::instrument(
        name = "execute_run",
        skip_all,
        fields(tenant_id = %tenant, run_id = %id, workflow_id = tracing::field::Empty)
    )]
    pub async fn execute(&self, tenant: &TenantId, id: &RunId) -> Result<(), StoreError> {
        let now = self.clock.now();
        // Claimed with the other writes waiting, in one transaction.
        let claim = runs::Write::Claim(runs::RunClaim {
            tenant: tenant.clone(),
            id: id.clone(),
            lease_until: now + self.lease,
        });
        let runs::Written::Claimed(Some(claimed)) = self.writer.write(claim).await? else {
            return Ok(());
        };
        let tenant = claimed.tenant.clone();
        let mut run = claimed.run;
        tracing::Span::current().record("workflow_id", tracing::field::display(&run.workflow_id));
        let vault = self.connections.vault();
        let mut context: Value =
            serde_json::from_slice(&vault.open(&tenant, &claimed.context, id.as_str()).await?)
                .map_err(|_| StoreError::Corrupt("runs.context"))?;
        // A paused workflow runs nothing (the run waits, held, for the
        // admin's choice); a deleted one's runs end here.
        let gate = match claimed.gate {
            Some(gate) => gate,
            None => runs::gate(&self.db, &tenant, &run.workflow_id).await?,
        };
        match gate {
            runs::Gate::Open => {}
            runs::Gate::Paused => {
                runs::hold(&self.db, &tenant, id, self.clock.now()).await?;
                tracing::info!(tenant_id = %tenant, run_id = %id, "workflow paused: run held");
                return Ok(());
            }
            runs::Gate::Deleted => {
                return self
                    .end_before_steps(
                        &tenant,
                        id,
                        &run,
                        &context,
                        RunStatus::Skipped,
                        "the workflow was deleted: the run ends here",
                    )
                    .await;
            }
        }
        let version = match self
            .versions
            .get(&self.db, &tenant, &run.workflow_id, run.version)
            .await
        {
            Ok(v) => v,
            Err(StoreError::NotFound) => {
                return self
                    .end_before_steps(
                        &tenant,
                        id,
                        &run,
                        &context,
                        RunStatus::Failed,
                        "the workflow version no longer exists",
                    )
                    .await;
            }
            Err(e) => return Err(e),
        };
        let steps = &version.definition.steps;
        let mut index = usize::try_from(run.step_index).unwrap_or(0);
        let mut attempt = run.step_attempt;
        // A step that went well is saved with the next step's progress (or
        // with the run's end), in one transaction.
        let mut done: Option<StepRecord> = None;
        tracing::info!(tenant_id = %tenant, run_id = %id, step = index, "run started or resumed");
        while let Some(step) = steps.get(index) {
            attempt += 1;
            let started = self.clock.now();
            let (result, record) = self
                .step(
                    &tenant,
                    id,
                    &run,
                    &version.bindings,
                    step,
                    &mut context,
                    attempt,
                )
                .await;
            let step_at = i32::try_from(index).unwrap_or(i32::MAX);
            let mut record = record;
            let hidden = self.classes.hidden(&self.db, &tenant).await;
            if !hidden.is_empty() {
                record.input = ferry_core::redact::redact_named(&record.input, &hidden);
                record.output = ferry_core::redact::redact_named(&record.output, &hidden);
            }
            record.step_index = step_at;
            record.attempt = attempt;
            record.started_at = started;
            record.finished_at = self.clock.now();
            // Every way a step ends but success: the attempt and what the
            // run becomes, saved together.
            let (outcome, error, at, parked): (Outcome, Option<String>, i32, Option<String>) =
                match result {
                    StepResult::Next(output) => {
                        if record.status.is_empty() {
                            record.status = "ok".into();
                        }
                        // The first action output that names someone names
                        // the run's record; later ones are not looked at.
                        if run.record_label.is_none()
                            && matches!(step.kind, StepKind::Action { .. })
                        {
                            match self.note_record_name(&tenant, id, &output).await {
                                Ok(true) => run.record_label = Some(String::new()),
                                Ok(false) => {}
                                Err(e) => {
                                    tracing::warn!(run_id = %id, error = %e, "could not record the run's record name")
                                }
                            }
                        }
                        context["steps"][&step.key] = output;
                        index += 1;
                        attempt = 0;
                        if index >= steps.len() {
                            done = Some(record);
                            break;
                        }
                        let now = self.clock.now();
                        let held = self
                            .persist(
                                &tenant,
                                id,
                                Some(&record),
                                (i32::try_from(index).unwrap_or(i32::MAX), 0),
                                &context,
                                Outcome::Progress {
                                    lease_until: now + self.lease,
                                },
                                None,
                            )
                            .await?;
                        if !held {
                            tracing::warn!(run_id = %id, "run was taken back while running; stopping");
                            return Ok(());
                        }
                        continue;
                    }
                    StepResult::Retry { error, retry_after } => {
                        let policy = match &step.kind {
                            StepKind::Action { retry, .. } => *retry,
                            _ => Default::default(),
                        };
                        let last = u32::try_from(attempt).unwrap_or(u32::MAX) >= policy.attempts;
                        record.status = if last { "failed" } else { "retrying" }.into();
                        record.error = Some(error.clone());
                        if last {
                            let message = format!(
                                "step {} failed after {attempt} attempts: {error}",
                                step.key
                            );
                            tracing::error!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, step = %step.key, error = %error, "run dead-lettered");
                            (
                                Outcome::Finished(RunStatus::Dead),
                                Some(message),
                                attempt,
                                None,
                            )
                        } else {
                            let delay = backoff(policy.backoff_ms, attempt, retry_after);
                            tracing::warn!(tenant_id = %tenant, run_id = %id, step = %step.key, attempt, delay_ms = delay.num_milliseconds(), error = %error, "step failed; will retry");
                            (
                                Outcome::RetryAt(self.clock.now() + delay),
                                Some(error),
                                attempt,
                                None,
                            )
                        }
                    }
                    StepResult::Fail(error) => {
                        record.status = "failed".into();
                        record.error = Some(error.clone());
                        let message = format!("step {} failed: {error}", step.key);
                        tracing::error!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, step = %step.key, error = %error, "run failed");
                        (
                            Outcome::Finished(RunStatus::Failed),
                            Some(message),
                            attempt,
                            None,
                        )
                    }
                    StepResult::Wait { key, deadline } => {
                        record.status = "waiting".into();
                        (
                            Outcome::Wait {
                                key: key.clone(),
                                deadline,
                            },
                            None,
                            0,
                            Some(key),
                        )
                    }
                    StepResult::Stop(reason) => {
                        record.status = "stopped".into();
                        record.error = Some(reason.clone());
                        (
                            Outcome::Finished(RunStatus::Succeeded),
                            Some(reason),
                            0,
                            None,
                        )
                    }
                };
            let ended = match &outcome {
                Outcome::Finished(status) => Some(*status),
                _ => None,
            };
            let held = self
                .persist(
                    &tenant,
                    id,
                    Some(&record),
                    (step_at, at),
                    &context,
                    outcome,
                    error.as_deref(),
                )
                .await?;
            if let Some(status) = ended
                && held
            {
                self.ended(&tenant, &run, status);
            }
            // A wait: the event may have arrived between the look and the park.
            if let Some(key) = parked
                && runs::correlated_event(&self.db, &tenant, &key)
                    .await?
                    .is_some()
                && runs::resume_if_waiting(&self.db, id, self.clock.now()).await?
            {
                self.enqueue(&tenant, id).await;
            }
            return Ok(());
        }
        // Past the last step: pages show the run as done.
        let end = i32::try_from(steps.len()).unwrap_or(i32::MAX);
        if self
            .persist(
                &tenant,
                id,
                done.as_ref(),
                (end, 0),
                &context,
                Outcome::Finished(RunStatus::Succeeded),
                None,
            )
            .await?
        {
            self.ended(&tenant, &run, RunStatus::Succeeded);
        }
        tracing::info!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, "run succeeded");
        Ok(())
    }

    /// Ends a claimed run where it stands, before any step, with `status`
    /// and why.
    async fn end_before_steps(
        &self,
        tenant: &TenantId,
        id: &RunId,
        run: &runs::Run,
        context: &Value,
        status: RunStatus,
        why: &str,
    ) -> Result<(), StoreError> {
        if self
            .persist(
                tenant,
                id,
                None,
                (run.step_index, 0),
                context,
                Outcome::Finished(status),
                Some(why),
            )
            .await?
        {
            self.ended(tenant, run, status);
        }
        Ok(())
    }

    /// Seals the run's context and saves the step attempt that just ended
    /// (if any) with where the run is (`(step index, attempt)`) and what it
    /// becomes, in one transaction; false when the run was taken from this
    /// worker (the attempt is recorded all the same).
    #[allow(clippy::too_many_arguments)] // the run's row, named at the call
    pub(super) async fn persist(
        &self,
        tenant: &TenantId,
        id: &RunId,
        attempt: Option<&StepRecord>,
        (step_index, step_attempt): (i32, i32),
        context: &Value,
        outcome: Outcome,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let sealed = self
            .connections
            .vault()
            .seal(tenant, context.to_string().as_bytes(), id.as_str())
            .await?;
        // Saved with the other runs' saves waiting, in one transaction.
        let write = runs::Write::Save(Box::new(runs::RunSave {
            tenant: tenant.clone(),
            id: id.clone(),
            attempt: attempt.cloned(),
            at: runs::Position {
                step_index,
                step_attempt,
            },
            context: sealed,
            outcome,
            error: error.map(str::to_owned),
        }));
        match self.writer.write(write).await? {
            runs::Written::Saved(held) => Ok(held),
            _ => Err(StoreError::Corrupt("save: not a save's result")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn step(
        &self,
        tenant: &TenantId,
        id: &RunId,
        run: &runs::Run,
        bindings: &workflows::Bindings,
        step: &Step,
        context: &mut Value,
        attempt: i32,
    ) -> (StepResult, StepRecord) {
        let mut record = StepRecord {
            step_index: 0,
            step_key: step.key.clone(),
            kind: kind_name(&step.kind).into(),
            attempt,
            status: String::new(),
            input: Value::Null,
            output: Value::Null,
            http_calls: json!([]),
            error: None,
            started_at: self.clock.now(),
            finished_at: self.clock.now(),
        };
        let data = data(context);
        let evaluated = evaluate(&step.kind, &data);
        record.input = evaluated.input;
        record.output = evaluated.output;
        let result = match evaluated.decision {
            Decision::Next(v) => StepResult::Next(v),
            Decision::Fail(why) => StepResult::Fail(why),
            Decision::Stop(why) => StepResult::Stop(why),
            Decision::Call {
                connector,
                action,
                input,
                side_effect,
                output,
            } => {
                let Some(connection) = bindings.get(connector.as_str()) else {
                    return (
                        StepResult::Fail(format!(
                            "no {} connection is bound",
                            connector.def().name
                        )),
                        record,
                    );
                };
                self.action(
                    tenant,
                    id,
                    run,
                    Call {
                        connector,
                        action,
                        side_effect,
                        connection,
                        step_key: &step.key,
                        input: &input,
                        output_schema: output,
                    },
                    &mut record,
                )
                .await
            }
            Decision::Wait { value: None, .. } => {
                StepResult::Fail("the correlation value is empty".into())
            }
            Decision::Wait {
                connector,
                event,
                timeout_secs,
                value: Some(value),
            } => {
                let key = correlation_key(connector, event, &value);
                record.input = json!({ "correlation": key });
                let fields = connector.def().trigger(event).map_or(&[][..], |t| t.fields);
                match self.correlated_payload(tenant, &key).await {
                    Ok(Some(payload)) => {
                        let v: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
                        record.output = redact(fields, &[], &v);
                        StepResult::Next(v)
                    }
                    Ok(None) => {
                        let now = self.clock.now();
                        let deadline = context["deadlines"][&step.key]
                            .as_str()
                            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                            .map(|d| d.with_timezone(&Utc))
                            .unwrap_or_else(|| {
                                now + ChronoDuration::seconds(
                                    i64::try_from(timeout_secs).unwrap_or(i64::MAX / 2),
                                )
                            });
                        context["deadlines"][&step.key] = json!(deadline.to_rfc3339());
                        if now >= deadline {
                            tracing::warn!(tenant_id = %tenant, run_id = %id, workflow_id = %run.workflow_id, step = %step.key, event = "outcome_deadline", "no {event} event before the deadline; going on without it");
                            record.error = Some(format!(
                                "outcome deadline: no {event} event within {}",
                                human_secs(timeout_secs)
                            ));
                            record.status = "timed_out".into();
                            self.metrics.count(tenant, &run.workflow_id, now, |r| {
                                r.deadlines_missed += 1;
                            });
                            StepResult::Next(json!({ "timed_out": true }))
                        } else {
                            StepResult::Wait { key, deadline }
                        }
                    }
                    Err(e) => StepResult::Retry {
                        error: e.to_string(),
                        retry_after: None,
                    },
                }
            }
        };
        (result, record)
    }

    pub(super) async fn action(
        &self,
        tenant: &TenantId,
        id: &RunId,
        run: &runs::Run,
        call: Call<'_>,
        record: &mut StepRecord,
    ) -> StepResult {
        let Call {
            connector,
            action,
            side_effect,
            connection,
            step_key,
            input,
            output_schema,
        } = call;
        let (conn, mut ctx) = match self.connections.context(tenant, connection).await {
            Ok(c) => c,
            Err(e) => return classify(e),
        };
        if side_effect {
            ctx.idempotency_key = Some(format!("{id}:{step_key}"));
        }
        let Some(c) = self.connections.registry().get(connector) else {
            return StepResult::Fail(format!("no connector {connector}"));
        };
        let now = self.clock.now();
        if connector == ConnectorKey::HubSpot && action == "update_contact" {
            // Ferry's write will come back as change events: remember it
            // first, so they are recognised as echoes, not triggers.
            let contact = input["contact_id"].as_str().unwrap_or("");
            if let Some(props) = input["properties"].as_object() {
                for (k, v) in props {
                    let value = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    if let Err(e) = runs::guard_echo(
                        &self.db,
                        tenant,
                        contact,
                        k,
                        &value,
                        now + ChronoDuration::seconds(ECHO_SECS),
                    )
                    .await
                    {
                        return StepResult::Retry {
                            error: e.to_string(),
                            retry_after: None,
                        };
                    }
                }
            }
        }
        let outcome = c.call(action, input, &ctx).await;
        let calls = ctx.log.lock().map(|l| l.clone()).unwrap_or_default();
        record.http_calls = serde_json::to_value(&calls).unwrap_or(json!([]));
        for call in &calls {
            self.metrics.connector_call(connector.as_str(), call.status);
        }
        // A destination write counts as failed when the call fails or when
        // what the app answers does not show the values written.
        let landed = match &outcome {
            Ok(output) => unconfirmed(connector, action, input, output),
            Err(_) => Some(String::new()),
        };
        if side_effect {
            self.metrics
                .count(tenant, &run.workflow_id, self.clock.now(), |r| {
                    r.writes += 1;
                    r.writes_failed += u64::from(landed.is_some());
                });
        }
        if let (Ok(_), Some(property)) = (&outcome, &landed) {
            tracing::warn!(tenant_id = %tenant, run_id = %id, step = %step_key, property = %property, "the written value did not come back from the app; retrying the write");
            return StepResult::Retry {
                error: format!(
                    "the app did not confirm the write: {property} does not show the value written"
                ),
                retry_after: None,
            };
        }
        if let Err(ConnectorError::Unauthorized(reason)) = &outcome {
            // Found on use: the connection is flagged at once, so the
            // authentication alert fires at the next evaluation.
            if let Err(e) = self.connections.refused(tenant, connection, reason).await {
                tracing::warn!(connection_id = %connection, error = %e, "could not flag the refused connection");
            }
        }
        match outcome {
            Ok(output) => {
                record.output = redact(output_schema, &[], &output);
                // "Last used" to the minute: one write a minute per busy
                // connection, not one per call (a broken one is healed now).
                let fresh = conn.status == ferry_core::ConnectionStatus::Healthy
                    && conn
                        .last_used_at
                        .is_some_and(|t| self.clock.now() - t < ChronoDuration::minutes(1));
                if !fresh {
                    let _ = ferry_store::connections::mark_used(
                        &self.db,
                        tenant,
                        connection,
                        self.clock.now(),
                    )
                    .await;
                }
                if let Err(e) = self
                    .note_verification(tenant, id, run, connector, action, input, &output)
                    .await
                {
                    tracing::warn!(run_id = %id, error = %e, "could not update the verification view");
                }
                StepResult::Next(output)
            }
            Err(e) => classify(ServiceError::Connector(e)),
        }
    }

    /// Names the run's record for people (sealed) and keeps the keyed
    /// hashes it can be searched by, when an action's output names someone
    /// (a fetched contact); true when it did.
    async fn note_record_name(
        &self,
        tenant: &TenantId,
        id: &RunId,
        output: &Value,
    ) -> Result<bool, StoreError> {
        let Some((label, words)) = ferry_core::search::record_name(output) else {
            return Ok(false);
        };
        let vault = self.connections.vault();
        let sealed = vault
            .seal(tenant, label.as_bytes(), &format!("label:{id}"))
            .await?;
        let mut keys = Vec::with_capacity(words.len());
        for w in &words {
            keys.push(vault.keyed_hash(tenant, "record-search", w).await?);
        }
        runs::set_record_label(&self.db, tenant, id, &sealed, &keys).await?;
        Ok(true)
    }

    /// Keeps the staff view of verification outcomes current: a started
    /// check is `pending`; the outcome written back to the CRM settles it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn note_verification(
        &self,
        tenant: &TenantId,
        id: &RunId,
        run: &runs::Run,
        connector: ConnectorKey,
        action: &str,
        input: &Value,
        output: &Value,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        let view = match (connector, action) {
            (ConnectorKey::Verification, "create_check") => {
                let Some(record) = run.record_id.clone() else {
                    return Ok(());
                };
                let name = [input["first_name"].as_str(), input["last_name"].as_str()]
                    .into_iter()
                    .flatten()
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" ");
                runs::Verification {
                    record_id: record,
                    name,
                    email: input["email"]
                        .as_str()
                        .map(|e| e.trim().to_lowercase())
                        .filter(|e| !e.is_empty()),
                    outcome: "pending".into(),
                    checked_at: None,
                    check_ref: output["id"].as_str().map(str::to_owned),
                    run_id: id.clone(),
                }
            }
            (ConnectorKey::HubSpot, "update_contact") => {
                let props = &input["properties"];
                let Some(outcome) = props["identity_verification_status"].as_str() else {
                    return Ok(());
                };
                runs::Verification {
                    record_id: input["contact_id"].as_str().unwrap_or("").to_owned(),
                    name: String::new(),
                    email: None,
                    outcome: outcome.to_owned(),
                    checked_at: (outcome != "pending").then_some(now),
                    check_ref: props["identity_verification_ref"]
                        .as_str()
                        .map(str::to_owned),
                    run_id: id.clone(),
                }
            }
            _ => return Ok(()),
        };
        runs::upsert_verification(&self.db, tenant, &view, now).await
    }
}

/// For a write whose answer is the record written (HubSpot's contact
/// update), the first property written that came back with another value;
/// `None` when the write is confirmed or the answer does not show it.
pub(super) fn unconfirmed(
    connector: ConnectorKey,
    action: &str,
    input: &Value,
    output: &Value,
) -> Option<String> {
    if connector != ConnectorKey::HubSpot || action != "update_contact" {
        return None;
    }
    let written = input["properties"].as_object()?;
    let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    // A property the answer leaves out cannot be confirmed from it; one it
    // shows with another value did not land as written.
    written
        .iter()
        .find(|(k, v)| {
            output
                .get(k.as_str())
                .is_some_and(|got| !got.is_null() && text(got) != text(v))
        })
        .map(|(k, _)| k.clone())
}

pub(super) fn human_secs(s: u64) -> String {
    if s.is_multiple_of(3600) {
        format!("{} h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

pub(super) fn classify(e: ServiceError) -> StepResult {
    match e {
        ServiceError::Connector(c) if c.is_retryable() => StepResult::Retry {
            retry_after: match &c {
                ConnectorError::RateLimited { retry_after } => *retry_after,
                _ => None,
            },
            error: c.to_string(),
        },
        ServiceError::Connector(c) => StepResult::Fail(c.to_string()),
        ServiceError::Store(StoreError::NotFound) => {
            StepResult::Fail("the bound connection no longer exists".into())
        }
        ServiceError::Store(s) => StepResult::Retry {
            error: s.to_string(),
            retry_after: None,
        },
    }
}
