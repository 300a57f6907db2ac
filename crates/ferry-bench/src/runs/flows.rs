//! Ingest and the peer flow: events per second in, runs per second done.

use super::*;

/// `ferry-bench ingest`: signed HubSpot webhook deliveries (one event
/// each, a type no workflow listens to) accepted and stored.
pub async fn ingest(
    backend: &Backend,
    events: usize,
    concurrency: usize,
) -> anyhow::Result<Report> {
    let env = start(backend, 4).await?;
    let (idle, _) = memory_kib();
    // A HubSpot connection for a portal, so events find their tenant.
    connections::create(
        &env.db,
        &env.vault,
        &env.tenant,
        NewConnection {
            connector: ConnectorKey::HubSpot,
            name: "HubSpot",
            environment: Environment::Sandbox,
            scopes: &[],
            external_account: Some("777"),
            base_url: None,
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &env.admin,
        },
        &Credentials::default(),
        SystemClock.now(),
    )
    .await?;
    let secret =
        ferry_engine::connections::sandbox_client_secret(env.settings.master_key.expose_secret());
    let uri = format!("{}/hooks/hubspot/sandbox", env.address);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let run_id = rand::random::<u32>();
    let make = {
        let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
        move |i: usize| {
            let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
            async move {
                let body = json!([{ "eventId": i, "subscriptionId": run_id, "portalId": 777, "occurredAt": 0, "subscriptionType": "contact.deletion", "attemptNumber": 0, "objectId": i }]).to_string();
                let ts = SystemClock.now().timestamp_millis().to_string();
                let sig = ferry_connectors::hubspot::signature_v3(
                    &secret,
                    "POST",
                    &uri,
                    body.as_bytes(),
                    &ts,
                );
                let r = http
                    .post(&uri)
                    .header("content-type", "application/json")
                    .header("X-HubSpot-Request-Timestamp", ts)
                    .header("X-HubSpot-Signature-v3", sig)
                    .body(body)
                    .send()
                    .await?;
                Ok(r.status().as_u16())
            }
        }
    };
    // Warm-up.
    blast(200.min(events), concurrency, make.clone()).await?;
    let t = Instant::now();
    let samples = blast(events, concurrency, move |i| make(i + 1_000_000)).await?;
    let secs = t.elapsed().as_secs_f64();
    let stored = ferry_store::inbound::stats(
        &env.db,
        &env.tenant,
        &connections::list(&env.db, &env.tenant).await?[0].id,
    )
    .await?
    .0;
    if stored < events as u64 {
        bail!("only {stored} of {events} events were stored");
    }
    let (_, peak) = memory_kib();
    env.stop().await;
    Ok(Report {
        name: "ingest",
        backend: backend.describe(),
        items: events as u64,
        per_second: events as f64 / secs,
        latency_ms: Some(percentiles(samples)),
        bytes_per_item: None,
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}

/// A small HTTP sink that answers 200 to every POST and counts them.
async fn sink() -> anyhow::Result<(u16, Arc<AtomicU64>, actix_web::dev::ServerHandle)> {
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let server = actix_web::HttpServer::new(move || {
        let counter = counter.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                actix_web::HttpResponse::Ok().json(json!({ "ok": true }))
            }
        }))
    })
    .workers(1)
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((port, hits, handle))
}

fn path(p: &str) -> anyhow::Result<Expr> {
    Ok(Expr::Path {
        path: FieldPath::parse(p).map_err(|e| anyhow::anyhow!(e.0))?,
    })
}

/// Installs the peer flow (a Standard Webhooks inbound connection, the
/// sink as an HTTP connection, the published workflow) in `env`'s tenant;
/// returns the webhook's URL and signing secret.
async fn install_peer_flow(env: &Env, sink_url: &str) -> anyhow::Result<(String, String)> {
    let now = SystemClock.now();
    let secret = format!(
        "whsec_{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            rand::random::<[u8; 24]>()
        )
    );
    let hook = connections::create(
        &env.db,
        &env.vault,
        &env.tenant,
        NewConnection {
            connector: ConnectorKey::Webhook,
            name: "Inbound",
            environment: Environment::Production,
            scopes: &[],
            external_account: None,
            base_url: None,
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &env.admin,
        },
        &Credentials {
            signing_secret: Some(secret.clone().into()),
            ..Credentials::default()
        },
        now,
    )
    .await?;
    let api = connections::create(
        &env.db,
        &env.vault,
        &env.tenant,
        NewConnection {
            connector: ConnectorKey::Http,
            name: "Sink",
            environment: Environment::Production,
            scopes: &[],
            external_account: None,
            base_url: Some(sink_url),
            access_expires_at: None,
            credential_expires_at: None,
            created_by: &env.admin,
        },
        &Credentials::default(),
        now,
    )
    .await?;
    let definition = Definition {
        trigger: Trigger {
            connector: ConnectorKey::Webhook,
            event: "webhook.received".into(),
        },
        steps: vec![Step {
            key: "post".into(),
            label: None,
            kind: StepKind::Action {
                connector: ConnectorKey::Http,
                action: "post_json".into(),
                input: [
                    (
                        "path".to_owned(),
                        Expr::Literal {
                            value: json!("/sink"),
                        },
                    ),
                    (
                        "body".to_owned(),
                        Expr::Object {
                            fields: [
                                (
                                    "name".to_owned(),
                                    path("trigger.body.name")?.then(Transform::Trim),
                                ),
                                (
                                    "email".to_owned(),
                                    path("trigger.body.email")?.then(Transform::Lower),
                                ),
                                (
                                    "country".to_owned(),
                                    path("trigger.body.country")?.then(Transform::Upper),
                                ),
                            ]
                            .into(),
                        },
                    ),
                ]
                .into(),
                retry: RetryPolicy::default(),
            },
        }],
    };
    let issues = definition.check();
    if !issues.is_empty() {
        bail!("the peer flow's definition: {issues:?}");
    }
    let bindings: workflows::Bindings = [
        ("webhook".to_owned(), hook.id.clone()),
        ("http".to_owned(), api.id.clone()),
    ]
    .into();
    let wf = workflows::create(
        &env.db,
        &env.tenant,
        workflows::NewWorkflow {
            name: "Peer flow",
            description: "webhook → map three fields → HTTP POST",
            owner_id: &env.admin,
            environment: Environment::Production,
            draft: &definition,
            bindings: &bindings,
        },
        now,
    )
    .await?;
    workflows::publish(
        &env.db,
        &env.tenant,
        &wf.id,
        &env.admin,
        workflows::Publication::default(),
        now,
    )
    .await?;

    let uri = format!("{}/hooks/webhook/{}", env.address, hook.id);
    Ok((uri, secret))
}

/// `ferry-bench peer-flow`: webhook → map three fields → HTTP POST.
pub async fn peer_flow(
    backend: &Backend,
    events: usize,
    concurrency: usize,
) -> anyhow::Result<Report> {
    let env = start(backend, 16).await?;
    let (idle, _) = memory_kib();
    let (sink_port, hits, sink_handle) = sink().await?;
    let (uri, secret) = install_peer_flow(&env, &format!("http://127.0.0.1:{sink_port}")).await?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let make = {
        let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
        move |i: usize| {
            let (http, uri, secret) = (http.clone(), uri.clone(), secret.clone());
            async move {
                let body = json!({ "data": i, "name": format!("  Client {i} "), "email": format!("Client{i}@Example.COM"), "country": "gb" }).to_string();
                let id = format!("msg_{i}");
                let ts = SystemClock.now().timestamp();
                let sig = ferry_connectors::webhook::standard_webhook_signature(
                    &secret,
                    &id,
                    ts,
                    body.as_bytes(),
                )
                .context("signing")?;
                let r = http
                    .post(&uri)
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", sig)
                    .body(body)
                    .send()
                    .await?;
                Ok(r.status().as_u16())
            }
        }
    };
    // Warm-up, then the measured batch.
    let warm = 200.min(events);
    blast(warm, concurrency, make.clone()).await?;
    env.wait_for_runs(warm as u64, Duration::from_secs(120))
        .await?;
    let before = env.database_bytes().await?;
    let t = Instant::now();
    blast(events, concurrency, move |i| make(i + 1_000_000)).await?;
    let done = env
        .wait_for_runs((warm + events) as u64, Duration::from_secs(600))
        .await?;
    let secs = (done - t).as_secs_f64();
    let after = env.database_bytes().await?;
    let posted = hits.load(Ordering::Relaxed);
    if posted < (warm + events) as u64 {
        bail!(
            "the sink received {posted} posts for {} runs",
            warm + events
        );
    }
    let succeeded = env.count("succeeded").await?;
    let (_, peak) = memory_kib();
    sink_handle.stop(true).await;
    env.stop().await;
    Ok(Report {
        name: "peer flow",
        backend: backend.describe(),
        items: succeeded.saturating_sub(warm as u64),
        per_second: events as f64 / secs,
        latency_ms: None,
        bytes_per_item: Some(after.saturating_sub(before) as f64 / events as f64),
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}

/// `ferry-bench serve-peer-flow`: a Ferry with the peer flow installed,
/// posting to `sink_url`, for an outside load generator (`scripts/bench-peers`).
/// Prints one JSON line (`url`, `secret`), then answers each `count` line
/// on standard input with the run counts by status as one JSON line, until
/// `quit` or the end of its input.
pub async fn serve_peer_flow(backend: &Backend, sink_url: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let env = start(backend, 16).await?;
    let (url, secret) = install_peer_flow(&env, sink_url).await?;
    let mut out = tokio::io::stdout();
    let hello = json!({ "url": url, "secret": secret, "pid": std::process::id() });
    out.write_all(format!("{hello}\n").as_bytes()).await?;
    out.flush().await?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "count" => {
                let counts = runs::count_by_status(&env.db, &env.tenant).await?;
                let mut by: serde_json::Map<String, Value> = counts
                    .iter()
                    .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
                    .collect();
                let hook = connections::list(&env.db, &env.tenant)
                    .await?
                    .into_iter()
                    .find(|c| c.connector == ConnectorKey::Webhook)
                    .context("the peer flow's webhook connection")?;
                let events = ferry_store::inbound::stats(&env.db, &env.tenant, &hook.id)
                    .await?
                    .0;
                by.insert("events".into(), json!(events));
                out.write_all(format!("{}\n", Value::Object(by)).as_bytes())
                    .await?;
                out.flush().await?;
            }
            "bytes" => {
                let bytes = env.database_bytes().await?;
                out.write_all(format!("{}\n", json!({ "bytes": bytes })).as_bytes())
                    .await?;
                out.flush().await?;
            }
            "quit" => break,
            _ => {}
        }
    }
    env.stop().await;
    Ok(())
}
