//! `ferry-bench connector`: the overhead of a connector call — Ferry's
//! guarded client, rate limiter and call logging, through the HubSpot
//! connector to the simulator and back — against a bare reqwest call to the
//! same endpoint with the same token. Both run in this process against the
//! same server, alternating in rounds so drift affects both alike.

use anyhow::Context;
use ferry::{Roles, Settings};
use ferry_connectors::CallContext;
use ferry_connectors::{Connector, HttpClient, NetworkPolicy, RateLimiter};
use ferry_core::{Credentials, SystemClock};
use secrecy::ExposeSecret;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Summary of one side.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Median, microseconds.
    pub p50_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Mean, microseconds.
    pub mean_us: f64,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)].as_secs_f64() * 1e6
    };
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64 * 1e6;
    Stats {
        p50_us: at(0.5),
        p99_us: at(0.99),
        mean_us: mean,
    }
}

/// Runs the benchmark with `calls` measured calls per side.
pub async fn connector_overhead(calls: usize) -> anyhow::Result<(Stats, Stats)> {
    let dir = std::env::temp_dir().join(format!("ferry-bench-{:x}", rand::random::<u64>()));
    let dir_text = dir.display().to_string();
    // Port 0: Ferry derives the sandbox's URLs from the port it gets.
    let settings = Settings::from_pairs([
        ("bind", "127.0.0.1:0"),
        ("data_dir", dir_text.as_str()),
        ("web_workers", "1"),
        ("sandbox", "local"),
    ])?;
    let ferry = ferry::build(
        &settings,
        Arc::new(SystemClock),
        Roles {
            web: true,
            worker: false,
        },
    )
    .await?;
    let port = ferry.port().context("no listener")?;
    let handle = ferry.server_handle().context("no server")?;
    let sandbox = ferry.sandbox().cloned().context("no sandbox")?;
    let server = tokio::spawn(ferry.run_until_stopped());
    let base = format!("http://127.0.0.1:{port}/sandbox/hubspot");
    let secret =
        ferry_engine::connections::sandbox_client_secret(settings.master_key.expose_secret());

    // A grant, straight from the simulator's OAuth endpoints.
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let redirect = format!("http://127.0.0.1:{port}/cb");
    // The consent screen approved in process, as the local user would.
    let mut authorize = url::Url::parse(&format!("{base}/oauth/authorize"))?;
    authorize
        .query_pairs_mut()
        .append_pair("client_id", ferry::SANDBOX_CLIENT_ID)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "crm.objects.contacts.read");
    let location = sandbox
        .hubspot
        .approve(&authorize, None)
        .map_err(|e| anyhow::anyhow!("the simulator refused the consent: {e}"))?
        .to_string();
    let code = url::Url::parse(&location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .context("no code")?;
    let token: Value = http
        .post(format!("{base}/oauth/v1/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("client_id", ferry::SANDBOX_CLIENT_ID),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await?
        .json()
        .await?;
    let access = token["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let portal = reqwest::get(format!("{base}/admin/portals"))
        .await?
        .json::<Value>()
        .await?[0]["portalId"]
        .as_u64()
        .context("no portal")?;
    http.put(format!("{base}/admin/portals/{portal}/faults"))
        .json(&serde_json::json!({ "unlimited": true }))
        .send()
        .await?;

    let ctx = CallContext {
        connection_id: String::new(),
        base_url: url::Url::parse(&base)?,
        credentials: Credentials {
            access_token: Some(access.clone().into()),
            ..Credentials::default()
        },
        http: HttpClient::new(
            NetworkPolicy {
                allow_private: false,
                allowed_origins: vec![format!("127.0.0.1:{port}")],
            },
            Duration::from_secs(10),
        )?,
        limiter: RateLimiter::memory(),
        idempotency_key: None,
        log: Default::default(),
        rate_limit: None,
    };
    let bare = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{base}/crm/v3/objects/contacts?limit=1");
    let hubspot = ferry_connectors::hubspot::HubSpot;

    let mut ferry_samples = Vec::with_capacity(calls);
    let mut bare_samples = Vec::with_capacity(calls);
    let rounds = 20;
    let per_round = calls.div_ceil(rounds);
    for round in 0..=rounds {
        let warmup = round == 0;
        for i in 0..per_round {
            // A fresh limiter key per call: the limiter does its bookkeeping
            // but HubSpot's 100 per 10 s never makes the benchmark wait.
            let mut c = ctx.clone();
            c.connection_id = format!("bench-{round}-{i}");
            let t = Instant::now();
            hubspot
                .test(&c)
                .await
                .map_err(|e| anyhow::anyhow!("connector call: {e}"))?;
            if !warmup {
                ferry_samples.push(t.elapsed());
            }
            let t = Instant::now();
            let r = bare.get(&url).bearer_auth(&access).send().await?;
            let _: Value = r.json().await?;
            if !warmup {
                bare_samples.push(t.elapsed());
            }
        }
    }
    handle.stop(true).await;
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((stats(ferry_samples), stats(bare_samples)))
}
