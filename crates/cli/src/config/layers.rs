//! The layers of the configuration as figment providers (the config file; settings given as
//! text by the environment or the command line), how each setting is named in the
//! environment, and the error that says where a bad value came from.
//!
//! Every setting is known from the defaults ([`Settings::of`]): its key (`section.field`),
//! its environment variable ([`variable`]) and how text sets it ([`Shape`]). A new field
//! with a default is thus a new setting everywhere, without a table to extend.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use figment::error::Kind;
use figment::value::{Dict, Empty, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};

use super::ConfigError;

/// The sections whose settings are named in the environment without the section's name
/// (`EMDP_BIND`, not `EMDP_SERVER_BIND`): their names from before sections existed.
const UNPREFIXED: [&str; 3] = ["server", "auth", "alerts"];

/// Settings whose variable does not follow the rule of [`variable`]: `None` when the
/// setting is not read from the environment (tables have no text form).
const RENAMED: [(&str, Option<&str>); 2] = [("database_url", Some("DATABASE_URL")), ("alerts.rules", None)];

/// Variables that switch a setting off when true: `EMDP_NO_AUTH=1` is `auth.enabled = false`
/// (and wins over `EMDP_AUTH`).
const NEGATIONS: [(&str, &str); 1] = [("EMDP_NO_AUTH", "auth.enabled")];

/// The environment variable that sets `key`: `EMDP_` and the key's field in upper case,
/// after the section's name unless the section is one of [`UNPREFIXED`]; a section's
/// `enabled` is the section's name alone (`EMDP_RATE_LIMIT`, `EMDP_AUTH`). `None` for a
/// setting that only the file sets.
pub(super) fn variable(key: &str) -> Option<String> {
    if let Some((_, renamed)) = RENAMED.iter().find(|(renamed, _)| *renamed == key) {
        return renamed.map(str::to_owned);
    }
    let name = match key.split_once('.') {
        None => key.to_owned(),
        Some((section, "enabled")) => section.to_owned(),
        Some((section, field)) if UNPREFIXED.contains(&section) => field.to_owned(),
        Some((section, field)) => format!("{section}_{field}"),
    };
    Some(format!("EMDP_{}", name.to_ascii_uppercase()))
}

/// How text (a variable, a flag) sets a setting, told by the setting's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A string or a number: the text, trimmed (numbers are read from it).
    Text,
    /// `true`/`false` (`1`, `yes`, `on`, ...); empty is false.
    Switch,
    /// Unset by default: empty text unsets it.
    Optional,
    /// A list: comma-separated items, empty ones dropped.
    List,
}

/// Every setting with its shape, in key order.
pub(super) struct Settings(Vec<(String, Shape)>);

impl Settings {
    /// The settings of the configuration whose defaults are `defaults` (one level of
    /// sections).
    pub(super) fn of(defaults: &Dict) -> Self {
        let shape = |value: &Value| match value {
            Value::Bool(..) => Shape::Switch,
            Value::Empty(..) => Shape::Optional,
            Value::Array(..) => Shape::List,
            _ => Shape::Text,
        };
        let mut settings = Vec::new();
        for (name, value) in defaults {
            match value {
                Value::Dict(_, section) => {
                    settings.extend(section.iter().map(|(field, value)| (format!("{name}.{field}"), shape(value))))
                }
                value => settings.push((name.clone(), shape(value))),
            }
        }
        Settings(settings)
    }

    /// Every setting read from the environment, with its variable.
    pub(super) fn variables(&self) -> impl Iterator<Item = (&str, String)> {
        self.0.iter().filter_map(|(key, _)| Some((key.as_str(), variable(key)?)))
    }

    /// The settings given by the environment `env` looks up, as a layer.
    pub(super) fn environment(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Given, ConfigError> {
        let mut given = Given::new("environment");
        for (key, name) in self.variables() {
            if let Some(text) = env(&name) {
                given.push(self, key, &text, &name)?;
            }
        }
        for (name, key) in NEGATIONS {
            if let Some(text) = env(name) {
                let off = parse_switch(&text).map_err(|reason| invalid(name, key, &text, &reason))?;
                if off {
                    given.push(self, key, "false", name)?;
                }
            }
        }
        Ok(given)
    }

    /// The settings given by command-line flags (setting, value, flag), as a layer.
    pub(super) fn flags(&self, flags: &[(&str, String, &str)]) -> Result<Given, ConfigError> {
        let mut given = Given::new("command line");
        for (key, text, flag) in flags {
            given.push(self, key, text, flag)?;
        }
        Ok(given)
    }
}

/// `text` as a switch: `1`, `true`, `yes`, `on`; `0`, `false`, `no`, `off` or nothing.
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// The error for `text`, given for `key` by `origin`.
fn invalid(origin: &str, key: &str, text: &str, reason: &str) -> ConfigError {
    ConfigError(format!("{origin} ({key}): invalid value '{}': {reason}", text.trim()))
}

/// Settings given as text by one source (the environment, the command line), each with the
/// variable or flag that gave it.
pub(super) struct Given {
    name: &'static str,
    values: Dict,
    origins: HashMap<String, String>,
}

impl Given {
    fn new(name: &'static str) -> Self {
        Given { name, values: Dict::new(), origins: HashMap::new() }
    }

    /// Sets `key` from `text`, given by `origin`.
    fn push(&mut self, settings: &Settings, key: &str, text: &str, origin: &str) -> Result<(), ConfigError> {
        let Some(&(_, shape)) = settings.0.iter().find(|(setting, _)| setting == key) else {
            return Err(ConfigError(format!("{origin}: unknown setting '{key}'")));
        };
        let text = text.trim();
        let value = match shape {
            Shape::List => Value::from(
                text.split(',').map(str::trim).filter(|item| !item.is_empty()).map(Value::from).collect::<Vec<_>>(),
            ),
            Shape::Switch if text.is_empty() => Value::from(false),
            Shape::Optional if text.is_empty() => Value::from(Empty::None),
            _ => Value::from(text),
        };
        match key.split_once('.') {
            Some((section, field)) => match self.values.entry(section.to_owned()).or_insert_with(|| Dict::new().into())
            {
                Value::Dict(_, fields) => {
                    fields.insert(field.to_owned(), value);
                }
                _ => return Err(ConfigError(format!("{origin}: '{key}' is not in a section"))),
            },
            None => {
                self.values.insert(key.to_owned(), value);
            }
        }
        self.origins.insert(key.to_owned(), origin.to_owned());
        Ok(())
    }
}

impl Provider for Given {
    fn metadata(&self) -> Metadata {
        let origins = Arc::new(self.origins.clone());
        Metadata::named(self.name).interpolater(move |_: &Profile, keys: &[&str]| {
            let key = keys.join(".");
            origins.get(&key).cloned().unwrap_or(key)
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// A config file, read and parsed.
pub(super) struct File {
    path: PathBuf,
    values: Dict,
}

impl File {
    /// Reads and parses the TOML file at `path`; an error names the file.
    pub(super) fn read(path: &Path) -> Result<Self, ConfigError> {
        let failed = |message: String| ConfigError(format!("{}: {message}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|err| failed(format!("cannot read: {err}")))?;
        let table: toml::Table = toml::from_str(&text).map_err(|err| failed(err.to_string().trim_end().to_owned()))?;
        match Value::serialize(table) {
            Ok(Value::Dict(_, values)) => Ok(File { path: path.to_owned(), values }),
            Ok(_) => Err(failed("not a table".to_owned())),
            Err(err) => Err(failed(err.to_string())),
        }
    }
}

impl Provider for File {
    fn metadata(&self) -> Metadata {
        Metadata::from("config file", Source::File(self.path.clone()))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// Where the value of `key` came from: the file's path, the variable or the flag that gave
/// it, else `default`.
pub(super) fn origin(figment: &Figment, key: &str) -> String {
    let Some(metadata) = figment.find_metadata(key) else { return "default".to_owned() };
    match &metadata.source {
        Some(Source::File(file)) => file.display().to_string(),
        // The environment's and the command line's layers, which name each setting's origin.
        None => metadata.interpolate(figment.profile(), &key.split('.').collect::<Vec<_>>()),
        // The defaults, given in code.
        Some(_) => "default".to_owned(),
    }
}

/// The value of `key` as text, when it is one (a string, a number, a switch).
fn text_of(figment: &Figment, key: &str) -> Option<String> {
    match figment.find_value(key).ok()? {
        Value::String(_, text) => Some(text),
        Value::Num(_, number) => number.to_f64().map(|number| number.to_string()),
        Value::Bool(_, switch) => Some(switch.to_string()),
        Value::Char(_, char) => Some(char.to_string()),
        Value::Empty(..) | Value::Dict(..) | Value::Array(..) => None,
    }
}

/// A failed extraction as an error naming the key, where its value came from, the value and
/// what was expected.
pub(super) fn describe(figment: &Figment, err: figment::Error) -> ConfigError {
    let mut path = err.path.clone();
    let reason = match &err.kind {
        Kind::UnknownField(field, expected) => {
            if path.last() != Some(field) {
                path.push(field.clone());
            }
            format!("unknown field `{field}`, expected one of {}", quoted(expected))
        }
        Kind::UnknownVariant(variant, expected) => {
            format!("unknown variant `{variant}`, expected one of {}", quoted(expected))
        }
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => format!("expected {expected}"),
        Kind::Message(message) => message.clone(),
        other => other.to_string(),
    };
    let key = path.join(".");
    if key.is_empty() {
        return ConfigError(reason);
    }
    let origin = origin(figment, &key);
    match text_of(figment, &key) {
        Some(text) if !matches!(err.kind, Kind::UnknownField(..)) => invalid(&origin, &key, &text, &reason),
        _ => ConfigError(format!("{origin} ({key}): {reason}")),
    }
}

/// `a`, `b`, `c`.
fn quoted(names: &[&str]) -> String {
    names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_follow_the_rule_and_its_exceptions() {
        let cases = [
            ("database_url", Some("DATABASE_URL")),
            ("server.bind", Some("EMDP_BIND")),
            ("server.public_url", Some("EMDP_PUBLIC_URL")),
            ("auth.enabled", Some("EMDP_AUTH")),
            ("auth.metrics_public", Some("EMDP_METRICS_PUBLIC")),
            ("rate_limit.enabled", Some("EMDP_RATE_LIMIT")),
            ("rate_limit.per_second", Some("EMDP_RATE_LIMIT_PER_SECOND")),
            ("log.level", Some("EMDP_LOG_LEVEL")),
            ("mqtt.topic", Some("EMDP_MQTT_TOPIC")),
            ("alerts.webhook_secret", Some("EMDP_WEBHOOK_SECRET")),
            ("alerts.rules", None),
            ("export.format", Some("EMDP_EXPORT_FORMAT")),
            ("cache_dir", Some("EMDP_CACHE_DIR")),
        ];
        for (key, expected) in cases {
            assert_eq!(variable(key).as_deref(), expected, "{key}");
        }
    }

    #[test]
    fn switches_read_the_usual_words() {
        for on in ["1", "true", "YES", " on "] {
            assert_eq!(parse_switch(on), Ok(true), "{on}");
        }
        for off in ["0", "False", "no", "off", ""] {
            assert_eq!(parse_switch(off), Ok(false), "{off}");
        }
        assert!(parse_switch("maybe").is_err());
    }
}
