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
