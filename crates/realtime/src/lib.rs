//! emdp's real-time adapters.
//!
//! - [`mqtt::Subscriber`]: subscribes with QoS 1 and manual acknowledgements; messages (a JSON
//!   object, a JSON array or NDJSON) are batched (up to `batch_messages` or `batch_ms`), stored
//!   through the same ingest use case as the API (one batch per topic with source
//!   `mqtt:<topic>`), evaluated by the alert engine, and only then acknowledged. A store that
//!   fails is retried with backoff without acknowledging, so nothing is lost: for as long as
//!   the database is out (unreachable, full, of another schema), and for a message failing
//!   with an error of its own up to `max_attempts` (default 5) times, after which the message
//!   is kept raw as a dead letter ([`emdp_app::ports::DeadLetterStore`]) and acknowledged, so
//!   that one poison message does not stall the stream. The broker connection reconnects with
//!   backoff (persistent session: `clean_session = false`).
//! - [`mqtt::AlertPublisher`]: publishes every alert event to `energy/alerts/<severity>/<building>`.
//! - [`webhook::WebhookNotifier`]: POSTs every alert event to configured URLs, signed with
//!   `X-Emdp-Signature: sha256=<hex HMAC-SHA256 of the body>`, retried with exponential
//!   backoff, every attempt recorded in the alert store.

pub mod mqtt;
pub mod webhook;

pub use mqtt::{AlertPublisher, DEFAULT_MAX_ATTEMPTS, MqttConfig, Subscriber, SubscriberStats, parse_mqtt_url};
pub use webhook::{WebhookConfig, WebhookNotifier, sign};

/// Installs the `ring` rustls provider for the process (HTTPS webhooks). Safe to call again.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What `emdp serve` runs next to the API.
#[derive(Debug, Clone, Default)]
pub struct RealtimeOptions {
    /// The broker to ingest from and publish alerts to (`mqtt://HOST:PORT`).
    pub mqtt_url: Option<String>,
    /// Topic filters to subscribe to (default `energy/+/records`).
    pub mqtt_topics: Vec<String>,
    /// Store attempts failing with a message's own error before it becomes a dead letter
    /// (default [`DEFAULT_MAX_ATTEMPTS`]).
    pub mqtt_max_attempts: Option<std::num::NonZeroU32>,
    /// Webhook URLs for alert events.
    pub webhook_urls: Vec<String>,
    /// The webhooks' HMAC-SHA256 secret.
    pub webhook_secret: Option<String>,
    /// How often staleness rules are checked (default 10 s).
    pub staleness_every: Option<std::time::Duration>,
}

/// The running real-time tasks; dropping this stops them.
pub struct Realtime {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    publisher: Option<AlertPublisher>,
    notifier: Option<WebhookNotifier>,
}

impl Drop for Realtime {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(notifier) = self.notifier.take() {
            notifier.stop();
        }
        if let Some(publisher) = self.publisher.take() {
            drop(tokio::spawn(publisher.stop()));
        }
    }
}

/// Starts the staleness checks, and as configured the MQTT subscriber (keeping the messages it
/// gives up on in `dead_letters`), the MQTT alert publisher and the webhook notifier. Must run
/// inside a Tokio runtime.
pub fn start(
    options: &RealtimeOptions,
    ingestor: emdp_app::usecases::ingest::Ingestor,
    dead_letters: std::sync::Arc<dyn emdp_app::ports::DeadLetterStore>,
    alerts: &emdp_app::usecases::alerts::AlertEngine,
) -> Result<Realtime, String> {
    let mut realtime = Realtime { tasks: Vec::new(), publisher: None, notifier: None };
    realtime.tasks.push(alerts.spawn_staleness(options.staleness_every.unwrap_or(std::time::Duration::from_secs(10))));
    if !options.webhook_urls.is_empty() {
        let secret = options.webhook_secret.clone().ok_or("--webhook-url needs --webhook-secret")?;
        let config = WebhookConfig::new(options.webhook_urls.clone(), secret);
        realtime.notifier = Some(WebhookNotifier::spawn(config, alerts.store().clone(), alerts.subscribe())?);
    }
    if let Some(url) = &options.mqtt_url {
        let topics = if options.mqtt_topics.is_empty() {
            vec!["energy/+/records".to_owned()]
        } else {
            options.mqtt_topics.clone()
        };
        let mut config = MqttConfig::new(url, topics)?;
        config.max_attempts = options.mqtt_max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        realtime.publisher = Some(AlertPublisher::spawn(&config, alerts.subscribe()));
        realtime.tasks.push(Subscriber::new(config, ingestor, dead_letters, Some(alerts.clone())).spawn());
        tracing::info!(%url, "MQTT ingestion and alert publishing started");
    }
    Ok(realtime)
}
