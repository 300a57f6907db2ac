//! `ferry-bench idle-memory`: the resident set of a `ferry serve` process
//! (embedded defaults, sandbox on) at rest after start, and at rest again
//! after a round of logins (failed and successful: each one hashes a
//! password with argon2id's 19 MiB). The server runs as a child process of
//! this one, so the figures are the server's alone, not the load
//! generator's.

use anyhow::{Context, bail};
use ferry::Settings;
use ferry_core::{Clock, EmailAddress, Role, SystemClock, TenantName};
use ferry_store::{tenants, users};
use std::time::{Duration, Instant};

/// Accounts the logins are spread over (each signs in from its own task, so
/// the hashing threads see a burst).
const ACCOUNTS: usize = 10;

/// What `idle-memory` measured; memory in KiB from `/proc/<pid>/status`.
#[derive(Debug, Clone)]
pub struct MemoryReport {
    /// Logins performed: (successful, failed).
    pub logins: (usize, usize),
    /// How long the logins took.
    pub elapsed: Duration,
    /// How long the process was left alone before each idle measurement.
    pub settle: Duration,
    /// At rest after start, before any login.
    pub before: Status,
    /// Right after the last login.
    pub right_after: Status,
    /// At rest after the logins.
    pub after: Status,
}

/// Memory figures of one process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status {
    /// Resident set (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set so far (`VmHWM`).
    pub peak_kib: u64,
    /// Anonymous resident memory (`RssAnon`: the heap, stacks, the hashes' blocks).
    pub anon_kib: u64,
    /// Threads.
    pub threads: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl std::fmt::Display for MemoryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ok, failed) = self.logins;
        writeln!(
            f,
            "idle memory of `ferry serve` (embedded defaults, sandbox on), {} logins ({ok} successful, {failed} failed, {ACCOUNTS} accounts in parallel) in {:.1} s",
            ok + failed,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "| when | RSS MiB | anonymous MiB | peak MiB | threads |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        for (when, s) in [
            (
                format!("{} s after start", self.settle.as_secs()),
                self.before,
            ),
            ("right after the logins".to_owned(), self.right_after),
            (
                format!("{} s after the logins", self.settle.as_secs()),
                self.after,
            ),
        ] {
            writeln!(
                f,
                "| {when} | {:.1} | {:.1} | {:.1} | {} |",
                mib(s.rss_kib),
                mib(s.anon_kib),
                mib(s.peak_kib),
                s.threads
            )?;
        }
        Ok(())
    }
}

/// Reads the memory figures of process `pid` (Linux).
pub fn status_of(pid: u32) -> anyhow::Result<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Status {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
        anon_kib: field("RssAnon:"),
        threads: field("Threads:"),
    })
}

/// Runs the benchmark: starts `ferry serve` (this executable) on a fresh
/// data directory, waits `settle`, measures, performs `logins` logins (every
/// account alternates a wrong and the right password, so no throttle is
/// reached), measures, waits `settle` again and measures.
pub async fn idle_memory(logins: usize, settle: Duration) -> anyhow::Result<MemoryReport> {
    let dir = std::env::temp_dir().join(format!("ferry-bench-{:x}", rand::random::<u64>()));
    let dir_text = dir.display().to_string();
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = probe.local_addr()?.port();
    drop(probe);
    let bind = format!("127.0.0.1:{port}");

    // The accounts, straight in the database, before the server starts.
    let settings =
        Settings::from_pairs([("data_dir", dir_text.as_str()), ("bind", bind.as_str())])?;
    let accounts = seed(&settings).await?;

    // The `ferry` binary built beside this one (same target directory).
    let exe = std::env::current_exe()?;
    let ferry = exe.with_file_name(format!("ferry{}", std::env::consts::EXE_SUFFIX));
    let mut command = tokio::process::Command::new(&ferry);
    command.arg("serve").current_dir(&dir).kill_on_drop(true);
    // Embedded defaults: no setting from this shell leaks in, except the
    // number of HTTP workers, to try its effect.
    for (name, _) in std::env::vars() {
        if name.starts_with("FERRY_") && name != "FERRY_WEB_WORKERS" {
            command.env_remove(name);
        }
    }
    command
        .env("FERRY_DATA_DIR", &dir_text)
        .env("FERRY_BIND", &bind)
        .env("FERRY_LOG", "warn")
        // The simulators on (shared), as measured before the default
        // turned them off: the heavier of the two configurations.
        .env("FERRY_SANDBOX", "true")
        .stdout(std::process::Stdio::null());
    let mut child = command.spawn().context("starting `ferry serve`")?;
    let pid = child.id().context("the server exited at once")?;
    let result = measure(pid, &format!("http://{bind}"), &accounts, logins, settle).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn seed(settings: &Settings) -> anyhow::Result<Vec<(String, String)>> {
    let db = ferry::open_database(settings).await?;
    let now = SystemClock.now();
    let tenant = tenants::create(&db, &TenantName::parse("name", "Bench Ltd")?, now).await?;
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let email = format!("person{i}@bench.test");
        let password = format!("bench password {i}");
        let hash = ferry_web::hash_password(password.clone()).await?;
        users::create_member(
            &db,
            &tenant.id,
            &EmailAddress::parse("email", &email)?,
            "Bench Person",
            hash,
            Role::Staff,
            now,
        )
        .await?;
        accounts.push((email, password));
    }
    db.close().await?;
    Ok(accounts)
}

async fn measure(
    pid: u32,
    base: &str,
    accounts: &[(String, String)],
    logins: usize,
    settle: Duration,
) -> anyhow::Result<MemoryReport> {
    let up = Instant::now();
    loop {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        if up.elapsed() > Duration::from_secs(60) {
            bail!("the server did not answer /healthz within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(settle).await;
    let before = status_of(pid)?;

    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (email, password)) in accounts.iter().enumerate() {
        // Logins dealt out round-robin: account i gets every ACCOUNTS-th.
        let mine = (i..logins).step_by(ACCOUNTS).count();
        let (base, email, password) = (base.to_owned(), email.clone(), password.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            for n in 0..mine {
                let right = n % 2 == 1;
                let status = login(
                    &base,
                    &email,
                    if right { &password } else { "wrong password!" },
                )
                .await?;
                match (right, status) {
                    (true, 303) => ok += 1,
                    (false, 401) => failed += 1,
                    (_, other) => bail!("login of {email} answered {other}"),
                }
            }
            Ok::<_, anyhow::Error>((ok, failed))
        }));
    }
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (o, f) = t.await??;
        ok += o;
        failed += f;
    }
    let elapsed = started.elapsed();
    let right_after = status_of(pid)?;
    tokio::time::sleep(settle).await;
    let after = status_of(pid)?;
    Ok(MemoryReport {
        logins: (ok, failed),
        elapsed,
        settle,
        before,
        right_after,
        after,
    })
}

/// One login as a browser does it: the form (for its anti-forgery token and
/// cookie), then the post. Returns the status of the post.
async fn login(base: &str, email: &str, password: &str) -> anyhow::Result<u16> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http
        .get(format!("{base}/login"))
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf_token\" value=\"";
    let token = page
        .find(marker)
        .map(|i| i + marker.len())
        .and_then(|start| {
            let len = page.get(start..)?.find('"')?;
            page.get(start..start + len)
        })
        .context("no anti-forgery token on the login page")?;
    let res = http
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", token),
        ])
        .send()
        .await?;
    Ok(res.status().as_u16())
}
