//! What the engine counts as it works: per workflow and minute (events,
//! runs started and ended, latency, destination writes, missed deadlines),
//! kept in memory and added to the stored rollups in one batch every few
//! seconds, so counting costs a run a lock and a hash lookup, not a
//! statement; and the process-wide Prometheus series (runs by status,
//! connector calls by status, HTTP latency), which hold no tenant or record
//! ids.

use chrono::{DateTime, Utc};
use ferry_core::metrics::{Rollup, Span};
use ferry_core::{TenantId, WorkflowId};
use ferry_store::metrics::Counted;
use ferry_store::{Db, StoreError, runs::RunStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Key = (TenantId, WorkflowId, DateTime<Utc>);

/// Workflow-minutes held in memory at most while flushes fail.
const MAX_PENDING: usize = 200_000;

/// Per-workflow counts waiting to be flushed, and the Prometheus series.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Recorder {
    pending: Arc<Mutex<HashMap<Key, Rollup>>>,
    telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl Recorder {
    /// Counts something for `workflow` in the minute of `at`.
    pub fn count(
        &self,
        tenant: &TenantId,
        workflow: &WorkflowId,
        at: DateTime<Utc>,
        f: impl FnOnce(&mut Rollup),
    ) {
        let key = (tenant.clone(), workflow.clone(), Span::Minute.start(at));
        if let Ok(mut m) = self.pending.lock() {
            // Bounded: with the database away for long, the oldest counts
            // would go before memory does (logged at the flush).
            if m.len() >= MAX_PENDING && !m.contains_key(&key) {
                return;
            }
            f(m.entry(key).or_default());
        }
    }

    /// A run ended with `status`, `latency_ms` after its event arrived.
    pub fn run_ended(
        &self,
        (tenant, workflow): (&TenantId, &WorkflowId),
        status: RunStatus,
        latency_ms: u64,
        at: DateTime<Utc>,
    ) {
        self.count(tenant, workflow, at, |r| {
            match status {
                RunStatus::Succeeded => r.succeeded += 1,
                RunStatus::Failed => r.failed += 1,
                RunStatus::Dead => r.dead += 1,
                _ => return,
            }
            r.observe_latency(latency_ms);
        });
        self.telemetry
            .runs_ended
            .get_or_create(&StatusLabel {
                status: status_label(status),
            })
            .inc();
    }

    /// A connector call answered with `status` (0 when there was no
    /// answer).
    pub fn connector_call(&self, connector: &'static str, status: u16) {
        self.telemetry
            .connector_calls
            .get_or_create(&CallLabels {
                connector,
                class: status_class(status),
            })
            .inc();
    }

    /// An HTTP request to Ferry took `seconds` (the route is its pattern,
    /// never the path with ids).
    pub fn http_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.telemetry
            .http
            .get_or_create(&HttpLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                class: status_class(status),
            })
            .observe(seconds);
    }

    /// The Prometheus series.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Takes what is pending (for a flush).
    fn take(&self) -> Vec<Counted> {
        self.pending
            .lock()
            .map(|mut m| m.drain().collect())
            .unwrap_or_default()
    }

    /// Adds what is pending to the stored rollups; on failure the counts
    /// go back to wait for the next flush. Returns the rows flushed.
    pub async fn flush(&self, db: &Db) -> Result<usize, StoreError> {
        let batch = self.take();
        if batch.is_empty() {
            return Ok(0);
        }
        match ferry_store::metrics::add(db, &batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                if let Ok(mut m) = self.pending.lock() {
                    for (key, r) in batch {
                        if m.len() < MAX_PENDING || m.contains_key(&key) {
                            m.entry(key).or_default().add(&r);
                        }
                    }
                    if m.len() >= MAX_PENDING {
                        tracing::error!(
                            pending = m.len(),
                            "metrics cannot be stored and the buffer is full: new counts are dropped until the database answers"
                        );
                    }
                }
                Err(e)
            }
        }
    }

    /// Flushes every `every` until `stop` flips, and once more then.
    pub async fn run_flusher(
        self,
        db: Db,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
            if let Err(e) = self.flush(&db).await {
                tracing::warn!(error = %e, "flushing metrics failed; kept for the next flush");
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

fn status_label(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Queued => "queued",
        RunStatus::Running => "running",
        RunStatus::Waiting => "waiting",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Dead => "dead",
        RunStatus::Skipped => "skipped",
        RunStatus::Held => "held",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

/// A run status label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// The status.
    pub status: &'static str,
}

/// A queue state label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state.
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    connector: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    class: &'static str,
}

fn http_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.5, 12))
}

/// The Prometheus registry and its series.
pub struct Telemetry {
    registry: Registry,
    runs_ended: Family<StatusLabel, Counter>,
    connector_calls: Family<CallLabels, Counter>,
    http: Family<HttpLabels, Histogram>,
    /// Runs not yet ended, by status (set at scrape time).
    pub runs_open: Family<StatusLabel, Gauge>,
    /// Jobs by state (set at scrape time).
    pub jobs: Family<StateLabel, Gauge>,
    /// Incidents open (set at scrape time).
    pub alerts_firing: Gauge,
}

impl Default for Telemetry {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ferry");
        let runs_ended = Family::<StatusLabel, Counter>::default();
        registry.register(
            "runs_ended",
            "Runs that ended, by status",
            runs_ended.clone(),
        );
        let connector_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "connector_calls",
            "Calls to connected apps, by connector and status class",
            connector_calls.clone(),
        );
        let http = Family::<HttpLabels, Histogram>::new_with_constructor(
            http_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP requests to Ferry, by method, route pattern and status class",
            http.clone(),
        );
        let runs_open = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "runs_open",
            "Runs not yet ended, by status",
            runs_open.clone(),
        );
        let jobs = Family::<StateLabel, Gauge>::default();
        registry.register(
            "queue_jobs",
            "Run jobs by state: due (queue depth), scheduled (retry or resume later), held by a worker, parked on a wait",
            jobs.clone(),
        );
        let alerts_firing = Gauge::default();
        registry.register(
            "alerts_firing",
            "Alert incidents open",
            alerts_firing.clone(),
        );
        Self {
            registry,
            runs_ended,
            connector_calls,
            http,
            runs_open,
            jobs,
            alerts_firing,
        }
    }
}

impl Telemetry {
    /// The series in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
