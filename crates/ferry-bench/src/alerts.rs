//! `ferry-bench alerts`: one evaluation of every alert rule over stored
//! rollups — 1,000 workflows, 10 rules each, 30 days of hourly rollups and
//! the minute rollups of the last two hours (what the evaluation reads; older
//! minute rows are purged as in production).

use anyhow::Context;
use chrono::Duration;
use ferry_core::alerts::RuleKind;
use ferry_core::metrics::{Rollup, Span};
use ferry_core::{Clock, EmailAddress, Environment, Role, SystemClock, TenantName};
use ferry_store::{Db, alerts, metrics, tenants, users, workflows};
use std::sync::Arc;
use std::time::Instant;

/// What the benchmark measured.
#[derive(Debug, Clone)]
pub struct AlertsReport {
    /// The database.
    pub backend: &'static str,
    /// Workflows watched.
    pub workflows: usize,
    /// Rules evaluated.
    pub rules: usize,
    /// Rollup rows stored.
    pub rollups: u64,
    /// Seconds per evaluation: the first (incidents open, emails written),
    /// then the median and worst of the steady ones.
    pub first_s: f64,
    /// Median of the steady evaluations.
    pub median_s: f64,
    /// Worst of the steady evaluations.
    pub worst_s: f64,
    /// Incidents the first evaluation opened.
    pub opened: usize,
    /// Seconds of the first evaluation of the next hour (its hour added to
    /// the baselines).
    pub next_hour_s: f64,
}

impl std::fmt::Display for AlertsReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "alert evaluation on {}: {} rules, {} workflows, {} rollup rows",
            self.backend, self.rules, self.workflows, self.rollups
        )?;
        writeln!(
            f,
            "  first evaluation after start (reads a week of hours for the baselines, opens {} incidents, writes their emails): {:.3} s",
            self.opened, self.first_s
        )?;
        writeln!(
            f,
            "  steady evaluations: median {:.3} s, worst {:.3} s",
            self.median_s, self.worst_s
        )?;
        write!(
            f,
            "  first evaluation of the next hour (adds it to the baselines): {:.3} s",
            self.next_hour_s
        )
    }
}

/// Seeds the rules and rollups, then evaluates `rounds` times.
pub async fn alerts(
    postgres: Option<&str>,
    workflows_n: usize,
    days: i64,
    rounds: usize,
) -> anyhow::Result<AlertsReport> {
    let dir = std::env::temp_dir().join(format!("ferry-bench-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir)?;
    let url = match postgres {
        Some(base) => {
            let name = format!("ferry_bench_{:x}", rand::random::<u32>());
            Db::create_postgres_database(base, &name).await?
        }
        None => format!("sqlite://{}", dir.join("ferry.db").display()),
    };
    let db = Db::connect(&url, 4).await?;
    db.migrate().await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let tenant = tenants::create(&db, &TenantName::parse("name", "Bench Ltd")?, now).await?;
    let owner = users::create_member(
        &db,
        &tenant.id,
        &EmailAddress::parse("email", "owner@bench.test")?,
        "Owner",
        "not a password hash".to_owned(),
        Role::Admin,
        now,
    )
    .await?;
    let seeding = Instant::now();
    let draft = ferry_core::workflow::reference_template();
    let extra = [
        (
            RuleKind::ErrorRate {
                max_percent: 5.0,
                min_runs: 20,
            },
            60,
        ),
        (
            RuleKind::Latency {
                factor: 3.0,
                min_runs: 20,
            },
            120,
        ),
        (RuleKind::DestinationWrites { max_percent: 1.0 }, 24 * 60),
        (RuleKind::Volume { min_expected: 5 }, 60),
    ];
    let mut ids = Vec::with_capacity(workflows_n);
    let tx = db.begin().await?;
    for i in 0..workflows_n {
        let wf = workflows::create(
            &tx,
            &tenant.id,
            workflows::NewWorkflow {
                name: &format!("Workflow {i}"),
                description: "",
                owner_id: &owner.id,
                environment: Environment::Sandbox,
                draft: &draft,
                bindings: &workflows::Bindings::new(),
            },
            now,
        )
        .await?;
        alerts::create_defaults(&tx, &tenant.id, &wf.id, &owner.id, now).await?;
        for (kind, window) in &extra {
            alerts::create(&tx, (&tenant.id, &wf.id), kind, *window, &owner.id, now).await?;
        }
        ids.push(wf.id);
    }
    tx.commit().await?;
    // Hourly traffic for `days` days, and every minute of the last two
    // hours; one workflow in a hundred fails a third of its runs.
    let this_hour = Span::Hour.start(now);
    let mut batch = Vec::new();
    for (i, wf) in ids.iter().enumerate() {
        let failing = i % 100 == 0;
        for h in 2..(days * 24) {
            let mut r = Rollup {
                events: 30,
                started: 30,
                succeeded: if failing { 20 } else { 30 },
                dead: if failing { 10 } else { 0 },
                writes: 30,
                ..Rollup::default()
            };
            for k in 0..30u64 {
                r.observe_latency(200 + k * 10);
            }
            batch.push((
                (
                    tenant.id.clone(),
                    wf.clone(),
                    this_hour - Duration::hours(h),
                ),
                r,
            ));
        }
        for m in 0..120 {
            let mut r = Rollup {
                events: 1,
                started: 1,
                succeeded: 1,
                writes: 1,
                ..Rollup::default()
            };
            r.observe_latency(250);
            batch.push((
                (tenant.id.clone(), wf.clone(), now - Duration::minutes(m)),
                r,
            ));
        }
        if batch.len() > 20_000 {
            metrics::add(&db, &batch).await?;
            batch.clear();
        }
    }
    metrics::add(&db, &batch).await?;
    // Minute rows older than 48 h go, as housekeeping does.
    metrics::purge(&db, now).await?;
    let rollups = db
        .count_rows("workflow_metrics")
        .await
        .context("counting rollups")?;
    if postgres.is_none() {
        db.analyze().await?;
    }
    eprintln!(
        "seeded {} workflows, {} rollup rows in {:.0} s",
        ids.len(),
        rollups,
        seeding.elapsed().as_secs_f64()
    );
    let evaluator = ferry_engine::alerts::Evaluator::new(
        db.clone(),
        clock.clone(),
        ferry_engine::Mailer::new(db.clone(), clock.clone(), false),
        &"http://127.0.0.1:8080".parse()?,
    );
    let started = Instant::now();
    let first = evaluator.evaluate(clock.now()).await?;
    let first_s = started.elapsed().as_secs_f64();
    let mut steady = Vec::new();
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        evaluator.evaluate(clock.now()).await?;
        steady.push(started.elapsed().as_secs_f64());
    }
    steady.sort_by(f64::total_cmp);
    let started = Instant::now();
    // The first minute of the next hour.
    evaluator
        .evaluate(Span::Hour.start(clock.now()) + Duration::hours(1))
        .await?;
    let next_hour_s = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(AlertsReport {
        backend: if postgres.is_some() {
            "PostgreSQL"
        } else {
            "SQLite (embedded)"
        },
        workflows: ids.len(),
        rules: first.rules,
        rollups,
        first_s,
        median_s: steady[steady.len() / 2],
        worst_s: steady[steady.len() - 1],
        opened: first.opened,
        next_hour_s,
    })
}
