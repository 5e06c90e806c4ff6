//! Settings of `scimlet serve`, in layers: command-line flags over `SCIMLET_*` environment
//! variables (both read by clap into one [`Layer`]) over a TOML file (another [`Layer`], keys
//! named like the flags) over the defaults. [`Layer::resolve`] fills in the defaults and checks
//! the result.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize, Serializer};

/// Storage backend of the server: `sqlite`, the file `scimlet.db` in the data directory,
/// `postgres`, a PostgreSQL database shared by any number of hosts (`database-url`), or
/// `memory`, lost on exit.
// The variants have no doc comments: clap would list them as help of the possible values and
// change the `--help` text.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    Postgres,
    Memory,
}

/// Log output format: `text` for people, `json` (one object a line) for log collectors.
// No doc comments on the variants, as for `StoreKind`: they would change the `--help` text.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Why the settings are unusable; the messages are meant for operators.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The config file is not TOML, or has an unknown key or a bad value.
    #[error("config file {path} is invalid: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The TOML parser's explanation.
        message: String,
    },
    /// A value, or a combination of values, that `serve` refuses.
    #[error("{0}")]
    Invalid(String),
}

/// One layer of settings: every key optional, so that unset keys fall through to the next
/// layer. Defaults are in [`Layer::resolve`] (and in brackets in the help text).
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Layer {
    /// Address to serve SCIM on [default: 127.0.0.1:8080].
    #[arg(long, env = "SCIMLET_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data directory; the SQLite store lives inside [default: ./scimlet-data].
    #[arg(long, env = "SCIMLET_DATA")]
    pub data: Option<PathBuf>,
    /// Storage backend [default: sqlite].
    #[arg(long, value_enum, env = "SCIMLET_STORE")]
    pub store: Option<StoreKind>,
    /// PostgreSQL connection URL of `store = "postgres"` (e.g.
    /// postgres://scimlet@db.internal/scimlet); prefer the environment variable or the config
    /// file when it holds a password.
    #[arg(long, env = "SCIMLET_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Most PostgreSQL connections this host opens at once [default: 16].
    #[arg(long, env = "SCIMLET_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<u32>,
    /// Longest a PostgreSQL statement may run, in milliseconds [default: 30000].
    #[arg(long, env = "SCIMLET_DATABASE_STATEMENT_TIMEOUT_MS")]
    pub database_statement_timeout_ms: Option<u64>,
    /// Longest a PostgreSQL statement waits for a lock, in milliseconds [default: 10000].
    #[arg(long, env = "SCIMLET_DATABASE_LOCK_TIMEOUT_MS")]
    pub database_lock_timeout_ms: Option<u64>,
    /// Load this SCIM component instead of the embedded one.
    #[arg(long, env = "SCIMLET_COMPONENT")]
    pub component: Option<PathBuf>,
    /// Where compiled components (.cwasm) are cached [default: DATA/cache].
    #[arg(long, env = "SCIMLET_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Largest accepted request body, in bytes [default: 1048576].
    #[arg(long, env = "SCIMLET_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest request body on the routes the component declares large (`PUT /Groups/{id}`,
    /// which carries every member), in bytes [default: 16777216].
    #[arg(long, env = "SCIMLET_MAX_LARGE_BODY_BYTES")]
    pub max_large_body_bytes: Option<usize>,
    /// Requests served at once; beyond it clients get 503 with Retry-After [default: 64].
    #[arg(long, env = "SCIMLET_MAX_CONCURRENCY")]
    pub max_concurrency: Option<usize>,
    /// Guest memory cap per request, in MiB [default: 64].
    #[arg(long, env = "SCIMLET_GUEST_MEMORY_MIB")]
    pub guest_memory_mib: Option<usize>,
    /// Guest memory cap of a request on a large-body route (`PUT /Groups/{id}`), in MiB
    /// [default: 256].
    #[arg(long, env = "SCIMLET_GUEST_LARGE_MEMORY_MIB")]
    pub guest_large_memory_mib: Option<usize>,
    /// Guest CPU deadline per request, in milliseconds [default: 5000].
    #[arg(long, env = "SCIMLET_GUEST_DEADLINE_MS")]
    pub guest_deadline_ms: Option<u64>,
    /// Component instances kept warm between requests, each bound to one tenant; 0 instantiates
    /// afresh for every request [default: 32].
    #[arg(long, env = "SCIMLET_GUEST_WARM_INSTANCES")]
    pub guest_warm_instances: Option<usize>,
    /// Longest a request may take, in milliseconds; beyond it 503 with Retry-After
    /// [default: 30000].
    #[arg(long, env = "SCIMLET_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Longest wait for a request's complete header block, in milliseconds, from the
    /// connection's accept (or the request's first byte on a kept-alive connection); then the
    /// connection is closed [default: 10000].
    #[arg(long, env = "SCIMLET_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Longest a kept-alive connection may stay idle between requests, in milliseconds
    /// [default: 60000].
    #[arg(long, env = "SCIMLET_KEEP_ALIVE_TIMEOUT_MS")]
    pub keep_alive_timeout_ms: Option<u64>,
    /// Most client connections open at once on each listener; beyond it new connections are
    /// closed at once [default: 1024].
    #[arg(long, env = "SCIMLET_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests per second each tenant may make, in bursts of as many; beyond it 429 with
    /// Retry-After [default: unlimited].
    #[arg(long, env = "SCIMLET_TENANT_RATE_LIMIT")]
    pub tenant_rate_limit: Option<NonZeroU32>,
    /// Provisioning records kept per tenant in the audit log; 0 turns the log off
    /// [default: 100000].
    #[arg(long, env = "SCIMLET_AUDIT_RETENTION")]
    pub audit_retention: Option<u64>,
    /// Days change events are kept for the events API and `scimlet events`, at least 1; a
    /// reader whose cursor is older gets 410 and resyncs through the SCIM lists [default: 30].
    #[arg(long, env = "SCIMLET_EVENT_RETENTION_DAYS")]
    pub event_retention_days: Option<u32>,
    /// Public base URL (e.g. https://scim.example.com) for Location headers; default: from Host.
    #[arg(long, env = "SCIMLET_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Public base URL of the admin listener behind a proxy (e.g. https://admin.example.com):
    /// the origin the console's forms must come from; default: from Host.
    #[arg(long, env = "SCIMLET_ADMIN_PUBLIC_URL")]
    pub admin_public_url: Option<String>,
    /// Address to serve the admin API and the console on (off unless given; needs an admin
    /// token).
    #[arg(long, env = "SCIMLET_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,
    /// Bearer token of the admin API (at least 16 characters); prefer the environment variable
    /// or the config file, which other users of the machine cannot see in the process list.
    #[arg(long, env = "SCIMLET_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// PEM certificate chain: serve HTTPS (needs --tls-key).
    #[arg(long, env = "SCIMLET_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SCIMLET_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, value_enum, env = "SCIMLET_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Key encrypting webhook secrets at rest: base64 of 32 bytes [default: generated into
    /// DATA/webhook-secret.key].
    #[arg(long, env = "SCIMLET_WEBHOOK_SECRET_KEY", hide_env_values = true)]
    pub webhook_secret_key: Option<String>,
    /// Allow webhook URLs on loopback, private and link-local addresses [default: false].
    #[arg(long, env = "SCIMLET_WEBHOOK_ALLOW_PRIVATE", num_args = 0..=1,
          default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub webhook_allow_private: Option<bool>,
}

/// Complete, checked settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Settings {
    /// [`Layer::listen`], resolved.
    pub listen: SocketAddr,
    /// [`Layer::data`], resolved.
    pub data: PathBuf,
    /// [`Layer::store`], resolved.
    pub store: StoreKind,
    /// [`Layer::database_url`], resolved (the password is not shown).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "redacted_url"
    )]
    pub database_url: Option<String>,
    /// [`Layer::database_pool_size`], resolved.
    pub database_pool_size: u32,
    /// [`Layer::database_statement_timeout_ms`], resolved.
    pub database_statement_timeout_ms: u64,
    /// [`Layer::database_lock_timeout_ms`], resolved.
    pub database_lock_timeout_ms: u64,
    /// [`Layer::component`], resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub component: Option<PathBuf>,
    /// [`Layer::cache_dir`], resolved.
    pub cache_dir: PathBuf,
    /// [`Layer::max_body_bytes`], resolved.
    pub max_body_bytes: usize,
    /// [`Layer::max_large_body_bytes`], resolved.
    pub max_large_body_bytes: usize,
    /// [`Layer::max_concurrency`], resolved.
    pub max_concurrency: usize,
    /// [`Layer::guest_memory_mib`], resolved.
    pub guest_memory_mib: usize,
    /// [`Layer::guest_large_memory_mib`], resolved.
    pub guest_large_memory_mib: usize,
    /// [`Layer::guest_deadline_ms`], resolved.
    pub guest_deadline_ms: u64,
    /// [`Layer::guest_warm_instances`], resolved.
    pub guest_warm_instances: usize,
    /// [`Layer::request_timeout_ms`], resolved.
    pub request_timeout_ms: u64,
    /// [`Layer::header_read_timeout_ms`], resolved.
    pub header_read_timeout_ms: u64,
    /// [`Layer::keep_alive_timeout_ms`], resolved.
    pub keep_alive_timeout_ms: u64,
    /// [`Layer::max_connections`], resolved.
    pub max_connections: usize,
    /// [`Layer::tenant_rate_limit`], resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_rate_limit: Option<NonZeroU32>,
    /// [`Layer::audit_retention`], resolved.
    pub audit_retention: u64,
    /// [`Layer::event_retention_days`], resolved.
    pub event_retention_days: u32,
    /// [`Layer::public_url`], resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// [`Layer::admin_public_url`], resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_public_url: Option<String>,
    /// [`Layer::admin_listen`], resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    /// [`Layer::admin_token`], resolved.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redacted")]
    pub admin_token: Option<String>,
    /// [`Layer::tls_cert`], resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// [`Layer::tls_key`], resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// [`Layer::log_format`], resolved.
    pub log_format: LogFormat,
    /// [`Layer::webhook_secret_key`], resolved.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redacted")]
    pub webhook_secret_key: Option<String>,
    /// [`Layer::webhook_allow_private`], resolved.
    pub webhook_allow_private: bool,
}

/// A century: beyond it the horizon's arithmetic means nothing.
const MAX_EVENT_RETENTION_DAYS: u32 = 36_500;

/// The shortest admin token accepted: shorter ones are guessable.
const MIN_ADMIN_TOKEN_LEN: usize = 16;

impl Layer {
    /// Reads a TOML file of settings; unknown keys and bad values are errors.
    pub fn from_file(path: &Path) -> Result<Layer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// This layer with its unset keys taken from `lower`.
    pub fn over(self, lower: Layer) -> Layer {
        Layer {
            listen: self.listen.or(lower.listen),
            data: self.data.or(lower.data),
            store: self.store.or(lower.store),
            database_url: self.database_url.or(lower.database_url),
            database_pool_size: self.database_pool_size.or(lower.database_pool_size),
            database_statement_timeout_ms: self
                .database_statement_timeout_ms
                .or(lower.database_statement_timeout_ms),
            database_lock_timeout_ms: self
                .database_lock_timeout_ms
                .or(lower.database_lock_timeout_ms),
            component: self.component.or(lower.component),
            cache_dir: self.cache_dir.or(lower.cache_dir),
            max_body_bytes: self.max_body_bytes.or(lower.max_body_bytes),
            max_large_body_bytes: self.max_large_body_bytes.or(lower.max_large_body_bytes),
            max_concurrency: self.max_concurrency.or(lower.max_concurrency),
            guest_memory_mib: self.guest_memory_mib.or(lower.guest_memory_mib),
            guest_large_memory_mib: self.guest_large_memory_mib.or(lower.guest_large_memory_mib),
            guest_deadline_ms: self.guest_deadline_ms.or(lower.guest_deadline_ms),
            guest_warm_instances: self.guest_warm_instances.or(lower.guest_warm_instances),
            request_timeout_ms: self.request_timeout_ms.or(lower.request_timeout_ms),
            header_read_timeout_ms: self.header_read_timeout_ms.or(lower.header_read_timeout_ms),
            keep_alive_timeout_ms: self.keep_alive_timeout_ms.or(lower.keep_alive_timeout_ms),
            max_connections: self.max_connections.or(lower.max_connections),
            tenant_rate_limit: self.tenant_rate_limit.or(lower.tenant_rate_limit),
            audit_retention: self.audit_retention.or(lower.audit_retention),
            event_retention_days: self.event_retention_days.or(lower.event_retention_days),
            public_url: self.public_url.or(lower.public_url),
            admin_public_url: self.admin_public_url.or(lower.admin_public_url),
            admin_listen: self.admin_listen.or(lower.admin_listen),
            admin_token: self.admin_token.or(lower.admin_token),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            log_format: self.log_format.or(lower.log_format),
            webhook_secret_key: self.webhook_secret_key.or(lower.webhook_secret_key),
            webhook_allow_private: self.webhook_allow_private.or(lower.webhook_allow_private),
        }
    }

    /// Fills in the defaults and checks the combination.
    pub fn resolve(self) -> Result<Settings, ConfigError> {
        let data = self.data.unwrap_or_else(|| PathBuf::from("./scimlet-data"));
        let settings = Settings {
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            cache_dir: self.cache_dir.unwrap_or_else(|| data.join("cache")),
            data,
            store: self.store.unwrap_or(StoreKind::Sqlite),
            database_url: self.database_url,
            database_pool_size: self.database_pool_size.unwrap_or(16),
            database_statement_timeout_ms: self.database_statement_timeout_ms.unwrap_or(30_000),
            database_lock_timeout_ms: self.database_lock_timeout_ms.unwrap_or(10_000),
            component: self.component,
            max_body_bytes: self.max_body_bytes.unwrap_or(1 << 20),
            max_large_body_bytes: self.max_large_body_bytes.unwrap_or(16 << 20),
            max_concurrency: self.max_concurrency.unwrap_or(64),
            guest_memory_mib: self.guest_memory_mib.unwrap_or(64),
            guest_large_memory_mib: self.guest_large_memory_mib.unwrap_or(256),
            guest_deadline_ms: self.guest_deadline_ms.unwrap_or(5000),
            guest_warm_instances: self.guest_warm_instances.unwrap_or(32),
            request_timeout_ms: self.request_timeout_ms.unwrap_or(30_000),
            header_read_timeout_ms: self.header_read_timeout_ms.unwrap_or(10_000),
            keep_alive_timeout_ms: self.keep_alive_timeout_ms.unwrap_or(60_000),
            max_connections: self.max_connections.unwrap_or(1024),
            tenant_rate_limit: self.tenant_rate_limit,
            audit_retention: self.audit_retention.unwrap_or(100_000),
            event_retention_days: self
                .event_retention_days
                .unwrap_or(crate::events::retention::DEFAULT_RETENTION_DAYS),
            public_url: self.public_url,
            admin_public_url: self.admin_public_url,
            admin_listen: self.admin_listen,
            admin_token: self.admin_token,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            log_format: self.log_format.unwrap_or_default(),
            webhook_secret_key: self.webhook_secret_key,
            webhook_allow_private: self.webhook_allow_private.unwrap_or(false),
        };
        settings.check()?;
        Ok(settings)
    }
}

impl Settings {
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.max_concurrency == 0 {
            return invalid("max-concurrency must be at least 1");
        }
        if self.request_timeout_ms == 0 || self.guest_deadline_ms == 0 {
            return invalid("request-timeout-ms and guest-deadline-ms must be at least 1");
        }
        if self.header_read_timeout_ms == 0 || self.keep_alive_timeout_ms == 0 {
            return invalid("header-read-timeout-ms and keep-alive-timeout-ms must be at least 1");
        }
        if !(1..=MAX_EVENT_RETENTION_DAYS).contains(&self.event_retention_days) {
            return Err(ConfigError::Invalid(format!(
                "event-retention-days must be between 1 and {MAX_EVENT_RETENTION_DAYS}"
            )));
        }
        if self.max_connections == 0 {
            return invalid("max-connections must be at least 1");
        }
        if self.store == StoreKind::Postgres && self.database_url.is_none() {
            return invalid("store = \"postgres\" needs database-url (or SCIMLET_DATABASE_URL)");
        }
        if self.database_pool_size == 0
            || self.database_statement_timeout_ms == 0
            || self.database_lock_timeout_ms == 0
        {
            return invalid(
                "database-pool-size, database-statement-timeout-ms and \
                 database-lock-timeout-ms must be at least 1",
            );
        }
        if self.max_large_body_bytes < self.max_body_bytes {
            return invalid("max-large-body-bytes must be at least max-body-bytes");
        }
        if self.guest_large_memory_mib < self.guest_memory_mib {
            return invalid("guest-large-memory-mib must be at least guest-memory-mib");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls-cert and tls-key go together: give both or neither");
        }
        if self.admin_listen.is_some() && self.admin_token.is_none() {
            return invalid("admin-listen needs admin-token (or SCIMLET_ADMIN_TOKEN)");
        }
        if let Some(token) = &self.admin_token {
            if token.trim().chars().count() < MIN_ADMIN_TOKEN_LEN {
                return Err(ConfigError::Invalid(format!(
                    "admin-token must be at least {MIN_ADMIN_TOKEN_LEN} characters"
                )));
            }
        }
        if let Some(key) = &self.webhook_secret_key {
            crate::webhooks::secrets::SecretKey::from_base64(key)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        for (key, url) in [
            ("public-url", &self.public_url),
            ("admin-public-url", &self.admin_public_url),
        ] {
            if let Some(url) = url {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid(format!(
                        "{key} must start with http:// or https://"
                    )));
                }
            }
        }
        for (key, file) in [
            ("component", &self.component),
            ("tls-cert", &self.tls_cert),
            ("tls-key", &self.tls_key),
        ] {
            if let Some(path) = file {
                std::fs::File::open(path).map_err(|e| {
                    ConfigError::Invalid(format!("{key} {} is unreadable: {e}", path.display()))
                })?;
            }
        }
        Ok(())
    }

    /// How long change events are kept.
    pub fn event_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.event_retention_days) * 86_400)
    }

    /// The PostgreSQL tuning of these settings.
    pub fn pg_options(&self) -> crate::store::postgres::PgOptions {
        crate::store::postgres::PgOptions {
            pool_size: self.database_pool_size,
            statement_timeout: std::time::Duration::from_millis(self.database_statement_timeout_ms),
            lock_timeout: std::time::Duration::from_millis(self.database_lock_timeout_ms),
            ..crate::store::postgres::PgOptions::default()
        }
    }

    /// The settings as a TOML config file, with the admin token redacted.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show the settings: {e}\n"))
    }
}

/// A database URL without its password (`user:<redacted>@host`, `password=<redacted>`).
pub fn redact_database_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                let mut out = format!("{scheme}://{}:<redacted>{}", &rest[..colon], &rest[at..]);
                if out.contains("password=") {
                    out = redact_password_pairs(&out);
                }
                return out;
            }
        }
    }
    redact_password_pairs(url)
}

/// `password=…` in a `key=value` string or a URL query, up to the next space or `&`.
fn redact_password_pairs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("password=") {
        let (head, tail) = rest.split_at(i + "password=".len());
        out.push_str(head);
        out.push_str("<redacted>");
        let end = tail.find([' ', '&']).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redacted_url<S: Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_str(&redact_database_url(url)),
        None => s.serialize_none(),
    }
}

fn redacted<S: Serializer>(token: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match token {
        Some(_) => s.serialize_str("<redacted>"),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(toml_text: &str) -> Result<Layer, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn upper_layers_win_and_unset_keys_fall_through() {
        let file = layer("listen = \"0.0.0.0:9000\"\nmax-concurrency = 8\n").unwrap();
        let flags = Layer {
            max_concurrency: Some(2),
            ..Layer::default()
        };
        let s = flags.over(file).resolve().unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.max_concurrency, 2);
        assert_eq!(s.request_timeout_ms, 30_000);
        assert_eq!(s.event_retention_days, 30);
        assert_eq!(s.cache_dir, Path::new("./scimlet-data/cache"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(layer("max-concurency = 8")
            .unwrap_err()
            .contains("unknown field"));
        assert!(layer("max-concurrency = \"many\"").is_err());
        assert!(layer("store = \"mysql\"").is_err());
        assert!(layer("tenant-rate-limit = 0").is_err());
    }

    #[test]
    fn combinations_are_checked() {
        let bad = [
            "tls-cert = \"cert.pem\"",
            "admin-listen = \"127.0.0.1:9001\"",
            "admin-token = \"short\"",
            "max-concurrency = 0",
            "max-connections = 0",
            "event-retention-days = 0",
            "event-retention-days = 36501",
            "header-read-timeout-ms = 0",
            "keep-alive-timeout-ms = 0",
            "public-url = \"scim.example.com\"",
            "admin-public-url = \"admin.example.com\"",
            "webhook-secret-key = \"c2hvcnQ=\"",
            "component = \"/no/such/component.wasm\"",
            "store = \"postgres\"",
            "database-pool-size = 0",
            "database-lock-timeout-ms = 0",
        ];
        for text in bad {
            let err = layer(text).unwrap().resolve().unwrap_err();
            assert!(matches!(err, ConfigError::Invalid(_)), "{text}: {err}");
        }
    }

    #[test]
    fn postgres_is_selected_with_its_url_and_the_password_is_never_printed() {
        let s = layer(
            "store = \"postgres\"\ndatabase-url = \"postgres://app:hunter2@db:5432/scim\"\n\
             database-pool-size = 4",
        )
        .unwrap()
        .resolve()
        .unwrap();
        assert_eq!(s.store, StoreKind::Postgres);
        assert_eq!(s.pg_options().pool_size, 4);
        let text = s.to_toml();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            text.contains("postgres://app:<redacted>@db:5432/scim"),
            "{text}"
        );
        assert_eq!(
            redact_database_url("host=db user=app password=hunter2 dbname=scim"),
            "host=db user=app password=<redacted> dbname=scim"
        );
        assert_eq!(
            redact_database_url("postgres://app@db/scim?password=x&sslmode=disable"),
            "postgres://app@db/scim?password=<redacted>&sslmode=disable"
        );
        assert_eq!(
            redact_database_url("postgres://app@db/scim"),
            "postgres://app@db/scim"
        );
    }

    #[test]
    fn the_printed_settings_redact_the_admin_token_and_parse_back() {
        let s =
            layer("admin-listen = \"127.0.0.1:9001\"\nadmin-token = \"0123456789abcdef-secret\"")
                .unwrap()
                .resolve()
                .unwrap();
        let text = s.to_toml();
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("admin-token = \"<redacted>\""), "{text}");
        let again = layer(&text).unwrap();
        assert_eq!(again.admin_listen, s.admin_listen);
        assert_eq!(again.max_body_bytes, Some(1 << 20));
    }
}
