//! The runs page over a large stored history.

use super::*;

/// `ferry-bench runs-page`: the runs page (first page, filtered pages and
/// pages deep in the history through the cursor) with `history` runs stored.
pub async fn runs_page(
    backend: &Backend,
    history: usize,
    requests: usize,
) -> anyhow::Result<Report> {
    let env = start(backend, 1).await?;
    let (idle, _) = memory_kib();
    let now = SystemClock.now();
    let definition = ferry_core::workflow::reference_template();
    let wf = workflows::create(
        &env.db,
        &env.tenant,
        workflows::NewWorkflow {
            name: "History",
            description: "",
            owner_id: &env.admin,
            environment: Environment::Sandbox,
            draft: &definition,
            bindings: &workflows::Bindings::new(),
        },
        now,
    )
    .await?;
    let seeded = Instant::now();
    runs::insert_history(&env.db, &env.tenant, &wf.id, history, now).await?;
    eprintln!(
        "seeded {history} runs in {:.0} s",
        seeded.elapsed().as_secs_f64()
    );
    env.db.analyze().await?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let login = client
        .get(format!("{}/login", env.address))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start_at = login.find(marker).context("no token")? + marker.len();
    let token: String = login[start_at..]
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    let status = client
        .post(format!("{}/login", env.address))
        .form(&[
            ("email", env.admin_email.as_str()),
            ("password", env.admin_password.as_str()),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await?
        .status();
    if status.as_u16() != 303 {
        bail!("login failed ({status})");
    }
    let mut paths = vec![
        "/runs".to_owned(),
        "/runs?status=failed".to_owned(),
        "/runs?status=dead".to_owned(),
        format!("/runs?workflow={}", wf.id),
        "/runs?record=4242".to_owned(),
        "/runs?from=2000-01-01&to=2100-01-01".to_owned(),
    ];
    // Twenty pages deep through the cursor.
    let mut next = "/runs".to_owned();
    for _ in 0..20 {
        let body = client
            .get(format!("{}{next}", env.address))
            .send()
            .await?
            .text()
            .await?;
        let Some(at) = body
            .find("rel=\"next\"")
            .and_then(|end| body[..end].rfind("href=\""))
        else {
            break;
        };
        let link: String = body[at + 6..].chars().take_while(|c| *c != '"').collect();
        next = link.replace("&amp;", "&");
        paths.push(next.clone());
    }
    let mut samples = Vec::new();
    let t = Instant::now();
    for i in 0..requests {
        let p = &paths[i % paths.len()];
        let s = Instant::now();
        let r = client.get(format!("{}{p}", env.address)).send().await?;
        if r.status().as_u16() != 200 {
            bail!("{p} answered {}", r.status());
        }
        let _ = r.text().await?;
        samples.push(s.elapsed());
    }
    let secs = t.elapsed().as_secs_f64();
    let (_, peak) = memory_kib();
    env.stop().await;
    Ok(Report {
        name: "runs page",
        backend: format!("{}, {history} runs stored", backend.describe()),
        items: requests as u64,
        per_second: requests as f64 / secs,
        latency_ms: Some(percentiles(samples)),
        bytes_per_item: None,
        idle_rss_kib: idle,
        peak_rss_kib: peak,
    })
}
