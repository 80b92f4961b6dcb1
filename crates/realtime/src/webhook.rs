//! Signed webhooks for alert events, retried with exponential backoff, every attempt recorded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use emdp_app::ports::{AlertEvent, AlertStore, DeliveryAttempt};
use hmac::{KeyInit, Mac};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Webhook settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// URLs to POST to (`https://` in production; `http://` is accepted for loopback).
    pub urls: Vec<String>,
    /// The HMAC-SHA256 key of `X-Emdp-Signature`.
    pub secret: String,
    /// Attempts per event and URL (default 6).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubles each time (default 500 ms, at most 60 s).
    pub initial_backoff: Duration,
    /// Per-request timeout (default 10 s).
    pub timeout: Duration,
}

impl WebhookConfig {
    /// Settings for `urls` signed with `secret`, with the default retries.
    pub fn new(urls: Vec<String>, secret: impl Into<String>) -> Self {
        WebhookConfig {
            urls,
            secret: secret.into(),
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body under secret>`: the `X-Emdp-Signature` header value.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Delivers alert events to webhooks.
pub struct WebhookNotifier {
    task: JoinHandle<()>,
}

impl WebhookNotifier {
    /// Delivers every event of `events` to every URL of `config`, recording attempts in
    /// `store`. When the receiver lags, the missed events are read back from the store.
    pub fn spawn(
        config: WebhookConfig,
        store: Arc<dyn AlertStore>,
        mut events: broadcast::Receiver<AlertEvent>,
    ) -> Result<Self, String> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|err| format!("cannot build the webhook client: {err}"))?;
        let config = Arc::new(config);
        let task = tokio::spawn(async move {
            let mut last_seq = 0;
            loop {
                let batch = match events.recv().await {
                    Ok(event) => vec![event],
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        store.events_after(last_seq, 10_000).await.unwrap_or_default()
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                for event in batch {
                    if event.seq <= last_seq {
                        continue;
                    }
                    last_seq = event.seq;
                    let event = Arc::new(event);
                    for url in &config.urls {
                        tokio::spawn(deliver(
                            client.clone(),
                            config.clone(),
                            store.clone(),
                            url.clone(),
                            event.clone(),
                        ));
                    }
                }
            }
        });
        Ok(WebhookNotifier { task })
    }

    /// Stops delivering (attempts in progress continue).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// Delivers one event to one URL with retries; returns whether it succeeded.
pub async fn deliver(
    client: reqwest::Client,
    config: Arc<WebhookConfig>,
    store: Arc<dyn AlertStore>,
    url: String,
    event: Arc<AlertEvent>,
) -> bool {
    let body = serde_json::to_vec(event.as_ref()).unwrap_or_default();
    let signature = sign(config.secret.as_bytes(), &body);
    let mut backoff = config.initial_backoff;
    for attempt in 1..=config.max_attempts.max(1) {
        let started = Instant::now();
        let at = chrono::Utc::now();
        let result = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-emdp-signature", &signature)
            .header("x-emdp-event", event.kind.as_str())
            .header("x-emdp-delivery", event.seq.to_string())
            .header("x-emdp-attempt", attempt.to_string())
            .body(body.clone())
            .send()
            .await;
        let (status, error) = match result {
            Ok(response) if response.status().is_success() => (Some(response.status().as_u16()), None),
            Ok(response) => (Some(response.status().as_u16()), Some(format!("HTTP {}", response.status()))),
            Err(err) => (None, Some(err.to_string())),
        };
        let success = error.is_none();
        let record = DeliveryAttempt {
            event_seq: event.seq,
            alert_id: event.alert.id,
            url: url.clone(),
            attempt,
            at,
            status,
            success,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        if let Err(err) = store.record_attempt(&record).await {
            tracing::warn!(error = %err, "cannot record a webhook attempt");
        }
        if success {
            return true;
        }
        tracing::warn!(%url, attempt, error = ?record.error, "webhook delivery failed");
        if attempt < config.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }
    false
}
