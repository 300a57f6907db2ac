//! Demo data: a platform operator and the tenant "Demo Accounting" with an
//! admin and a staff member. Running it again refreshes the passwords.

use ferry_core::{Clock, EmailAddress, Role, TenantName};
use ferry_store::{Db, tenants, users};

/// The demo tenant's name.
pub const DEMO_TENANT: &str = "Demo Accounting";

/// One demo login, printed at start.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// What the account is for.
    pub role: &'static str,
    /// Login email.
    pub email: String,
    /// The freshly set password.
    pub password: String,
}

fn fresh_password() -> String {
    // 20 characters from a 32-symbol alphabet: 100 bits, easy to type.
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789-";
    (0..20)
        .map(|_| char::from(ALPHABET[usize::from(rand::random::<u8>()) % ALPHABET.len()]))
        .collect()
}

/// Creates or refreshes the demo accounts; returns their logins.
pub async fn seed(db: &Db, clock: &dyn Clock) -> anyhow::Result<Vec<DemoLogin>> {
    let now = clock.now();
    let tenant = match tenants::find_by_name(db, DEMO_TENANT).await? {
        Some(t) => t,
        None => tenants::create(db, &TenantName::parse("name", DEMO_TENANT)?, now).await?,
    };
    let people = [
        (
            "Platform operator",
            "operator@ferry.test",
            "Olive Operator",
            None,
        ),
        (
            "Tenant admin",
            "admin@demo-accounting.test",
            "Ada Admin",
            Some(Role::Admin),
        ),
        (
            "Staff",
            "staff@demo-accounting.test",
            "Sam Staff",
            Some(Role::Staff),
        ),
    ];
    let mut logins = Vec::new();
    for (label, email, name, role) in people {
        let email = EmailAddress::parse("email", email)?;
        let password = fresh_password();
        let hash = ferry_web::hash_password(password.clone()).await?;
        match users::find_by_email(db, &email).await? {
            Some(user) => users::set_password(db, &user.id, hash).await?,
            None => {
                match role {
                    None => users::create_operator(db, &email, name, Some(hash), now).await?,
                    Some(role) => {
                        users::create_member(db, &tenant.id, &email, name, hash, role, now).await?
                    }
                };
            }
        }
        logins.push(DemoLogin {
            role: label,
            email: email.to_string(),
            password,
        });
    }
    Ok(logins)
}

/// Signs in as the demo admin over HTTP and uses Ferry's own pages, as a
/// person in a browser would: connects sandbox HubSpot through the consent
/// screen, adds a sandbox verification connection, and creates and
/// publishes the reference workflow. Connections from an earlier demo start
/// are revoked first (the simulators keep their state in memory only).
pub async fn connect_sandbox(
    base: &str,
    admin_email: &str,
    admin_password: &str,
) -> anyhow::Result<()> {
    use anyhow::{Context, bail};
    let client = reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = |path: &str| format!("{base}{path}");
    let token_of = |html: &str| -> anyhow::Result<String> {
        let marker = "name=\"csrf_token\" value=\"";
        let start = html.find(marker).context("no form token on the page")? + marker.len();
        Ok(html[start..].chars().take_while(|c| *c != '"').collect())
    };
    let page = |path: String| {
        let client = client.clone();
        async move {
            client
                .get(path)
                .send()
                .await?
                .text()
                .await
                .map_err(anyhow::Error::from)
        }
    };
    let post = |path: String, mut form: Vec<(String, String)>, token: String| {
        let client = client.clone();
        async move {
            form.push(("csrf_token".into(), token));
            let res = client.post(path).form(&form).send().await?;
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            Ok::<_, anyhow::Error>((res.status().as_u16(), location))
        }
    };

    let login = page(url("/login")).await?;
    let (status, _) = post(
        url("/login"),
        vec![
            ("email".into(), admin_email.into()),
            ("password".into(), admin_password.into()),
        ],
        token_of(&login)?,
    )
    .await?;
    if status != 303 {
        bail!("the demo admin could not sign in ({status})");
    }

    // Revoke what an earlier start connected.
    let list = page(url("/connections")).await?;
    for id in list
        .split("href=\"/connections/con_")
        .skip(1)
        .filter_map(|s| s.get(..32))
        .map(|s| format!("con_{s}"))
        .collect::<std::collections::BTreeSet<_>>()
    {
        let detail = page(url(&format!("/connections/{id}"))).await?;
        post(
            url(&format!("/connections/{id}/revoke")),
            vec![],
            token_of(&detail)?,
        )
        .await?;
    }

    // HubSpot, through the simulator's consent screen.
    let form = page(url("/connections/new/hubspot")).await?;
    let (_, consent) = post(
        url("/connections/new/hubspot"),
        vec![
            ("name".into(), "HubSpot (sandbox)".into()),
            ("environment".into(), "sandbox".into()),
        ],
        token_of(&form)?,
    )
    .await?;
    let consent = url::Url::parse(&consent.context("no consent URL")?)?;
    let mut decision: Vec<(String, String)> = consent
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // The consent screen sets its anti-forgery cookie and token.
    let screen = page(url(&format!(
        "{}?{}",
        consent.path(),
        consent.query().unwrap_or("")
    )))
    .await?;
    decision.extend([
        ("decision".to_owned(), "approve".to_owned()),
        ("portal".to_owned(), "new".to_owned()),
        ("csrf_token".to_owned(), token_of(&screen)?),
    ]);
    let approved = client
        .post(url("/sandbox/hubspot/oauth/authorize"))
        .form(&decision)
        .send()
        .await?;
    let callback = approved
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("no callback")?
        .to_owned();
    let callback = url::Url::parse(&callback)?;
    let res = client
        .get(url(&format!(
            "{}?{}",
            callback.path(),
            callback.query().unwrap_or("")
        )))
        .send()
        .await?;
    if res.status().as_u16() != 303 {
        bail!("connecting sandbox HubSpot failed ({})", res.status());
    }

    // Verification: an empty key makes Ferry create a sandbox account.
    let form = page(url("/connections/new/verification")).await?;
    let (status, _) = post(
        url("/connections/new/verification"),
        vec![
            ("name".into(), "Identity verification (sandbox)".into()),
            ("environment".into(), "sandbox".into()),
        ],
        token_of(&form)?,
    )
    .await?;
    if status != 303 {
        bail!("connecting the sandbox verification provider failed ({status})");
    }

    // The reference workflow, once.
    let workflows = page(url("/workflows")).await?;
    let existing = workflows
        .split("href=\"/workflows/wf_")
        .nth(1)
        .and_then(|s| s.get(..32))
        .map(|s| format!("wf_{s}"));
    let id = match existing {
        Some(id) => id,
        None => {
            let form = page(url("/workflows/new")).await?;
            let owner: String = form
                .split("<option value=\"usr_")
                .nth(1)
                .map(|s| format!("usr_{}", s.chars().take(32).collect::<String>()))
                .context("no owner to choose")?;
            let (_, location) = post(
                url("/workflows"),
                vec![
                    (
                        "name".into(),
                        "New contact → identity verification → outcome written back".into(),
                    ),
                    (
                        "description".into(),
                        "Replaces the manual identity check when a client is added to HubSpot."
                            .into(),
                    ),
                    ("owner".into(), owner),
                    ("environment".into(), "sandbox".into()),
                    ("template".into(), "reference".into()),
                ],
                token_of(&form)?,
            )
            .await?;
            location
                .context("no workflow created")?
                .trim_start_matches("/workflows/")
                .to_owned()
        }
    };
    // Bind the fresh connections and publish.
    let detail = page(url(&format!("/workflows/{id}"))).await?;
    let pick = |connector: &str| -> Option<String> {
        let select = detail.split(&format!("name=\"bind_{connector}\"")).nth(1)?;
        let option = select.split("<option value=\"con_").nth(1)?;
        Some(format!("con_{}", option.get(..32)?))
    };
    let mut bindings = Vec::new();
    for connector in ["hubspot", "verification"] {
        if let Some(c) = pick(connector) {
            bindings.push((format!("bind_{connector}"), c));
        }
    }
    post(
        url(&format!("/workflows/{id}/bindings")),
        bindings,
        token_of(&detail)?,
    )
    .await?;
    let detail = page(url(&format!("/workflows/{id}"))).await?;
    let (status, _) = post(
        url(&format!("/workflows/{id}/publish")),
        vec![],
        token_of(&detail)?,
    )
    .await?;
    if status != 303 {
        bail!("publishing the reference workflow failed ({status})");
    }
    Ok(())
}
