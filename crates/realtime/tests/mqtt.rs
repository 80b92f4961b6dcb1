//! MQTT ingestion against a real Mosquitto broker: the shared one named by
//! `EMDP_TEST_MQTT_URL` (set by `scripts/test`), and, for the restart test, a private broker
//! started on a random port so that other tests are not disturbed.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use emdp_app::ports::{Clock, RecordFilter, RecordStore, SystemClock};
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
    let subscriber = Subscriber::new(config.clone(), ingestor(db.store.clone()), None);
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
    let subscriber = Subscriber::new(config.clone(), ingestor(db.store.clone()), None);
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
