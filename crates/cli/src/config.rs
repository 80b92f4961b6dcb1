//! The one typed configuration of `emdp serve` (and `emdp config show`).
//!
//! Precedence, lowest first: built-in defaults < the config file (`--config FILE`, else
//! `EMDP_CONFIG`, else `emdp.toml` in the working directory when present) < the environment
//! (`EMDP_*`, `DATABASE_URL`; a `.env` file in the working directory is loaded first and never
//! overrides variables already set) < command-line flags. Every value is checked at start-up;
//! an invalid one is an error naming the key and where it came from.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use emdp_domain::ConflictPolicy;
use serde::{Deserialize, Serialize};

/// The default config file, read from the working directory when present.
pub const DEFAULT_FILE: &str = "emdp.toml";

/// Every setting, with its environment variable, in the order `config show` lists them.
pub const KEYS: [(&str, &str); 20] = [
    ("database_url", "DATABASE_URL"),
    ("server.bind", "EMDP_BIND"),
    ("server.body_limit", "EMDP_BODY_LIMIT"),
    ("server.timeout_secs", "EMDP_TIMEOUT_SECS"),
    ("server.max_concurrent", "EMDP_MAX_CONCURRENT"),
    ("server.rules", "EMDP_RULES"),
    ("server.policy", "EMDP_POLICY"),
    ("server.public_url", "EMDP_PUBLIC_URL"),
    ("auth.enabled", "EMDP_AUTH"),
    ("auth.disabled", "EMDP_NO_AUTH"),
    ("auth.metrics_public", "EMDP_METRICS_PUBLIC"),
    ("rate_limit.enabled", "EMDP_RATE_LIMIT"),
    ("rate_limit.per_second", "EMDP_RATE_LIMIT_PER_SECOND"),
    ("rate_limit.burst", "EMDP_RATE_LIMIT_BURST"),
    ("log.format", "EMDP_LOG_FORMAT"),
    ("log.level", "EMDP_LOG_LEVEL"),
    ("mqtt.url", "EMDP_MQTT_URL"),
    ("mqtt.topic", "EMDP_MQTT_TOPIC"),
    ("alerts.webhook_urls", "EMDP_WEBHOOK_URLS"),
    ("alerts.webhook_secret", "EMDP_WEBHOOK_SECRET"),
];

/// The configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    pub database_url: String,
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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// The broker to ingest from and publish alerts to, `mqtt://HOST:PORT` (off when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Topic filters subscribed to (`energy/+/records` when empty); a string or a list.
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub topic: Vec<String>,
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Webhook URLs every alert event is POSTed to.
    #[serde(deserialize_with = "one_or_many", skip_serializing_if = "Vec::is_empty")]
    pub webhook_urls: Vec<String>,
    /// The HMAC-SHA256 secret of the webhooks' signature (hidden by `config show`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// `[[alerts.rules]]`: rules created at start-up, or replaced when a rule of the same name
    /// exists (the config file is their source of truth; rules made over the API are kept).
    #[serde(skip_serializing_if = "Vec::is_empty")]
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

/// A comma-separated list (empty items dropped).
fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
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
    /// The longest a request may take, in seconds (0: no limit).
    pub timeout_secs: u64,
    /// Requests handled at once; further ones wait (0: no limit).
    pub max_concurrent: usize,
    /// Quality thresholds as TOML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<PathBuf>,
    /// How conflicting duplicates are resolved: prefer-valid, keep-first, keep-latest, manual.
    pub policy: String,
    /// The URL clients reach the server at (informational; `config show` and logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

/// `[auth]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `true`: keys required; `false`: open (a warning is printed); absent: required as soon
    /// as any key exists.
    #[serde(skip_serializing_if = "Option::is_none")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: emdp_storage::DEFAULT_DATABASE_URL.to_owned(),
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
            timeout_secs: 30,
            max_concurrent: 256,
            rules: None,
            policy: "prefer-valid".to_owned(),
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

fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    text.trim().parse::<T>().map_err(|err| err.to_string())
}

/// The policy named by `text` (`prefer-valid` or `prefer_valid`, ...).
pub fn parse_policy(text: &str) -> Result<ConflictPolicy, String> {
    match text.trim().replace('_', "-").as_str() {
        "prefer-valid" => Ok(ConflictPolicy::PreferValid),
        "keep-first" => Ok(ConflictPolicy::KeepFirst),
        "keep-latest" => Ok(ConflictPolicy::KeepLatest),
        "manual" => Ok(ConflictPolicy::Manual),
        other => Err(format!("unknown policy '{other}': expected prefer-valid, keep-first, keep-latest or manual")),
    }
}

impl Config {
    /// Sets the setting `key` (see [`KEYS`]) from text; `origin` (a variable or a flag) names
    /// the source in the error.
    pub fn set(&mut self, key: &str, value: &str, origin: &str) -> Result<(), ConfigError> {
        let result = match key {
            "database_url" => {
                self.database_url = value.trim().to_owned();
                Ok(())
            }
            "server.bind" => parse(value).map(|v| self.server.bind = v),
            "server.body_limit" => parse(value).map(|v| self.server.body_limit = v),
            "server.timeout_secs" => parse(value).map(|v| self.server.timeout_secs = v),
            "server.max_concurrent" => parse(value).map(|v| self.server.max_concurrent = v),
            "server.rules" => {
                self.server.rules = (!value.trim().is_empty()).then(|| PathBuf::from(value.trim()));
                Ok(())
            }
            "server.policy" => {
                self.server.policy = value.trim().to_owned();
                Ok(())
            }
            "server.public_url" => {
                self.server.public_url = (!value.trim().is_empty()).then(|| value.trim().to_owned());
                Ok(())
            }
            "auth.enabled" => parse_bool(value).map(|v| self.auth.enabled = Some(v)),
            "auth.disabled" => parse_bool(value).map(|v| {
                if v {
                    self.auth.enabled = Some(false);
                }
            }),
            "auth.metrics_public" => parse_bool(value).map(|v| self.auth.metrics_public = v),
            "rate_limit.enabled" => parse_bool(value).map(|v| self.rate_limit.enabled = v),
            "rate_limit.per_second" => parse(value).map(|v| self.rate_limit.per_second = v),
            "rate_limit.burst" => parse(value).map(|v| self.rate_limit.burst = v),
            "log.format" => match value.trim().to_ascii_lowercase().as_str() {
                "pretty" | "text" => {
                    self.log.format = LogFormat::Pretty;
                    Ok(())
                }
                "json" => {
                    self.log.format = LogFormat::Json;
                    Ok(())
                }
                _ => Err("expected pretty or json".to_owned()),
            },
            "log.level" => {
                self.log.level = value.trim().to_owned();
                Ok(())
            }
            "mqtt.url" => {
                self.mqtt.url = (!value.trim().is_empty()).then(|| value.trim().to_owned());
                Ok(())
            }
            "mqtt.topic" => {
                self.mqtt.topic = list(value);
                Ok(())
            }
            "alerts.webhook_urls" => {
                self.alerts.webhook_urls = list(value);
                Ok(())
            }
            "alerts.webhook_secret" => {
                self.alerts.webhook_secret = (!value.is_empty()).then(|| value.to_owned());
                Ok(())
            }
            other => Err(format!("unknown setting '{other}'")),
        };
        result.map_err(|err| ConfigError(format!("{origin} ({key}): invalid value '{}': {err}", value.trim())))
    }

    /// Reads the config file (when given or present), then the environment (`env` looks up
    /// a variable), then `flags` (setting key, value, flag name), and checks the result.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        flags: &[(&str, String, &str)],
    ) -> Result<Config, ConfigError> {
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| env("EMDP_CONFIG").filter(|f| !f.trim().is_empty()).map(PathBuf::from));
        let mut config = match file {
            Some(path) => Self::read_file(&path)?,
            None if Path::new(DEFAULT_FILE).is_file() => Self::read_file(Path::new(DEFAULT_FILE))?,
            None => Config::default(),
        };
        for (key, variable) in KEYS {
            if let Some(value) = env(variable) {
                config.set(key, &value, variable)?;
            }
        }
        for (key, value, flag) in flags {
            config.set(key, value, flag)?;
        }
        config.check()?;
        Ok(config)
    }

    /// Parses a config file.
    pub fn read_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| ConfigError(format!("{}: cannot read: {err}", path.display())))?;
        Self::parse_toml(&text).map_err(|ConfigError(message)| ConfigError(format!("{}: {message}", path.display())))
    }

    /// Parses the text of a config file.
    pub fn parse_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError(err.to_string().trim_end().to_owned()))
    }

    /// Checks what the types cannot.
    pub fn check(&self) -> Result<(), ConfigError> {
        let url = &self.database_url;
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError(format!(
                "database_url: invalid value '{}': use sqlite://PATH or postgres://USER@HOST/DB",
                emdp_storage::redact(url)
            )));
        }
        parse_policy(&self.server.policy).map_err(|err| ConfigError(format!("server.policy: {err}")))?;
        if self.server.body_limit == 0 {
            return Err(ConfigError("server.body_limit: must be at least 1 byte".into()));
        }
        if self.rate_limit.enabled {
            if !(self.rate_limit.per_second.is_finite() && self.rate_limit.per_second > 0.0) {
                return Err(ConfigError(format!(
                    "rate_limit.per_second: invalid value '{}': must be a number above 0 (or set rate_limit.enabled = false)",
                    self.rate_limit.per_second
                )));
            }
            if self.rate_limit.burst == 0 {
                return Err(ConfigError("rate_limit.burst: must be at least 1".into()));
            }
        }
        if self.log.level.trim().is_empty() {
            return Err(ConfigError("log.level: must not be empty".into()));
        }
        if let Some(url) = &self.mqtt.url
            && !url.starts_with("mqtt://")
        {
            return Err(ConfigError(format!("mqtt.url: invalid value '{url}': use mqtt://HOST:PORT")));
        }
        if !self.alerts.webhook_urls.is_empty() && self.alerts.webhook_secret.is_none() {
            return Err(ConfigError("alerts.webhook_urls: needs alerts.webhook_secret".into()));
        }
        let mut names = std::collections::HashSet::new();
        for (i, rule) in self.alerts.rules.iter().enumerate() {
            rule.spec().map_err(|err| ConfigError(format!("alerts.rules[{i}] ({}): {err}", rule.name)))?;
            if !names.insert(rule.name.as_str()) {
                return Err(ConfigError(format!("alerts.rules[{i}]: the name '{}' is used twice", rule.name)));
            }
        }
        Ok(())
    }

    /// The conflict policy (checked by [`Config::check`]).
    pub fn policy(&self) -> ConflictPolicy {
        parse_policy(&self.server.policy).unwrap_or(ConflictPolicy::PreferValid)
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
    fn config_file_from_emdp_config() {
        let toml = file("[server]\nmax_concurrent = 3\n");
        let path = toml.path().to_str().unwrap().to_owned();
        let vars = env(&[("EMDP_CONFIG", path.as_str())]);
        assert_eq!(Config::load(None, &vars, &[]).unwrap().server.max_concurrent, 3);
    }

    #[test]
    fn invalid_values_name_the_key() {
        let none = env(&[]);
        let err = Config::load(None, &env(&[("EMDP_BIND", "nowhere")]), &[]).unwrap_err();
        assert!(err.0.starts_with("EMDP_BIND (server.bind): invalid value 'nowhere'"), "{err}");
        let err = Config::load(None, &none, &[("rate_limit.burst", "-1".into(), "--rate-limit-burst")]).unwrap_err();
        assert!(err.0.contains("--rate-limit-burst (rate_limit.burst)"), "{err}");
        let err = Config::load(None, &env(&[("EMDP_POLICY", "random")]), &[]).unwrap_err();
        assert!(err.0.starts_with("server.policy: unknown policy 'random'"), "{err}");
        let err = Config::load(None, &env(&[("DATABASE_URL", "mysql://x")]), &[]).unwrap_err();
        assert!(err.0.starts_with("database_url:"), "{err}");
        let err = Config::read_file(file("[server]\nbnd = \"x\"\n").path()).unwrap_err();
        assert!(err.0.contains("unknown field `bnd`"), "{err}");
        let err = Config::read_file(file("[server]\ntimeout_secs = \"soon\"\n").path()).unwrap_err();
        assert!(err.0.contains("timeout_secs"), "{err}");
    }

    #[test]
    fn auth_switches_and_redaction() {
        let config = Config::load(None, &env(&[("EMDP_NO_AUTH", "1")]), &[]).unwrap();
        assert_eq!(config.auth.enabled, Some(false));
        let config = Config::load(None, &env(&[("EMDP_NO_AUTH", "false")]), &[]).unwrap();
        assert_eq!(config.auth.enabled, None, "auto: on when a key exists");
        let config = Config::load(None, &env(&[("DATABASE_URL", "postgres://u:secret@db/emdp")]), &[]).unwrap();
        let shown = config.redacted_toml();
        assert!(!shown.contains("secret") && shown.contains("postgres://u:***@db/emdp"), "{shown}");
        assert_eq!(Config::parse_toml(&Config::default().redacted_toml()).unwrap(), Config::default());
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
        let flags = [("mqtt.url", "mqtt://broker:1884".to_owned(), "--mqtt-url")];
        let config = Config::load(Some(toml.path()), &vars, &flags).unwrap();
        assert_eq!(config.mqtt.topic, ["a/+/records", "b/#"]);
        assert_eq!(config.mqtt.url.as_deref(), Some("mqtt://broker:1884"));
        assert_eq!(config.alerts.webhook_secret.as_deref(), Some("other"));

        let shown = config.redacted_toml();
        assert!(!shown.contains("other") && shown.contains("webhook_secret = \"***\""), "{shown}");
        let mut back = Config::parse_toml(&shown).unwrap();
        back.alerts.webhook_secret = config.alerts.webhook_secret.clone();
        assert_eq!(back, config, "config show round-trips, the secret aside");
    }

    #[test]
    fn invalid_realtime_settings_name_the_key() {
        let bad = |text: &str| Config::load(Some(file(text).path()), &env(&[]), &[]).unwrap_err().0;
        assert!(bad("[mqtt]\nurl = \"tcp://x\"\n").contains("mqtt.url"));
        assert!(bad("[alerts]\nwebhook_urls = \"http://a\"\n").contains("webhook_secret"));
        let err = bad("[[alerts.rules]]\nname = \"x\"\nkind = \"threshold\"\n");
        assert!(err.contains("alerts.rules[0] (x)") && err.contains("above"), "{err}");
        let err = bad("[[alerts.rules]]\nname = \"x\"\nkind = \"nope\"\n");
        assert!(err.contains("alerts.rules[0]"), "{err}");
        let err = bad("[[alerts.rules]]\nname = \"x\"\nkind = \"stale\"\nparams = { max_silence_seconds = 1 }\n\
                       [[alerts.rules]]\nname = \"x\"\nkind = \"stale\"\nparams = { max_silence_seconds = 2 }\n");
        assert!(err.contains("used twice"), "{err}");
        assert!(bad("[alerts]\nrules = [{ name = \"x\", kind = \"stale\", typo = 1 }]\n").contains("typo"));
    }
}
