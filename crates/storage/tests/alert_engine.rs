//! The alert engine's periodic staleness rule, on a real store with a clock the test moves.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use emdp_app::ports::{Clock, EventKind, RuleKind, RuleSpec, Severity};
use emdp_app::usecases::alerts::AlertEngine;
use emdp_app::usecases::ingest::Ingestor;
use emdp_domain::{ConflictPolicy, RuleSet};
use emdp_formats::CsvSource;

/// A clock that stands still until the test moves it.
struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap();
        *now += by;
    }
}

impl Clock for TestClock {
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }

    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_building_fires_a_stale_alert_that_resolves_when_data_returns() {
    let fixture = emdp_testkit::sqlite().await;
    let stores = emdp_storage::open_stores(&fixture.url).await.unwrap();
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let engine = AlertEngine::new(stores.alerts.clone(), clock.clone());
    let ingestor =
        Ingestor::new(stores.records.clone(), Arc::new(RuleSet::default()), clock.clone(), ConflictPolicy::PreferValid);
    engine
        .create_rule(&RuleSpec {
            name: "B1 silent".into(),
            kind: RuleKind::Stale { building: Some("B1".into()), max_silence_seconds: 60 },
            severity: Severity::Warning,
            cooldown_seconds: 0,
            enabled: true,
        })
        .await
        .unwrap();
    let reading = |day: u32| {
        let csv = format!("building_id,date,consumption,temperature,provider\nB1,2025-01-{day:02},10,5,p\n");
        Box::new(CsvSource::new(std::io::Cursor::new(csv.into_bytes())))
    };
    let ingest = |day: u32| {
        let (ingestor, engine) = (ingestor.clone(), engine.clone());
        async move {
            let rows = ingestor.classify_all(reading(day).as_mut()).unwrap();
            let (_, links) =
                ingestor.ingest_rows(&rows, "test", emdp_app::ports::SourceFormat::Csv, None, None).await.unwrap();
            engine.on_ingested("test", &rows, &links).await.unwrap()
        }
    };

    ingest(1).await;
    clock.advance(Duration::seconds(30));
    assert!(engine.check_stale().await.unwrap().is_empty(), "30 s of silence is within the limit");
    clock.advance(Duration::seconds(31));
    let fired = engine.check_stale().await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].kind, EventKind::Fired);
    assert_eq!(fired[0].alert.building.as_deref(), Some("B1"));
    assert!(engine.check_stale().await.unwrap().is_empty(), "a firing alert does not fire again");

    // Data again: the alert resolves (on arrival or at the next check), once.
    let mut events = ingest(2).await;
    events.extend(engine.check_stale().await.unwrap());
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::Resolved]);
}

/// Stores a CSV body as one batch from `source` at the clock's time, without any alert engine
/// (as an earlier process, or `emdp ingest`, would have).
async fn store_csv(ingestor: &Ingestor, source: &str, body: &str) {
    let csv = format!("building_id,date,consumption,temperature,provider\n{body}");
    let mut reader = CsvSource::new(std::io::Cursor::new(csv.into_bytes()));
    let rows = ingestor.classify_all(&mut reader).unwrap();
    ingestor.ingest_rows(&rows, source, emdp_app::ports::SourceFormat::Csv, None, None).await.unwrap();
}

/// The alert windows after a restart: a new engine on the same store rebuilds the last arrival
/// of every building and the latest records of every `valid_share` subject from the store, so
/// a building silent since before the restart is reported stale and a VALID share below its
/// minimum fires, both without a new record.
async fn a_restarted_engine_rebuilds_its_windows_from_the_store(url: String) {
    let stores = emdp_storage::open_stores(&url).await.unwrap();
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let ingestor =
        Ingestor::new(stores.records.clone(), Arc::new(RuleSet::default()), clock.clone(), ConflictPolicy::PreferValid);
    let rule = |name: &str, kind: RuleKind| RuleSpec {
        name: name.into(),
        kind,
        severity: Severity::Warning,
        cooldown_seconds: 0,
        enabled: true,
    };
    let before = AlertEngine::new(stores.alerts.clone(), clock.clone());
    before.create_rule(&rule("silent", RuleKind::Stale { building: None, max_silence_seconds: 60 })).await.unwrap();
    let share = RuleKind::ValidShare {
        scope: emdp_app::ports::ShareScope::Building,
        value: None,
        min_percent: 50.0,
        window: 4,
    };
    before.create_rule(&rule("mostly invalid", share)).await.unwrap();

    // B1: 5 records, the latest 4 of which are 1 VALID in 4 (negative consumptions are not).
    store_csv(&ingestor, "old.csv", "B1,2025-01-01,10,5,p\nB1,2025-01-02,-1,5,p\n").await;
    clock.advance(Duration::seconds(10));
    store_csv(&ingestor, "old.csv", "B1,2025-01-03,-1,5,p\nB1,2025-01-04,11,5,p\nB1,2025-01-05,-1,5,p\n").await;
    // Re-delivered (exact duplicates): not counted in the window, as live.
    store_csv(&ingestor, "again.csv", "B1,2025-01-04,11,5,p\nB1,2025-01-04,11,5,p\n").await;
    // B2: VALID, heard from 40 s later than B1.
    clock.advance(Duration::seconds(40));
    store_csv(
        &ingestor,
        "b2.csv",
        "B2,2025-01-01,10,5,p\nB2,2025-01-02,12,5,p\nB2,2025-01-03,12,5,p\nB2,2025-01-04,12,5,p\n",
    )
    .await;
    drop(before);

    // The restart: a new engine on the same store and clock, no new record.
    let after = AlertEngine::new(stores.alerts.clone(), clock.clone());
    let restored = after.restore().await.unwrap();
    let fired: Vec<_> = restored.iter().map(|e| (e.kind, e.alert.subject.as_str())).collect();
    assert_eq!(fired, [(EventKind::Fired, "building:B1")], "1 VALID in the last 4 of B1, 4 in 4 of B2");
    assert_eq!(restored[0].alert.details["valid"], 1);
    assert!(after.restore().await.unwrap().is_empty(), "a firing alert does not fire again");

    clock.advance(Duration::seconds(30));
    let stale = after.check_stale().await.unwrap();
    let stale: Vec<_> = stale.iter().map(|e| (e.kind, e.alert.subject.as_str())).collect();
    assert_eq!(stale, [(EventKind::Fired, "B1")], "B1 silent for 70 s, B2 for 30 s");
    clock.advance(Duration::seconds(40));
    let stale = after.check_stale().await.unwrap();
    assert_eq!(stale.iter().map(|e| e.alert.subject.as_str()).collect::<Vec<_>>(), ["B2"]);
}

emdp_testkit::every_backend! {
    |fixture| fixture.url.clone() => [a_restarted_engine_rebuilds_its_windows_from_the_store],
}
