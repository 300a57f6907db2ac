//! The reference workflow end to end.

use super::*;

/// `ferry-bench reference`: contacts created in the HubSpot simulator
/// flow through the published template until the outcome is written back
/// (provider answering at once, HubSpot's rate limit lifted).
pub async fn reference(backend: &Backend, contacts: usize) -> anyhow::Result<Report> {
    let env = start(backend, 16).await?;
    let (idle, _) = memory_kib();
    ferry::demo::connect_sandbox(&env.db, &env.services, &env.sandbox, &env.admin_email).await?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let portal = http
        .get(format!("{}/sandbox/hubspot/admin/portals", env.address))
        .send()
        .await?
        .json::<Value>()
        .await?[0]["portalId"]
        .as_u64()
        .context("no portal")?;
    http.put(format!(
        "{}/sandbox/hubspot/admin/portals/{portal}/faults",
        env.address
    ))
    .json(&json!({ "unlimited": true }))
    .send()
    .await?;
    let accounts: Value = http
        .get(format!("{}/sandbox/verify/admin/accounts", env.address))
        .send()
        .await?
        .json()
        .await?;
    for a in accounts.as_array().into_iter().flatten() {
        let id = a["account_id"].as_str().unwrap_or("");
        let current: Value = http
            .get(format!(
                "{}/sandbox/verify/admin/accounts/{id}",
                env.address
            ))
            .send()
            .await?
            .json()
            .await?;
        let mut settings = current["settings"].clone();
        settings["delay_ms"] = json!(0);
        http.put(format!(
            "{}/sandbox/verify/admin/accounts/{id}",
            env.address
        ))
        .json(&settings)
        .send()
        .await?;
    }
    let base = env.address.clone();
    let make = move |i: usize| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let r = http
                .post(format!("{base}/sandbox/hubspot/admin/portals/{portal}/contacts"))
                .json(&json!({ "properties": { "firstname": "Client", "lastname": format!("Number{i}"), "email": format!("client{i}@bench.example") } }))
                .send()
                .await?;
            Ok(r.status().as_u16())
        }
    };
    let t = Instant::now();
    blast(contacts, 16, make).await?;
    let done = env
        .wait_for_runs(contacts as u64, Duration::from_secs(900))
        .await?;
    let secs = (done - t).as_secs_f64();
    let succeeded = env.count("succeeded").await?;
    let (_, peak) = memory_kib();
    env.stop().await;
    Ok(Report {
        name: "reference workflow end to end",
        backend: backend.describe(),
        items: succeeded,
        per_second: contacts as f64 / secs,
        latency_ms: None,
        bytes_per_item: None,
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}
