//! `ferry`: the command line. Each subcommand wires the library and runs.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry::{Roles, Settings};
use ferry_core::{Clock, EmailAddress, Password, SystemClock};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Ferry: a compliance-first integration platform.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about)]
struct Cli {
    /// A TOML configuration file (default: ./ferry.toml when it exists).
    /// Environment variables FERRY_* override it.
    #[arg(long, global = true, env = "FERRY_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, then serve the web UI with a worker in the same process.
    Serve {
        /// Serve HTTP only; run `ferry worker` processes for background work.
        #[arg(long)]
        web_only: bool,
    },
    /// Run background work only (mail delivery, housekeeping).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Create or refresh the demo tenant and logins, print them, then serve.
    Demo,
    /// Serve only the HubSpot and verification-provider simulators.
    Sandbox,
    /// Platform administration.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create a platform operator. With --password-stdin the password is
    /// read from standard input; otherwise a one-time invite link is printed.
    CreateOperator {
        /// The operator's login email.
        #[arg(long)]
        email: String,
        /// The operator's display name.
        #[arg(long, default_value = "Platform operator")]
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Generate a new master key, re-wrap every tenant's data key with it,
    /// and retire the old key. Stop Ferry's processes first.
    RotateMasterKey,
    /// Verify the hash-chained audit log: every tenant's chain and the
    /// platform's, or one tenant's. Names the first broken link and exits
    /// non-zero when a chain does not verify.
    VerifyAudit {
        /// One tenant, by id or name.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Verify an evidence pack (a .zip downloaded from Ferry): every file
    /// against its SHA-256 in the manifest. Exits non-zero on a mismatch.
    VerifyEvidence {
        /// The pack.
        pack: PathBuf,
    },
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn,actix_server=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_json);
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve { web_only } => {
            serve(
                &settings,
                clock,
                Roles {
                    web: true,
                    worker: !web_only,
                },
                None,
            )
            .await
        }
        Command::Worker => {
            let ferry = ferry::build(
                &settings,
                clock,
                Roles {
                    web: false,
                    worker: true,
                },
            )
            .await?;
            tracing::info!("worker started");
            ferry.run_until_stopped().await
        }
        Command::Sandbox => ferry::serve_sandbox(&settings).await,
        Command::Migrate => {
            ferry::open_database(&settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Demo => {
            // The demo is a local tool: its simulators answer this machine.
            let mut settings = settings;
            if settings.sandbox == ferry::config::SandboxMode::Off {
                settings.sandbox = ferry::config::SandboxMode::Local;
            }
            let db = ferry::open_database(&settings).await?;
            let logins = ferry::demo::seed(&db, clock.as_ref()).await?;
            serve(
                &settings,
                clock,
                Roles {
                    web: true,
                    worker: true,
                },
                Some(logins),
            )
            .await
        }
        Command::Admin(AdminCommand::RotateMasterKey) => {
            let r = ferry::rotate_master_key(&settings).await?;
            println!(
                "re-wrapped {} tenant data key(s) with a new master key; the old key is retired",
                r.rewrapped
            );
            if let Some(key) = r.new_key_for_env {
                println!("set FERRY_MASTER_KEY to the new key before starting Ferry again:\n{key}");
                if let Some(file) = r.key_file {
                    println!(
                        "(also saved to {}; delete it once FERRY_MASTER_KEY is updated)",
                        file.display()
                    );
                }
            } else if let Some(file) = r.key_file {
                println!("the new key is in {}", file.display());
            }
            Ok(())
        }
        Command::Admin(AdminCommand::VerifyAudit { tenant }) => {
            let reports = ferry::verify_audit(&settings, tenant.as_deref()).await?;
            let mut broken = 0;
            for r in &reports {
                match &r.broken {
                    None => println!(
                        "{}: {} entries, head {} — verified",
                        r.chain, r.entries, r.head_hash
                    ),
                    Some(b) => {
                        broken += 1;
                        println!(
                            "{}: BROKEN at entry {}{}: {}",
                            r.chain,
                            b.seq,
                            b.entry_id
                                .as_deref()
                                .map(|id| format!(" ({id})"))
                                .unwrap_or_default(),
                            b.reason
                        );
                    }
                }
            }
            if broken > 0 {
                anyhow::bail!(
                    "{broken} of {} audit chain(s) failed verification",
                    reports.len()
                );
            }
            println!("{} audit chain(s) verified", reports.len());
            Ok(())
        }
        Command::Admin(AdminCommand::VerifyEvidence { pack }) => {
            let bytes =
                std::fs::read(&pack).with_context(|| format!("reading {}", pack.display()))?;
            let report = ferry::verify_evidence(&settings, &bytes)?;
            for line in &report.lines {
                println!("{line}");
            }
            if !report.ok {
                anyhow::bail!("the evidence pack does not verify");
            }
            println!(
                "evidence pack verified: {} file(s); audit chain head {}",
                report.files, report.chain_head
            );
            Ok(())
        }
        Command::Admin(AdminCommand::CreateOperator {
            email,
            name,
            password_stdin,
        }) => create_operator(&settings, clock.as_ref(), &email, &name, password_stdin).await,
    }
}

async fn serve(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    roles: Roles,
    logins: Option<Vec<ferry::demo::DemoLogin>>,
) -> anyhow::Result<()> {
    let ferry = ferry::build(settings, clock, roles).await?;
    let url = ferry.public_url().as_str().trim_end_matches('/').to_owned();
    tracing::info!(url = %url, web = roles.web, worker = roles.worker, "Ferry is serving");
    if let Some(logins) = &logins
        && settings.sandbox.is_on()
        && let Some(admin) = logins.iter().find(|l| l.role == "Tenant admin")
    {
        // The server must be accepting before the demo can use it.
        let port = ferry.port().unwrap_or(settings.bind.port());
        let base = ferry::config::internal_url(std::net::SocketAddr::new(settings.bind.ip(), port))
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let email = admin.email.clone();
        let services = ferry.services().cloned();
        let sandbox = ferry.sandbox().cloned();
        let db = ferry.db().clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                if reqwest::get(format!("{base}/healthz")).await.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            let (Some(services), Some(sandbox)) = (services, sandbox) else {
                return;
            };
            match ferry::demo::connect_sandbox(&db, &services, &sandbox, &email).await {
                Ok(()) => tracing::info!(
                    "demo: sandbox HubSpot and verification connected; reference workflow published"
                ),
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "demo: could not set up the sandbox connections")
                }
            }
        });
    }
    if let Some(logins) = logins {
        println!("\nFerry demo is running at {url}\n");
        for l in &logins {
            println!("  {:<18} {:<30} password: {}", l.role, l.email, l.password);
        }
        if settings.smtp_url.is_none() {
            println!("\n  Mail (invites, password resets) is kept in the outbox: {url}/outbox");
        }
        if settings.sandbox.is_on() {
            println!(
                "  Demo Accounting has sandbox HubSpot and verification connections and the reference workflow published."
            );
            println!(
                "  Sign in as the admin and press \"Create sample contacts\" on the dashboard: runs fill {url}/runs within seconds."
            );
            println!("  HubSpot simulator fault knobs: {url}/sandbox/hubspot/admin");
            println!(
                "  Alerts: set the portal's \"Force\" to \"500 error\" (or \"500 error on writes only\"), create sample contacts,"
            );
            println!(
                "  and within two minutes the error-rate alert emails the workflow's owner ({url}/outbox, {url}/alerts)."
            );
        }
        println!("\nPress Ctrl-C to stop.\n");
    }
    ferry.run_until_stopped().await
}

async fn create_operator(
    settings: &Settings,
    clock: &dyn Clock,
    email: &str,
    name: &str,
    password_stdin: bool,
) -> anyhow::Result<()> {
    use ferry_app::operators::{Access, Created, NewOperator};
    let email = EmailAddress::parse("email", email)
        .map_err(|e| anyhow::anyhow!("--email: {}", e.message))?;
    let name = ferry_core::PersonName::parse("name", name)
        .map_err(|e| anyhow::anyhow!("--name: {}", e.message))?;
    let db = ferry::open_database(settings).await?;
    let now = clock.now();
    if ferry_app::operators::email_taken(&db, &email).await? {
        anyhow::bail!("an account with the email {email} already exists");
    }
    let access = if password_stdin {
        if std::io::stdin().is_terminal() {
            eprint!("Password for {email}: ");
        }
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let line = line.trim_end_matches(['\n', '\r']);
        let password = Password::parse_new("password", line, line)
            .map_err(|e| anyhow::anyhow!("password: {}", e.message))?;
        Access::Password(password)
    } else {
        Access::Invite(chrono::Duration::hours(ferry::LINK_TTL_HOURS))
    };
    let created = ferry_app::operators::create(
        &db,
        NewOperator {
            email: email.clone(),
            name,
            access,
        },
        now,
    )
    .await
    .map_err(|e| match e {
        ferry_app::Error::Invalid(_) => {
            anyhow::anyhow!("an account with the email {email} already exists")
        }
        other => anyhow::Error::new(other),
    })?;
    match created {
        Created::WithPassword => println!(
            "created platform operator {email}; sign in at {}login",
            settings.public_url
        ),
        Created::Invited { token } => println!(
            "one-time invite link for {email} (works once, for {} hours):\n{}invite/{token}",
            ferry::LINK_TTL_HOURS,
            settings.public_url
        ),
    }
    Ok(())
}
