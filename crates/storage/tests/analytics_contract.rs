//! The analytics port's contract: the same data ingested into SQLite and PostgreSQL gives the
//! same buildings, daily observations and day/ISO-week/month series, and both match a
//! reference computed in Rust from the rows.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use emdp_app::ports::{AnalyticsStore, FixedClock, Granularity, RecordStore, SeriesPoint, SeriesQuery};
use emdp_app::usecases::ingest::Ingestor;
use emdp_domain::analysis::DatePeriod;
use emdp_domain::{ConflictPolicy, RuleSet};
use emdp_formats::CsvSource;

const HEADER: &str = "building_id,date,consumption,temperature,provider\n";

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// 70 days of B1 from 2024-12-20 (crossing a year and ISO week 1 of 2025), a second provider
/// on some days, invalid rows that must be ignored, and a second building.
fn rows() -> String {
    let mut s = String::from(HEADER);
    for i in 0..70u64 {
        let date = day(2024, 12, 20) + chrono::Days::new(i);
        let t = -5.0 + (i as f64) * 0.5;
        s.push_str(&format!("B1,{date},{},{t},p1\n", 100.0 + i as f64));
        if i % 7 == 0 {
            s.push_str(&format!("B1,{date},10.25,{},p2\n", t + 1.0));
        }
        if i % 10 == 3 {
            s.push_str(&format!("B1,{date},-1,{t},p3\n")); // INCONSISTENT: ignored
        }
        s.push_str(&format!("B2,{date},{},{t},p1\n", 50.0 + (i % 5) as f64));
    }
    s.push_str("B1,,5,5,p1\n"); // keyless, INCOMPLETE
    s.push_str("B3,2025-01-01,-3,5,p1\n"); // a building without VALID data
    s
}

async fn load(store: &Arc<dyn RecordStore>) {
    let today = day(2025, 6, 30);
    let ingestor = Ingestor::new(
        Arc::clone(store),
        Arc::new(RuleSet::default()),
        Arc::new(FixedClock(today)),
        ConflictPolicy::PreferValid,
    );
    let source = Box::new(CsvSource::new(std::io::Cursor::new(rows().into_bytes())));
    ingestor.ingest(source, "analytics.csv", &()).await.expect("ingest");
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same_series(a: &[SeriesPoint], b: &[SeriesPoint]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((x.period_start, x.valid_days), (y.period_start, y.valid_days));
        for (u, v) in [
            (x.consumption, y.consumption),
            (x.mean_temperature, y.mean_temperature),
            (x.heating_degree_days, y.heating_degree_days),
            (x.cooling_degree_days, y.cooling_degree_days),
        ] {
            assert!(close(u, v), "{x:?} vs {y:?}");
        }
    }
}

/// The series computed in Rust from the daily observations.
fn reference(analytics: &[emdp_domain::analysis::DailyObservation], q: &SeriesQuery) -> Vec<SeriesPoint> {
    let mut out: std::collections::BTreeMap<NaiveDate, Vec<_>> = Default::default();
    for o in analytics.iter().filter(|o| q.period.is_none_or(|p| p.contains(o.date))) {
        out.entry(q.granularity.period_start(o.date)).or_default().push(*o);
    }
    out.into_iter()
        .map(|(start, days)| SeriesPoint {
            period_start: start,
            consumption: days.iter().map(|o| o.consumption).sum(),
            mean_temperature: days.iter().map(|o| o.temperature).sum::<f64>() / days.len() as f64,
            heating_degree_days: days.iter().map(|o| (q.heating_base - o.temperature).max(0.0)).sum(),
            cooling_degree_days: days.iter().map(|o| (o.temperature - q.cooling_base).max(0.0)).sum(),
            valid_days: days.len() as i64,
        })
        .collect()
}

/// Checks one backend against the reference; returns what it read, to compare backends.
async fn check(fixture: &emdp_testkit::TestStore) -> (Vec<emdp_app::ports::BuildingSummary>, Vec<Vec<SeriesPoint>>) {
    load(&fixture.store).await;
    let analytics: Arc<dyn AnalyticsStore> = emdp_storage::open_stores(&fixture.url).await.unwrap().analytics;

    let buildings = analytics.buildings().await.unwrap();
    assert_eq!(buildings.iter().map(|b| b.building_id.as_str()).collect::<Vec<_>>(), ["B1", "B2", "B3"]);
    let b1 = &buildings[0];
    assert_eq!((b1.records, b1.valid_records), (70 + 10 + 7 + 1, 80));
    assert_eq!(
        (b1.first_date, b1.last_date, b1.latest_valid_date),
        (Some(day(2024, 12, 20)), Some(day(2025, 2, 27)), Some(day(2025, 2, 27)))
    );
    assert_eq!((buildings[2].valid_records, buildings[2].latest_valid_date), (0, None));
    assert_eq!(analytics.building("B2").await.unwrap().as_ref(), Some(&buildings[1]));
    assert_eq!(analytics.building("nope").await.unwrap(), None);

    let daily = analytics.daily_observations("B1", None).await.unwrap();
    assert_eq!(daily.len(), 70, "one observation per day");
    assert_eq!(daily[0].consumption, 100.0 + 10.25, "providers summed");
    assert_eq!(daily[0].temperature, -4.5, "temperatures averaged");
    assert_eq!(daily[1].consumption, 101.0);
    let january = DatePeriod::new(day(2025, 1, 1), day(2025, 1, 31)).unwrap();
    let jan = analytics.daily_observations("B1", Some(january)).await.unwrap();
    assert_eq!((jan.len(), jan[0].date, jan[30].date), (31, day(2025, 1, 1), day(2025, 1, 31)));
    assert!(analytics.daily_observations("B3", None).await.unwrap().is_empty());

    let all = analytics.all_daily_observations(None).await.unwrap();
    assert_eq!(all.iter().map(|b| b.building_id.as_str()).collect::<Vec<_>>(), ["B1", "B2"]);
    assert_eq!(all[0].observations, daily);

    let mut series = Vec::new();
    for granularity in [Granularity::Day, Granularity::Week, Granularity::Month] {
        for period in [None, Some(january)] {
            let q =
                SeriesQuery { heating_base: 10.0, cooling_base: 15.0, ..SeriesQuery::new("B1", granularity, period) };
            let s = analytics.series(&q).await.unwrap();
            same_series(&s, &reference(&daily, &q));
            series.push(s);
        }
    }
    let weeks = &series[2];
    assert_eq!(weeks[0].period_start, day(2024, 12, 16), "the ISO week of 2024-12-20 starts on Monday 16");
    assert!(weeks.iter().all(|w| w.period_start.weekday() == chrono::Weekday::Mon));
    assert_eq!(weeks[2].period_start, day(2024, 12, 30), "ISO week 1 of 2025 starts in 2024");
    let months = &series[4];
    assert_eq!(
        months.iter().map(|m| (m.period_start, m.valid_days)).collect::<Vec<_>>(),
        [(day(2024, 12, 1), 12), (day(2025, 1, 1), 31), (day(2025, 2, 1), 27)]
    );
    (buildings, series)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_analytics_match_the_reference() {
    check(&emdp_testkit::sqlite().await).await;
}

emdp_testkit::needs_postgres! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_analytics_match_the_reference() {
        let fixture = emdp_testkit::postgres().await;
        check(&fixture).await;
    }
}

emdp_testkit::needs_postgres! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_and_postgres_return_equal_results() {
        let pg = emdp_testkit::postgres().await;
        let (pg_buildings, pg_series) = check(&pg).await;
        let (lite_buildings, lite_series) = check(&emdp_testkit::sqlite().await).await;
        assert_eq!(pg_buildings, lite_buildings);
        for (a, b) in pg_series.iter().zip(&lite_series) {
            same_series(a, b);
        }
    }
}
