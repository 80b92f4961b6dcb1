//! MQTT ingestion against a real Mosquitto broker: the shared one named by
//! `EMDP_TEST_MQTT_URL` (set by `scripts/test`), and, for the restart test, a private broker
//! started on a random port so that other tests are not disturbed.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::num::NonZeroU32;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use emdp_app::ports::{
    BatchFilter, BatchId, BatchInfo, Clock, DeadLetterPayload, DeadLetterStore, IngestTx, KeyProbe, NewBatch,
    NewRecord, PoolUsage, Probed, RawLink, RawRow, RawVersion, RecordFilter, RecordId, RecordKey, RecordStore,
    RecordUpdate, StoreError, StoredKey, StoredRecord, SystemClock,
};
use emdp_app::usecases::ingest::Ingestor;
use emdp_domain::{ConflictPolicy, RuleSet};
use emdp_realtime::{MqttConfig, Subscriber, SubscriberStats};
use rumqttc::{AsyncClient, MqttOptions, QoS};

/// The broker of the machine, or `None` (with a notice) when the variable is unset.
fn broker_url() -> Option<String> {
    match std::env::var("EMDP_TEST_MQTT_URL").ok().filter(|url| !url.is_empty()) {
        Some(url) => Some(url),
        None => {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI=true needs EMDP_TEST_MQTT_URL");
            eprintln!("NOTICE: EMDP_TEST_MQTT_URL is not set: skipping an MQTT test");
            None
        }
    }
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The dead-letter store of the database at `url`.
async fn dead_letters(url: &str) -> Arc<dyn DeadLetterStore> {
    emdp_storage::open_stores(url).await.unwrap().dead_letters
}

fn ingestor(store: Arc<dyn RecordStore>) -> Ingestor {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ingestor::new(store, Arc::new(RuleSet::default()), clock, ConflictPolicy::PreferValid)
}

/// Waits for `condition`, polling, up to `timeout`.
async fn wait_for(what: &str, timeout: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_subscribed(stats: &SubscriberStats, count: u64) {
    let started = Instant::now();
    while stats.subscriptions.load(Ordering::Relaxed) < count {
        assert!(started.elapsed() < Duration::from_secs(20), "the subscriber never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A QoS 1 publisher with a persistent session, its connection polled (and re-established with
/// a short backoff) in the background.
fn publisher(host: &str, port: u16, id: &str) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mut options = MqttOptions::new(id, host, port);
    options.set_clean_session(false);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
    let (client, mut eventloop) = AsyncClient::new(options, 10_000);
    let task = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    (client, task)
}

async fn all_records(store: &dyn RecordStore) -> Vec<emdp_app::ports::StoredRecord> {
    store.list_records(&RecordFilter::default(), None, 100_000).await.unwrap()
}

fn record(building: &str, day: u32) -> String {
    format!(
        r#"{{"building_id":"{building}","date":"2025-01-{day:02}","consumption":{},"temperature":5,"provider":"acme"}}"#,
        100 + day
    )
}

#[tokio::test]
async fn objects_arrays_ndjson_and_malformed_messages_are_stored_with_their_topic() {
    let Some(url) = broker_url() else { return };
    let db = emdp_testkit::sqlite().await;
    let prefix = unique("emdp-test");
    let mut config = MqttConfig::new(&url, vec![format!("{prefix}/+/records")]).unwrap();
    config.client_id = unique("emdp-sub");
    let subscriber = Subscriber::new(config.clone(), ingestor(db.store.clone()), dead_letters(&db.url).await, None);
    let stats = subscriber.stats();
    let running = subscriber.spawn();
    wait_subscribed(&stats, 1).await;

    let (client, _poll) = publisher(&config.host, config.port, &unique("emdp-pub"));
    let topic = format!("{prefix}/B1/records");
    let messages = [
        record("B1", 1),
        format!("[{},{}]", record("B1", 2), record("B1", 3)),
        format!("{}\n{}\n", record("B1", 4), record("B1", 5)),
        "this is not JSON {".to_owned(),
        String::new(),
    ];
    for message in &messages {
        client.publish(topic.as_str(), QoS::AtLeastOnce, false, message.clone()).await.unwrap();
    }
    let store = db.store.clone();
    wait_for("6 stored records", Duration::from_secs(20), async || all_records(store.as_ref()).await.len() == 6).await;
    running.abort();

    let records = all_records(db.store.as_ref()).await;
    let mut malformed = 0;
    for record in &records {
        let history = db.store.record_history(record.id).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].source, format!("mqtt:{topic}"));
        if history[0].payload == "this is not JSON {" {
            malformed += 1;
            assert_ne!(record.state.status, emdp_domain::QualityStatus::Valid);
            assert!(history[0].reasons.contains(emdp_domain::Reason::MalformedRow), "{:?}", history[0].reasons);
        } else {
            assert_eq!(record.state.status, emdp_domain::QualityStatus::Valid, "{:?}", history[0]);
        }
    }
    assert_eq!(malformed, 1);
}

/// A private Mosquitto with persistence, on a random port.
struct Broker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        // Run as root, mosquitto drops to the `mosquitto` user: let it write its persistence file.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {0}/\n\
             max_inflight_messages 1000\nmax_queued_messages 100000\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("mosquitto.conf"), config).unwrap();
        let mut broker = Broker { dir, port, child: None };
        broker.run();
        broker
    }

    fn run(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run mosquitto");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops it gracefully (SIGTERM: it saves its persistence file) and waits for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Publishes each message with QoS 1 and waits for the broker's PUBACK, sending it again
/// (a duplicate, harmless: ingestion is idempotent) when the connection fails first. Returns
/// the number of publishes made.
async fn publish_confirmed(port: u16, messages: Vec<(String, String)>) -> u32 {
    use rumqttc::{Event, Outgoing, Packet};
    let mut options = MqttOptions::new(unique("emdp-pub"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let mut attempts = 0;
    for (topic, payload) in messages {
        'message: loop {
            attempts += 1;
            client.publish(topic.as_str(), QoS::AtLeastOnce, false, payload.clone()).await.unwrap();
            let mut sent = None;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => sent = Some(pkid),
                    Ok(Event::Incoming(Packet::PubAck(ack))) if Some(ack.pkid) == sent => break 'message,
                    Ok(_) => {}
                    Err(_) => {
                        // Drop what rumqttc kept for the next session: this loop sends it again.
                        eventloop.pending.clear();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue 'message;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    attempts
}

#[tokio::test]
async fn a_broker_restart_during_a_stream_loses_nothing() {
    if broker_url().is_none() {
        return;
    }
    let mut broker = Broker::start();
    let db = emdp_testkit::sqlite().await;
    let mut config =
        MqttConfig::new(&format!("mqtt://127.0.0.1:{}", broker.port), vec!["energy/+/records".into()]).unwrap();
    config.client_id = unique("emdp-sub");
    let subscriber = Subscriber::new(config.clone(), ingestor(db.store.clone()), dead_letters(&db.url).await, None);
    let stats = subscriber.stats();
    let running = subscriber.spawn();
    wait_subscribed(&stats, 1).await;

    const TOTAL: u32 = 600;
    let port = broker.port;
    let stream = tokio::spawn(async move {
        let messages = (0..TOTAL).map(|n| {
            let building = format!("B{}", n / 28);
            (format!("energy/{building}/records"), record(&building, n % 28 + 1))
        });
        publish_confirmed(port, messages.collect()).await
    });
    // Restart the broker in the middle of the stream.
    let store = db.store.clone();
    wait_for("the first records", Duration::from_secs(20), async || !all_records(store.as_ref()).await.is_empty())
        .await;
    broker.stop();
    tokio::time::sleep(Duration::from_millis(300)).await; // the broker is down for a while
    broker.run();
    let attempts = stream.await.unwrap();
    assert!(attempts > TOTAL, "some publishes met the restart and were sent again");
    let store = db.store.clone();
    let counters = stats.clone();
    wait_for("every record after the restart", Duration::from_secs(60), async || {
        let stored = all_records(store.as_ref()).await.len();
        if stored != TOTAL as usize {
            eprintln!("stored {stored}, messages {}", counters.messages.load(Ordering::Relaxed));
        }
        stored == TOTAL as usize
    })
    .await;
    assert!(stats.connections.load(Ordering::Relaxed) >= 2, "the subscriber reconnected");
    running.abort();
}

/// A record store that fails on demand: every transaction while `down` (the database
/// unreachable, for every message alike), and the raw rows of any message containing
/// `POISON` (a message that fails by itself, deterministically).
struct FailingStore {
    inner: Arc<dyn RecordStore>,
    down: AtomicBool,
    poison_failures: AtomicU64,
}

impl FailingStore {
    fn over(inner: Arc<dyn RecordStore>) -> Arc<FailingStore> {
        Arc::new(FailingStore { inner, down: AtomicBool::new(false), poison_failures: AtomicU64::new(0) })
    }
}

struct FailingTx<'a> {
    inner: Box<dyn IngestTx + 'a>,
    store: &'a FailingStore,
}

#[async_trait]
impl IngestTx for FailingTx<'_> {
    async fn lock_keys(&mut self, keys: &[&RecordKey]) -> Result<(), StoreError> {
        self.inner.lock_keys(keys).await
    }
    async fn insert_absent(&mut self, records: &[NewRecord]) -> Result<Vec<Option<RecordId>>, StoreError> {
        self.inner.insert_absent(records).await
    }
    async fn insert_unseen(&mut self, records: &[NewRecord]) -> Result<Vec<Option<RecordId>>, StoreError> {
        self.inner.insert_unseen(records).await
    }
    async fn load_keys(&mut self, keys: &[RecordKey]) -> Result<Vec<StoredKey>, StoreError> {
        self.inner.load_keys(keys).await
    }
    async fn probe_keys(&mut self, probes: &[KeyProbe<'_>]) -> Result<Vec<Option<Probed>>, StoreError> {
        self.inner.probe_keys(probes).await
    }
    async fn update_records(&mut self, updates: &[RecordUpdate]) -> Result<(), StoreError> {
        self.inner.update_records(updates).await
    }
    async fn insert_raw(&mut self, batch: BatchId, rows: &[RawRow], links: &[RawLink]) -> Result<(), StoreError> {
        if rows.iter().any(|row| row.payload.contains("POISON")) {
            self.store.poison_failures.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Other("test: this message cannot be stored".into()));
        }
        self.inner.insert_raw(batch, rows, links).await
    }
    async fn progress(&mut self, batch: BatchId, rows: i64) -> Result<(), StoreError> {
        self.inner.progress(batch, rows).await
    }
    async fn create_batch(&mut self, batch: &NewBatch) -> Result<BatchId, StoreError> {
        self.inner.create_batch(batch).await
    }
    async fn finish_batch(&mut self, batch: BatchId, rows: i64, summary: &serde_json::Value) -> Result<(), StoreError> {
        self.inner.finish_batch(batch, rows, summary).await
    }
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.commit().await
    }
}

#[async_trait]
impl RecordStore for FailingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    fn pool_usage(&self) -> PoolUsage {
        self.inner.pool_usage()
    }
    async fn create_batch(&self, batch: &NewBatch) -> Result<BatchId, StoreError> {
        self.inner.create_batch(batch).await
    }
    async fn finish_batch(&self, batch: BatchId, summary: &serde_json::Value) -> Result<(), StoreError> {
        self.inner.finish_batch(batch, summary).await
    }
    async fn begin_ingest(&self) -> Result<Box<dyn IngestTx + '_>, StoreError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable("test: connection refused".into()));
        }
        Ok(Box::new(FailingTx { inner: self.inner.begin_ingest().await?, store: self }))
    }
    async fn get_record(&self, id: RecordId) -> Result<Option<StoredRecord>, StoreError> {
        self.inner.get_record(id).await
    }
    async fn list_records(
        &self,
        filter: &RecordFilter,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        self.inner.list_records(filter, after, limit).await
    }
    async fn record_history(&self, id: RecordId) -> Result<Vec<RawVersion>, StoreError> {
        self.inner.record_history(id).await
    }
    async fn list_batches(
        &self,
        filter: &BatchFilter,
        before: Option<BatchId>,
        limit: u32,
    ) -> Result<Vec<BatchInfo>, StoreError> {
        self.inner.list_batches(filter, before, limit).await
    }
    async fn delete_record(&self, id: RecordId) -> Result<bool, StoreError> {
        self.inner.delete_record(id).await
    }
}

/// A subscriber on a fresh topic of the shared broker, storing through `store`, giving a
/// message `max_attempts`; returns it running with its stats, the topic and a publisher.
async fn failing_subscriber(
    url: &str,
    store: Arc<FailingStore>,
    dead: Arc<dyn DeadLetterStore>,
    max_attempts: u32,
) -> (tokio::task::JoinHandle<()>, Arc<SubscriberStats>, String, AsyncClient, tokio::task::JoinHandle<()>) {
    let prefix = unique("emdp-test");
    let mut config = MqttConfig::new(url, vec![format!("{prefix}/+/records")]).unwrap();
    config.client_id = unique("emdp-sub");
    config.max_attempts = NonZeroU32::new(max_attempts).unwrap();
    let subscriber = Subscriber::new(config.clone(), ingestor(store), dead, None);
    let stats = subscriber.stats();
    let running = subscriber.spawn();
    wait_subscribed(&stats, 1).await;
    let (client, poll) = publisher(&config.host, config.port, &unique("emdp-pub"));
    (running, stats, format!("{prefix}/B1/records"), client, poll)
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_kept_as_a_dead_letter_and_the_stream_goes_on() {
    let Some(url) = broker_url() else { return };
    let db = emdp_testkit::sqlite().await;
    let store = FailingStore::over(db.store.clone());
    let dead = dead_letters(&db.url).await;
    let (running, stats, topic, client, _poll) = failing_subscriber(&url, store.clone(), dead.clone(), 3).await;

    let poison = r#"{"building_id":"B1","date":"2025-01-01","consumption":1,"note":"POISON"}"#;
    for message in [record("B1", 1), poison.to_owned(), record("B1", 2)] {
        client.publish(topic.as_str(), QoS::AtLeastOnce, false, message).await.unwrap();
    }
    let (records, letters) = (db.store.clone(), dead.clone());
    wait_for("the good messages stored and the poison one dead-lettered", Duration::from_secs(20), async || {
        all_records(records.as_ref()).await.len() == 2 && letters.list_dead_letters(None, 10).await.unwrap().len() == 1
    })
    .await;
    // Acknowledged and gone on: a message published afterwards is stored.
    client.publish(topic.as_str(), QoS::AtLeastOnce, false, record("B1", 3)).await.unwrap();
    let records = db.store.clone();
    wait_for("the next message", Duration::from_secs(20), async || all_records(records.as_ref()).await.len() == 3)
        .await;
    running.abort();

    let letters = dead.list_dead_letters(None, 10).await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter.topic, topic);
    assert_eq!(letter.payload, DeadLetterPayload::Utf8(poison.to_owned()), "kept exactly as received");
    assert_eq!(letter.attempts, 3);
    assert!(letter.error.contains("this message cannot be stored"), "{}", letter.error);
    assert!(letter.received_at <= letter.dead_at);
    assert_eq!(stats.dead_letters.load(Ordering::Relaxed), 1);
    // Three attempts of its own, plus at most one with the messages it arrived with.
    let failures = store.poison_failures.load(Ordering::Relaxed);
    assert!((3..=4).contains(&failures), "{failures} failed attempts");
    let stored = all_records(db.store.as_ref()).await;
    assert!(stored.iter().all(|r| r.state.fields.consumption != Some(1.0)), "the poison message is not a record");
}

#[tokio::test]
async fn a_store_that_is_down_for_everyone_is_waited_for_not_dead_lettered() {
    let Some(url) = broker_url() else { return };
    let db = emdp_testkit::sqlite().await;
    let store = FailingStore::over(db.store.clone());
    store.down.store(true, Ordering::Relaxed);
    let dead = dead_letters(&db.url).await;
    let (running, stats, topic, client, _poll) = failing_subscriber(&url, store.clone(), dead.clone(), 2).await;

    client.publish(topic.as_str(), QoS::AtLeastOnce, false, record("B1", 1)).await.unwrap();
    // Twice the attempts a message of its own failing would get.
    let counters = stats.clone();
    wait_for("4 failed attempts", Duration::from_secs(20), async || {
        counters.store_failures.load(Ordering::Relaxed) >= 4
    })
    .await;
    assert!(dead.list_dead_letters(None, 10).await.unwrap().is_empty(), "an outage dead-letters nothing");
    assert_eq!(stats.dead_letters.load(Ordering::Relaxed), 0);

    // The database is back: the message waited for it is stored.
    store.down.store(false, Ordering::Relaxed);
    let records = db.store.clone();
    wait_for("the message once the store is back", Duration::from_secs(20), async || {
        all_records(records.as_ref()).await.len() == 1
    })
    .await;
    running.abort();
    assert!(dead.list_dead_letters(None, 10).await.unwrap().is_empty());
}
