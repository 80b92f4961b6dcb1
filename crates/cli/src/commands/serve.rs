//! `emdp serve`: run the HTTP API on the stores, configured by [`crate::config::Config`]
//! (defaults < config file < environment < these flags).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use emdp_api::ApiConfig;
use emdp_api::server::{Auth, Server, ServerError, Settings};
use emdp_api::state::GuardConfig;
use emdp_app::ports::SystemClock;

use crate::commands::validate::load_rules;
use crate::config::{Config, LogFormat};
use crate::error::CliError;

/// Run the HTTP API (`/api/v1`, the MVP's routes, `/docs`, `/redoc`, `/openapi.json`, `/metrics`).
///
/// Every flag overrides the same setting from the environment (`EMDP_*`, `DATABASE_URL`) and
/// the config file (`emdp.toml` or `--config`); see `emdp config show`.
#[derive(Debug, Default, clap::Args)]
pub struct Args {
    /// The config file (default: `EMDP_CONFIG`, else `emdp.toml` in the working directory if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address and port to listen on [default 127.0.0.1:8000; env EMDP_BIND].
    #[arg(long)]
    pub bind: Option<String>,
    /// Quality thresholds as TOML [env EMDP_RULES].
    #[arg(long, value_name = "FILE")]
    pub rules: Option<String>,
    /// How conflicting duplicates are resolved: prefer_valid, keep_first, keep_latest, manual
    /// (`keep-latest` is read too) [env EMDP_POLICY].
    #[arg(long)]
    pub policy: Option<String>,
    /// The largest request body accepted, in bytes [default 10 MiB; env EMDP_BODY_LIMIT].
    #[arg(long)]
    pub body_limit: Option<String>,
    /// The most records one request body may hold; more is a 413 [default 10000; env
    /// EMDP_MAX_RECORDS].
    #[arg(long)]
    pub max_records: Option<String>,
    /// The longest a request may take, in seconds, 0 for none [default 30; env EMDP_TIMEOUT_SECS].
    #[arg(long)]
    pub timeout_secs: Option<String>,
    /// Requests handled at once, 0 for no cap [default 256; env EMDP_MAX_CONCURRENT].
    #[arg(long)]
    pub max_concurrent: Option<String>,
    /// Serve without API keys (prints a warning) [env EMDP_NO_AUTH].
    #[arg(long)]
    pub no_auth: bool,
    /// Serve `/metrics` without a key [env EMDP_METRICS_PUBLIC].
    #[arg(long)]
    pub metrics_public: bool,
    /// Requests per second per key or client IP [default 50; env EMDP_RATE_LIMIT_PER_SECOND].
    #[arg(long)]
    pub rate_limit_per_second: Option<String>,
    /// Requests that may arrive at once per key or client IP [default 100; env EMDP_RATE_LIMIT_BURST].
    #[arg(long)]
    pub rate_limit_burst: Option<String>,
    /// Logs as `pretty` or `json` [env EMDP_LOG_FORMAT].
    #[arg(long)]
    pub log_format: Option<String>,
    /// The database [default sqlite://emdp.db; env DATABASE_URL].
    #[arg(long)]
    pub database_url: Option<String>,
    /// MQTT broker to ingest from and publish alerts to, `mqtt://HOST:PORT` [env EMDP_MQTT_URL].
    #[arg(long)]
    pub mqtt_url: Option<String>,
    /// MQTT topic filters to subscribe to, repeated or comma-separated [default energy/+/records;
    /// env EMDP_MQTT_TOPIC].
    #[arg(long, value_delimiter = ',')]
    pub mqtt_topic: Vec<String>,
    /// Webhook URLs for alert events, repeated or comma-separated [env EMDP_WEBHOOK_URLS].
    #[arg(long, value_delimiter = ',')]
    pub webhook_url: Vec<String>,
    /// The HMAC-SHA256 secret of the webhooks' `X-Emdp-Signature` [env EMDP_WEBHOOK_SECRET].
    #[arg(long)]
    pub webhook_secret: Option<String>,
    /// Not an option: `--bind` sets the address and port. Accepted only to say so.
    #[arg(long, hide = true, value_name = "PORT")]
    pub port: Option<String>,
}

impl Args {
    /// The flags given, as (setting, value, flag).
    pub fn overrides(&self) -> Vec<(&'static str, String, &'static str)> {
        let mut flags = Vec::new();
        let mut add = |key, value: &Option<String>, flag| {
            if let Some(value) = value {
                flags.push((key, value.clone(), flag));
            }
        };
        add("database_url", &self.database_url, "--database-url");
        add("server.bind", &self.bind, "--bind");
        add("server.rules", &self.rules, "--rules");
        add("server.policy", &self.policy, "--policy");
        add("server.body_limit", &self.body_limit, "--body-limit");
        add("server.max_records", &self.max_records, "--max-records");
        add("server.timeout_secs", &self.timeout_secs, "--timeout-secs");
        add("server.max_concurrent", &self.max_concurrent, "--max-concurrent");
        add("rate_limit.per_second", &self.rate_limit_per_second, "--rate-limit-per-second");
        add("rate_limit.burst", &self.rate_limit_burst, "--rate-limit-burst");
        add("log.format", &self.log_format, "--log-format");
        add("mqtt.url", &self.mqtt_url, "--mqtt-url");
        add("alerts.webhook_secret", &self.webhook_secret, "--webhook-secret");
        if !self.mqtt_topic.is_empty() {
            flags.push(("mqtt.topic", self.mqtt_topic.join(","), "--mqtt-topic"));
        }
        if !self.webhook_url.is_empty() {
            flags.push(("alerts.webhook_urls", self.webhook_url.join(","), "--webhook-url"));
        }
        if self.no_auth {
            flags.push(("auth.enabled", "false".to_owned(), "--no-auth"));
        }
        if self.metrics_public {
            flags.push(("auth.metrics_public", "true".to_owned(), "--metrics-public"));
        }
        flags
    }

    /// The effective configuration.
    pub fn load(&self) -> Result<Config, CliError> {
        if let Some(port) = &self.port {
            let port = port.trim();
            return Err(CliError::Usage(format!(
                "emdp serve has no --port option: use --bind 127.0.0.1:{port} (or --bind 0.0.0.0:{port} to listen on every interface)"
            )));
        }
        Config::load(self.config.as_deref(), &crate::config::process_env, &self.overrides())
            .map_err(|err| CliError::Usage(err.to_string()))
    }
}

/// Resolves when SIGINT (Ctrl-C) or SIGTERM arrives.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Installs the log subscriber: `RUST_LOG` if set, else the configured level; JSON or pretty,
/// on standard error.
///
/// Lines are written by a thread of their own, in batches, rather than by the request that
/// logs: one `write` per line on every request cost 20 % of `records:validate`'s throughput
/// (bench/api.sh). Nothing is dropped (a full queue makes the logging request wait), and the
/// returned guard writes what is queued when it is dropped: keep it until the server stops.
fn init_logs(config: &Config) -> Result<tracing_appender::non_blocking::WorkerGuard, CliError> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(filter) if !filter.trim().is_empty() => EnvFilter::try_new(&filter)
            .map_err(|err| CliError::Usage(format!("configuration: RUST_LOG: invalid filter '{filter}': {err}")))?,
        _ => EnvFilter::try_new(&config.log.level).map_err(|err| {
            CliError::Usage(format!("configuration: log.level: invalid filter '{}': {err}", config.log.level))
        })?,
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("emdp-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    Ok(guard)
}

/// The server's settings from the effective configuration.
fn settings(config: &Config) -> Result<Settings, CliError> {
    let alert_rules = config
        .alerts
        .rules
        .iter()
        .map(|rule| {
            rule.spec().map_err(|err| CliError::Usage(format!("configuration: alerts.rules ({}): {err}", rule.name)))
        })
        .collect::<Result<_, _>>()?;
    Ok(Settings {
        database_url: config.database_url.clone(),
        database: config.open_options(),
        rules: load_rules(config.server.rules.as_ref())?,
        policy: config.policy(),
        auth: match config.auth.enabled {
            Some(true) => Auth::Required,
            Some(false) => Auth::Disabled,
            None => Auth::IfKeysExist,
        },
        http: ApiConfig {
            body_limit: config.server.body_limit,
            max_records: config.server.max_records,
            guard: GuardConfig {
                // Decided by `auth` when the server is built.
                auth: false,
                metrics_public: config.auth.metrics_public,
                rate_per_second: if config.rate_limit.enabled { config.rate_limit.per_second } else { 0.0 },
                burst: config.rate_limit.burst,
                timeout: config.timeout(),
                max_concurrent: config.server.max_concurrent,
            },
        },
        realtime: emdp_realtime::RealtimeOptions {
            mqtt_url: config.mqtt.url.clone(),
            mqtt_topics: config.mqtt.topic.clone(),
            mqtt_max_attempts: Some(config.mqtt.max_attempts),
            webhook_urls: config.alerts.webhook_urls.clone(),
            webhook_secret: config.alerts.webhook_secret.clone(),
            staleness_every: None,
        },
        alert_rules,
        clock: Arc::new(SystemClock),
    })
}

/// Where clients reach the server: `server.public_url` when set, else the bound address
/// (`localhost` for an address that listens on every interface).
fn base_url(config: &Config) -> String {
    if let Some(url) = &config.server.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let bind = config.server.bind;
    if bind.ip().is_unspecified() { format!("http://localhost:{}", bind.port()) } else { format!("http://{bind}") }
}

/// The start-up line: the dashboard, the API docs and the API under `base`.
fn serving(base: &str) -> String {
    format!(
        "{base} (dashboard {base}/, API docs {base}/docs and {base}/redoc, API {base}/api/v1, metrics {base}/metrics)"
    )
}

fn server_error(err: ServerError) -> CliError {
    match err {
        ServerError::Store(err) => CliError::Store(err),
        other => CliError::Usage(other.to_string()),
    }
}

/// Runs `emdp serve`.
pub fn run(args: Args) -> Result<ExitCode, CliError> {
    let config = args.load()?;
    // Before anything records a metric.
    emdp_api::telemetry::install_metrics();
    let _logs = init_logs(&config)?;
    let settings = settings(&config)?;
    let bind = config.server.bind;
    crate::db::block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|err| CliError::Usage(format!("cannot listen on {bind}: {err}")))?;
        let server = Server::build(settings).await.map_err(server_error)?;
        match config.auth.enabled {
            Some(false) => eprintln!(
                "emdp: warning: authentication is disabled (--no-auth): anyone who can reach {bind} can read and change the data"
            ),
            None if !server.auth() => eprintln!(
                "emdp: warning: no API key exists, so authentication is off; create one with `emdp keys create --name NAME --role admin`"
            ),
            _ => {}
        }
        let auth = server.auth();
        let base = base_url(&config);
        tracing::info!(
            address = %bind,
            dashboard = %format!("{base}/"),
            docs = %format!("{base}/docs"),
            api = %format!("{base}/api/v1"),
            database = %emdp_storage::redact(&config.database_url),
            auth,
            "emdp serving"
        );
        eprintln!("emdp: serving {}", serving(&base));
        server.serve(listener, shutdown_signal()).await.map_err(server_error)?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_up_line_names_the_dashboard_the_docs_and_the_api() {
        let mut config = Config::default();
        assert_eq!(
            serving(&base_url(&config)),
            "http://127.0.0.1:8000 (dashboard http://127.0.0.1:8000/, API docs http://127.0.0.1:8000/docs and \
             http://127.0.0.1:8000/redoc, API http://127.0.0.1:8000/api/v1, metrics http://127.0.0.1:8000/metrics)"
        );
        config.server.bind = "0.0.0.0:9000".parse().unwrap_or(config.server.bind);
        assert_eq!(base_url(&config), "http://localhost:9000");
        config.server.public_url = Some("https://emdp.example/".into());
        assert_eq!(base_url(&config), "https://emdp.example");
    }
}
