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
pub const KEYS: [(&str, &str); 16] = [
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

    /// The configuration as TOML with secrets hidden (the database password).
    pub fn redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = emdp_storage::redact(&shown.database_url);
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
}
