//! Configuration: embedded defaults, then an optional TOML file, then
//! `FERRY_*` environment variables, deserialized into typed fields (a value
//! of the wrong type is refused naming its variable), then checked once at
//! start; a bad setting stops the process with one line naming it and what
//! is wrong. Reading or creating the master-key file is its own step
//! ([`keys`]), not part of the checks.

pub mod keys;

use anyhow::{anyhow, bail};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `text` or `json` logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Settings as read: typed, before the checks that need more than a type
/// (ranges, URL schemes, settings that go together).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
struct RawSettings {
    bind: SocketAddr,
    database_url: Option<String>,
    database_pool_size: Option<u32>,
    redis_url: Option<String>,
    smtp_url: Option<String>,
    mail_from: String,
    master_key: Option<String>,
    master_key_file: Option<PathBuf>,
    public_url: Option<String>,
    data_dir: PathBuf,
    log_format: LogFormat,
    web_workers: Option<usize>,
    sandbox: SandboxMode,
    allow_private_networks: bool,
    hubspot_client_id: Option<String>,
    hubspot_client_secret: Option<String>,
    queue_name: String,
    worker_concurrency: u32,
    in_process_runs: u32,
    hubspot_rate_limit: u32,
    verification_rate_limit: u32,
    run_lease_secs: u32,
    http_timeout_secs: u32,
    trusted_proxies: Option<String>,
    metrics_token: Option<String>,
}

impl Default for RawSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: None,
            database_pool_size: None,
            redis_url: None,
            smtp_url: None,
            mail_from: "Ferry <ferry@localhost>".into(),
            master_key: None,
            master_key_file: None,
            public_url: None,
            data_dir: PathBuf::from("./data"),
            log_format: LogFormat::Text,
            web_workers: None,
            sandbox: SandboxMode::Off,
            allow_private_networks: false,
            hubspot_client_id: None,
            hubspot_client_secret: None,
            queue_name: "ferry.runs".into(),
            worker_concurrency: 4,
            in_process_runs: 64,
            hubspot_rate_limit: 100,
            verification_rate_limit: 50,
            run_lease_secs: 300,
            http_timeout_secs: 30,
            trusted_proxies: None,
            metrics_token: None,
        }
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
    /// The bearer token a Prometheus scraper sends to `/metrics`
    /// (`FERRY_METRICS_TOKEN`, at least 32 characters; none: `/metrics` is
    /// not served).
    pub metrics_token: Option<SecretString>,
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
    setting: String,
    message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "configuration error: {}: {}", self.setting, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn bad(setting: impl Into<String>, message: impl Into<String>) -> anyhow::Error {
    anyhow!(ConfigError {
        setting: setting.into(),
        message: message.into()
    })
}

/// A value of the wrong type, named by its environment variable.
fn type_error(e: figment::Error) -> anyhow::Error {
    let setting = match e.path.last() {
        Some(key) => format!("FERRY_{}", key.to_uppercase()),
        None => "settings".to_owned(),
    };
    use figment::error::Kind;
    let message = match &e.kind {
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
            let expected = match expected.as_str() {
                "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
                "bool" | "a boolean" => "true or false",
                other => other,
            };
            format!("must be {expected}")
        }
        Kind::UnknownVariant(_, allowed) => format!("must be one of: {}", allowed.join(", ")),
        Kind::MissingField(_) => "is missing".to_owned(),
        // A file that is not TOML: its parser quotes the line, which may
        // hold a secret, so only the fact is said.
        Kind::Message(_) => "the configuration file is not valid TOML".to_owned(),
        other => other.to_string(),
    };
    bad(setting, message.replace('\n', " "))
}

/// Settings whose values are text, whatever they look like (a client id
/// or a queue name of digits stays text).
const TEXT_SETTINGS: &[&str] = &[
    "bind",
    "database_url",
    "redis_url",
    "smtp_url",
    "mail_from",
    "master_key",
    "master_key_file",
    "public_url",
    "data_dir",
    "log_format",
    "sandbox",
    "hubspot_client_id",
    "hubspot_client_secret",
    "queue_name",
    "trusted_proxies",
    "metrics_token",
];

/// A setting given as text (an environment variable, a pair): text
/// settings stay text; the others are read as TOML reads a value (`4`,
/// `true`). `None` for an empty value, which counts as unset.
fn value_of(key: &str, text: &str) -> Option<Value> {
    if text.trim().is_empty() {
        None
    } else if TEXT_SETTINGS.contains(&key) {
        Some(Value::from(text.to_owned()))
    } else {
        Some(text.parse::<Value>().unwrap_or_else(|e| match e {}))
    }
}

/// `FERRY_*` variables as settings (without the prefix, lower case).
fn environment() -> BTreeMap<String, Value> {
    std::env::vars()
        .filter_map(|(k, v)| {
            let key = k.strip_prefix("FERRY_")?.to_lowercase();
            Some((key.clone(), value_of(&key, &v)?))
        })
        .collect()
}

impl Settings {
    /// Loads the layers: defaults, `file` (or `./ferry.toml` if present),
    /// then the environment; reads (or creates) the master key; checks.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
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
        let raw: RawSettings = figment
            .merge(Serialized::defaults(environment()))
            .extract()
            .map_err(type_error)?;
        Self::from_raw(raw)
    }

    /// Defaults overlaid with `pairs`, named as the environment variables are
    /// but without the `FERRY_` prefix (`("bind", "127.0.0.1:0")`), then
    /// read and checked exactly as at start-up. For tests and embedding.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> anyhow::Result<Self> {
        let map: BTreeMap<String, Value> = pairs
            .into_iter()
            .filter_map(|(k, v)| {
                let key = k.to_lowercase();
                Some((key.clone(), value_of(&key, v)?))
            })
            .collect();
        let raw: RawSettings = Figment::from(Serialized::defaults(map))
            .extract()
            .map_err(type_error)?;
        Self::from_raw(raw)
    }

    /// The checks, then the master key (read, or created on first start):
    /// a configuration that fails a check leaves no key file behind.
    fn from_raw(raw: RawSettings) -> anyhow::Result<Self> {
        Self::validate(raw, keys::load_or_create)
    }

    /// The checks a type cannot make; `load_key` (given the inline key,
    /// the key file and the data directory) runs only once they pass.
    fn validate(
        raw: RawSettings,
        load_key: impl FnOnce(Option<&str>, Option<&Path>, &Path) -> anyhow::Result<keys::LoadedKey>,
    ) -> anyhow::Result<Self> {
        let key_inline = raw.master_key.clone();
        let key_file = raw.master_key_file.clone();
        let bind = raw.bind;
        let data_dir = raw.data_dir;
        if data_dir.as_os_str().is_empty() {
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

        let log_json = raw.log_format == LogFormat::Json;

        let is_sqlite = database_url.starts_with("sqlite:");
        let database_pool_size = match raw.database_pool_size {
            Some(n) => in_range("FERRY_DATABASE_POOL_SIZE", n, 1..=256, " of connections")?,
            None if is_sqlite => 4,
            None => 10,
        };
        let web_workers = match raw.web_workers {
            Some(n) => in_range("FERRY_WEB_WORKERS", n, 1..=256, "")?,
            None => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
        };

        let sandbox = raw.sandbox;
        let allow_private_networks = raw.allow_private_networks;
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
        let worker_concurrency = usize::try_from(in_range(
            "FERRY_WORKER_CONCURRENCY",
            raw.worker_concurrency,
            1..=64,
            "",
        )?)
        .unwrap_or(4);
        let in_process_runs = in_range(
            "FERRY_IN_PROCESS_RUNS",
            raw.in_process_runs,
            0..=1024,
            " of runs",
        )?;
        let hubspot_rate_limit = in_range(
            "FERRY_HUBSPOT_RATE_LIMIT",
            raw.hubspot_rate_limit,
            1..=1_000_000,
            " of calls per 10 s",
        )?;
        let verification_rate_limit = in_range(
            "FERRY_VERIFICATION_RATE_LIMIT",
            raw.verification_rate_limit,
            1..=1_000_000,
            " of calls per second",
        )?;
        let run_lease_secs = in_range(
            "FERRY_RUN_LEASE_SECS",
            raw.run_lease_secs,
            5..=86_400,
            " of seconds",
        )?;
        let http_timeout_secs = in_range(
            "FERRY_HTTP_TIMEOUT_SECS",
            raw.http_timeout_secs,
            1..=600,
            " of seconds",
        )?;

        let metrics_token = match raw.metrics_token.filter(|s| !s.trim().is_empty()) {
            Some(t) if t.trim().chars().count() >= 32 => {
                Some(SecretString::from(t.trim().to_owned()))
            }
            Some(_) => bail!(bad(
                "FERRY_METRICS_TOKEN",
                "must be at least 32 characters (e.g. `openssl rand -hex 32`)"
            )),
            None => None,
        };

        let trusted_proxies =
            ferry_web::TrustedProxies::parse(raw.trusted_proxies.as_deref().unwrap_or(""))
                .map_err(|e| bad("FERRY_TRUSTED_PROXIES", e))?;
        let (master_key, master_key_file) =
            load_key(key_inline.as_deref(), key_file.as_deref(), &data_dir)?;

        Ok(Self {
            bind,
            database_url: SecretString::from(database_url),
            database_pool_size,
            redis_url,
            smtp_url,
            metrics_token,
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

/// `n` when it is in `range`; the error says what it counts (`unit`, e.g.
/// " of seconds").
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    setting: &'static str,
    n: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> anyhow::Result<T> {
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(bad(
            setting,
            format!(
                "{n} is not a number{unit} from {} to {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// How the simulators are served (`FERRY_SANDBOX`: `false`, `true` or
/// `local`).
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

impl<'de> serde::Deserialize<'de> for SandboxMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Given {
            Flag(bool),
            Word(String),
        }
        match Given::deserialize(d)? {
            Given::Flag(true) => Ok(Self::Shared),
            Given::Flag(false) => Ok(Self::Off),
            Given::Word(w) => match w.trim().to_ascii_lowercase().as_str() {
                "local" => Ok(Self::Local),
                "true" => Ok(Self::Shared),
                "false" => Ok(Self::Off),
                _ => Err(serde::de::Error::custom("expected true, false or local")),
            },
        }
    }
}

impl SandboxMode {
    /// Whether the simulators are served at all.
    pub fn is_on(self) -> bool {
        self != Self::Off
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

#[cfg(test)]
mod tests;
