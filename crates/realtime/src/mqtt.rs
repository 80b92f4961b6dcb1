//! MQTT ingestion and alert publishing (rumqttc, MQTT 3.1.1).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use emdp_app::ports::{
    AlertEvent, DeadLetterPayload, DeadLetterStore, NewDeadLetter, RawRow, RecordSource, SourceFormat, StoreError,
};
use emdp_app::usecases::alerts::AlertEngine;
use emdp_app::usecases::ingest::Ingestor;
use emdp_formats::{JsonArraySource, NdjsonSource};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// The exponential wait between reconnection or store attempts: 100 ms, doubling up to 5 s.
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Backoff(Self::FIRST)
    }

    /// The wait before the next attempt, in milliseconds (for logs).
    fn millis(&self) -> u64 {
        self.0.as_millis() as u64
    }

    /// Waits before the next attempt; the one after it waits twice as long.
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Self::MAX);
    }

    /// Starts again from the first wait (after a success).
    fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
}

/// How many store attempts failing with a message's own error (not an outage) a message gets
/// before it is kept as a dead letter, by default.
pub const DEFAULT_MAX_ATTEMPTS: NonZeroU32 = NonZeroU32::new(5).expect("5 is not zero");

/// Where and how to subscribe.
#[derive(Debug, Clone)]
pub struct MqttConfig {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic filters (e.g. `energy/+/records`).
    pub topics: Vec<String>,
    /// The client id: fixed, so the broker keeps the session (and unacknowledged messages)
    /// across reconnections.
    pub client_id: String,
    /// Most messages per stored batch.
    pub batch_messages: usize,
    /// Longest wait for more messages before a batch is stored, ms.
    pub batch_ms: u64,
    /// Store attempts failing with a message's own error (a database outage does not count)
    /// before the message is kept as a dead letter and acknowledged.
    pub max_attempts: NonZeroU32,
}

impl MqttConfig {
    /// Settings for `url` (`mqtt://HOST:PORT`) and `topics`, with the default batching.
    pub fn new(url: &str, topics: Vec<String>) -> Result<Self, String> {
        let (host, port) = parse_mqtt_url(url)?;
        Ok(MqttConfig {
            host,
            port,
            topics,
            client_id: "emdp-ingest".into(),
            batch_messages: 1000,
            batch_ms: 20,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        })
    }

    fn options(&self, client_id: &str, clean: bool) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        options.set_keep_alive(Duration::from_secs(10));
        options.set_clean_session(clean);
        options.set_max_packet_size(64 * 1024 * 1024, 64 * 1024 * 1024);
        options.set_inflight(1000);
        options
    }
}

/// Splits `mqtt://HOST:PORT` (or `tcp://`, or `HOST:PORT`; port 1883 by default).
pub fn parse_mqtt_url(url: &str) -> Result<(String, u16), String> {
    let rest = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).unwrap_or(url);
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("invalid MQTT URL '{url}': expected mqtt://HOST:PORT"));
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse().map_err(|_| format!("invalid port in MQTT URL '{url}'"))?;
            Ok((host.to_owned(), port))
        }
        None => Ok((rest.to_owned(), 1883)),
    }
}

/// Counters of a running subscriber.
#[derive(Debug, Default)]
pub struct SubscriberStats {
    /// Messages stored and acknowledged.
    pub messages: AtomicU64,
    /// Records (rows) stored.
    pub records: AtomicU64,
    /// Failed store attempts (retried).
    pub store_failures: AtomicU64,
    /// Messages kept as dead letters (and acknowledged) after their attempts.
    pub dead_letters: AtomicU64,
    /// Broker connections made.
    pub connections: AtomicU64,
    /// Subscriptions the broker confirmed.
    pub subscriptions: AtomicU64,
}

/// Subscribes to topics and stores every message.
pub struct Subscriber {
    config: MqttConfig,
    ingestor: Ingestor,
    dead_letters: Arc<dyn DeadLetterStore>,
    alerts: Option<AlertEngine>,
    stats: Arc<SubscriberStats>,
}

impl Subscriber {
    /// A subscriber storing through `ingestor`, keeping the messages it gives up on in
    /// `dead_letters`, evaluating `alerts` after each batch.
    pub fn new(
        config: MqttConfig,
        ingestor: Ingestor,
        dead_letters: Arc<dyn DeadLetterStore>,
        alerts: Option<AlertEngine>,
    ) -> Self {
        Subscriber { config, ingestor, dead_letters, alerts, stats: Arc::default() }
    }

    /// The counters (shared with the running tasks).
    pub fn stats(&self) -> Arc<SubscriberStats> {
        self.stats.clone()
    }

    /// Starts the connection and the writer; abort the handle to stop both.
    pub fn spawn(self) -> JoinHandle<()> {
        let options = self.config.options(&self.config.client_id, false);
        let (client, eventloop) = AsyncClient::new(options, 10_000);
        let (sender, receiver) = mpsc::channel(20_000);
        let connection =
            tokio::spawn(drive(eventloop, client.clone(), self.config.topics.clone(), sender, self.stats.clone()));
        let writer = Writer {
            client,
            ingestor: self.ingestor,
            dead_letters: self.dead_letters,
            alerts: self.alerts,
            stats: self.stats,
            batch_messages: self.config.batch_messages.max(1),
            batch_wait: Duration::from_millis(self.config.batch_ms),
            max_attempts: self.config.max_attempts.get(),
        };
        tokio::spawn(async move {
            let _abort_connection = AbortOnDrop(connection);
            writer.run(receiver).await;
        })
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Polls the connection: forwards publishes, subscribes on every connection, reconnects with
/// exponential backoff.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    topics: Vec<String>,
    sender: mpsc::Sender<Publish>,
    stats: Arc<SubscriberStats>,
) {
    let mut backoff = Backoff::new();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if sender.send(publish).await.is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                stats.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(session_present = ack.session_present, "MQTT connected");
                for topic in &topics {
                    if let Err(err) = client.try_subscribe(topic.as_str(), QoS::AtLeastOnce) {
                        tracing::warn!(%topic, error = %err, "MQTT subscribe failed");
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                stats.subscriptions.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = backoff.millis(), "MQTT connection lost");
                backoff.wait().await;
            }
        }
    }
}

struct Writer {
    client: AsyncClient,
    ingestor: Ingestor,
    dead_letters: Arc<dyn DeadLetterStore>,
    alerts: Option<AlertEngine>,
    stats: Arc<SubscriberStats>,
    batch_messages: usize,
    batch_wait: Duration,
    max_attempts: u32,
}

/// A message as received: acknowledged once stored or kept as a dead letter.
struct Message {
    publish: Publish,
    received_at: DateTime<Utc>,
}

/// Why rows were not stored: a failure of their own, repeated `attempts` times.
struct GaveUp {
    error: StoreError,
    attempts: u32,
}

impl Writer {
    async fn run(self, mut receiver: mpsc::Receiver<Publish>) {
        let mut batch: Vec<Message> = Vec::with_capacity(self.batch_messages);
        while let Some(first) = receiver.recv().await {
            batch.push(self.received(first));
            let deadline = tokio::time::Instant::now() + self.batch_wait;
            while batch.len() < self.batch_messages {
                tokio::select! {
                    message = receiver.recv() => match message {
                        Some(message) => batch.push(self.received(message)),
                        None => break,
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            self.store(&batch).await;
            for message in batch.drain(..) {
                // Acknowledged only now that it is stored (or kept as a dead letter).
                if let Err(err) = self.client.ack(&message.publish).await {
                    tracing::warn!(error = %err, "MQTT ack failed: the broker will redeliver");
                }
            }
        }
    }

    fn received(&self, publish: Publish) -> Message {
        Message { publish, received_at: self.ingestor.clock().now() }
    }

    /// Stores the batch, one ingest batch per topic. A topic's messages that fail together
    /// with an error of their own are stored one by one, so that one poison message is kept
    /// as a dead letter and the others are stored.
    async fn store(&self, batch: &[Message]) {
        let mut topics: Vec<(&str, Vec<&Message>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for message in batch {
            let topic = message.publish.topic.as_str();
            let slot = *index.entry(topic).or_insert_with(|| {
                topics.push((topic, Vec::new()));
                topics.len() - 1
            });
            topics[slot].1.push(message);
        }
        for (topic, messages) in topics {
            let mut rows: Vec<RawRow> = Vec::new();
            for message in &messages {
                let before = rows.len() as i64;
                let mut message_rows = classify_message(&self.ingestor, &message.publish.payload);
                for (offset, row) in message_rows.iter_mut().enumerate() {
                    row.line = before + offset as i64 + 1;
                }
                rows.extend(message_rows);
            }
            if rows.is_empty() {
                continue;
            }
            let source = format!("mqtt:{topic}");
            if let [message] = messages.as_slice() {
                if let Err(gave_up) = self.store_rows(&source, &rows, self.max_attempts).await {
                    self.dead_letter(topic, message, gave_up).await;
                }
                continue;
            }
            if let Err(GaveUp { error, .. }) = self.store_rows(&source, &rows, 1).await {
                tracing::warn!(%error, %source, messages = messages.len(),
                    "storing a batch of MQTT messages failed: storing them one by one");
                for message in messages {
                    let rows = classify_message(&self.ingestor, &message.publish.payload);
                    if rows.is_empty() {
                        continue;
                    }
                    if let Err(gave_up) = self.store_rows(&source, &rows, self.max_attempts).await {
                        self.dead_letter(topic, message, gave_up).await;
                    }
                }
            }
        }
        self.stats.messages.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    /// Stores `rows` as one batch from `source` and evaluates the alert rules on them.
    /// Retries with backoff: an outage (the database unreachable, full, of another schema)
    /// for as long as it lasts, since every message would fail alike and none is to blame; a
    /// failure of the rows' own until `max_attempts` of them, then gives up.
    async fn store_rows(&self, source: &str, rows: &[RawRow], max_attempts: u32) -> Result<(), GaveUp> {
        let mut backoff = Backoff::new();
        let mut attempts = 0;
        loop {
            match self.ingestor.ingest_rows(rows, source, SourceFormat::Ndjson, None, None).await {
                Ok((_, links)) => {
                    self.stats.records.fetch_add(rows.len() as u64, Ordering::Relaxed);
                    if let Some(alerts) = &self.alerts
                        && let Err(err) = alerts.on_ingested(source, rows, &links).await
                    {
                        tracing::warn!(error = %err, "alert evaluation failed");
                    }
                    return Ok(());
                }
                Err(error) => {
                    self.stats.store_failures.fetch_add(1, Ordering::Relaxed);
                    if !error.is_outage() {
                        attempts += 1;
                        if attempts >= max_attempts {
                            return Err(GaveUp { error, attempts });
                        }
                    }
                    tracing::warn!(%error, %source, attempts, retry_in_ms = backoff.millis(),
                        "storing MQTT messages failed: not acknowledged, retrying");
                    backoff.wait().await;
                }
            }
        }
    }

    /// Keeps a message given up on as a dead letter, retrying until that is stored: only then
    /// is it acknowledged, so it is never lost.
    async fn dead_letter(&self, topic: &str, message: &Message, gave_up: GaveUp) {
        let letter = NewDeadLetter {
            topic: topic.to_owned(),
            payload: DeadLetterPayload::from_bytes(&message.publish.payload),
            received_at: message.received_at,
            error: gave_up.error.to_string(),
            attempts: gave_up.attempts,
            dead_at: self.ingestor.clock().now(),
        };
        let mut backoff = Backoff::new();
        loop {
            match self.dead_letters.add_dead_letter(&letter).await {
                Ok(id) => {
                    self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("emdp_mqtt_dead_letters_total").increment(1);
                    tracing::warn!(id, %topic, attempts = letter.attempts, error = %letter.error,
                        bytes = message.publish.payload.len(),
                        "MQTT message kept as a dead letter and acknowledged: it could not be stored");
                    return;
                }
                Err(err) => {
                    tracing::error!(error = %err, %topic, retry_in_ms = backoff.millis(),
                        "keeping an MQTT message as a dead letter failed: not acknowledged, retrying");
                    backoff.wait().await;
                }
            }
        }
    }
}

/// Classifies one message: a JSON document (object or array) when it parses as one, NDJSON
/// otherwise (where a line that is not a JSON object is a `malformed_row`, stored raw).
/// An empty message has no rows.
pub fn classify_message(ingestor: &Ingestor, payload: &[u8]) -> Vec<RawRow> {
    let text = String::from_utf8_lossy(payload);
    let trimmed = text.trim_start();
    if (trimmed.starts_with('[') || trimmed.starts_with('{'))
        && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok()
    {
        let mut source = JsonArraySource::new(text.as_bytes());
        if source.start().is_ok()
            && let Ok(rows) = ingestor.classify_all(&mut source)
        {
            return rows;
        }
    }
    let mut source = NdjsonSource::new(text.as_bytes());
    if source.start().is_err() {
        return Vec::new();
    }
    ingestor.classify_all(&mut source).unwrap_or_default()
}

/// Publishes alert events to `energy/alerts/<severity>/<building>` (QoS 1; `-` when the
/// alert has no building).
pub struct AlertPublisher {
    client: AsyncClient,
    tasks: Vec<JoinHandle<()>>,
}

/// The topic of an alert event.
pub fn alert_topic(event: &AlertEvent) -> String {
    let building = event.alert.building.as_deref().unwrap_or("-");
    let building: String =
        building.chars().map(|c| if matches!(c, '/' | '+' | '#' | '\0') { '_' } else { c }).collect();
    format!("energy/alerts/{}/{}", event.alert.severity.as_str(), building)
}

impl AlertPublisher {
    /// Connects to the broker of `config` and publishes every event of `events`.
    pub fn spawn(config: &MqttConfig, mut events: broadcast::Receiver<AlertEvent>) -> Self {
        let options = config.options(&format!("{}-alerts", config.client_id), true);
        let (client, mut eventloop) = AsyncClient::new(options, 10_000);
        let connection = tokio::spawn(async move {
            let mut backoff = Backoff::new();
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => backoff.reset(),
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "MQTT alert publisher disconnected");
                        backoff.wait().await;
                    }
                }
            }
        });
        let publisher = client.clone();
        let forward = tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "MQTT alert publisher lagged: events skipped");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let payload = serde_json::to_vec(&event).unwrap_or_default();
                if let Err(err) = publisher.publish(alert_topic(&event), QoS::AtLeastOnce, false, payload).await {
                    tracing::warn!(error = %err, "MQTT alert publish failed");
                }
            }
        });
        AlertPublisher { client, tasks: vec![connection, forward] }
    }

    /// Disconnects and stops.
    pub async fn stop(self) {
        let _ = self.client.disconnect().await;
        for task in self.tasks {
            task.abort();
        }
    }
}
