//! Inbound events become runs: stored with their runs and the waits they
//! resume in one transaction, then handed to workers.

use super::*;

impl Engine {
    /// Stores an accepted event with the runs it starts (and the waiting
    /// runs it resumes) in one transaction, then enqueues them. A failed
    /// enqueue is logged; the sweeper enqueues the run later.
    pub async fn ingest(
        &self,
        tenant: &TenantId,
        source: Source<'_>,
        event: NewEvent<'_>,
        correlation_key: Option<&str>,
        echo: Option<runs::EchoKey<'_>>,
        record_id: Option<&str>,
    ) -> Result<Ingested, StoreError> {
        let now = self.clock.now();
        let triggered = self.triggered_by(tenant, &source, event.event_type).await?;
        let payload: Value = serde_json::from_str(event.payload).unwrap_or(Value::Null);
        // Payloads carry personal data: at rest they are sealed like run
        // contexts, bound to the event's dedupe key.
        let sealed_payload = self
            .connections
            .vault()
            .seal(
                tenant,
                event.payload.as_bytes(),
                &ferry_store::inbound::payload_aad(event.dedupe_key),
            )
            .await?;
        let event = NewEvent {
            payload: &sealed_payload,
            ..event
        };
        let mut new_runs = Vec::new();
        for (workflow_id, t, held) in triggered {
            let id = RunId::generate();
            // A generic webhook's trigger is its whole body (schema: `body`).
            let trigger = if source.connector == ConnectorKey::Webhook {
                json!({ "body": payload })
            } else {
                payload.clone()
            };
            let context = json!({ "trigger": trigger, "steps": {}, "deadlines": {} });
            let sealed = self
                .connections
                .vault()
                .seal(tenant, context.to_string().as_bytes(), id.as_str())
                .await?;
            new_runs.push(NewRun {
                id,
                workflow_id,
                version: t.version,
                record_id: record_id.map(str::to_owned),
                context: sealed,
                once_per_record: t.definition.trigger.event.ends_with(".creation"),
                held,
            });
        }
        let made: Vec<(RunId, WorkflowId)> = new_runs
            .iter()
            .map(|r| (r.id.clone(), r.workflow_id.clone()))
            .collect();
        let echo = runs::is_echo(&self.db, tenant, echo, now).await?;
        let write = runs::Write::Event(Box::new(runs::EventToStore::new(
            tenant,
            &event,
            correlation_key,
            echo,
            new_runs,
        )));
        // Stored with whatever else arrived meanwhile, in one transaction;
        // answered once committed.
        let runs::Written::Event(ingested) = self.writer.write(write).await? else {
            return Err(StoreError::Corrupt("ingest: not an event's result"));
        };
        for (id, workflow) in &made {
            let started = ingested.queued.contains(id);
            if started || ingested.skipped.contains(id) || ingested.held.contains(id) {
                self.metrics.count(tenant, workflow, now, |r| {
                    r.events += 1;
                    r.started += u64::from(started);
                });
            }
        }
        if ingested.echo {
            tracing::info!(tenant_id = %tenant, "event is Ferry's own write coming back (echo): no run");
        }
        for id in &ingested.held {
            tracing::info!(tenant_id = %tenant, run_id = %id, "workflow paused: run held");
        }
        for id in &ingested.skipped {
            tracing::info!(tenant_id = %tenant, run_id = %id, record_id = record_id.unwrap_or(""), "record already processed: run skipped");
        }
        for id in ingested.queued.iter().chain(&ingested.resumed) {
            self.enqueue(tenant, id).await;
        }
        Ok(ingested)
    }

    /// The payload of the event with this correlation key, opened (rows
    /// stored before payloads were sealed are read as they are).
    pub(super) async fn correlated_payload(
        &self,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((dedupe_key, stored)) = runs::correlated_event(&self.db, tenant, key).await?
        else {
            return Ok(None);
        };
        let aad = ferry_store::inbound::payload_aad(&dedupe_key);
        match self.connections.vault().open(tenant, &stored, &aad).await {
            Ok(plain) => Ok(Some(plain)),
            Err(_) if stored.starts_with('{') || stored.starts_with('[') => {
                Ok(Some(stored.into_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// The published workflows (their versions, and whether each is
    /// paused) an event from `source` of type `event` starts: trigger and
    /// bound connection match.
    pub(super) async fn triggered_by(
        &self,
        tenant: &TenantId,
        source: &Source<'_>,
        event: &str,
    ) -> Result<Vec<(WorkflowId, Arc<Version>, bool)>, StoreError> {
        let mut out = Vec::new();
        for p in runs::published(&self.db, tenant).await? {
            let (workflow, paused) = (p.id, p.paused);
            let v = match self
                .versions
                .get(&self.db, tenant, &workflow, p.version)
                .await
            {
                Ok(v) => v,
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let trigger = &v.definition.trigger;
            if trigger.connector == source.connector
                && trigger.event == event
                && v.bindings.get(source.connector.as_str()) == Some(source.connection)
            {
                out.push((workflow, v, paused));
            }
        }
        Ok(out)
    }
}
