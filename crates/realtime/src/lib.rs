//! emdp's real-time adapters.
//!
//! - [`mqtt::Subscriber`]: subscribes with QoS 1 and manual acknowledgements; messages (a JSON
//!   object, a JSON array or NDJSON) are batched (up to `batch_messages` or `batch_ms`), stored
//!   through the same ingest use case as the API (one batch per topic with source
//!   `mqtt:<topic>`), evaluated by the alert engine, and only then acknowledged. A store that
//!   fails is retried with backoff without acknowledging, so nothing is lost; the broker
//!   connection reconnects with backoff (persistent session: `clean_session = false`).
//! - [`mqtt::AlertPublisher`]: publishes every alert event to `energy/alerts/<severity>/<building>`.
//! - [`webhook::WebhookNotifier`]: POSTs every alert event to configured URLs, signed with
//!   `X-Emdp-Signature: sha256=<hex HMAC-SHA256 of the body>`, retried with exponential
//!   backoff, every attempt recorded in the alert store.

pub mod mqtt;
pub mod webhook;

pub use mqtt::{AlertPublisher, MqttConfig, Subscriber, SubscriberStats, parse_mqtt_url};
pub use webhook::{WebhookConfig, WebhookNotifier, sign};

/// Installs the `ring` rustls provider for the process (HTTPS webhooks). Safe to call again.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
