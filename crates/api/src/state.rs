//! What every handler shares: the stores, the ingest use case, the rules and the settings.

use std::sync::Arc;

use emdp_app::ports::{Clock, DeadLetterStore, DuplicateStore, QualityStore, RecordStore};
use emdp_app::usecases::alerts::AlertEngine;
use emdp_app::usecases::analyze::Analyzer;
use emdp_app::usecases::ingest::Ingestor;
use emdp_app::usecases::keys::KeyService;
use emdp_domain::RuleSet;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The largest request body accepted, in bytes (default 10 MB).
    pub body_limit: usize,
    /// The most records one request body may hold (`records:validate`, `POST /records`);
    /// more is a 413. Default [`ApiConfig::MAX_RECORDS`].
    pub max_records: usize,
    /// Authentication, rate limits, timeout and concurrency (see [`crate::auth`]).
    pub guard: GuardConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { body_limit: 10 * 1024 * 1024, max_records: Self::MAX_RECORDS, guard: GuardConfig::default() }
    }
}

impl ApiConfig {
    /// The default cap on records per request. A body is classified in memory, stored in one
    /// transaction and answered record by record, so memory and the answer grow with its
    /// records: 10,000 records answer in at most a few MB and take tens of MB of memory
    /// (10 times the 1,000-record bodies the benchmarks send). Larger loads are
    /// `emdp ingest`'s, which streams, or several requests.
    pub const MAX_RECORDS: usize = 10_000;
}

/// Authentication and limits of the HTTP layer.
#[derive(Debug, Clone, PartialEq)]
pub struct GuardConfig {
    /// Whether requests need an API key (`Authorization: Bearer emdp_...`); set by
    /// [`crate::server::Server::build`] from [`crate::server::Settings::auth`].
    pub auth: bool,
    /// Whether `/metrics` is served without a key.
    pub metrics_public: bool,
    /// Requests per second each key (or each client IP without a key) may make on average;
    /// 0 disables rate limiting.
    pub rate_per_second: f64,
    /// How many requests may arrive at once before the rate applies (the bucket's size).
    pub burst: u32,
    /// The longest a request may take, queueing included (0: no limit).
    pub timeout: std::time::Duration,
    /// Requests handled at once; further ones wait (0: no limit).
    pub max_concurrent: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            auth: false,
            metrics_public: true,
            rate_per_second: 0.0,
            burst: 0,
            timeout: std::time::Duration::from_secs(60),
            max_concurrent: 0,
        }
    }
}

/// The application state handed to every handler: [`Services`] behind one `Arc`, so that
/// extracting it for a request is one reference-count increment. (Cloning the services field
/// by field, a dozen `Arc`s shared by both worker threads, was 4 % of the server's CPU in the
/// validate benchmark.) Fields are reached through `Deref`: `state.store`.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Shares `services` with every handler.
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What the handlers use: the stores, the use cases and the settings.
pub struct Services {
    /// The raw and curated stores.
    pub store: Arc<dyn RecordStore>,
    /// The ingest use case.
    pub ingestor: Ingestor,
    /// The analysis use cases.
    pub analyzer: Analyzer,
    /// The quality report's aggregates.
    pub quality: Arc<dyn QualityStore>,
    /// Conflict groups and resolution decisions.
    pub duplicates: Arc<dyn DuplicateStore>,
    /// The rule set in force.
    pub rules: Arc<RuleSet>,
    /// The clock ("today" for the rules).
    pub clock: Arc<dyn Clock>,
    /// API keys (authentication).
    pub keys: KeyService,
    /// HTTP settings.
    pub config: Arc<ApiConfig>,
    /// Alert rules, their evaluation and the live alert events.
    pub alerts: AlertEngine,
    /// The MQTT messages given up on.
    pub dead_letters: Arc<dyn DeadLetterStore>,
}
