//! The one typed configuration of `emdp serve` (and `emdp config show`).
//!
//! Precedence, lowest first: built-in defaults < the config file (`--config FILE`, else
//! `EMDP_CONFIG`, else `emdp.toml` in the working directory when present) < the environment
//! (`EMDP_*`, `DATABASE_URL`; a `.env` file in the working directory is loaded first and never
//! overrides variables already set) < command-line flags. The layers are merged by figment;
//! every value is checked at start-up, and an invalid one is an error naming the key, where
//! the value came from (the file, the variable, the flag) and what was expected.
//!
//! A setting is a field of one of the structs below, with a doc comment and a default: its
//! key is `section.field`, and its environment variable follows from the key (see
//! [`layers::variable`]: `server.bind` is `EMDP_BIND`, `log.level` is `EMDP_LOG_LEVEL`).

mod layers;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use emdp_domain::ConflictPolicy;
use figment::Figment;
use figment::providers::Serialized;
use serde::{Deserialize, Serialize};

/// The default config file, read from the working directory when present.
pub const DEFAULT_FILE: &str = "emdp.toml";

/// The configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    pub database_url: String,
    /// How long a request waits for a new PostgreSQL connection, in milliseconds, before it is
    /// answered 503 saying why (the database is down: "connection refused"). While every
    /// connection is merely busy, requests keep waiting (up to 30 s).
    pub database_acquire_timeout_ms: u64,
    /// The HTTP server.
    pub server: ServerConfig,
    /// API keys.
    pub auth: AuthConfig,
    /// Per-key (or per-IP) token buckets.
    pub rate_limit: RateLimitConfig,
    /// Logs.
    pub log: LogConfig,
    /// MQTT ingestion (and alert publishing).
    pub mqtt: MqttSettings,
    /// Alert delivery and the rules seeded at start-up.
    pub alerts: AlertsConfig,
}

/// `[mqtt]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// The broker to ingest from and publish alerts to, `mqtt://HOST:PORT` (off when absent).
    pub url: Option<String>,
    /// Topic filters subscribed to (`energy/+/records` when empty); a string or a list.
    #[serde(deserialize_with = "one_or_many")]
    pub topic: Vec<String>,
    /// Store attempts failing with a message's own error before the message is kept as a dead
    /// letter and acknowledged (a database outage is retried without counting); at least 1.
    pub max_attempts: std::num::NonZeroU32,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings { url: None, topic: Vec::new(), max_attempts: emdp_realtime::DEFAULT_MAX_ATTEMPTS }
    }
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Webhook URLs every alert event is POSTed to.
    #[serde(deserialize_with = "one_or_many")]
    pub webhook_urls: Vec<String>,
    /// The HMAC-SHA256 secret of the webhooks' signature (hidden by `config show`).
    pub webhook_secret: Option<String>,
    /// `[[alerts.rules]]`: rules created at start-up, or replaced when a rule of the same name
    /// exists (the config file is their source of truth; rules made over the API are kept).
    pub rules: Vec<AlertRuleConfig>,
}

/// One `[[alerts.rules]]` entry (the same fields as `POST /api/v1/alert-rules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleConfig {
    /// Its name (unique among the configured rules).
    pub name: String,
    /// `threshold`, `anomaly`, `valid_share`, `stale` or `status`.
    pub kind: String,
    /// The kind's parameters (e.g. `{ above = 1000, building = "B1" }`).
    #[serde(default = "empty_table")]
    pub params: toml::Table,
    /// `info`, `warning` (default) or `critical`.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// The same condition does not fire twice within it (default 300 s).
    #[serde(default = "default_cooldown")]
    pub cooldown_seconds: u64,
    /// Whether it is evaluated (default true).
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

fn empty_table() -> toml::Table {
    toml::Table::new()
}

fn default_severity() -> String {
    "warning".to_owned()
}

fn default_cooldown() -> u64 {
    300
}

fn default_enabled() -> bool {
    true
}

/// A string or a list of strings.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

impl AlertRuleConfig {
    /// The rule as the alert store keeps it (checked like a rule made over the API).
    pub fn spec(&self) -> Result<emdp_app::ports::RuleSpec, String> {
        let params = serde_json::to_value(&self.params).map_err(|err| err.to_string())?;
        let spec = emdp_app::ports::RuleSpec {
            name: self.name.clone(),
            kind: emdp_app::ports::RuleKind::from_parts(&self.kind, params)?,
            severity: emdp_app::ports::Severity::parse(&self.severity)
                .ok_or_else(|| format!("invalid severity '{}': info, warning or critical", self.severity))?,
            cooldown_seconds: self.cooldown_seconds,
            enabled: self.enabled,
        };
        emdp_app::usecases::alerts::validate_spec(&spec).map_err(|err| err.to_string())?;
        Ok(spec)
    }
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    /// The most records one request body may hold (`records:validate`, `POST /records`).
    pub max_records: usize,
    /// The longest a request may take, in seconds (0: no limit).
    pub timeout_secs: u64,
    /// Requests handled at once; further ones wait (0: no limit).
    pub max_concurrent: usize,
    /// Quality thresholds as TOML.
    pub rules: Option<PathBuf>,
    /// How conflicting duplicates are resolved: prefer_valid, keep_first, keep_latest, manual
    /// (`keep-latest` is read too).
    pub policy: ConflictPolicy,
    /// The URL clients reach the server at (informational; `config show` and logs).
    pub public_url: Option<String>,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `true`: keys required; `false`: open (a warning is printed); absent: required as soon
    /// as any key exists.
    pub enabled: Option<bool>,
    /// Whether `/metrics` is served without a key (otherwise it needs an admin key).
    pub metrics_public: bool,
}

/// `[rate_limit]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Whether requests are rate-limited.
    pub enabled: bool,
    /// Requests per second per key (or per client IP without a key), on average.
    pub per_second: f64,
    /// Requests that may arrive at once (the bucket's size).
    pub burst: u32,
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `pretty` (for people) or `json` (one object per line, for collectors).
    pub format: LogFormat,
    /// A `tracing` filter (`info`, `emdp=debug,info`); `RUST_LOG` takes precedence.
    pub level: String,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `pretty` (or `text`) and `json`, in any case.
impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err(serde::de::Error::custom("expected pretty or json")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: emdp_storage::DEFAULT_DATABASE_URL.to_owned(),
            database_acquire_timeout_ms: u64::try_from(emdp_storage::DEFAULT_ACQUIRE_TIMEOUT.as_millis())
                .unwrap_or(u64::MAX),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            rate_limit: RateLimitConfig::default(),
            log: LogConfig::default(),
            mqtt: MqttSettings::default(),
            alerts: AlertsConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            body_limit: 10 * 1024 * 1024,
            max_records: emdp_api::ApiConfig::MAX_RECORDS,
            timeout_secs: 30,
            max_concurrent: 256,
            rules: None,
            policy: ConflictPolicy::PreferValid,
            public_url: None,
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { enabled: true, per_second: 50.0, burst: 100 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: LogFormat::Pretty, level: "info".to_owned() }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// A setting that breaks a rule the types cannot state.
struct Invalid {
    /// The setting.
    key: &'static str,
    /// What is wrong with it.
    message: String,
}

impl Config {
    /// Reads the config file (`file` when given, else `EMDP_CONFIG`, else [`DEFAULT_FILE`]
    /// when present), then the environment (`env` looks up a variable), then `flags`
    /// (setting key, value, flag name), and checks the result.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[(&str, String, &str)],
    ) -> Result<Config, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env("EMDP_CONFIG").filter(|f| !f.trim().is_empty()).map(PathBuf::from))
            .or_else(|| Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE)));
        let defaults = Serialized::defaults(Config::default());
        let settings = match figment::value::Value::serialize(Config::default()) {
            Ok(figment::value::Value::Dict(_, dict)) => layers::Settings::of(&dict),
            _ => return Err(ConfigError("the defaults are not a table".into())),
        };
        let mut figment = Figment::from(defaults);
        if let Some(path) = file {
            figment = figment.merge(layers::File::read(&path)?);
        }
        let figment = figment.merge(settings.environment(env)?).merge(settings.flags(flags)?);
        let config: Config = figment.extract_lossy().map_err(|err| layers::describe(&figment, err))?;
        config.check().map_err(|Invalid { key, message }| {
            ConfigError(format!("{} ({key}): {message}", layers::origin(&figment, key)))
        })?;
        Ok(config)
    }

    /// Checks what the types cannot.
    fn check(&self) -> Result<(), Invalid> {
        let invalid = |key, message: String| Err(Invalid { key, message });
        if let Err(err) = self.database() {
            return invalid("database_url", err.to_string());
        }
        if self.database_acquire_timeout_ms == 0 {
            return invalid("database_acquire_timeout_ms", "must be at least 1 ms".into());
        }
        if self.server.body_limit == 0 {
            return invalid("server.body_limit", "must be at least 1 byte".into());
        }
        if self.server.max_records == 0 {
            return invalid("server.max_records", "must be at least 1 record".into());
        }
        if self.rate_limit.enabled {
            if !(self.rate_limit.per_second.is_finite() && self.rate_limit.per_second > 0.0) {
                return invalid(
                    "rate_limit.per_second",
                    format!(
                        "invalid value '{}': must be a number above 0 (or set rate_limit.enabled = false)",
                        self.rate_limit.per_second
                    ),
                );
            }
            if self.rate_limit.burst == 0 {
                return invalid("rate_limit.burst", "must be at least 1".into());
            }
        }
        if self.log.level.trim().is_empty() {
            return invalid("log.level", "must not be empty".into());
        }
        if let Some(url) = &self.mqtt.url
            && !url.starts_with("mqtt://")
        {
            return invalid("mqtt.url", format!("invalid value '{url}': use mqtt://HOST:PORT"));
        }
        if !self.alerts.webhook_urls.is_empty() && self.alerts.webhook_secret.is_none() {
            return invalid("alerts.webhook_urls", "needs alerts.webhook_secret".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.alerts.rules.iter().enumerate() {
            if let Err(err) = rule.spec() {
                return invalid("alerts.rules", format!("rule {i} ('{}'): {err}", rule.name));
            }
            if !names.insert(rule.name.as_str()) {
                return invalid("alerts.rules", format!("rule {i}: the name '{}' is used twice", rule.name));
            }
        }
        Ok(())
    }

    /// The database URL, parsed ([`emdp_storage::DatabaseUrl::parse`]).
    pub fn database(&self) -> Result<emdp_storage::DatabaseUrl, emdp_storage::DatabaseUrlError> {
        emdp_storage::DatabaseUrl::parse(&self.database_url)
    }

    /// How the server opens the database (creating a missing SQLite file).
    pub fn open_options(&self) -> emdp_storage::OpenOptions {
        emdp_storage::OpenOptions {
            create: true,
            acquire_timeout: Duration::from_millis(self.database_acquire_timeout_ms),
        }
    }

    /// The conflict policy.
    pub fn policy(&self) -> ConflictPolicy {
        self.server.policy
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.server.timeout_secs)
    }

    /// The configuration as TOML with secrets hidden (the database password, the webhook
    /// secret).
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = emdp_storage::redact(&shown.database_url);
        if shown.alerts.webhook_secret.is_some() {
            shown.alerts.webhook_secret = Some("***".to_owned());
        }
        toml::to_string_pretty(&shown).unwrap_or_default()
    }
}

/// Looks a variable up in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    /// The configuration of `text` as a config file, alone.
    fn from_file(text: &str) -> Result<Config, ConfigError> {
        Config::load(Some(file(text).path()), &env(&[]), &[])
    }

    #[test]
    fn defaults_then_file_then_env_then_flags() {
        let toml = file(
            "database_url = \"sqlite://file.db\"\n[server]\nbind = \"0.0.0.0:9000\"\ntimeout_secs = 5\n\
             [rate_limit]\nburst = 7\n[log]\nformat = \"json\"\n",
        );
        let none = env(&[]);
        let config = Config::load(Some(toml.path()), &none, &[]).unwrap();
        assert_eq!(config.database_url, "sqlite://file.db");
        assert_eq!(config.server.bind.to_string(), "0.0.0.0:9000");
        assert_eq!((config.server.timeout_secs, config.rate_limit.burst), (5, 7));
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.server.body_limit, ServerConfig::default().body_limit, "untouched keys keep defaults");

        let vars = env(&[
            ("EMDP_BIND", "127.0.0.1:9100"),
            ("DATABASE_URL", "postgres://u:pw@db/emdp"),
            ("EMDP_TIMEOUT_SECS", "6"),
        ]);
        let config = Config::load(Some(toml.path()), &vars, &[]).unwrap();
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:9100", "env beats the file");
        assert_eq!(config.database_url, "postgres://u:pw@db/emdp");
        assert_eq!(config.server.timeout_secs, 6);
        assert_eq!(config.rate_limit.burst, 7, "the file beats defaults");

        let flags = [("server.bind", "127.0.0.1:9200".to_owned(), "--bind")];
        let config = Config::load(Some(toml.path()), &vars, &flags).unwrap();
        assert_eq!(config.server.bind.to_string(), "127.0.0.1:9200", "flags beat env");
        assert_eq!(config.server.timeout_secs, 6);
    }

    #[test]
    fn a_missing_config_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.toml");
        let err = Config::load(Some(&missing), &env(&[]), &[]).unwrap_err();
        assert!(err.0.starts_with(&format!("{}: cannot read", missing.display())), "{err}");
        let vars = env(&[("EMDP_CONFIG", missing.to_str().unwrap())]);
        assert!(Config::load(None, &vars, &[]).unwrap_err().0.contains("cannot read"));
    }

    #[test]
    fn every_setting_is_read_from_its_variable() {
        let vars = env(&[
            ("DATABASE_URL", "postgres://u@db/emdp"),
            ("EMDP_DATABASE_ACQUIRE_TIMEOUT_MS", "2500"),
            ("EMDP_BIND", "0.0.0.0:1"),
            ("EMDP_BODY_LIMIT", "2"),
            ("EMDP_MAX_RECORDS", "5"),
            ("EMDP_TIMEOUT_SECS", "3"),
            ("EMDP_MAX_CONCURRENT", "4"),
            ("EMDP_RULES", "rules.toml"),
            ("EMDP_POLICY", "keep_latest"),
            ("EMDP_PUBLIC_URL", "https://emdp.example"),
            ("EMDP_AUTH", "yes"),
            ("EMDP_METRICS_PUBLIC", "on"),
            ("EMDP_RATE_LIMIT", "1"),
            ("EMDP_RATE_LIMIT_PER_SECOND", "2.5"),
            ("EMDP_RATE_LIMIT_BURST", " 9 "),
            ("EMDP_LOG_FORMAT", "JSON"),
            ("EMDP_LOG_LEVEL", "emdp=debug,info"),
            ("EMDP_MQTT_URL", "mqtt://broker:1883"),
            ("EMDP_MQTT_TOPIC", "a/+/records"),
            ("EMDP_MQTT_MAX_ATTEMPTS", "3"),
            ("EMDP_WEBHOOK_URLS", "http://a/hook,, http://b/hook"),
            ("EMDP_WEBHOOK_SECRET", "12345"),
        ]);
        let config = Config::load(None, &vars, &[]).unwrap();
        let expected = Config {
            database_url: "postgres://u@db/emdp".into(),
            database_acquire_timeout_ms: 2500,
            server: ServerConfig {
                bind: "0.0.0.0:1".parse().unwrap(),
                body_limit: 2,
                max_records: 5,
                timeout_secs: 3,
                max_concurrent: 4,
                rules: Some("rules.toml".into()),
                policy: ConflictPolicy::KeepLatest,
                public_url: Some("https://emdp.example".into()),
            },
            auth: AuthConfig { enabled: Some(true), metrics_public: true },
            rate_limit: RateLimitConfig { enabled: true, per_second: 2.5, burst: 9 },
            log: LogConfig { format: LogFormat::Json, level: "emdp=debug,info".into() },
            mqtt: MqttSettings {
                url: Some("mqtt://broker:1883".into()),
                topic: vec!["a/+/records".into()],
                max_attempts: std::num::NonZeroU32::new(3).unwrap(),
            },
            alerts: AlertsConfig {
                webhook_urls: vec!["http://a/hook".into(), "http://b/hook".into()],
                webhook_secret: Some("12345".into()),
                rules: Vec::new(),
            },
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn the_policy_is_read_in_either_spelling_and_shown_in_snake_case() {
        for text in ["keep-latest", "keep_latest"] {
            let config = Config::load(None, &env(&[("EMDP_POLICY", text)]), &[]).unwrap();
            assert_eq!(config.policy(), ConflictPolicy::KeepLatest, "EMDP_POLICY={text}");
            let config = from_file(&format!("[server]\npolicy = \"{text}\"\n")).unwrap();
            assert_eq!(config.policy(), ConflictPolicy::KeepLatest, "policy = {text}");
            let flags = [("server.policy", text.to_owned(), "--policy")];
            assert_eq!(Config::load(None, &env(&[]), &flags).unwrap().policy(), ConflictPolicy::KeepLatest);
        }
        let config = from_file("[server]\npolicy = \"keep-first\"\n").unwrap();
        let shown = toml::to_string(&config).unwrap();
        assert!(shown.contains("policy = \"keep_first\""), "{shown}");
    }

    #[test]
    fn empty_variables_unset_optional_settings_and_switch_off() {
        let toml = file(
            "[server]\nrules = \"r.toml\"\npublic_url = \"https://x\"\n[auth]\nmetrics_public = true\n\
             [mqtt]\nurl = \"mqtt://b:1883\"\ntopic = [\"t\"]\n",
        );
        let vars = env(&[
            ("EMDP_RULES", ""),
            ("EMDP_PUBLIC_URL", " "),
            ("EMDP_METRICS_PUBLIC", ""),
            ("EMDP_MQTT_URL", ""),
            ("EMDP_MQTT_TOPIC", ""),
        ]);
        let config = Config::load(Some(toml.path()), &vars, &[]).unwrap();
        assert_eq!((config.server.rules, config.server.public_url), (None, None));
        assert!(!config.auth.metrics_public);
        assert_eq!((config.mqtt.url, config.mqtt.topic), (None, Vec::<String>::new()));
    }

    #[test]
    fn config_file_from_emdp_config() {
        let toml = file("[server]\nmax_concurrent = 3\n");
        let path = toml.path().to_str().unwrap().to_owned();
        let vars = env(&[("EMDP_CONFIG", path.as_str())]);
        assert_eq!(Config::load(None, &vars, &[]).unwrap().server.max_concurrent, 3);
        let other = file("[server]\nmax_concurrent = 4\n");
        assert_eq!(Config::load(Some(other.path()), &vars, &[]).unwrap().server.max_concurrent, 4, "--config wins");
    }

    #[test]
    fn invalid_values_name_the_key_and_where_they_came_from() {
        let none = env(&[]);
        let err = Config::load(None, &env(&[("EMDP_BIND", "nowhere")]), &[]).unwrap_err();
        assert!(
            err.0.starts_with("EMDP_BIND (server.bind): invalid value 'nowhere': invalid socket address syntax"),
            "{err}"
        );
        let err = Config::load(None, &none, &[("rate_limit.burst", "-1".into(), "--rate-limit-burst")]).unwrap_err();
        assert!(err.0.starts_with("--rate-limit-burst (rate_limit.burst): invalid value '-1': expected u32"), "{err}");
        let err = Config::load(None, &env(&[("EMDP_TIMEOUT_SECS", "soon")]), &[]).unwrap_err();
        assert_eq!(err.0, "EMDP_TIMEOUT_SECS (server.timeout_secs): invalid value 'soon': expected u64");
        let err = Config::load(None, &env(&[("EMDP_POLICY", "random")]), &[]).unwrap_err();
        assert_eq!(
            err.0,
            "EMDP_POLICY (server.policy): invalid value 'random': expected prefer_valid, keep_first, keep_latest or manual"
        );
        let err = Config::load(None, &env(&[("EMDP_LOG_FORMAT", "xml")]), &[]).unwrap_err();
        assert_eq!(err.0, "EMDP_LOG_FORMAT (log.format): invalid value 'xml': expected pretty or json");
        let err = Config::load(None, &env(&[("EMDP_NO_AUTH", "perhaps")]), &[]).unwrap_err();
        assert_eq!(err.0, "EMDP_NO_AUTH (auth.enabled): invalid value 'perhaps': expected true or false");
        let err = Config::load(None, &env(&[("EMDP_AUTH", "perhaps")]), &[]).unwrap_err();
        assert!(err.0.starts_with("EMDP_AUTH (auth.enabled): invalid value 'perhaps'"), "{err}");
        let err = Config::load(None, &env(&[("DATABASE_URL", "mysql://u:pw@x/db")]), &[]).unwrap_err();
        assert_eq!(
            err.0,
            "DATABASE_URL (database_url): 'mysql://u:***@x/db' is not a database URL emdp knows: \
             use sqlite://PATH or postgres://USER@HOST/DB"
        );
        let err = Config::load(None, &env(&[("DATABASE_URL", "sqlite://")]), &[]).unwrap_err();
        assert!(err.0.starts_with("DATABASE_URL (database_url): sqlite://: this SQLite URL has no file path"), "{err}");
        let err = Config::load(None, &env(&[("EMDP_DATABASE_ACQUIRE_TIMEOUT_MS", "0")]), &[]).unwrap_err();
        assert_eq!(err.0, "EMDP_DATABASE_ACQUIRE_TIMEOUT_MS (database_acquire_timeout_ms): must be at least 1 ms");
        let err = Config::load(None, &none, &[("server.body_limit", "0".into(), "--body-limit")]).unwrap_err();
        assert_eq!(err.0, "--body-limit (server.body_limit): must be at least 1 byte");
    }

    #[test]
    fn invalid_file_values_name_the_file() {
        let toml = file("[server]\nbnd = \"x\"\n");
        let err = Config::load(Some(toml.path()), &env(&[]), &[]).unwrap_err();
        let path = toml.path().display().to_string();
        assert!(err.0.starts_with(&format!("{path} (server.bnd): unknown field `bnd`, expected one of")), "{err}");
        let toml = file("[server]\ntimeout_secs = \"soon\"\n");
        let err = Config::load(Some(toml.path()), &env(&[("EMDP_BIND", "127.0.0.1:1")]), &[]).unwrap_err();
        let path = toml.path().display().to_string();
        assert_eq!(err.0, format!("{path} (server.timeout_secs): invalid value 'soon': expected u64"));
        let err = from_file("[server\n").unwrap_err();
        assert!(err.0.contains("TOML parse error"), "{err}");
        let err = from_file("[rate_limit]\nper_second = 0\n").unwrap_err();
        assert!(err.0.contains("(rate_limit.per_second): invalid value '0': must be a number above 0"), "{err}");
        let config = from_file("[rate_limit]\nenabled = false\nper_second = 0\n").unwrap();
        assert!(!config.rate_limit.enabled, "no rate, no check");
    }

    #[test]
    fn auth_switches_and_redaction() {
        let config = Config::load(None, &env(&[("EMDP_NO_AUTH", "1")]), &[]).unwrap();
        assert_eq!(config.auth.enabled, Some(false));
        let config = Config::load(None, &env(&[("EMDP_NO_AUTH", "1"), ("EMDP_AUTH", "true")]), &[]).unwrap();
        assert_eq!(config.auth.enabled, Some(false), "EMDP_NO_AUTH wins");
        let config = Config::load(None, &env(&[("EMDP_NO_AUTH", "false")]), &[]).unwrap();
        assert_eq!(config.auth.enabled, None, "auto: on when a key exists");
        let config = Config::load(None, &env(&[]), &[("auth.enabled", "false".into(), "--no-auth")]).unwrap();
        assert_eq!(config.auth.enabled, Some(false));
        let config = Config::load(None, &env(&[("DATABASE_URL", "postgres://u:secret@db/emdp")]), &[]).unwrap();
        let shown = config.redacted_toml();
        assert!(!shown.contains("secret") && shown.contains("postgres://u:***@db/emdp"), "{shown}");
        let shown = file(&Config::default().redacted_toml());
        assert_eq!(Config::load(Some(shown.path()), &env(&[]), &[]).unwrap(), Config::default());
    }

    #[test]
    fn config_show_prints_the_database_url_redacted() {
        // `?password=` is hidden by `emdp_storage::redact`, which config show goes through.
        let url = "postgres://emdp@db:5432/emdp?sslmode=require&password=hunter2";
        let config = Config::load(None, &env(&[("DATABASE_URL", url)]), &[]).unwrap();
        let shown = config.redacted_toml();
        assert!(shown.contains(&format!("database_url = \"{}\"", emdp_storage::redact(url))), "{shown}");
    }

    const REALTIME: &str = "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\ntopic = \"energy/+/records\"\n\
        [alerts]\nwebhook_urls = [\"http://a/hook\", \"http://b/hook\"]\nwebhook_secret = \"s3cret\"\n\
        [[alerts.rules]]\nname = \"high\"\nkind = \"threshold\"\nparams = { above = 1000.5, building = \"B1\" }\n\
        severity = \"critical\"\ncooldown_seconds = 0\n\
        [[alerts.rules]]\nname = \"quiet\"\nkind = \"stale\"\nparams = { max_silence_seconds = 3600 }\n";

    #[test]
    fn mqtt_and_alerts_from_the_file_env_and_flags() {
        let toml = file(REALTIME);
        let config = Config::load(Some(toml.path()), &env(&[]), &[]).unwrap();
        assert_eq!(config.mqtt.url.as_deref(), Some("mqtt://127.0.0.1:1883"));
        assert_eq!(config.mqtt.topic, ["energy/+/records"]);
        assert_eq!(config.alerts.webhook_urls, ["http://a/hook", "http://b/hook"]);
        assert_eq!(config.alerts.webhook_secret.as_deref(), Some("s3cret"));
        let specs: Vec<_> = config.alerts.rules.iter().map(|r| r.spec().unwrap()).collect();
        assert_eq!(
            specs[0].kind,
            emdp_app::ports::RuleKind::Threshold { building: Some("B1".into()), above: Some(1000.5), below: None }
        );
        assert_eq!((specs[0].severity, specs[0].cooldown_seconds), (emdp_app::ports::Severity::Critical, 0));
        assert_eq!(specs[1].kind, emdp_app::ports::RuleKind::Stale { building: None, max_silence_seconds: 3600 });
        assert_eq!(
            (specs[1].severity, specs[1].cooldown_seconds, specs[1].enabled),
            (emdp_app::ports::Severity::Warning, 300, true)
        );

        let vars = env(&[("EMDP_MQTT_TOPIC", "a/+/records, b/#"), ("EMDP_WEBHOOK_SECRET", "other")]);
        let flags = [
            ("mqtt.url", "mqtt://broker:1884".to_owned(), "--mqtt-url"),
            ("alerts.webhook_urls", "http://c/hook,http://d/hook".to_owned(), "--webhook-url"),
        ];
        let config = Config::load(Some(toml.path()), &vars, &flags).unwrap();
        assert_eq!(config.mqtt.topic, ["a/+/records", "b/#"]);
        assert_eq!(config.mqtt.url.as_deref(), Some("mqtt://broker:1884"));
        assert_eq!(config.alerts.webhook_secret.as_deref(), Some("other"));
        assert_eq!(config.alerts.webhook_urls, ["http://c/hook", "http://d/hook"]);
        assert_eq!(config.alerts.rules.len(), 2, "the environment leaves the file's rules alone");

        let shown = config.redacted_toml();
        assert!(!shown.contains("other") && shown.contains("webhook_secret = \"***\""), "{shown}");
        let mut back = Config::load(Some(file(&shown).path()), &env(&[]), &[]).unwrap();
        back.alerts.webhook_secret = config.alerts.webhook_secret.clone();
        assert_eq!(back, config, "config show round-trips, the secret aside");
    }

    #[test]
    fn invalid_realtime_settings_name_the_key() {
        let bad = |text: &str| from_file(text).unwrap_err().0;
        assert!(bad("[mqtt]\nurl = \"tcp://x\"\n").contains("(mqtt.url): invalid value 'tcp://x'"));
        let err = bad("[mqtt]\nmax_attempts = 0\n");
        assert!(err.contains("(mqtt.max_attempts)") && err.contains("nonzero"), "{err}");
        assert!(
            bad("[alerts]\nwebhook_urls = \"http://a\"\n")
                .contains("(alerts.webhook_urls): needs alerts.webhook_secret")
        );
        let err = bad("[[alerts.rules]]\nname = \"x\"\nkind = \"threshold\"\n");
        assert!(err.contains("(alerts.rules): rule 0 ('x')") && err.contains("above"), "{err}");
        let err = bad("[[alerts.rules]]\nname = \"x\"\nkind = \"nope\"\n");
        assert!(err.contains("(alerts.rules): rule 0"), "{err}");
        let err = bad("[[alerts.rules]]\nname = \"x\"\nkind = \"stale\"\nparams = { max_silence_seconds = 1 }\n\
                       [[alerts.rules]]\nname = \"x\"\nkind = \"stale\"\nparams = { max_silence_seconds = 2 }\n");
        assert!(err.contains("used twice"), "{err}");
        assert!(bad("[alerts]\nrules = [{ name = \"x\", kind = \"stale\", typo = 1 }]\n").contains("typo"));
    }
}
