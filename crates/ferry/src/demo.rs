//! Demo data: a platform operator and the tenant "Demo Accounting" with an
//! admin and a staff member. Running it again refreshes the passwords.

use anyhow::{Context, bail};
use ferry_app::connections::{NewConnectionBasics, NewKeyConnection, OAuthCallback, OAuthOutcome};
use ferry_app::workflows::{NewWorkflow, Template};
use ferry_app::{Member, Services};
use ferry_core::catalog::ConnectorKey;
use ferry_core::{
    Clock, EmailAddress, Environment, PersonName, Role, TenantName, TenantStatus, UserStatus,
};
use ferry_sandbox::Sandbox;
use ferry_store::{Db, tenants, users};
use std::collections::BTreeMap;

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

/// Sets the demo tenant up through the same services the pages call, as
/// its admin: connects sandbox HubSpot (the simulator's consent approved on
/// the local user's behalf), adds a sandbox verification connection, and
/// creates, binds and publishes the reference workflow. Connections from an
/// earlier demo start are revoked first (the simulators keep their state in
/// memory only).
pub async fn connect_sandbox(
    db: &Db,
    services: &Services,
    sandbox: &Sandbox,
    admin_email: &str,
) -> anyhow::Result<()> {
    let email = EmailAddress::parse("email", admin_email)?;
    let user = users::find_by_email(db, &email)
        .await?
        .context("the demo admin does not exist")?;
    let membership = users::membership_of(db, &user.id)
        .await?
        .context("the demo admin has no tenant")?;
    if membership.role != Role::Admin
        || membership.status != UserStatus::Active
        || membership.tenant.status != TenantStatus::Active
    {
        bail!("the demo admin is not an active admin of an active tenant");
    }
    let admin = Member {
        user_id: user.id.clone(),
        tenant_id: membership.tenant.id.clone(),
        role: membership.role,
        name: user.name.clone(),
        label: user.email.clone(),
        client_ip: "-".into(),
    };
    let sandbox_env = |name: &str| -> anyhow::Result<NewConnectionBasics> {
        Ok(NewConnectionBasics {
            name: PersonName::parse("name", name)?,
            environment: Environment::Sandbox,
        })
    };

    // Revoke what an earlier start connected.
    for c in services.connections.list(&admin).await? {
        services.connections.revoke(&admin, &c.id, true).await?;
    }

    // HubSpot, through the simulator's consent screen.
    let consent = services
        .connections
        .start_oauth(&admin, sandbox_env("HubSpot (sandbox)")?)
        .await?;
    let callback = sandbox
        .hubspot
        .approve(&consent, Some(admin.tenant_id.as_str()))
        .map_err(|e| anyhow::anyhow!("the HubSpot simulator refused the consent: {e}"))?;
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let answer = OAuthCallback {
        code: param("code"),
        state: param("state"),
        ..OAuthCallback::default()
    };
    if let OAuthOutcome::Failed(why) = services.connections.finish_oauth(&admin, answer).await? {
        bail!("connecting sandbox HubSpot failed: {why}");
    }

    // Verification: an empty key makes Ferry create a sandbox account.
    services
        .connections
        .create_with_key(
            &admin,
            NewKeyConnection {
                connector: ConnectorKey::Verification,
                basics: sandbox_env("Identity verification (sandbox)")?,
                api_key: String::new(),
                base_url: String::new(),
                username: String::new(),
                signing_secret: String::new(),
            },
        )
        .await?;

    // The reference workflow, once.
    let existing = services.workflows.list(&admin).await?;
    let id =
        match existing.first() {
            Some(row) => row.workflow.id.clone(),
            None => services
                .workflows
                .create(
                    &admin,
                    NewWorkflow {
                        name: PersonName::parse(
                            "name",
                            "New contact → identity verification → outcome written back",
                        )?,
                        description:
                            "Replaces the manual identity check when a client is added to HubSpot."
                                .into(),
                        owner: admin.user_id.clone(),
                        environment: Environment::Sandbox,
                        template: Template::Reference,
                    },
                )
                .await?,
        };
    // Bind the fresh connections (the newest of each kind) and publish.
    let connections = services.connections.list(&admin).await?;
    let mut chosen = BTreeMap::new();
    for c in connections
        .iter()
        .filter(|c| c.environment == Environment::Sandbox)
    {
        chosen.entry(c.connector).or_insert_with(|| c.id.clone());
    }
    services.workflows.bind(&admin, &id, &chosen).await?;
    let published = services
        .workflows
        .publish(
            &admin,
            &id,
            "The reference workflow, as the demo sets it up.",
        )
        .await?;
    if let ferry_app::workflows::Published::Blocked(report) = published {
        anyhow::bail!(
            "the publish checklist blocked the reference workflow: {}",
            report
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{}: {}", c.title, c.summary))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}
