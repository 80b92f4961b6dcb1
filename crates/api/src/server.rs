//! The composition root: the one place that builds the whole server from its settings (the
//! stores, the use cases, the real-time tasks, the router and its middleware). `emdp serve`
//! and every API test go through [`Server::build`], so the tests exercise the wiring that
//! ships; what a test varies (its clock, body limit, authentication, rate limit) it varies
//! through [`Settings`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use emdp_app::ports::{Clock, RuleSpec, StoreError, SystemClock};
use emdp_app::usecases::alerts::{AlertEngine, AlertError};
use emdp_app::usecases::analyze::Analyzer;
use emdp_app::usecases::ingest::Ingestor;
use emdp_app::usecases::keys::{KeyError, KeyService};
use emdp_domain::{ConflictPolicy, RuleSet};
use emdp_realtime::{Realtime, RealtimeOptions};
use tokio::net::TcpListener;

use crate::state::{ApiConfig, AppState, Services};

/// Whether requests need an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Every guarded route needs a key.
    Required,
    /// No route needs a key (`--no-auth`).
    Disabled,
    /// Keys are required when at least one exists in the database at start-up (the default of
    /// `emdp serve`).
    IfKeysExist,
}

/// Everything the server is built from.
pub struct Settings {
    /// The database (`sqlite://...` or `postgres://...`).
    pub database_url: String,
    /// How the database is opened: how long a request waits for a connection (a missing
    /// SQLite file is created).
    pub database: emdp_storage::OpenOptions,
    /// The quality thresholds in force.
    pub rules: RuleSet,
    /// How conflicting duplicates are resolved.
    pub policy: ConflictPolicy,
    /// Whether requests need an API key; decides [`crate::state::GuardConfig::auth`].
    pub auth: Auth,
    /// Body limit, rate limit, timeout and concurrency of the HTTP layer.
    pub http: ApiConfig,
    /// The MQTT subscriber and the webhook deliveries.
    pub realtime: RealtimeOptions,
    /// Alert rules to create (or update, by name) at start-up, e.g. from the config file.
    pub alert_rules: Vec<RuleSpec>,
    /// "Today" for the rules and the time of every stamp.
    pub clock: Arc<dyn Clock>,
}

impl Settings {
    /// The defaults on `database_url`: default rules, HTTP and database settings, the
    /// `prefer_valid` policy, no authentication, no MQTT or webhooks, the machine's clock.
    pub fn new(database_url: impl Into<String>) -> Self {
        Settings {
            database_url: database_url.into(),
            database: emdp_storage::OpenOptions::default(),
            rules: RuleSet::default(),
            policy: ConflictPolicy::PreferValid,
            auth: Auth::Disabled,
            http: ApiConfig::default(),
            realtime: RealtimeOptions::default(),
            alert_rules: Vec::new(),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Why the server could not be built or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The database could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting cannot be used (an invalid alert rule, a webhook without its secret, ...).
    #[error("configuration: {0}")]
    Config(String),
    /// The listener failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<AlertError> for ServerError {
    fn from(err: AlertError) -> Self {
        match err {
            AlertError::Store(err) => ServerError::Store(err),
            other => ServerError::Config(format!("alerts.rules: {other}")),
        }
    }
}

/// The server, built and ready to serve: its state and the real-time tasks running beside it.
pub struct Server {
    state: AppState,
    realtime: Realtime,
}

impl Server {
    /// Opens the stores of `settings.database_url` (applying pending migrations), builds the
    /// use cases, seeds the configured alert rules and starts the real-time tasks. On an error
    /// the stores are closed again.
    pub async fn build(settings: Settings) -> Result<Server, ServerError> {
        let url = emdp_storage::DatabaseUrl::parse(&settings.database_url)
            .map_err(|err| ServerError::Config(format!("database_url: {err}")))?;
        let stores = emdp_storage::open_stores_with(&url, &settings.database).await?;
        let records = Arc::clone(&stores.records);
        match assemble(stores, settings).await {
            Ok(server) => Ok(server),
            Err(err) => {
                close(records.as_ref()).await;
                Err(err)
            }
        }
    }

    /// What every handler shares (the stores, the use cases, the resolved settings).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Whether requests need an API key (after [`Auth::IfKeysExist`] was decided).
    pub fn auth(&self) -> bool {
        self.state.config.guard.auth
    }

    /// The whole application, with its middleware.
    pub fn router(&self) -> Router {
        crate::router(self.state.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, letting in-flight requests finish
    /// (graceful shutdown); then stops the real-time tasks and closes the stores, in that
    /// order, so nothing writes to a closed database.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        crate::telemetry::install_metrics();
        // The peer address feeds the per-IP rate limit of anonymous requests.
        let app = self.router().into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        let Server { state, realtime } = self;
        drop(realtime);
        close(state.store.as_ref()).await;
        Ok(served?)
    }
}

/// Closes the stores (they share one pool). A failure only leaves committed pages in
/// SQLite's WAL, where they are read from: a warning, not an error.
async fn close(records: &dyn emdp_app::ports::RecordStore) {
    if let Err(err) = records.close().await {
        tracing::warn!(error = %err, "closing the database; everything committed is kept");
    }
}

async fn assemble(stores: emdp_storage::Stores, settings: Settings) -> Result<Server, ServerError> {
    let Settings { rules, policy, auth, mut http, realtime, alert_rules, clock, .. } = settings;
    let keys = KeyService::new(stores.keys.clone());
    http.guard.auth = match auth {
        Auth::Required => true,
        Auth::Disabled => false,
        Auth::IfKeysExist => keys.any().await.map_err(|err| match err {
            KeyError::Store(err) => ServerError::Store(err),
            other => ServerError::Config(other.to_string()),
        })?,
    };
    let rules = Arc::new(rules);
    let ingestor = Ingestor::new(stores.records.clone(), rules.clone(), clock.clone(), policy);
    let alerts = AlertEngine::new(stores.alerts.clone(), clock.clone())
        .with_analyzer(Analyzer::new(stores.analytics.clone()))
        .with_rules(rules.clone());
    seed_rules(&alerts, &alert_rules).await?;
    // Before anything is ingested: the alert windows as the store left them.
    alerts.restore().await?;
    let realtime = emdp_realtime::start(&realtime, ingestor.clone(), stores.dead_letters.clone(), &alerts)
        .map_err(ServerError::Config)?;
    let state = AppState::new(Services {
        store: stores.records,
        ingestor,
        analyzer: Analyzer::new(stores.analytics),
        quality: stores.quality,
        duplicates: stores.duplicates,
        rules,
        clock,
        keys,
        config: Arc::new(http),
        alerts,
        dead_letters: stores.dead_letters,
    });
    Ok(Server { state, realtime })
}

/// Creates each of `rules`, or replaces the stored rule of the same name when it differs
/// (rules made over the API are left alone).
async fn seed_rules(alerts: &AlertEngine, rules: &[RuleSpec]) -> Result<(), ServerError> {
    if rules.is_empty() {
        return Ok(());
    }
    let stored = alerts.list_rules().await?;
    for spec in rules {
        match stored.iter().find(|existing| existing.spec.name == spec.name) {
            Some(existing) if existing.spec == *spec => {}
            Some(existing) => {
                alerts.update_rule(existing.id, spec).await?;
                tracing::info!(rule = %spec.name, id = existing.id, "alert rule from the config file updated");
            }
            None => {
                let created = alerts.create_rule(spec).await?;
                tracing::info!(rule = %spec.name, id = created.id, "alert rule from the config file created");
            }
        }
    }
    Ok(())
}
