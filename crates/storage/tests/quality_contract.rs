//! The quality report and duplicate resolution contract: one suite, run unchanged against
//! SQLite and PostgreSQL, on small hand-made data sets whose figures are counted by hand
//! (gaps, flatlines, stale buildings, conflicts); and one test that both databases compute
//! the identical report on the same data.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use emdp_app::ports::{
    DecisionMethod, DuplicateFilter, FixedClock, QualityFilter, RecordFilter, RecordSource, RecordStore, Resolution,
    StoreError,
};
use emdp_app::usecases::duplicates::{Choice, ResolveError, list_groups, resolve_all, resolve_one};
use emdp_app::usecases::ingest::{IngestSummary, Ingestor};
use emdp_app::usecases::records::{RecordPatch, edit_record};
use emdp_app::usecases::report::{QualityReport, Thresholds, quality_report};
use emdp_domain::{Arrival, ConflictPolicy, FieldName, QualityStatus, Reason, RuleSet};
use emdp_formats::CsvSource;
use emdp_storage::Stores;
use emdp_testkit::TestStore;

const HEADER: &str = "building_id,date,consumption,temperature,provider\n";

fn today() -> NaiveDate {
    day("2025-06-30")
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

async fn stores(fixture: &TestStore) -> Stores {
    emdp_storage::open_stores(&fixture.url).await.expect("open the stores")
}

async fn ingest(store: &Arc<dyn RecordStore>, policy: ConflictPolicy, rows: &str) -> IngestSummary {
    let ingestor =
        Ingestor::new(Arc::clone(store), Arc::new(RuleSet::default()), Arc::new(FixedClock(today())), policy);
    let source: Box<dyn RecordSource + Send> =
        Box::new(CsvSource::new(std::io::Cursor::new(format!("{HEADER}{rows}").into_bytes())));
    ingestor.ingest(source, "quality.csv", &()).await.expect("ingest")
}

/// Building A (provider p): June 1-15 with day 4 missing, day 5 INCONSISTENT, days 6-10 stuck
/// at 50 (a flatline of 5 days), days 12-13 missing, a conflict on day 14 and an exact
/// duplicate on day 15; latest VALID day June 15 (stale on June 30). Building B (q): June
/// 25-29, all VALID, plus an INCOMPLETE reading from provider r and a future-dated one.
/// Building C: one INCOMPLETE record. Two keyless records.
const DATA: &str = "A,2025-06-01,10,5,p\n\
                    A,2025-06-02,11,5,p\n\
                    A,2025-06-03,12,5,p\n\
                    A,2025-06-05,-1,5,p\n\
                    A,2025-06-06,50,5,p\n\
                    A,2025-06-07,50,5,p\n\
                    A,2025-06-08,50,5,p\n\
                    A,2025-06-09,50,5,p\n\
                    A,2025-06-10,50,5,p\n\
                    A,2025-06-11,51,5,p\n\
                    A,2025-06-14,52,5,p\n\
                    A,2025-06-14,53,5,p\n\
                    A,2025-06-15,54,5,p\n\
                    A,2025-06-15,54.0,5,p\n\
                    A,,5,5,p\n\
                    B,2025-06-25,1,5,q\n\
                    B,2025-06-26,2,5,q\n\
                    B,2025-06-27,3,5,q\n\
                    B,2025-06-28,4,5,q\n\
                    B,2025-06-29,5,5,q\n\
                    B,2025-06-28,4,,r\n\
                    B,2030-01-01,4,5,q\n\
                    C,2025-06-10,,5,p\n\
                    ,2025-06-02,5,5,p\n";

async fn report(stores: &Stores, filter: &QualityFilter) -> QualityReport {
    quality_report(stores.quality.as_ref(), filter, today(), Thresholds::default()).await.expect("report")
}

async fn report_counts_every_figure(fixture: &TestStore) {
    ingest(&fixture.store, ConflictPolicy::PreferValid, DATA).await;
    let stores = stores(fixture).await;
    let report = report(&stores, &QualityFilter::default()).await;

    let records = &report.records;
    assert_eq!(
        (records.status.total, records.status.valid, records.status.incomplete, records.status.inconsistent),
        (22, 16, 4, 2)
    );
    assert_eq!((records.conflict_groups, records.pending, records.keyless), (1, 0, 2));
    assert_eq!(records.reasons.get(Reason::MissingDate), 1);
    assert_eq!(records.reasons.get(Reason::DateInFuture), 1);
    assert_eq!(records.reasons.get(Reason::ConsumptionNonPositive), 1);
    assert!((report.shares.valid - 16.0 / 22.0).abs() < 1e-12);

    let rows = &report.rows;
    assert_eq!(
        (rows.status.total, rows.status.valid, rows.status.incomplete, rows.status.inconsistent),
        (24, 18, 4, 2)
    );
    assert_eq!((rows.duplicates.exact, rows.duplicates.conflicting), (1, 1));
    assert_eq!(rows.reasons.get(Reason::MissingTemperature), 1);

    let totals = report.completeness.totals;
    assert_eq!(
        (totals.buildings, totals.expected_days, totals.valid_days, totals.gap_days, totals.gaps),
        (3, 21, 16, 5, 3)
    );
    assert_eq!((totals.longest_gap_days, totals.stale), (2, 2));

    let by = |b: &str| report.completeness.buildings.iter().find(|x| x.building_id == b).unwrap().clone();
    let a = by("A");
    assert_eq!((a.first_day, a.last_day), (Some(day("2025-06-01")), Some(day("2025-06-15"))));
    assert_eq!((a.expected_days, a.valid_days, a.gap_days, a.gaps), (15, 11, 4, 2));
    assert_eq!((a.status.total, a.status.valid, a.status.incomplete, a.status.inconsistent), (13, 11, 1, 1));
    let longest = a.longest_gap.unwrap();
    assert_eq!((longest.start, longest.end, longest.days), (day("2025-06-04"), day("2025-06-05"), 2));
    assert_eq!((a.last_valid_day, a.days_since_valid, a.stale), (Some(day("2025-06-15")), Some(15), true));
    let b = by("B");
    assert_eq!((b.first_day, b.last_day), (Some(day("2025-06-25")), Some(day("2025-06-29"))), "future day ignored");
    assert_eq!((b.expected_days, b.valid_days, b.gap_days, b.gaps, b.stale), (5, 5, 0, 0, false));
    assert_eq!(b.days_since_valid, Some(1));
    let c = by("C");
    assert_eq!((c.expected_days, c.valid_days, c.gap_days, c.last_valid_day, c.stale), (1, 0, 1, None, true));

    let gaps: Vec<_> = report.gaps.iter().map(|g| (g.building_id.as_str(), g.start, g.end, g.days)).collect();
    assert_eq!(
        gaps,
        [
            ("A", day("2025-06-04"), day("2025-06-05"), 2),
            ("A", day("2025-06-12"), day("2025-06-13"), 2),
            ("C", day("2025-06-10"), day("2025-06-10"), 1),
        ]
    );
    let quality = stores.quality.as_ref();
    let all = QualityFilter::default();
    assert_eq!(quality.completeness(&all, today(), 3).await.unwrap(), report.completeness, "one pass = two");
    assert_eq!(quality.gaps(&all, today(), 100).await.unwrap(), report.gaps);
    assert_eq!(quality.gaps(&all, today(), 2).await.unwrap(), report.gaps[..2]);
    let stale: Vec<_> = report.stale.iter().map(|s| s.building_id.as_str()).collect();
    assert_eq!(stale, ["A", "C"]);
    let filters = [all.clone(), QualityFilter { provider: Some("q".into()), ..Default::default() }];
    for filter in &filters {
        let records = quality.record_breakdown(filter).await.unwrap();
        assert_eq!(records.counts, quality.record_counts(filter).await.unwrap(), "one pass = three, {filter:?}");
        assert_eq!(records.providers, quality.by_provider(filter).await.unwrap());
        assert_eq!(records.days, quality.by_day(filter).await.unwrap());
        let rows = quality.row_breakdown(filter).await.unwrap();
        assert_eq!(rows.counts, quality.row_counts(filter).await.unwrap(), "one pass = two, {filter:?}");
        assert_eq!(rows.batches, quality.by_batch(filter).await.unwrap());
    }
    let fresh = quality.freshness(&all, today(), 3).await.unwrap();
    assert_eq!((fresh.buildings, fresh.stale), (totals.buildings, totals.stale), "freshness = completeness totals");
    let building = |b: &str| QualityFilter { building_id: Some(b.into()), ..Default::default() };
    let fresh_b = quality.freshness(&building("B"), today(), 3).await.unwrap();
    assert_eq!((fresh_b.buildings, fresh_b.stale), (1, 0));
    let fresh_b_later = quality.freshness(&building("B"), day("2025-07-03"), 3).await.unwrap();
    assert_eq!((fresh_b_later.buildings, fresh_b_later.stale), (1, 1), "4 days after its last VALID day");
    let nobody = quality.freshness(&building("nobody"), today(), 3).await.unwrap();
    assert_eq!((nobody.buildings, nobody.stale), (0, 0));

    assert_eq!(report.flatlines.len(), 1);
    let flat = &report.flatlines[0];
    assert_eq!((flat.building_id.as_str(), flat.provider.as_str(), flat.consumption), ("A", "p", 50.0));
    assert_eq!((flat.start, flat.end, flat.days), (day("2025-06-06"), day("2025-06-10"), 5));

    let providers: Vec<_> =
        report.breakdowns.providers.iter().map(|p| (p.key.clone(), p.status.total, p.status.valid)).collect();
    assert_eq!(providers, [(Some("p".to_owned()), 15, 11), (Some("q".to_owned()), 6, 5), (Some("r".to_owned()), 1, 0)]);
    let days = &report.breakdowns.days;
    assert_eq!(days.first().unwrap().key, Some(day("2025-06-01")));
    assert_eq!(days.last().unwrap().key, Some(day("2030-01-01")));
    let june2 = days.iter().find(|d| d.key == Some(day("2025-06-02"))).unwrap();
    assert_eq!((june2.status.total, june2.status.valid, june2.status.incomplete), (2, 1, 1));
    assert_eq!(days.iter().map(|d| d.status.total).sum::<i64>(), 21, "the record without a date is left out");
    assert_eq!(report.breakdowns.batches.len(), 1);
    let batch = &report.breakdowns.batches[0];
    assert_eq!((batch.status.total, batch.duplicates.exact, batch.duplicates.conflicting), (24, 1, 1));
    assert_eq!(batch.source, "quality.csv");
}

/// The same file ingested twice: the second time every row is a re-delivery, counted as such
/// and nowhere else; every duplicate figure and every count by status and reason stays as it
/// was, whichever way it is computed (grouped in one pass, tallied, or counted per filter).
async fn redelivering_a_file_changes_no_duplicate_figure(fixture: &TestStore) {
    let first = ingest(&fixture.store, ConflictPolicy::PreferValid, DATA).await;
    let stores = stores(fixture).await;
    let quality = stores.quality.as_ref();
    let p = QualityFilter { provider: Some("p".into()), ..Default::default() };
    let filters = [QualityFilter::default(), p.clone(), QualityFilter { batch: Some(2), ..Default::default() }];
    let mut before = Vec::new();
    for filter in &filters {
        before.push((report(&stores, filter).await, quality.row_counts(filter).await.unwrap()));
    }
    let second = ingest(&fixture.store, ConflictPolicy::PreferValid, DATA).await;
    let rows = DATA.lines().count() as u64;
    assert_eq!((first.stored.redelivered, second.stored.redelivered), (0, rows), "every row of the file again");
    assert_eq!((second.stored.inserted, second.stored.duplicates_skipped, second.stored.conflicts), (0, 0, 0));
    assert_eq!((second.quality.duplicates.exact, second.quality.duplicates.conflicting), (0, 0));
    assert_eq!(second.quality.total, first.quality.total, "the file's rows, classified as before");

    for (filter, (report_before, counts_before)) in filters.iter().zip(&before) {
        let after = report(&stores, filter).await;
        let counts = quality.row_counts(filter).await.unwrap();
        // Provider p's rows of the file, or all of them.
        let expected = if filter.provider.is_some() { counts_before.status.total } else { rows as i64 };
        assert_eq!((after.rows.redelivered, counts.redelivered), (expected, expected), "{filter:?}");
        if filter.batch.is_some() {
            // The second batch holds nothing but re-deliveries.
            assert_eq!((after.rows.status.total, after.rows.duplicates.exact), (0, 0), "{filter:?}");
            continue;
        }
        assert_eq!(after.rows.duplicates, report_before.rows.duplicates, "{filter:?}: duplicates");
        assert_eq!(after.rows.status, report_before.rows.status, "{filter:?}: rows by status");
        assert_eq!(after.rows.reasons, report_before.rows.reasons, "{filter:?}: rows by reason");
        assert_eq!(after.records, report_before.records, "{filter:?}: records and conflict groups");
        assert_eq!(
            (counts.status, counts.duplicates, &counts.reasons),
            (counts_before.status, counts_before.duplicates, &counts_before.reasons),
            "{filter:?}: counted per filter"
        );
    }
    let all = report(&stores, &QualityFilter::default()).await;
    let batches: Vec<_> =
        all.breakdowns.batches.iter().map(|b| (b.status.total, b.duplicates.exact, b.redelivered)).collect();
    assert_eq!(batches, [(rows as i64, 1, 0), (0, 0, rows as i64)]);
    assert_eq!(all.rows.duplicates.exact, 1, "the one row repeated within the file");
    // The record a re-delivery repeats keeps its versions and its count of exact duplicates.
    let record = fixture
        .store
        .list_records(&RecordFilter { building_id: Some("A".into()), ..Default::default() }, None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.state.fields.date == Some(day("2025-06-15")))
        .unwrap();
    assert_eq!((record.state.versions, record.exact_duplicates), (1, 1));
    let history = fixture.store.record_history(record.id).await.unwrap();
    let admissions: Vec<&str> = history.iter().map(|h| h.admission.as_str()).collect();
    assert_eq!(admissions, ["new", "exact", "redelivered", "redelivered"]);
}

/// The buildings a filter covers and their staleness on today's data (by the filter's
/// provider): a date range picks buildings, it does not make them stale.
async fn freshness_and_buildings_follow_the_filter(fixture: &TestStore) {
    ingest(&fixture.store, ConflictPolicy::PreferValid, DATA).await;
    let stores = stores(fixture).await;
    let quality = stores.quality.as_ref();
    let provider = |p: &str| QualityFilter { provider: Some(p.into()), ..Default::default() };
    let window =
        |from: &str, to: &str| QualityFilter { from: Some(day(from)), to: Some(day(to)), ..Default::default() };
    // A: last VALID June 15 (stale); B: June 29 by q, none by r; C: no VALID day.
    for (filter, expected) in [
        (QualityFilter::default(), (3, 2)),
        (provider("p"), (2, 2)),
        (provider("q"), (1, 0)),
        (provider("r"), (1, 1)),
        (window("2025-06-25", "2025-06-26"), (1, 0)),
        (window("2025-06-01", "2025-06-10"), (2, 2)),
        (QualityFilter { building_id: Some("B".into()), provider: Some("r".into()), ..Default::default() }, (1, 1)),
    ] {
        let fresh = quality.freshness(&filter, today(), 3).await.unwrap();
        assert_eq!((fresh.buildings, fresh.stale), expected, "{filter:?}");
    }
    let candidates: Vec<String> = ["A", "B", "C", "X"].map(String::from).to_vec();
    for (filter, expected) in [
        (QualityFilter::default(), vec!["A", "B", "C"]),
        (provider("q"), vec!["B"]),
        (window("2025-06-01", "2025-06-10"), vec!["A", "C"]),
        (QualityFilter { batch: Some(99), ..Default::default() }, vec![]),
    ] {
        let mut found = quality.buildings_among(&filter, &candidates).await.unwrap();
        found.sort();
        assert_eq!(found, expected, "{filter:?}");
    }
}

async fn filters_narrow_every_figure(fixture: &TestStore) {
    ingest(&fixture.store, ConflictPolicy::PreferValid, DATA).await;
    ingest(&fixture.store, ConflictPolicy::PreferValid, "A,2025-06-12,60,5,p\nD,2025-06-01,1,1,p\n").await;
    let stores = stores(fixture).await;

    let a = report(&stores, &QualityFilter { building_id: Some("A".into()), ..Default::default() }).await;
    assert_eq!(a.records.status.total, 14);
    assert_eq!((a.rows.status.total, a.rows.duplicates.exact, a.rows.duplicates.conflicting), (16, 1, 1));
    assert_eq!(a.completeness.buildings.len(), 1);
    assert_eq!(a.completeness.totals.gap_days, 3, "day 12 arrived in the second batch");

    // A window: the expected range is the window itself, so days before a building's first
    // record in it count as missing too.
    let window = QualityFilter { from: Some(day("2025-06-10")), to: Some(day("2025-06-26")), ..Default::default() };
    let w = report(&stores, &window).await;
    let by = |b: &str| w.completeness.buildings.iter().find(|x| x.building_id == b).unwrap().clone();
    let a = by("A");
    assert_eq!((a.first_day, a.last_day, a.expected_days), (Some(day("2025-06-10")), Some(day("2025-06-26")), 17));
    assert_eq!((a.valid_days, a.gap_days), (5, 12), "10, 11, 12, 14, 15 VALID");
    let b = by("B");
    assert_eq!((b.valid_days, b.gap_days, b.gaps), (2, 15, 1));
    assert!(w.completeness.buildings.iter().all(|x| x.building_id != "D"), "D has no record in the window");

    let batch2 = report(&stores, &QualityFilter { batch: Some(2), ..Default::default() }).await;
    assert_eq!((batch2.records.status.total, batch2.rows.status.total), (2, 2));
    assert_eq!(batch2.breakdowns.batches.iter().map(|b| b.batch_id).collect::<Vec<_>>(), [2]);

    let q = report(&stores, &QualityFilter { provider: Some("q".into()), ..Default::default() }).await;
    assert_eq!((q.records.status.total, q.records.status.inconsistent), (6, 1));
    assert_eq!(q.breakdowns.providers.len(), 1);

    let none = report(&stores, &QualityFilter { building_id: Some("nobody".into()), ..Default::default() }).await;
    assert_eq!((none.records.status.total, none.rows.status.total), (0, 0));
    assert_eq!(none.completeness.totals.buildings, 0);
    assert_eq!(none.shares.valid, 0.0);
}

async fn policies_re_resolve_and_decisions_are_recorded(fixture: &TestStore) {
    // Keep-latest lets an invalid version win; prefer-valid picks the VALID one again.
    ingest(&fixture.store, ConflictPolicy::KeepLatest, "K,2025-01-01,10,5,p\nK,2025-01-01,-1,5,p\n").await;
    ingest(&fixture.store, ConflictPolicy::KeepLatest, "L,2025-01-01,1,5,p\nL,2025-01-01,2,5,p\n").await;
    let stores = stores(fixture).await;
    let before = report(&stores, &QualityFilter::default()).await;
    assert_eq!((before.records.status.valid, before.records.status.inconsistent), (1, 1));

    let now = Utc::now();
    let outcome =
        resolve_all(stores.duplicates.as_ref(), &DuplicateFilter::default(), ConflictPolicy::PreferValid, "test", now)
            .await
            .unwrap();
    assert_eq!((outcome.groups, outcome.changed, outcome.unchanged, outcome.decisions), (2, 1, 1, 1));
    let records = stores.records.list_records(&RecordFilter::default(), None, 10).await.unwrap();
    let k = records.iter().find(|r| r.state.fields.building_id.as_deref() == Some("K")).unwrap();
    assert_eq!((k.state.status, k.state.fields.consumption), (QualityStatus::Valid, Some(10.0)));
    assert_eq!(k.state.winner, Arrival { batch: 1, line: 2 });
    assert_eq!(k.state.versions, 2);

    let decisions = stores.duplicates.decisions(k.id).await.unwrap();
    assert_eq!(decisions.len(), 1);
    let decision = &decisions[0];
    assert_eq!(decision.method, DecisionMethod::Policy(ConflictPolicy::PreferValid));
    assert_eq!(decision.decided_by, "test");
    assert_eq!((decision.winner, decision.previous), (Arrival { batch: 1, line: 2 }, Arrival { batch: 1, line: 3 }));
    assert!(!decision.pending);
    assert!((decision.decided_at - now).num_milliseconds().abs() <= 1);

    // The counts follow the records; duplicates (arrivals) and groups are unchanged.
    let after = report(&stores, &QualityFilter::default()).await;
    assert_eq!((after.records.status.valid, after.records.status.inconsistent), (2, 0));
    assert_eq!(after.records.conflict_groups, before.records.conflict_groups);
    assert_eq!(after.rows, before.rows);
    let total_history: usize =
        [k.id].iter().map(|_| 0).sum::<usize>() + stores.records.record_history(k.id).await.unwrap().len();
    assert_eq!(total_history, 2, "nothing is deleted");

    // Again: nothing changes, nothing is recorded.
    let again =
        resolve_all(stores.duplicates.as_ref(), &DuplicateFilter::default(), ConflictPolicy::PreferValid, "test", now)
            .await
            .unwrap();
    assert_eq!((again.changed, again.decisions), (0, 0));

    // Keep-first on one group, by building filter.
    let filter = DuplicateFilter { building_id: Some("L".into()), ..Default::default() };
    let l = resolve_all(stores.duplicates.as_ref(), &filter, ConflictPolicy::KeepFirst, "test", now).await.unwrap();
    assert_eq!((l.groups, l.changed), (1, 1));
    let page = list_groups(stores.duplicates.as_ref(), &filter, None, 10).await.unwrap();
    assert_eq!(page.items[0].winner, Arrival { batch: 2, line: 2 });
    assert!(page.items[0].versions[0].winner);
}

async fn explicit_version_clears_a_manual_decision(fixture: &TestStore) {
    ingest(&fixture.store, ConflictPolicy::Manual, "M,2025-01-01,1,5,p\nM,2025-01-01,2,5,p\nM,2025-01-01,3,5,p\n")
        .await;
    ingest(&fixture.store, ConflictPolicy::Manual, "S,2025-01-01,1,5,p\nM,2025-01-01,3,5,p\n").await;
    let stores = stores(fixture).await;
    let store = stores.duplicates.as_ref();
    assert_eq!(report(&stores, &QualityFilter::default()).await.records.pending, 1);

    let pending = DuplicateFilter { pending_only: true, ..Default::default() };
    let page = list_groups(store, &pending, None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let group = &page.items[0];
    assert!(group.pending);
    assert_eq!(group.exact_duplicates, 0, "M's 3 sent again in batch 2 is a re-delivery, not a version");
    assert_eq!(
        group.versions.iter().map(|v| (v.batch_id, v.line, v.consumption, v.winner)).collect::<Vec<_>>(),
        [(1, 2, Some(1.0), true), (1, 3, Some(2.0), false), (1, 4, Some(3.0), false)]
    );
    assert_eq!(group.versions[0].source, "quality.csv");
    let id = group.record_id;

    let wrong = Arrival { batch: 1, line: 99 };
    assert!(matches!(
        resolve_one(store, id, Choice::Version(wrong), "cli", Utc::now()).await,
        Err(ResolveError::NoSuchVersion { .. })
    ));
    assert!(matches!(
        resolve_one(store, id + 1000, Choice::Version(wrong), "cli", Utc::now()).await,
        Err(ResolveError::NotFound(_))
    ));
    let single = stores
        .records
        .list_records(&RecordFilter { building_id: Some("S".into()), ..Default::default() }, None, 1)
        .await
        .unwrap()[0]
        .id;
    assert!(matches!(
        resolve_one(store, single, Choice::Policy(ConflictPolicy::KeepFirst), "cli", Utc::now()).await,
        Err(ResolveError::NotAGroup(_))
    ));
    assert!(store.decisions(id).await.unwrap().is_empty(), "refused resolutions record nothing");

    let chosen = Arrival { batch: 1, line: 3 };
    let outcome = resolve_one(store, id, Choice::Version(chosen), "api:ops", Utc::now()).await.unwrap();
    assert_eq!((outcome.changed, outcome.decisions), (1, 1));
    let record = stores.records.get_record(id).await.unwrap().unwrap();
    assert_eq!(
        (record.state.pending, record.state.winner, record.state.fields.consumption),
        (false, chosen, Some(2.0))
    );
    assert!(list_groups(store, &pending, None, 10).await.unwrap().items.is_empty());
    assert_eq!(report(&stores, &QualityFilter::default()).await.records.pending, 0);

    // Back to manual: pending again, the winner kept; then the same version again is recorded.
    resolve_one(store, id, Choice::Policy(ConflictPolicy::Manual), "cli", Utc::now()).await.unwrap();
    assert!(stores.records.get_record(id).await.unwrap().unwrap().state.pending);
    let same = resolve_one(store, id, Choice::Version(chosen), "cli", Utc::now()).await.unwrap();
    assert_eq!((same.changed, same.decisions), (1, 1), "pending cleared");
    let unchanged = resolve_one(store, id, Choice::Version(chosen), "cli", Utc::now()).await.unwrap();
    assert_eq!((unchanged.changed, unchanged.unchanged, unchanged.decisions), (0, 1, 1));
    let decisions = store.decisions(id).await.unwrap();
    assert_eq!(decisions.len(), 4);
    assert_eq!(decisions[0].decided_by, "api:ops");
    assert_eq!(decisions[0].method, DecisionMethod::Explicit);
    assert_eq!(decisions[0].previous, Arrival { batch: 1, line: 2 });
    assert_eq!(decisions[1].method, DecisionMethod::Policy(ConflictPolicy::Manual));
    assert!(decisions[1].pending);
    assert!(decisions.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(stores.records.record_history(id).await.unwrap().len(), 4, "every payload kept");
}

async fn stale_resolutions_are_refused(fixture: &TestStore) {
    ingest(&fixture.store, ConflictPolicy::PreferValid, "K,2025-01-01,1,5,p\nK,2025-01-01,2,5,p\n").await;
    let stores = stores(fixture).await;
    let store = stores.duplicates.as_ref();
    let id = store.group_ids(&DuplicateFilter::default(), None, 10).await.unwrap()[0];
    let key = store.load_groups(&[id]).await.unwrap().pop().unwrap();
    let mut state = key.state.clone();
    state.winner = key.versions[0].version.arrival;
    let resolution = Resolution {
        record_id: id,
        previous: Arrival { batch: 9, line: 9 },
        previous_versions: 2,
        state,
        decided_by: "test".into(),
        method: DecisionMethod::Explicit,
        decided_at: Utc::now(),
    };
    assert!(matches!(store.apply_resolutions(&[resolution]).await, Err(StoreError::Conflict(_))));
    assert!(store.decisions(id).await.unwrap().is_empty());
    assert_eq!(stores.records.get_record(id).await.unwrap().unwrap().state, key.state, "nothing applied");
}

async fn groups_paginate_by_keyset(fixture: &TestStore) {
    let mut rows = String::new();
    for building in ["G1", "G2", "G3", "G4", "G5"] {
        rows.push_str(&format!("{building},2025-01-01,1,5,p\n{building},2025-01-01,2,5,p\n"));
        rows.push_str(&format!("{building},2025-01-02,1,5,p\n"));
    }
    ingest(&fixture.store, ConflictPolicy::PreferValid, &rows).await;
    let stores = stores(fixture).await;
    let store = stores.duplicates.as_ref();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = list_groups(store, &DuplicateFilter::default(), after, 2).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|g| (g.record_id, g.building_id.clone().unwrap())));
        match page.next_cursor {
            Some(next) => after = Some(next.parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen.iter().map(|(_, b)| b.as_str()).collect::<Vec<_>>(), ["G1", "G2", "G3", "G4", "G5"]);
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    let g3 = DuplicateFilter { building_id: Some("G3".into()), ..Default::default() };
    assert_eq!(list_groups(store, &g3, None, 10).await.unwrap().items.len(), 1);
    let later = DuplicateFilter { from: Some(day("2025-01-02")), ..Default::default() };
    assert!(list_groups(store, &later, None, 10).await.unwrap().items.is_empty());
}

emdp_testkit::every_backend! {
    |fixture| &fixture => [
        report_counts_every_figure,
        redelivering_a_file_changes_no_duplicate_figure,
        freshness_and_buildings_follow_the_filter,
        filters_narrow_every_figure,
        policies_re_resolve_and_decisions_are_recorded,
        explicit_version_clears_a_manual_decision,
        stale_resolutions_are_refused,
        groups_paginate_by_keyset,
    ],
}

emdp_testkit::needs_postgres! {
    /// The same data on both databases gives the identical report (every figure, every list).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_and_postgres_compute_identical_reports() {
        let pg = emdp_testkit::postgres().await;
        let lite = emdp_testkit::sqlite().await;
        let mut data = String::from(DATA);
        // A larger, irregular set: 6 buildings x 60 days with holes, stuck values and faults.
        for b in 0..6 {
            for d in 0..60u32 {
                if (d * 7 + b * 3) % 11 == 0 {
                    continue;
                }
                let date = day("2025-03-01") + chrono::Days::new(u64::from(d));
                let consumption = if d % 13 < 5 && b % 2 == 0 { 42.0 } else { f64::from(d * 3 + b) + 0.25 };
                let consumption = if (d + b) % 17 == 0 { "-3".to_owned() } else { consumption.to_string() };
                data.push_str(&format!("Z{b},{date},{consumption},{},prov{}\n", 10 + d % 5, b % 3));
            }
        }
        let filters = [
            QualityFilter::default(),
            QualityFilter { building_id: Some("Z2".into()), ..Default::default() },
            QualityFilter { provider: Some("prov1".into()), ..Default::default() },
            QualityFilter { from: Some(day("2025-03-10")), to: Some(day("2025-04-10")), ..Default::default() },
            QualityFilter { from: Some(day("2025-04-10")), ..Default::default() },
            QualityFilter { to: Some(day("2025-03-10")), provider: Some("p".into()), ..Default::default() },
            QualityFilter { batch: Some(1), to: Some(day("2025-06-10")), ..Default::default() },
            QualityFilter { batch: Some(2), ..Default::default() },
        ];
        let mut reports = Vec::new();
        for fixture in [&lite, &pg] {
            ingest(&fixture.store, ConflictPolicy::PreferValid, &data).await;
            // Every other way records change after an ingest: an edit (new key and status), a
            // deletion, a manual re-resolution and a second batch; counts kept incrementally
            // (SQLite's tallies) must follow them all.
            let store = fixture.store.as_ref();
            let first = store.list_records(&RecordFilter::default(), None, 3).await.unwrap();
            let ingestor = Ingestor::new(
                Arc::clone(&fixture.store),
                Arc::new(RuleSet::default()),
                Arc::new(FixedClock(today())),
                ConflictPolicy::PreferValid,
            );
            let mut patch = RecordPatch::default();
            patch.set(FieldName::Date, Some("2025-05-20".into()));
            patch.set(FieldName::Consumption, Some("-4".into()));
            edit_record(&ingestor, store, first[0].id, &patch, "test").await.unwrap().expect("edited");
            // Edited again, the record keeps its day, status, reasons and flags: only its value moves.
            let mut same_counts = RecordPatch::default();
            same_counts.set(FieldName::Consumption, Some("-5".into()));
            edit_record(&ingestor, store, first[0].id, &same_counts, "test").await.unwrap().expect("edited");
            assert!(store.delete_record(first[1].id).await.unwrap());
            let stores = stores(fixture).await;
            resolve_all(
                stores.duplicates.as_ref(),
                &DuplicateFilter::default(),
                ConflictPolicy::Manual,
                "test",
                Utc::now(),
            )
            .await
            .unwrap();
            ingest(&fixture.store, ConflictPolicy::PreferValid, "Z1,2025-03-02,99,5,prov1\nZ9,,1,1,p\n").await;
            let mut json = Vec::new();
            for filter in &filters {
                json.push(serde_json::to_value(report(&stores, filter).await).unwrap());
            }
            let quality = stores.quality.as_ref();
            for filter in &filters {
                json.push(serde_json::to_value(quality.freshness(filter, today(), 3).await.unwrap()).unwrap());
            }
            reports.push(json);
        }
        for (i, (lite, pg)) in reports[0].iter().zip(&reports[1]).enumerate() {
            let what = filters.get(i).map_or_else(|| "freshness".to_owned(), |f| format!("{f:?}"));
            assert_eq!(lite, pg, "SQLite and PostgreSQL differ for {what}");
        }
        assert!(reports[0][0]["records"]["pending"].as_i64().unwrap() > 0, "the manual policy left decisions");
        let flatlines = reports[0][0]["flatlines"].as_array().unwrap().len();
        let gaps = reports[0][0]["gaps"].as_array().unwrap().len();
        assert!(flatlines > 0 && gaps > 10, "the data exercises flatlines ({flatlines}) and gaps ({gaps})");
    }
}
