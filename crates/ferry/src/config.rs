//! Configuration: embedded defaults, then an optional TOML file, then
//! `FERRY_*` environment variables. Validated once at start; a bad setting
//! stops the process with one line naming it and what is wrong.

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings as read, before validation. Every field is text so that the
/// messages about bad values are Ferry's own.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct RawSettings {
    #[serde(deserialize_with = "lenient::text")]
    bind: String,
    #[serde(deserialize_with = "lenient::optional_text")]
    database_url: Option<String>,
    #[serde(deserialize_with = "lenient::optional_text")]
    database_pool_size: Option<String>,
    #[serde(deserialize_with = "lenient::optional_text")]
    redis_url: Option<String>,
    #[serde(deserialize_with = "lenient::optional_text")]
    smtp_url: Option<String>,
    #[serde(deserialize_with = "lenient::text")]
    mail_from: String,
    #[serde(deserialize_with = "lenient::optional_text")]
    master_key: Option<String>,
    #[serde(deserialize_with = "lenient::optional_text")]
    master_key_file: Option<String>,
    #[serde(deserialize_with = "lenient::optional_text")]
    public_url: Option<String>,
    #[serde(deserialize_with = "lenient::text")]
    data_dir: String,
    #[serde(deserialize_with = "lenient::text")]
    log_format: String,
    #[serde(deserialize_with = "lenient::optional_text")]
    web_workers: Option<String>,
    #[serde(deserialize_with = "lenient::text")]
    sandbox: String,
    #[serde(deserialize_with = "lenient::text")]
    allow_private_networks: String,
    #[serde(deserialize_with = "lenient::optional_text")]
    hubspot_client_id: Option<String>,
    #[serde(deserialize_with = "lenient::optional_text")]
    hubspot_client_secret: Option<String>,
    #[serde(deserialize_with = "lenient::text")]
    queue_name: String,
    #[serde(deserialize_with = "lenient::text")]
    worker_concurrency: String,
    #[serde(deserialize_with = "lenient::text")]
    in_process_runs: String,
    #[serde(deserialize_with = "lenient::text")]
    hubspot_rate_limit: String,
    #[serde(deserialize_with = "lenient::text")]
    verification_rate_limit: String,
    #[serde(deserialize_with = "lenient::text")]
    run_lease_secs: String,
    #[serde(deserialize_with = "lenient::text")]
    http_timeout_secs: String,
    #[serde(deserialize_with = "lenient::optional_text")]
    trusted_proxies: Option<String>,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            database_url: None,
            database_pool_size: None,
            redis_url: None,
            smtp_url: None,
            mail_from: "Ferry <ferry@localhost>".into(),
            master_key: None,
            master_key_file: None,
            public_url: None,
            data_dir: "./data".into(),
            log_format: "text".into(),
            web_workers: None,
            sandbox: "false".into(),
            allow_private_networks: "false".into(),
            hubspot_client_id: None,
            hubspot_client_secret: None,
            queue_name: "ferry.runs".into(),
            worker_concurrency: "4".into(),
            in_process_runs: "64".into(),
            hubspot_rate_limit: "100".into(),
            verification_rate_limit: "50".into(),
            run_lease_secs: "300".into(),
            http_timeout_secs: "30".into(),
            trusted_proxies: None,
        }
    }
}

/// Settings values as text whatever their look: an environment variable
/// `FERRY_SANDBOX=false` or `FERRY_WEB_WORKERS=4` arrives typed, and Ferry
/// validates every value itself.
mod lenient {
    use serde::Deserializer;
    use serde::de::{self, Visitor};
    use std::fmt;

    struct Text;

    impl Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a text, number or true/false")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_char<E: de::Error>(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(Text)
    }

    struct OptionalText;

    impl<'de> Visitor<'de> for OptionalText {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("nothing, or a text, number or true/false")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            text(d).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Text.visit_str(v).map(Some)
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Text.visit_bool(v).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Text.visit_i64(v).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Text.visit_u64(v).map(Some)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Text.visit_f64(v).map(Some)
        }
    }

    pub fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_option(OptionalText)
    }
}

/// Validated settings.
#[derive(Debug)]
pub struct Settings {
    /// Address to listen on (`FERRY_BIND`, default `127.0.0.1:8080`).
    pub bind: SocketAddr,
    /// `sqlite://…` or `postgres://…` (`FERRY_DATABASE_URL`, default a SQLite
    /// file in the data directory).
    pub database_url: SecretString,
    /// Database connections per process (`FERRY_DATABASE_POOL_SIZE`;
    /// default 10 on PostgreSQL, 4 on SQLite: it has one writer at a time,
    /// and each connection is a thread of its own).
    pub database_pool_size: u32,
    /// Redis for the shared queue (`FERRY_REDIS_URL`; none: embedded queue).
    pub redis_url: Option<SecretString>,
    /// SMTP server (`FERRY_SMTP_URL`; none: mail stays in the outbox).
    pub smtp_url: Option<SecretString>,
    /// From header of Ferry's email (`FERRY_MAIL_FROM`).
    pub mail_from: ferry_engine::mail::Mailbox,
    /// The 256-bit master key that wraps tenants' data keys
    /// (`FERRY_MASTER_KEY` base64, or `FERRY_MASTER_KEY_FILE`; default a file
    /// generated in the data directory with mode 0600).
    pub master_key: SecretBox<[u8; 32]>,
    /// The file the master key came from (none: `FERRY_MASTER_KEY`).
    pub master_key_file: Option<PathBuf>,
    /// Where users reach Ferry (`FERRY_PUBLIC_URL`, default `http://` + the
    /// address the listener got).
    pub public_url: url::Url,
    /// Whether `FERRY_PUBLIC_URL` was set (otherwise it follows the bound
    /// address, port 0 included).
    pub public_url_explicit: bool,
    /// Directory for the SQLite file and the generated key (`FERRY_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `text` or `json` logs (`FERRY_LOG_FORMAT`).
    pub log_json: bool,
    /// HTTP worker threads (`FERRY_WEB_WORKERS`, default: one per core).
    pub web_workers: usize,
    /// Whether and how the HubSpot and verification simulators are served
    /// under `/sandbox` (`FERRY_SANDBOX`, default off).
    pub sandbox: SandboxMode,
    /// Let production connections reach private, loopback and link-local
    /// addresses (`FERRY_ALLOW_PRIVATE_NETWORKS`, default false).
    pub allow_private_networks: bool,
    /// HubSpot's production OAuth app (`FERRY_HUBSPOT_CLIENT_ID` and
    /// `FERRY_HUBSPOT_CLIENT_SECRET`); without it only sandbox HubSpot works.
    pub hubspot_app: Option<(String, SecretString)>,
    /// The queue's name (`FERRY_QUEUE_NAME`, default `ferry.runs`): Ferry
    /// installations sharing one Redis need different names.
    pub queue_name: String,
    /// Runs one worker process executes at once (`FERRY_WORKER_CONCURRENCY`,
    /// default 4).
    pub worker_concurrency: usize,
    /// Runs a worker process executes itself, at once, as it stores or
    /// wakes them, before it hands further runs to the queue
    /// (`FERRY_IN_PROCESS_RUNS`, default 64; 0: every run goes through the
    /// queue). A process serving webhooks with `--web-only` never does.
    pub in_process_runs: u32,
    /// Calls per 10 s Ferry allows itself per HubSpot account
    /// (`FERRY_HUBSPOT_RATE_LIMIT`, default 100: HubSpot's standard limit;
    /// raise it for accounts on a higher tier).
    pub hubspot_rate_limit: u32,
    /// Calls per second Ferry allows itself per verification-provider
    /// account (`FERRY_VERIFICATION_RATE_LIMIT`, default 50).
    pub verification_rate_limit: u32,
    /// How long a worker holds a run between saves before another may
    /// take it over (`FERRY_RUN_LEASE_SECS`, default 300).
    pub run_lease_secs: u32,
    /// How long a call to a connected app may take before it counts as a
    /// (retryable) timeout (`FERRY_HTTP_TIMEOUT_SECS`, default 30).
    pub http_timeout_secs: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client, as
    /// addresses and CIDR ranges (`FERRY_TRUSTED_PROXIES`, comma-separated;
    /// default none: the TCP peer is the client).
    pub trusted_proxies: ferry_web::TrustedProxies,
}

/// A configuration error: which setting, and what is wrong with it.
#[derive(Debug)]
pub struct ConfigError {
    setting: &'static str,
    message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration error: {}: {}", self.setting, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn bad(setting: &'static str, message: impl Into<String>) -> anyhow::Error {
    anyhow!(ConfigError {
        setting,
        message: message.into()
    })
}

impl Settings {
    /// Loads the layers: defaults, `file` (or `./ferry.toml` if present),
    /// then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    bail!(bad(
                        "--config",
                        format!("{} does not exist", path.display())
                    ));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("ferry.toml")),
        }
        figment = figment.merge(Env::prefixed("FERRY_").ignore(&["config"]));
        let raw: RawSettings = figment
            .extract()
            .map_err(|e| bad("settings", e.to_string().replace('\n', " ")))?;
        Self::validate(raw)
    }

    /// Defaults overlaid with `pairs`, named as the environment variables are
    /// but without the `FERRY_` prefix (`("bind", "127.0.0.1:0")`), then
    /// validated exactly as at start-up. For tests and embedding.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> anyhow::Result<Self> {
        let map: std::collections::BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.to_lowercase(), v.to_owned()))
            .collect();
        let raw: RawSettings = Figment::from(Serialized::defaults(RawSettings::default()))
            .merge(Serialized::defaults(map))
            .extract()
            .map_err(|e| bad("settings", e.to_string().replace('\n', " ")))?;
        Self::validate(raw)
    }

    fn validate(raw: RawSettings) -> anyhow::Result<Self> {
        let bind: SocketAddr = raw.bind.trim().parse().map_err(|_| {
            bad(
                "FERRY_BIND",
                format!("'{}' is not an address like 127.0.0.1:8080", raw.bind),
            )
        })?;

        let data_dir = PathBuf::from(raw.data_dir.trim());
        if raw.data_dir.trim().is_empty() {
            bail!(bad("FERRY_DATA_DIR", "must not be empty"));
        }

        let database_url = match raw.database_url.filter(|s| !s.trim().is_empty()) {
            Some(url) => {
                let url = url.trim().to_owned();
                if !(url.starts_with("sqlite:")
                    || url.starts_with("postgres://")
                    || url.starts_with("postgresql://"))
                {
                    bail!(bad(
                        "FERRY_DATABASE_URL",
                        "must start with sqlite: or postgres://"
                    ));
                }
                url
            }
            None => format!("sqlite://{}", data_dir.join("ferry.db").display()),
        };

        let redis_url = match raw.redis_url.filter(|s| !s.trim().is_empty()) {
            Some(url) => {
                let parsed = url::Url::parse(url.trim())
                    .map_err(|e| bad("FERRY_REDIS_URL", format!("not a URL ({e})")))?;
                if !matches!(parsed.scheme(), "redis" | "rediss") {
                    bail!(bad(
                        "FERRY_REDIS_URL",
                        "must start with redis:// or rediss://"
                    ));
                }
                Some(SecretString::from(url.trim().to_owned()))
            }
            None => None,
        };

        let smtp_url = match raw.smtp_url.filter(|s| !s.trim().is_empty()) {
            Some(url) => {
                let parsed = url::Url::parse(url.trim())
                    .map_err(|e| bad("FERRY_SMTP_URL", format!("not a URL ({e})")))?;
                if !matches!(parsed.scheme(), "smtp" | "smtps") {
                    bail!(bad("FERRY_SMTP_URL", "must start with smtp:// or smtps://"));
                }
                if parsed.host_str().is_none_or(str::is_empty) {
                    bail!(bad("FERRY_SMTP_URL", "names no host"));
                }
                Some(SecretString::from(url.trim().to_owned()))
            }
            None => None,
        };

        let mail_from = raw.mail_from.parse().map_err(|_| {
            bad(
                "FERRY_MAIL_FROM",
                format!(
                    "'{}' is not an address like Ferry <ferry@example.com>",
                    raw.mail_from
                ),
            )
        })?;

        let public_url_explicit = raw
            .public_url
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty());
        let public_url = match raw.public_url.filter(|s| !s.trim().is_empty()) {
            Some(u) => {
                let parsed = url::Url::parse(u.trim())
                    .map_err(|e| bad("FERRY_PUBLIC_URL", format!("not a URL ({e})")))?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    bail!(bad(
                        "FERRY_PUBLIC_URL",
                        "must be an http:// or https:// URL"
                    ));
                }
                parsed
            }
            None => default_public_url(bind)
                .map_err(|e| bad("FERRY_BIND", format!("cannot derive a public URL ({e})")))?,
        };

        let log_json = match raw.log_format.trim() {
            "text" => false,
            "json" => true,
            other => bail!(bad(
                "FERRY_LOG_FORMAT",
                format!("'{other}' is neither text nor json")
            )),
        };

        let is_sqlite = database_url.starts_with("sqlite:");
        let database_pool_size = match raw.database_pool_size.filter(|s| !s.trim().is_empty()) {
            Some(n) => parse_number("FERRY_DATABASE_POOL_SIZE", &n, 1..=256, " of connections")?,
            None if is_sqlite => 4,
            None => 10,
        };
        let web_workers = match raw.web_workers.filter(|s| !s.trim().is_empty()) {
            Some(n) => n
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(|| {
                    bad(
                        "FERRY_WEB_WORKERS",
                        format!("'{n}' is not a number from 1 to 256"),
                    )
                })?,
            None => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        };

        let (master_key, master_key_file) =
            load_master_key(raw.master_key, raw.master_key_file, &data_dir)?;
        let sandbox = SandboxMode::parse(&raw.sandbox)?;
        let allow_private_networks =
            parse_bool("FERRY_ALLOW_PRIVATE_NETWORKS", &raw.allow_private_networks)?;
        let hubspot_app = match (
            raw.hubspot_client_id.filter(|s| !s.trim().is_empty()),
            raw.hubspot_client_secret.filter(|s| !s.trim().is_empty()),
        ) {
            (Some(id), Some(secret)) => Some((
                id.trim().to_owned(),
                SecretString::from(secret.trim().to_owned()),
            )),
            (None, None) => None,
            (Some(_), None) => bail!(bad(
                "FERRY_HUBSPOT_CLIENT_SECRET",
                "must be set with FERRY_HUBSPOT_CLIENT_ID"
            )),
            (None, Some(_)) => bail!(bad(
                "FERRY_HUBSPOT_CLIENT_ID",
                "must be set with FERRY_HUBSPOT_CLIENT_SECRET"
            )),
        };

        let queue_name = raw.queue_name.trim().to_owned();
        if queue_name.is_empty()
            || queue_name.len() > 64
            || !queue_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
        {
            bail!(bad(
                "FERRY_QUEUE_NAME",
                "must be 1 to 64 letters, digits, '.', '_', '-' or ':'"
            ));
        }
        let worker_concurrency = usize::try_from(parse_number(
            "FERRY_WORKER_CONCURRENCY",
            &raw.worker_concurrency,
            1..=64,
            "",
        )?)
        .unwrap_or(4);
        let in_process_runs = parse_number(
            "FERRY_IN_PROCESS_RUNS",
            &raw.in_process_runs,
            0..=1024,
            " of runs",
        )?;
        let hubspot_rate_limit = parse_number(
            "FERRY_HUBSPOT_RATE_LIMIT",
            &raw.hubspot_rate_limit,
            1..=1_000_000,
            " of calls per 10 s",
        )?;
        let verification_rate_limit = parse_number(
            "FERRY_VERIFICATION_RATE_LIMIT",
            &raw.verification_rate_limit,
            1..=1_000_000,
            " of calls per second",
        )?;
        let run_lease_secs = parse_number(
            "FERRY_RUN_LEASE_SECS",
            &raw.run_lease_secs,
            5..=86_400,
            " of seconds",
        )?;
        let http_timeout_secs = parse_number(
            "FERRY_HTTP_TIMEOUT_SECS",
            &raw.http_timeout_secs,
            1..=600,
            " of seconds",
        )?;

        let trusted_proxies =
            ferry_web::TrustedProxies::parse(raw.trusted_proxies.as_deref().unwrap_or(""))
                .map_err(|e| bad("FERRY_TRUSTED_PROXIES", e))?;

        Ok(Self {
            bind,
            database_url: SecretString::from(database_url),
            database_pool_size,
            redis_url,
            smtp_url,
            mail_from,
            master_key,
            master_key_file,
            public_url,
            public_url_explicit,
            data_dir,
            log_json,
            web_workers,
            sandbox,
            allow_private_networks,
            hubspot_app,
            queue_name,
            worker_concurrency,
            in_process_runs,
            hubspot_rate_limit,
            verification_rate_limit,
            run_lease_secs,
            http_timeout_secs,
            trusted_proxies,
        })
    }

    /// Whether the database is the embedded SQLite file.
    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }
}

/// A whole number in `range`; the error says what it counts (`unit`, e.g.
/// " of seconds").
fn parse_number(
    setting: &'static str,
    raw: &str,
    range: std::ops::RangeInclusive<u32>,
    unit: &str,
) -> anyhow::Result<u32> {
    raw.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            bad(
                setting,
                format!(
                    "'{raw}' is not a number{unit} from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

/// How the simulators are served (`FERRY_SANDBOX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Not at all (`false`, the default): a production Ferry exposes no
    /// simulator.
    Off,
    /// For the tenants of a shared Ferry (`true`): each tenant's admin
    /// reaches only their own sandbox portals and accounts, through their
    /// session; the raw admin API needs an operator's session.
    Shared,
    /// As a local tool (`local`, what `ferry demo` uses): pages and admin
    /// API answer loopback clients only.
    Local,
}

impl SandboxMode {
    fn parse(raw: &str) -> anyhow::Result<Self> {
        if raw.trim().eq_ignore_ascii_case("local") {
            return Ok(Self::Local);
        }
        match parse_bool("FERRY_SANDBOX", raw) {
            Ok(true) => Ok(Self::Shared),
            Ok(false) => Ok(Self::Off),
            Err(_) => bail!(bad(
                "FERRY_SANDBOX",
                format!("'{}' is not true, false or local", raw.trim())
            )),
        }
    }

    /// Whether the simulators are served at all.
    pub fn is_on(self) -> bool {
        self != Self::Off
    }
}

fn parse_bool(setting: &'static str, raw: &str) -> anyhow::Result<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        other => bail!(bad(setting, format!("'{other}' is neither true nor false"))),
    }
}

/// The default public URL for a listener at `bind`: `http://` + its address
/// (`localhost` for an unspecified one).
pub fn default_public_url(bind: SocketAddr) -> Result<url::Url, url::ParseError> {
    let host = if bind.ip().is_unspecified() {
        "localhost".to_owned()
    } else if bind.is_ipv6() {
        format!("[{}]", bind.ip())
    } else {
        bind.ip().to_string()
    };
    url::Url::parse(&format!("http://{host}:{}", bind.port()))
}

/// The address this process can reach itself at (the bind address, with an
/// unspecified IP replaced by loopback), for the sandbox's server-side calls.
pub fn internal_url(bind: SocketAddr) -> url::Url {
    let ip = match bind.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    let host = if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    #[expect(
        clippy::expect_used,
        reason = "an IP literal and a port always make a valid http URL"
    )]
    url::Url::parse(&format!("http://{host}:{}", bind.port()))
        .expect("an IP literal and a port make a URL")
}

fn decode_key(setting: &'static str, text: &str) -> anyhow::Result<SecretBox<[u8; 32]>> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| bad(setting, "is not base64"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| bad(setting, "must decode to exactly 32 bytes (a 256-bit key)"))?;
    Ok(SecretBox::new(Box::new(key)))
}

fn load_master_key(
    inline: Option<String>,
    file: Option<String>,
    data_dir: &Path,
) -> anyhow::Result<(SecretBox<[u8; 32]>, Option<PathBuf>)> {
    if let Some(text) = inline.filter(|s| !s.trim().is_empty()) {
        return Ok((decode_key("FERRY_MASTER_KEY", &text)?, None));
    }
    let (path, explicit) = match file.filter(|s| !s.trim().is_empty()) {
        Some(p) => (PathBuf::from(p.trim()), true),
        None => (data_dir.join("master.key"), false),
    };
    if !path.exists() {
        if explicit {
            bail!(bad(
                "FERRY_MASTER_KEY_FILE",
                format!("{} does not exist", path.display())
            ));
        }
        generate_key_file(&path)
            .with_context(|| format!("generating the master key at {}", path.display()))?;
        tracing::info!(path = %path.display(), "generated a new master key");
    }
    check_private(&path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(
            "FERRY_MASTER_KEY_FILE",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    Ok((decode_key("FERRY_MASTER_KEY_FILE", &text)?, Some(path)))
}

/// Writes a new key file with mode 0600 (replacing nothing: `create_new`).
pub fn write_key_file(path: &Path, key: &[u8; 32]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(B64.encode(key).as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

fn generate_key_file(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_key_file(path, &rand::random::<[u8; 32]>())
}

#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(bad(
            "FERRY_MASTER_KEY_FILE",
            format!(
                "{} is readable by other users (mode {mode:o}); run chmod 600 on it",
                path.display()
            )
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(dir: &Path) -> RawSettings {
        RawSettings {
            data_dir: dir.display().to_string(),
            ..RawSettings::default()
        }
    }

    fn message(r: anyhow::Result<Settings>) -> String {
        match r {
            Ok(_) => String::from("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_are_valid_and_generate_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::validate(raw(dir.path())).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(s.is_sqlite());
        assert!(s.redis_url.is_none() && s.smtp_url.is_none());
        let key_path = dir.path().join("master.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // A second start reads the same key.
        let again = Settings::validate(raw(dir.path())).unwrap();
        assert_eq!(again.master_key_file, Some(key_path.clone()));
        assert_eq!(
            again.master_key.expose_secret(),
            s.master_key.expose_secret()
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(RawSettings, &str)> = vec![
            (
                RawSettings {
                    bind: "nonsense".into(),
                    ..raw(dir.path())
                },
                "FERRY_BIND",
            ),
            (
                RawSettings {
                    database_url: Some("mysql://x".into()),
                    ..raw(dir.path())
                },
                "FERRY_DATABASE_URL",
            ),
            (
                RawSettings {
                    redis_url: Some("http://x".into()),
                    ..raw(dir.path())
                },
                "FERRY_REDIS_URL",
            ),
            (
                RawSettings {
                    smtp_url: Some("not a url".into()),
                    ..raw(dir.path())
                },
                "FERRY_SMTP_URL",
            ),
            (
                RawSettings {
                    public_url: Some("ftp://x".into()),
                    ..raw(dir.path())
                },
                "FERRY_PUBLIC_URL",
            ),
            (
                RawSettings {
                    master_key: Some("c2hvcnQ=".into()),
                    ..raw(dir.path())
                },
                "FERRY_MASTER_KEY",
            ),
            (
                RawSettings {
                    master_key_file: Some("/nonexistent/key".into()),
                    ..raw(dir.path())
                },
                "FERRY_MASTER_KEY_FILE",
            ),
            (
                RawSettings {
                    log_format: "xml".into(),
                    ..raw(dir.path())
                },
                "FERRY_LOG_FORMAT",
            ),
            (
                RawSettings {
                    web_workers: Some("0".into()),
                    ..raw(dir.path())
                },
                "FERRY_WEB_WORKERS",
            ),
            (
                RawSettings {
                    mail_from: "nobody".into(),
                    ..raw(dir.path())
                },
                "FERRY_MAIL_FROM",
            ),
            (
                RawSettings {
                    trusted_proxies: Some("10.0.0.1, proxy.internal".into()),
                    ..raw(dir.path())
                },
                "FERRY_TRUSTED_PROXIES",
            ),
        ];
        for (r, setting) in cases {
            let m = message(Settings::validate(r));
            assert!(
                m.starts_with(&format!("configuration error: {setting}:")),
                "{setting}: {m}"
            );
            assert!(!m.contains('\n'));
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_and_ranges_separated_by_commas() {
        let dir = tempfile::tempdir().unwrap();
        let none = Settings::validate(raw(dir.path())).unwrap();
        assert!(none.trusted_proxies.is_empty());
        let s = Settings::from_pairs([
            ("data_dir", dir.path().to_str().unwrap()),
            ("trusted_proxies", " 10.0.0.7, 172.16.0.0/12,fd00::/8 "),
        ])
        .unwrap();
        assert_eq!(
            s.trusted_proxies,
            ferry_web::TrustedProxies::parse("10.0.0.7,172.16.0.0/12,fd00::/8").unwrap()
        );
        let m = message(Settings::from_pairs([
            ("data_dir", dir.path().to_str().unwrap()),
            ("trusted_proxies", "10.0.0.0/40"),
        ]));
        assert!(
            m.starts_with("configuration error: FERRY_TRUSTED_PROXIES: '10.0.0.0/40' is not"),
            "{m}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, B64.encode([7u8; 32])).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = RawSettings {
            master_key_file: Some(path.display().to_string()),
            ..raw(dir.path())
        };
        assert!(message(Settings::validate(r)).contains("chmod 600"));
    }
}
