//! The builder: one typed change at a time (a new step's connector gets a
//! connection of its kind at once), the records a draft can be tested on,
//! and the test itself — on a real record, shown unredacted to the admin,
//! kept only sealed as the builder's sample values.

use super::*;
use ferry_core::workflow::Definition as Draft;
use ferry_engine::runs::{TestMode, TestRun};

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edited {
    /// In words, for the page.
    pub message: String,
    /// The step to show open next (the one added or changed).
    pub key: Option<String>,
}

/// A record a draft can be tested on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRecord {
    /// Its id at the app (a HubSpot contact id).
    pub id: String,
    /// How the admin recognises it ("Ada Lovelace · ada@… (#101)").
    pub label: String,
}

/// A test's result.
#[derive(Debug, Clone)]
pub struct Tested {
    /// Each step, as it went.
    pub run: TestRun,
    /// Whether writes were made.
    pub writes: bool,
}

/// The builder's sample: the data of the last test, opened.
#[derive(Debug, Clone)]
pub struct SampleData {
    /// Which record.
    pub label: String,
    /// `{"trigger": …, "steps": {…}}`.
    pub data: serde_json::Value,
    /// When it was taken.
    pub taken_at: chrono::DateTime<chrono::Utc>,
}

/// The newest records per (tenant, workflow), briefly.
type RecentCache =
    std::collections::HashMap<(String, String), (std::time::Instant, Vec<serde_json::Value>)>;
static RECENT: std::sync::LazyLock<std::sync::Mutex<RecentCache>> =
    std::sync::LazyLock::new(Default::default);

fn sample_aad(id: &WorkflowId) -> String {
    format!("sample:{id}")
}

/// A record id as typed: 1 to 64 letters, digits, `-` or `_`.
fn record_id(raw: &str) -> Result<&str, Error> {
    let id = raw.trim();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::field(
            "record",
            "Choose a record from the list, or enter its id (letters and digits).",
        ));
    }
    Ok(id)
}

impl Workflows {
    /// Applies one builder change to the draft and saves it when the result
    /// passes the check. A connector the draft newly uses is bound to the
    /// tenant's first connection of it in the workflow's environment.
    pub async fn edit(&self, admin: &Member, id: &WorkflowId, op: StepOp) -> Result<Edited, Error> {
        admin.require_admin()?;
        let db = &self.0.db;
        let mut wf = store::get(db, &admin.tenant_id, id).await?;
        let before: Vec<String> = wf.draft.steps.iter().map(|s| s.key.clone()).collect();
        let named = match &op {
            StepOp::Update { key, .. }
            | StepOp::Rename { key, .. }
            | StepOp::MoveTo { key, .. }
            | StepOp::Move { key, .. } => Some(key.clone()),
            _ => None,
        };
        let name = op.name();
        let mut draft = wf.draft.clone();
        let message = draft
            .apply(op)
            .map_err(|message| Error::field("definition", message))?;
        let key = named.or_else(|| {
            draft
                .steps
                .iter()
                .find(|s| !before.contains(&s.key))
                .map(|s| s.key.clone())
        });
        let missing: Vec<ConnectorKey> = draft
            .connectors()
            .into_iter()
            .filter(|k| !wf.bindings.contains_key(k.as_str()))
            .collect();
        let mut bound = serde_json::Map::new();
        if !missing.is_empty() {
            let available = connections::list(db, &admin.tenant_id).await?;
            for k in missing {
                if let Some(c) = available
                    .iter()
                    .find(|c| c.connector == k && c.environment == wf.environment)
                {
                    wf.bindings.insert(k.as_str().to_owned(), c.id.clone());
                    bound.insert(k.as_str().to_owned(), json!(c.id.as_str()));
                }
            }
        }
        let details = if bound.is_empty() {
            json!({ "op": name })
        } else {
            json!({ "op": name, "connections_chosen": bound })
        };
        self.save_checked(admin, &wf, &draft, details).await?;
        Ok(Edited { message, key })
    }

    /// The records the draft can be tested on: for a HubSpot trigger, the
    /// portal's newest contacts through the bound connection. `Err` says
    /// why there are none (no connection, the app refused).
    pub async fn test_records(
        &self,
        admin: &Member,
        id: &WorkflowId,
    ) -> Result<Result<Vec<TestRecord>, String>, Error> {
        admin.require_admin()?;
        let wf = store::get(&self.0.db, &admin.tenant_id, id).await?;
        let connector = wf.draft.trigger.connector;
        if connector != ConnectorKey::HubSpot {
            return Ok(Ok(vec![]));
        }
        // Kept for half a minute per workflow: the builder page is drawn
        // after every change, and the CRM's rate limit is the runs' too.
        let key = (admin.tenant_id.to_string(), id.to_string());
        let cached = RECENT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .filter(|(at, _)| at.elapsed() < std::time::Duration::from_secs(30))
            .map(|(_, r)| r.clone());
        let found = match cached {
            Some(r) => Ok(r),
            None => {
                let found = self
                    .0
                    .engine
                    .recent_records(&admin.tenant_id, connector, &wf.bindings, 10)
                    .await;
                if let Some(r) = found.as_ref().ok().filter(|r| !r.is_empty()) {
                    let mut cache = RECENT
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    cache.retain(|_, (at, _)| at.elapsed() < std::time::Duration::from_secs(30));
                    cache.insert(key, (std::time::Instant::now(), r.clone()));
                }
                found
            }
        };
        Ok(found.map(|records| {
            records
                .iter()
                .filter_map(|r| {
                    let id = match &r["id"] {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    let name = [r["firstname"].as_str(), r["lastname"].as_str()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" ");
                    let email = r["email"].as_str().unwrap_or("");
                    let label = match (name.trim().is_empty(), email.is_empty()) {
                        (false, false) => format!("{} · {email} (#{id})", name.trim()),
                        (false, true) => format!("{} (#{id})", name.trim()),
                        (true, false) => format!("{email} (#{id})"),
                        (true, true) => format!("#{id}"),
                    };
                    Some(TestRecord { id, label })
                })
                .collect()
        }))
    }

    /// Tests the draft on the record `record` as if its trigger event had
    /// just come. Writes are made when the workflow uses sandbox
    /// connections, or when the admin confirms them; a wait looks for its
    /// event for a few seconds. The data is kept sealed as the builder's
    /// sample; the test is audited (whether it wrote).
    pub async fn test(
        &self,
        admin: &Member,
        id: &WorkflowId,
        record: &str,
        confirm_writes: bool,
    ) -> Result<Tested, Error> {
        admin.require_admin()?;
        let record = record_id(record)?;
        let db = &self.0.db;
        let wf = store::get(db, &admin.tenant_id, id).await?;
        let payload = trigger_payload(&wf.draft, record, self.0.clock.now());
        let writes = wf.environment == Environment::Sandbox || confirm_writes;
        let mode = TestMode {
            writes,
            wait: std::time::Duration::from_secs(if writes { 20 } else { 0 }),
            dry: false,
            retry_backoff_ms: None,
            seed: None,
        };
        let run = self
            .0
            .engine
            .test_run(&admin.tenant_id, &wf.draft, &wf.bindings, payload, mode)
            .await;
        let vault = self.0.connections.vault();
        vault.prepare(&admin.tenant_id).await?;
        let sealed = vault
            .seal(
                &admin.tenant_id,
                run.data.to_string().as_bytes(),
                &sample_aad(id),
            )
            .await?;
        let now = self.0.clock.now();
        let tx = db.begin().await?;
        store::save_sample(
            &tx,
            &admin.tenant_id,
            id,
            &store::Sample {
                label: format!("#{record}"),
                sealed,
                taken_at: now,
            },
        )
        .await?;
        audit::record(
            &tx,
            &admin.actor(),
            AuditAction::WorkflowTested,
            Target("workflow", id.as_str()),
            json!({
                "record": record,
                "writes": writes,
                "steps": run.steps.len(),
                "outcome": run.steps.last().map(|s| s.status),
            }),
            now,
        )
        .await?;
        tx.commit().await?;
        RECENT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&(admin.tenant_id.to_string(), id.to_string()));
        Ok(Tested { run, writes })
    }

    /// The builder's sample values (the last test's data), if any.
    pub async fn sample(
        &self,
        admin: &Member,
        id: &WorkflowId,
    ) -> Result<Option<SampleData>, Error> {
        admin.require_admin()?;
        let Some(s) = store::sample(&self.0.db, &admin.tenant_id, id).await? else {
            return Ok(None);
        };
        let plain = self
            .0
            .connections
            .vault()
            .open(&admin.tenant_id, &s.sealed, &sample_aad(id))
            .await?;
        Ok(Some(SampleData {
            label: s.label,
            data: serde_json::from_slice(&plain).unwrap_or_default(),
            taken_at: s.taken_at,
        }))
    }
}

/// The trigger event a record would have caused.
pub(super) fn trigger_payload(
    draft: &Draft,
    record: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    let id = record
        .parse::<u64>()
        .map_or_else(|_| json!(record), |n| json!(n));
    match draft.trigger.connector {
        ConnectorKey::HubSpot => json!({
            "eventId": 0,
            "objectId": id,
            "subscriptionType": draft.trigger.event,
            "occurredAt": now.timestamp_millis(),
        }),
        ConnectorKey::Verification => json!({
            "type": draft.trigger.event,
            "check": { "id": record },
        }),
        _ => json!({ "id": record }),
    }
}
