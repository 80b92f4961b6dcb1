//! The storage contract: one suite, run unchanged against SQLite and PostgreSQL. Each test
//! gets a fresh database and drives the stores through the ingest use case, as the CLI and
//! the API do.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use emdp_app::ports::{FixedClock, RecordFilter, RecordKey, RecordSource, RecordStore};
use emdp_app::usecases::ingest::{ChunkWrite, IngestSummary, Ingestor};
use emdp_domain::{ConflictPolicy, QualityStatus, RuleSet};
use emdp_formats::{CsvSource, NdjsonSource};

const HEADER: &str = "building_id,date,consumption,temperature,provider\n";

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

fn ingestor(store: &Arc<dyn RecordStore>, policy: ConflictPolicy) -> Ingestor {
    Ingestor::new(Arc::clone(store), Arc::new(RuleSet::default()), Arc::new(FixedClock(today())), policy)
}

fn csv(rows: &str) -> Box<dyn RecordSource + Send> {
    Box::new(CsvSource::new(std::io::Cursor::new(format!("{HEADER}{rows}").into_bytes())))
}

async fn ingest(store: &Arc<dyn RecordStore>, policy: ConflictPolicy, rows: &str) -> IngestSummary {
    ingestor(store, policy).ingest(csv(rows), "test.csv", &()).await.expect("ingest")
}

/// Opens a CSV batch named `source`, for chunks written one by one.
async fn open_batch(store: &Arc<dyn RecordStore>, source: &str) -> emdp_app::ports::BatchId {
    let batch = emdp_app::ports::NewBatch {
        source: source.into(),
        format: emdp_app::ports::SourceFormat::Csv,
        header: None,
        columns: None,
        started_at: chrono::Utc::now(),
    };
    store.create_batch(&batch).await.unwrap()
}

async fn all(store: &Arc<dyn RecordStore>) -> Vec<emdp_app::ports::StoredRecord> {
    store.list_records(&RecordFilter::default(), None, 10_000).await.unwrap()
}

/// Rows covering a new key, an in-file exact duplicate, an in-file conflict, an invalid row
/// and a keyless row.
const MIXED: &str = "B1,2025-01-01,100.5,10,p\n\
                     B1,2025-01-01,100.50,10.0,p\n\
                     B1,2025-01-01,120,10,p\n\
                     B2,2025-01-01,-5,10,p\n\
                     B3,,7,10,p\n";

async fn first_ingest_stores_every_row(store: Arc<dyn RecordStore>) {
    let summary = ingest(&store, ConflictPolicy::PreferValid, MIXED).await;
    assert_eq!(summary.quality.total, 5);
    assert_eq!((summary.quality.valid, summary.quality.incomplete, summary.quality.inconsistent), (3, 1, 1));
    assert_eq!((summary.quality.duplicates.exact, summary.quality.duplicates.conflicting), (1, 1));
    assert_eq!((summary.stored.inserted, summary.stored.duplicates_skipped, summary.stored.conflicts), (3, 1, 1));
    assert!(summary.batch_id.is_some_and(|batch| batch > 0), "{:?}", summary.batch_id);

    let records = all(&store).await;
    assert_eq!(records.len(), 3);
    let b1 = records.iter().find(|r| r.state.fields.building_id.as_deref() == Some("B1")).unwrap();
    assert_eq!(b1.state.versions, 2);
    assert_eq!(b1.exact_duplicates, 1);
    assert_eq!(b1.state.fields.consumption, Some(120.0), "prefer_valid: both VALID, the latest wins");
    let b2 = records.iter().find(|r| r.state.fields.building_id.as_deref() == Some("B2")).unwrap();
    assert_eq!(b2.state.status, QualityStatus::Inconsistent);
    assert_eq!(b2.state.reasons.join(","), "consumption_non_positive");
    let b3 = records.iter().find(|r| r.state.fields.building_id.as_deref() == Some("B3")).unwrap();
    assert!(!b3.keyed);
    assert_eq!(b3.state.status, QualityStatus::Incomplete);

    let history = store.record_history(b1.id).await.unwrap();
    assert_eq!(history.len(), 3, "every raw payload behind the record");
    assert_eq!(history[0].payload, "B1,2025-01-01,100.5,10,p");
    assert_eq!(history[0].header.as_deref(), Some(HEADER.trim_end()));
    assert_eq!(history.iter().map(|h| h.admission.as_str()).collect::<Vec<_>>(), ["new", "exact", "conflicting"]);
    assert_eq!(history.iter().filter(|h| h.winner).count(), 1);
    assert!(history[2].winner);
    assert_eq!(history[0].source, "test.csv");
}

async fn reingest_is_idempotent(store: Arc<dyn RecordStore>) {
    let first = ingest(&store, ConflictPolicy::PreferValid, MIXED).await;
    let before = all(&store).await;
    let second = ingest(&store, ConflictPolicy::PreferValid, MIXED).await;
    assert_eq!(second.quality.duplicates.exact, 0, "every row is a re-delivery the second time, no duplicate");
    assert_eq!(second.quality.duplicates.conflicting, 0);
    let stored = &second.stored;
    assert_eq!((stored.inserted, stored.duplicates_skipped, stored.conflicts, stored.redelivered), (0, 0, 0, 5));
    assert_ne!(first.batch_id, second.batch_id, "a second raw batch");
    let after = all(&store).await;
    assert_eq!(before.len(), after.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!((b.id, &b.state, b.updated_at), (a.id, &a.state, a.updated_at), "curated store unchanged");
    }
    let b1 = after.iter().find(|r| r.state.fields.building_id.as_deref() == Some("B1")).unwrap();
    assert_eq!(store.record_history(b1.id).await.unwrap().len(), 6);
}

async fn conflicts_across_batches_follow_the_policy(store: Arc<dyn RecordStore>) {
    ingest(&store, ConflictPolicy::PreferValid, "B1,2025-01-01,10,5,p\n").await;
    ingest(&store, ConflictPolicy::PreferValid, "B1,2025-01-01,-1,5,p\n").await;
    let record = &all(&store).await[0];
    assert_eq!(record.state.fields.consumption, Some(10.0), "the VALID version beats a later invalid one");
    assert_eq!(record.state.versions, 2);
    let summary = ingest(&store, ConflictPolicy::PreferValid, "B1,2025-01-01,12,5,p\nB1,2025-01-01,10,5,p\n").await;
    assert_eq!((summary.stored.conflicts, summary.stored.duplicates_skipped, summary.stored.redelivered), (1, 0, 1));
    let record = &all(&store).await[0];
    assert_eq!(record.state.fields.consumption, Some(12.0), "the latest VALID version wins");
    assert_eq!(record.state.versions, 3);
    assert!(record.updated_at >= record.created_at);
}

async fn other_policies(store: Arc<dyn RecordStore>) {
    ingest(&store, ConflictPolicy::KeepFirst, "K,2025-01-01,1,5,p\nK,2025-01-01,2,5,p\n").await;
    ingest(&store, ConflictPolicy::KeepLatest, "L,2025-01-01,1,5,p\nL,2025-01-01,2,5,p\n").await;
    ingest(&store, ConflictPolicy::Manual, "M,2025-01-01,1,5,p\nM,2025-01-01,2,5,p\n").await;
    let records = all(&store).await;
    let by = |b: &str| records.iter().find(|r| r.state.fields.building_id.as_deref() == Some(b)).unwrap().clone();
    assert_eq!(by("K").state.fields.consumption, Some(1.0));
    assert_eq!(by("L").state.fields.consumption, Some(2.0));
    assert!(by("M").state.pending);
    assert!(!by("K").state.pending);
}

async fn keyless_rows_are_idempotent_by_content(store: Arc<dyn RecordStore>) {
    let rows = "B1,,1,2,p\nB1,,1,2,p\nB1,2024-13-45,1,2,p\n";
    let first = ingest(&store, ConflictPolicy::PreferValid, rows).await;
    assert_eq!((first.stored.inserted, first.stored.duplicates_skipped), (2, 1));
    let second = ingest(&store, ConflictPolicy::PreferValid, rows).await;
    assert_eq!((second.stored.inserted, second.stored.duplicates_skipped, second.stored.redelivered), (0, 0, 3));
    assert_eq!(all(&store).await.len(), 2);
}

async fn malformed_payloads_are_kept_raw(store: Arc<dyn RecordStore>) {
    let source = Box::new(NdjsonSource::new(std::io::Cursor::new(
        b"not json\n{\"building_id\":\"B1\",\"date\":\"2025-01-01\",\"consumption\":1,\"temperature\":2,\"provider\":\"p\"}\n"
            .to_vec(),
    )));
    let summary = ingestor(&store, ConflictPolicy::PreferValid).ingest(source, "in.ndjson", &()).await.unwrap();
    assert_eq!((summary.quality.total, summary.quality.valid, summary.quality.incomplete), (2, 1, 1));
    assert_eq!(summary.quality.reason(emdp_domain::Reason::MalformedRow), 1);
    let records = all(&store).await;
    let malformed = records.iter().find(|r| !r.keyed).unwrap();
    let history = store.record_history(malformed.id).await.unwrap();
    assert_eq!(history[0].payload, "not json");
    assert!(history[0].parse_error.is_some());
    assert_eq!(history[0].format, "ndjson");
}

async fn list_filters_and_keyset_pagination(store: Arc<dyn RecordStore>) {
    let mut rows = String::new();
    for day in 1..=9 {
        rows.push_str(&format!("B1,2025-01-0{day},{day},5,p\nB2,2025-01-0{day},{day},5,q\n"));
    }
    rows.push_str("B2,2025-02-01,0,5,q\n");
    ingest(&store, ConflictPolicy::PreferValid, &rows).await;
    let count = |filter: RecordFilter| {
        let store = Arc::clone(&store);
        async move { store.list_records(&filter, None, 1000).await.unwrap().len() }
    };
    assert_eq!(count(RecordFilter::default()).await, 19);
    assert_eq!(count(RecordFilter { building_id: Some("B1".into()), ..Default::default() }).await, 9);
    assert_eq!(count(RecordFilter { provider: Some("q".into()), ..Default::default() }).await, 10);
    assert_eq!(count(RecordFilter { status: Some(QualityStatus::Inconsistent), ..Default::default() }).await, 1);
    let from = NaiveDate::from_ymd_opt(2025, 1, 3);
    let to = NaiveDate::from_ymd_opt(2025, 1, 5);
    assert_eq!(count(RecordFilter { from, to, building_id: Some("B2".into()), ..Default::default() }).await, 3);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_records(&RecordFilter::default(), after, 4).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 4);
        after = page.last().map(|r| r.id);
        seen.extend(page.into_iter().map(|r| r.id));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "pages are in a stable order without repeats");
    assert_eq!(seen.len(), 19);
}

async fn get_and_delete_keep_raw_payloads(store: Arc<dyn RecordStore>) {
    ingest(&store, ConflictPolicy::PreferValid, "B1,2025-01-01,1,5,p\n").await;
    let id = all(&store).await[0].id;
    assert_eq!(store.get_record(id).await.unwrap().unwrap().id, id);
    assert!(store.get_record(id + 1000).await.unwrap().is_none());
    assert!(store.delete_record(id).await.unwrap());
    assert!(!store.delete_record(id).await.unwrap());
    assert!(store.get_record(id).await.unwrap().is_none());
    assert_eq!(store.record_history(id).await.unwrap().len(), 1, "the raw payload stays");
}

async fn an_uncommitted_chunk_leaves_nothing(store: Arc<dyn RecordStore>) {
    let ingestor = ingestor(&store, ConflictPolicy::PreferValid);
    ingest(&store, ConflictPolicy::PreferValid, "B0,2025-01-01,1,5,p\n").await;
    {
        // A transaction that never commits, as when the process is killed mid-chunk.
        let mut tx = store.begin_ingest().await.unwrap();
        let record = emdp_app::ports::NewRecord {
            key: emdp_app::ports::RecordKey::Content("crash".into()),
            state: all(&store).await[0].state.clone(),
            created_at: chrono::Utc::now(),
        };
        assert_eq!(tx.insert_absent(&[record]).await.unwrap().len(), 1);
        tx.progress(1, 10).await.unwrap();
    }
    let records = all(&store).await;
    assert_eq!(records.len(), 1, "nothing of the dropped transaction is visible");
    // A write outside the ingest path does not wait for the dropped transaction (on SQLite its
    // write lock would otherwise stay taken until the busy timeout).
    assert!(store.delete_record(records[0].id).await.unwrap());
    let summary = ingestor.ingest(csv("B1,2025-01-01,1,5,p\n"), "after.csv", &()).await.unwrap();
    assert_eq!(summary.stored.inserted, 1);
    assert_eq!(all(&store).await.len(), 1);
}

async fn a_batch_opened_in_a_transaction_lives_and_dies_with_it(store: Arc<dyn RecordStore>) {
    use emdp_app::ports::{NewBatch, RawLink, SourceFormat};
    let ingestor = ingestor(&store, ConflictPolicy::PreferValid);
    ingest(&store, ConflictPolicy::PreferValid, "B0,2025-01-01,1,5,p\n").await;
    let id = all(&store).await[0].id;
    let rows = ingestor.classify_all(csv("B0,2025-01-01,1,5,p\n").as_mut()).unwrap();
    let link = RawLink { record_id: id, admission: emdp_domain::Admission::Exact };
    for (source, commit) in [("dropped.csv", false), ("kept.csv", true)] {
        let mut tx = store.begin_ingest().await.unwrap();
        let new = NewBatch {
            source: source.into(),
            format: SourceFormat::Csv,
            header: None,
            columns: None,
            started_at: chrono::Utc::now(),
        };
        let batch = tx.create_batch(&new).await.unwrap();
        tx.insert_raw(batch, &rows, &[link]).await.unwrap();
        tx.finish_batch(batch, 1, &serde_json::json!({"total": 1})).await.unwrap();
        if commit {
            tx.commit().await.unwrap();
        }
    }
    let sources: Vec<String> = store.record_history(id).await.unwrap().into_iter().map(|v| v.source).collect();
    assert_eq!(sources, ["test.csv", "kept.csv"], "the dropped transaction's batch and raw row are gone");
}

async fn concurrent_ingests_do_not_duplicate(store: Arc<dyn RecordStore>) {
    let mut rows = String::new();
    for day in 1..=28 {
        for building in 1..=20 {
            rows.push_str(&format!("B{building},2025-02-{day:02},{day},5,p\n"));
        }
    }
    let (a, b) = tokio::join!(
        ingest(&store, ConflictPolicy::PreferValid, &rows),
        ingest(&store, ConflictPolicy::PreferValid, &rows)
    );
    assert_eq!(a.stored.inserted + b.stored.inserted, 560);
    assert_eq!(a.stored.redelivered + b.stored.redelivered, 560, "the other ingest's versions, whichever batch id");
    assert_eq!(a.stored.duplicates_skipped + b.stored.duplicates_skipped, 0);
    assert_eq!(all(&store).await.len(), 560);
}

async fn nul_bytes_are_stored_and_returned_exactly(store: Arc<dyn RecordStore>) {
    // NUL in an identifier and a payload (PostgreSQL's TEXT cannot hold it), and the
    // PostgreSQL adapter's escape character in another key, which must stay a distinct key.
    let rows = "B\0X,2025-01-01,1,5,p\0q\nB\u{E000}0X,2025-01-01,1,5,p\0q\nB\0X,2025-01-01,2,5,p\0q\n";
    let summary = ingest(&store, ConflictPolicy::PreferValid, rows).await;
    assert_eq!((summary.stored.inserted, summary.stored.conflicts), (2, 1));
    assert_eq!(summary.quality.reason(emdp_domain::Reason::InvalidIdentifier), 3);
    let records = all(&store).await;
    assert_eq!(records.len(), 2);
    let nul = records.iter().find(|r| r.state.fields.building_id.as_deref() == Some("B\0X")).expect("NUL key");
    assert_eq!(nul.state.fields.provider.as_deref(), Some("p\0q"));
    assert_eq!(nul.state.fields.consumption, Some(2.0), "no version is VALID: the latest wins");
    assert!(records.iter().any(|r| r.state.fields.building_id.as_deref() == Some("B\u{E000}0X")));
    let history = store.record_history(nul.id).await.unwrap();
    let payloads: Vec<&str> = history.iter().map(|h| h.payload.as_str()).collect();
    assert_eq!(payloads, ["B\0X,2025-01-01,1,5,p\0q", "B\0X,2025-01-01,2,5,p\0q"], "payloads exactly as received");
    let filter = RecordFilter { building_id: Some("B\0X".into()), provider: Some("p\0q".into()), ..Default::default() };
    assert_eq!(store.list_records(&filter, None, 10).await.unwrap().len(), 1);

    let again = ingest(&store, ConflictPolicy::PreferValid, rows).await;
    assert_eq!((again.stored.inserted, again.stored.redelivered), (0, 3), "keyed consistently");
    assert_eq!(all(&store).await.len(), 2);
    let later = ingest(&store, ConflictPolicy::PreferValid, "B\0X,2025-01-01,3,5,p\0q\n").await;
    assert_eq!(later.stored.conflicts, 1, "a conflict with the stored versions");
    let record = store.get_record(nul.id).await.unwrap().unwrap();
    assert_eq!(
        (record.state.fields.building_id.as_deref(), record.state.fields.consumption),
        (Some("B\0X"), Some(3.0))
    );
    assert_eq!(record.state.versions, 3);
}

/// The stores insert a chunk's new records in key order (neighbouring index pages), not in
/// arrival order: each row must still be linked to the record of its own key.
async fn rows_out_of_key_order_link_to_their_own_records(store: Arc<dyn RecordStore>) {
    let mut rows = String::new();
    for day in (1..=9).rev() {
        for building in [7, 3, 9, 1, 5] {
            rows.push_str(&format!("B{building},2025-03-0{day},{}.5,5,p\n", building * 10 + day));
        }
    }
    rows.push_str("B3,2025-03-05,1,5,p\n");
    let ingestor = ingestor(&store, ConflictPolicy::PreferValid);
    let mut source = csv(&rows);
    let classified = ingestor.classify_all(source.as_mut()).unwrap();
    let (summary, links) = ingestor
        .ingest_rows(&classified, "shuffled.csv", emdp_app::ports::SourceFormat::Csv, None, None)
        .await
        .unwrap();
    assert_eq!((summary.stored.inserted, summary.stored.conflicts), (45, 1));
    for (row, link) in classified.iter().zip(&links) {
        let record = store.get_record(link.record_id).await.unwrap().expect("linked record");
        assert_eq!(
            (record.state.fields.building_id.as_deref(), record.state.fields.date),
            (row.fields.building_id.as_deref(), row.fields.date),
            "line {} is linked to record {}",
            row.line,
            link.record_id
        );
        let history = store.record_history(link.record_id).await.unwrap();
        assert!(history.iter().any(|h| h.line == row.line), "line {} in its record's history", row.line);
    }
}

/// A chunk that expects its keys stored (a re-run) loads them before inserting the others:
/// the outcome must be the same as inserting first.
async fn probing_stored_keys_first_gives_the_same_outcome(store: Arc<dyn RecordStore>) {
    use emdp_domain::Admission;
    ingest(&store, ConflictPolicy::PreferValid, "B1,2025-01-01,1,5,p\nB2,2025-01-01,2,5,p\n").await;
    let before = all(&store).await;
    let id_of = |building: &str| {
        before.iter().find(|r| r.state.fields.building_id.as_deref() == Some(building)).map(|r| r.id).unwrap()
    };
    let ingestor = ingestor(&store, ConflictPolicy::PreferValid);
    let mut source =
        csv("B1,2025-01-01,1,5,p\nB2,2025-01-01,3,5,p\nB3,2025-01-01,4,5,p\nB3,2025-01-01,4,5,p\nB4,,5,5,p\n");
    let rows = ingestor.classify_all(source.as_mut()).unwrap();
    let batch = open_batch(&store, "again.csv").await;
    let chunk = ChunkWrite { batch, rows: &rows, stored_before: 0, probe_first: true, unseen: None };
    let links = ingestor.write_chunk(chunk).await.unwrap();
    let admissions: Vec<Admission> = links.iter().map(|l| l.admission).collect();
    assert_eq!(
        admissions,
        [Admission::Redelivered, Admission::Conflicting, Admission::New, Admission::Exact, Admission::New]
    );
    assert_eq!((links[0].record_id, links[1].record_id), (id_of("B1"), id_of("B2")));
    assert_eq!(links[2].record_id, links[3].record_id);
    let after = all(&store).await;
    assert_eq!(after.len(), 4);
    let b2 = store.get_record(id_of("B2")).await.unwrap().unwrap();
    assert_eq!((b2.state.versions, b2.state.fields.consumption), (2, Some(3.0)), "both VALID: the latest wins");
    let b1 = store.get_record(id_of("B1")).await.unwrap().unwrap();
    assert_eq!(b1.exact_duplicates, 0, "a re-delivery is no duplicate");
    let b3 = store.get_record(links[2].record_id).await.unwrap().unwrap();
    assert_eq!(b3.exact_duplicates, 1, "repeated within its batch");
}

/// A probe reads a building's days as one stretch (PostgreSQL) or range (SQLite), which also
/// holds stored days not asked for: those are left alone, the days asked for are found, and a
/// day not stored in between is new.
async fn probing_days_apart_leaves_the_stored_days_between_them(store: Arc<dyn RecordStore>) {
    use emdp_domain::Admission;
    ingest(&store, ConflictPolicy::PreferValid, "B1,2025-01-01,1,5,p\nB1,2025-01-02,2,5,p\nB1,2025-01-03,3,5,p\n")
        .await;
    let ingestor = ingestor(&store, ConflictPolicy::PreferValid);
    let mut source = csv("B1,2025-01-03,3,5,p\nB1,2025-01-01,1,5,p\nB1,2025-01-05,5,5,p\n");
    let rows = ingestor.classify_all(source.as_mut()).unwrap();
    let batch = open_batch(&store, "apart.csv").await;
    let chunk = ChunkWrite { batch, rows: &rows, stored_before: 0, probe_first: true, unseen: None };
    let links = ingestor.write_chunk(chunk).await.unwrap();
    let admissions: Vec<Admission> = links.iter().map(|l| l.admission).collect();
    assert_eq!(admissions, [Admission::Redelivered, Admission::Redelivered, Admission::New]);
    let after = all(&store).await;
    assert_eq!(after.len(), 4);
    for record in &after {
        let day = record.state.fields.date.unwrap().day();
        assert_eq!(record.exact_duplicates, 0, "day {day}: re-deliveries are no duplicates");
        if day == 1 || day == 3 {
            assert!(links.iter().any(|l| l.record_id == record.id), "day {day} is linked to its record");
        }
    }
}

/// Rows for buildings `from..to` on one day, out of key order (B10 sorts before B9); more than
/// PostgreSQL's small-batch limit, so that their new records are copied in.
fn day_rows(from: usize, to: usize) -> String {
    (from..to).rev().map(|b| format!("B{b},2025-04-01,{b}.5,5,p\n")).collect()
}

/// Writes `rows` as one chunk of a new batch, the keys `seen` holds counting as met in
/// earlier chunks (it notes this chunk's too).
async fn write_unseen(
    store: &Arc<dyn RecordStore>,
    rows: &str,
    seen: &mut std::collections::HashSet<RecordKey>,
) -> (Vec<emdp_app::ports::RawRow>, Vec<emdp_app::ports::RawLink>) {
    let ingestor = ingestor(store, ConflictPolicy::PreferValid);
    let classified = ingestor.classify_all(csv(rows).as_mut()).unwrap();
    let unseen: Vec<bool> = classified.iter().map(|row| !seen.contains(&row.key)).collect();
    seen.extend(classified.iter().map(|row| row.key.clone()));
    let batch = open_batch(store, "unseen.csv").await;
    let chunk = ChunkWrite { batch, rows: &classified, stored_before: 0, probe_first: false, unseen: Some(&unseen) };
    let links = ingestor.write_chunk(chunk).await.unwrap();
    (classified, links)
}

/// Each row is linked to the record of its own key, and is in that record's history.
async fn assert_linked(
    store: &Arc<dyn RecordStore>,
    rows: &[emdp_app::ports::RawRow],
    links: &[emdp_app::ports::RawLink],
) {
    for (row, link) in rows.iter().zip(links) {
        let record = store.get_record(link.record_id).await.unwrap().expect("linked record");
        assert_eq!(record.state.fields.building_id, row.fields.building_id, "line {}", row.line);
        let history = store.record_history(link.record_id).await.unwrap();
        assert!(history.iter().any(|h| h.line == row.line), "line {} in its record's history", row.line);
    }
}

/// Keys no earlier chunk had are inserted through `insert_unseen` (PostgreSQL copies them
/// in): every row still gets its own new record.
async fn unseen_keys_are_inserted_and_linked(store: Arc<dyn RecordStore>) {
    use emdp_domain::Admission;
    let (rows, links) = write_unseen(&store, &day_rows(0, 600), &mut Default::default()).await;
    assert!(links.iter().all(|l| l.admission == Admission::New));
    assert_eq!(all(&store).await.len(), 600);
    assert_linked(&store, &rows, &links).await;
}

/// Keys no earlier chunk had may be stored all the same (by an earlier ingest): the copy is
/// undone and they take the usual way, with the outcome of an ingest without the hint; keys
/// met in an earlier chunk go the usual way from the start, in the same chunk.
async fn unseen_keys_that_are_stored_take_the_usual_way(store: Arc<dyn RecordStore>) {
    use emdp_domain::Admission;
    ingest(&store, ConflictPolicy::PreferValid, &day_rows(0, 300)).await;
    // Unseen, half of them stored.
    let (rows, links) = write_unseen(&store, &day_rows(0, 600), &mut Default::default()).await;
    let redelivered = links.iter().filter(|l| l.admission == Admission::Redelivered).count();
    assert_eq!((redelivered, all(&store).await.len()), (300, 600));
    assert_linked(&store, &rows, &links).await;
    // Seen (the stored half) and unseen (new) in one chunk.
    let mut seen = std::collections::HashSet::new();
    write_unseen(&store, &day_rows(0, 600), &mut seen).await;
    let (rows, links) = write_unseen(&store, &day_rows(300, 1200), &mut seen).await;
    let redelivered = links.iter().filter(|l| l.admission == Admission::Redelivered).count();
    assert_eq!((redelivered, all(&store).await.len()), (300, 1200));
    assert_linked(&store, &rows, &links).await;
}

/// A file ingested again is seen to be stored from its first chunk on (a sample of its keys
/// is looked up first): its keys are probed, not copied in as new, refused and inserted the
/// usual way, which drew ids for nothing. The next new record's id follows the last one.
async fn a_rerun_draws_no_ids(store: Arc<dyn RecordStore>) {
    let rows = day_rows(0, 600);
    ingest(&store, ConflictPolicy::PreferValid, &rows).await;
    let last = all(&store).await.iter().map(|r| r.id).max().unwrap();
    let again = ingest(&store, ConflictPolicy::PreferValid, &rows).await;
    assert_eq!((again.stored.inserted, again.stored.redelivered), (0, 600));
    ingest(&store, ConflictPolicy::PreferValid, "B9999,2025-04-01,1,5,p\n").await;
    let next = all(&store).await.iter().map(|r| r.id).max().unwrap();
    assert_eq!(next, last + 1, "ids drawn by the re-run");
}

/// A batch read by a column mapping keeps it beside its header, for its raw payloads to be
/// read again; a batch read under the fields' own names keeps none.
async fn a_batch_keeps_its_column_mapping(store: Arc<dyn RecordStore>) {
    let names = emdp_domain::ColumnNames::parse(&["building_id=site", "consumption=kwh"]).unwrap();
    let input = "site,date,kwh,temperature,provider\nS1,2025-01-01,10,5,p\n";
    let source = Box::new(CsvSource::with_columns(std::io::Cursor::new(input.as_bytes().to_vec()), names.clone()));
    ingestor(&store, ConflictPolicy::PreferValid).ingest(source, "mapped.csv", &()).await.unwrap();
    ingest(&store, ConflictPolicy::PreferValid, "S2,2025-01-01,10,5,p\n").await;
    let records = all(&store).await;
    let history = |building: &str| {
        let id = records.iter().find(|r| r.state.fields.building_id.as_deref() == Some(building)).unwrap().id;
        store.record_history(id)
    };
    let mapped = history("S1").await.unwrap();
    assert_eq!(mapped[0].columns, Some(names.to_string()));
    assert_eq!(mapped[0].header.as_deref(), Some("site,date,kwh,temperature,provider"));
    assert_eq!(history("S2").await.unwrap()[0].columns, None);
}

/// Batches are listed newest first, with what each holds; a batch never finished (a crash
/// between its chunks) is listed as such, without a summary.
async fn batches_are_listed_newest_first(store: Arc<dyn RecordStore>) {
    use emdp_app::ports::BatchFilter;
    let first = ingest(&store, ConflictPolicy::PreferValid, MIXED).await;
    let cut = open_batch(&store, "cut.csv").await;
    let last = ingest(&store, ConflictPolicy::PreferValid, "B9,2025-01-01,1,5,p\n").await;
    let all_batches = store.list_batches(&BatchFilter::default(), None, 10).await.unwrap();
    let ids: Vec<Option<i64>> = all_batches.iter().map(|b| Some(b.id)).collect();
    assert_eq!(ids, [last.batch_id, Some(cut), first.batch_id]);
    let done = &all_batches[2];
    assert_eq!((done.source.as_str(), done.format.as_str(), done.rows_stored), ("test.csv", "csv", 5));
    assert_eq!(done.header.as_deref(), Some(HEADER.trim_end()));
    assert!(done.finished_at.is_some_and(|finished| finished >= done.started_at));
    let summary = done.summary.as_ref().expect("a finished batch's summary");
    assert_eq!((summary["total"].as_i64(), summary["stored"]["inserted"].as_i64()), (Some(5), Some(3)));

    let unfinished = BatchFilter { unfinished: true, ..BatchFilter::default() };
    let open = store.list_batches(&unfinished, None, 10).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].id, open[0].source.as_str(), open[0].finished_at, &open[0].summary),
        (cut, "cut.csv", None, &None)
    );
    let from_file = BatchFilter { source: Some("test.csv".into()), ..BatchFilter::default() };
    assert_eq!(store.list_batches(&from_file, None, 10).await.unwrap().len(), 2);
    // Keyset pages: the ids below the last one seen.
    let page = store.list_batches(&BatchFilter::default(), Some(all_batches[0].id), 1).await.unwrap();
    assert_eq!(page.iter().map(|b| b.id).collect::<Vec<_>>(), [cut]);
}

/// Two ingests copying in the same new keys at once: one waits for the other's commit, finds
/// its keys stored and takes the usual way.
async fn concurrent_unseen_copies_do_not_duplicate(store: Arc<dyn RecordStore>) {
    use emdp_domain::Admission;
    let rows = day_rows(0, 600);
    let (mut first, mut second) = Default::default();
    let ((_, a), (_, b)) =
        tokio::join!(write_unseen(&store, &rows, &mut first), write_unseen(&store, &rows, &mut second));
    let new = a.iter().chain(&b).filter(|l| l.admission == Admission::New).count();
    let redelivered = a.iter().chain(&b).filter(|l| l.admission == Admission::Redelivered).count();
    assert_eq!((new, redelivered, all(&store).await.len()), (600, 600, 600));
}

/// Large look-ups answer exactly the keys asked for, whether they are most of a stretch of
/// the key index (SQLite reads it as one range, PostgreSQL one per building and provider,
/// leaving out the days between) or few keys far apart (one seek each).
async fn large_lookups_find_exactly_the_keys_asked_for(store: Arc<dyn RecordStore>) {
    use emdp_app::ports::RecordKey;
    let rows: String = (0..3_000).map(|i| format!("B{:04},2025-04-{:02},{i},5,p\n", i / 30, i % 30 + 1)).collect();
    ingest(&store, ConflictPolicy::PreferValid, &rows).await;
    let key = |i: usize| RecordKey::Reading {
        building_id: format!("B{:04}", i / 30),
        date: NaiveDate::from_ymd_opt(2025, 4, (i % 30 + 1) as u32).unwrap(),
        provider: "p".into(),
    };
    let absent = RecordKey::Reading { building_id: "B0050x".into(), date: today(), provider: "p".into() };
    for step in [2, 3] {
        let mut asked: Vec<RecordKey> = (0..3_000).step_by(step).map(key).collect();
        asked.push(absent.clone());
        // In an ingest transaction, as an ingest looks keys up (`find_keys` answers each
        // caller from a shared look-up, keeping only the caller's keys).
        let mut tx = store.begin_ingest().await.unwrap();
        let mut found: Vec<RecordKey> = tx.load_keys(&asked).await.unwrap().into_iter().map(|k| k.key).collect();
        drop(tx);
        found.sort();
        asked.pop();
        asked.sort();
        assert!(found == asked, "every {step}th key: {} found of {}", found.len(), asked.len());
    }
}

/// Probes a chunk's keys as a re-run does: 3,000 stored readings (one of them with two
/// versions), rows that repeat them, two with a value not stored, a keyless row and a key not
/// stored. Checks every answer against a full load and returns how many were
/// [`Probed::Exact`](emdp_app::ports::Probed::Exact) (an adapter may answer none so).
async fn probe_answers(store: &Arc<dyn RecordStore>) -> usize {
    use emdp_app::ports::{KeyProbe, Probed, RecordKey, StoredKey};
    let stored: String = (0..3_000).map(|i| format!("B{:04},2025-04-{:02},{i},5,p\n", i / 30, i % 30 + 1)).collect();
    ingest(store, ConflictPolicy::PreferValid, &format!("{stored}B0000,2025-04-01,999,5,p\nB9999,,7,5,p\n")).await;
    // Key 1 gets a new value, key 2 a repeat and a new value, key 0 (two versions) its second.
    let again = stored.replacen("B0000,2025-04-02,1,", "B0000,2025-04-02,1001,", 1).replacen(
        "B0000,2025-04-03,2,5,p\n",
        "B0000,2025-04-03,2,5,p\nB0000,2025-04-03,2002,5,p\n",
        1,
    );
    let ingestor = ingestor(store, ConflictPolicy::PreferValid);
    let rows = ingestor
        .classify_all(
            csv(&format!("{again}B0000,2025-04-01,999,5,p\nB9999,,7,5,p\nB0050x,2025-04-01,1,5,p\n")).as_mut(),
        )
        .unwrap();
    let mut probes: Vec<KeyProbe> = Vec::new();
    for row in &rows {
        match probes.iter_mut().find(|probe| *probe.key == row.key) {
            Some(probe) if !probe.values.contains(&row.values) => probe.values.push(row.values),
            Some(_) => {}
            None => probes.push(KeyProbe { key: &row.key, values: vec![row.values] }),
        }
    }
    let keys: Vec<RecordKey> = probes.iter().map(|probe| probe.key.clone()).collect();
    let mut tx = store.begin_ingest().await.unwrap();
    let answers = tx.probe_keys(&probes).await.unwrap();
    let loaded: std::collections::HashMap<RecordKey, StoredKey> =
        tx.load_keys(&keys).await.unwrap().into_iter().map(|k| (k.key.clone(), k)).collect();
    drop(tx);
    assert_eq!(answers.len(), probes.len());
    let mut exact = 0;
    for (probe, answer) in probes.iter().zip(answers) {
        let reference = loaded.get(probe.key);
        match answer {
            None => assert!(reference.is_none(), "{:?} is stored", probe.key),
            Some(Probed::Stored(key)) => assert_eq!(Some(&*key), reference),
            Some(Probed::Exact { record, kept }) => {
                let reference = reference.expect("an exact answer for a stored key");
                assert_eq!((record, kept), (reference.id, reference.state.winner), "the one version is the winner");
                for value in &probe.values {
                    assert!(reference.versions.iter().any(|v| v.version.values == *value), "{:?}", probe.key);
                }
                exact += 1;
            }
        }
    }
    let [new_value, repeat_and_new] = [2, 3].map(|day| {
        probes
            .iter()
            .position(|p| matches!(p.key, RecordKey::Reading { building_id, date, .. } if building_id == "B0000" && date.day() == day))
            .unwrap()
    });
    assert_eq!(probes[new_value].values.len(), 1);
    assert_eq!(probes[repeat_and_new].values.len(), 2);
    assert_eq!(probes.len(), 3_002, "3,000 readings, the keyless row and the key not stored");
    exact
}

/// Probing a re-run's keys answers each like a full load, or as an exact repeat only where
/// every probed value is a kept version.
async fn probes_answer_like_a_full_load(store: Arc<dyn RecordStore>) {
    probe_answers(&store).await;
}

/// SQLite answers a re-run's keys whose one version every row repeats from the key index
/// alone (every reading but the three with a value not stored or two versions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_probes_answer_repeats_without_loading_them() {
    let fixture = emdp_testkit::sqlite().await;
    assert_eq!(probe_answers(&fixture.store).await, 2_997);
}

emdp_testkit::every_backend! {
    |fixture| Arc::clone(&fixture.store) => [
        first_ingest_stores_every_row,
        reingest_is_idempotent,
        conflicts_across_batches_follow_the_policy,
        a_batch_opened_in_a_transaction_lives_and_dies_with_it,
        other_policies,
        keyless_rows_are_idempotent_by_content,
        malformed_payloads_are_kept_raw,
        list_filters_and_keyset_pagination,
        get_and_delete_keep_raw_payloads,
        an_uncommitted_chunk_leaves_nothing,
        concurrent_ingests_do_not_duplicate,
        nul_bytes_are_stored_and_returned_exactly,
        rows_out_of_key_order_link_to_their_own_records,
        probing_stored_keys_first_gives_the_same_outcome,
        probing_days_apart_leaves_the_stored_days_between_them,
        unseen_keys_are_inserted_and_linked,
        unseen_keys_that_are_stored_take_the_usual_way,
        a_rerun_draws_no_ids,
        a_batch_keeps_its_column_mapping,
        batches_are_listed_newest_first,
        concurrent_unseen_copies_do_not_duplicate,
        large_lookups_find_exactly_the_keys_asked_for,
        probes_answer_like_a_full_load,
    ],
}

emdp_testkit::needs_postgres! {
    /// PostgreSQL runs ingest transactions side by side: a chunk that shares a key with another
    /// one in flight waits for it (`IngestTx::lock_keys`), then reads what it committed. Without
    /// the wait, two ingests of the same conflicting rows each stored the second version as new.
    /// (SQLite's ingest transactions take turns whole, in `begin_ingest`.)
    /// A PostgreSQL ingest writes two chunks at once, yet a chunk that fails stops every chunk
    /// after it: they roll back even when done first, so the stores end at a chunk boundary.
    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_chunks_after_a_failed_one_roll_back() {
        use sqlx::Connection as _;
        let test = emdp_testkit::postgres().await;
        // 100 buildings x 1,000 days, day by day: in key order, chunks of 25,000 rows hold
        // buildings B000-B024, B025-B049, B050-B074 and B075-B099.
        let first = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let mut rows = String::new();
        for day in 0..1000 {
            let date = first + chrono::Days::new(day);
            for building in 0..100 {
                rows.push_str(&format!("B{building:03},{date},{}.5,10,p\n", day % 7));
            }
        }
        // The raw row of B050 on day 500 (line 2 + 500 * 100 + 50) fails the third chunk.
        let mut admin = sqlx::PgConnection::connect(&test.url).await.unwrap();
        for statement in [
            "CREATE FUNCTION fail_one_row() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN IF NEW.line = 50052 THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER fail_one_row BEFORE INSERT ON raw_records FOR EACH ROW EXECUTE FUNCTION fail_one_row()",
        ] {
            sqlx::query(statement).execute(&mut admin).await.unwrap();
        }

        let failed = ingestor(&test.store, ConflictPolicy::PreferValid).ingest(csv(&rows), "big.csv", &()).await;
        assert!(failed.is_err_and(|err| err.to_string().contains("injected failure")));
        let (records, low, high): (i64, String, String) =
            sqlx::query_as("SELECT count(*), min(building_id), max(building_id) FROM records")
                .fetch_one(&mut admin)
                .await
                .unwrap();
        assert_eq!((records, low.as_str(), high.as_str()), (50_000, "B000", "B049"), "the first two chunks only");
        let raw: i64 = sqlx::query_scalar("SELECT count(*) FROM raw_records").fetch_one(&mut admin).await.unwrap();
        assert_eq!(raw, 50_000);
    }
}

emdp_testkit::needs_postgres! {
    /// Two request bodies of several chunks each, with the same buildings in opposite orders,
    /// stored at once: each body locks all its keys before its first chunk, so one waits for the
    /// other (locked chunk by chunk, each held a building the other waited for, and PostgreSQL
    /// aborted one as a deadlock).
    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_bodies_of_several_chunks_with_the_same_buildings_take_turns() {
        let test = emdp_testkit::postgres().await;
        let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
        let rows_of = |building: &str| -> String {
            (0..emdp_app::usecases::ingest::CHUNK_ROWS as u64)
                .map(|day| format!("{building},{},1.5,10,p\n", first + chrono::Days::new(day)))
                .collect()
        };
        let ingestor = ingestor(&test.store, ConflictPolicy::PreferValid);
        let forward = ingestor.classify_all(csv(&(rows_of("A") + &rows_of("B"))).as_mut()).unwrap();
        let backward = ingestor.classify_all(csv(&(rows_of("B") + &rows_of("A"))).as_mut()).unwrap();
        let body = |rows| ingestor.ingest_rows(rows, "api", emdp_app::ports::SourceFormat::Csv, None, None);
        let (one, other) = tokio::join!(body(&forward), body(&backward));
        let (one, other) = (one.expect("first body").0, other.expect("second body").0);
        let mut inserted = [one.stored.inserted, other.stored.inserted];
        inserted.sort_unstable();
        assert_eq!(inserted, [0, 100_000], "one body stored every key, the other found them stored");
    }
}

/// Counts this database's sessions waiting for an advisory lock.
const WAITING_FOR_ADVISORY_LOCK: &str = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

/// Polls until `task` waits for an advisory lock (true) or has finished without waiting.
async fn waits_or_finishes<T>(test: &emdp_testkit::TestStore, task: &tokio::task::JoinHandle<T>) -> bool {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&test.url).await.unwrap();
    while !task.is_finished() {
        if sqlx::query_scalar::<_, i64>(WAITING_FOR_ADVISORY_LOCK).fetch_one(&mut admin).await.unwrap() > 0 {
            return true;
        }
        tokio::task::yield_now().await;
    }
    false
}

/// Whether a chunk locking `second` waits for one that holds the locks of `first`.
async fn second_waits(test: &emdp_testkit::TestStore, first: &[RecordKey], second: Vec<RecordKey>) -> bool {
    let mut holder = test.store.begin_ingest().await.unwrap();
    holder.lock_keys(&first.iter().collect::<Vec<_>>()).await.unwrap();
    let other = tokio::spawn({
        let store = Arc::clone(&test.store);
        async move {
            let mut tx = store.begin_ingest().await.unwrap();
            tx.lock_keys(&second.iter().collect::<Vec<_>>()).await.unwrap();
            tx.commit().await.unwrap();
        }
    });
    let waits = waits_or_finishes(test, &other).await;
    holder.commit().await.unwrap();
    other.await.unwrap();
    waits
}

emdp_testkit::needs_postgres! {
    /// Chunks of few buildings lock each building (two ingests of different buildings, or two
    /// chunks of one ingest in key order, are written at once); a chunk of many buildings locks
    /// buckets of them, and still waits for (and is waited for by) any chunk with one of them.
    #[tokio::test(flavor = "multi_thread")]
    async fn postgres_chunks_wait_only_for_chunks_with_a_building_in_common() {
        let test = emdp_testkit::postgres().await;
        let key = |building: &str, day: u32| RecordKey::Reading {
            building_id: building.into(),
            date: NaiveDate::from_ymd_opt(2025, 1, day).unwrap(),
            provider: "p".into(),
        };
        let many: Vec<RecordKey> = (0..2000).map(|i| key(&format!("M{i}"), 1)).collect();
        assert!(second_waits(&test, &[key("B1", 1)], vec![key("B1", 2)]).await, "same building");
        assert!(!second_waits(&test, &[key("B1", 1)], vec![key("B2", 1)]).await, "another building");
        // A building whose bucket is B1's (FNV-1a modulo 1,024, as the adapter hashes them).
        let bucket =
            |id: &str| id.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193)) % 1024;
        let neighbour = (0..).map(|i| format!("F{i}")).find(|id| bucket(id) == bucket("B1")).unwrap();
        assert!(!second_waits(&test, &[key("B1", 1)], vec![key(&neighbour, 1)]).await, "a building in the same bucket");
        assert!(!second_waits(&test, &[key("B1", 1)], (0..300).map(|i| key(&format!("F{i}"), 1)).collect()).await);
        assert!(second_waits(&test, &[key("M7", 3)], many.clone()).await, "many after few");
        assert!(second_waits(&test, &many, vec![key("M1999", 2)]).await, "few after many");
        let content = RecordKey::Content("ab".repeat(16));
        assert!(second_waits(&test, std::slice::from_ref(&content), vec![content.clone()]).await, "a content key");
    }
}

emdp_testkit::needs_postgres! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_chunks_with_a_key_in_common_take_turns() {
        use emdp_app::ports::NewRecord;

        let test = emdp_testkit::postgres().await;
        let store = Arc::clone(&test.store);
        ingest(&store, ConflictPolicy::PreferValid, "B0,2025-01-01,1,2,p\n").await;
        let day = NaiveDate::from_ymd_opt(2025, 1, 2).unwrap();
        let key = RecordKey::Reading { building_id: "B1".into(), date: day, provider: "p".into() };
        // B0's state, moved to the new key.
        let mut state = all(&store).await[0].state.clone();
        (state.fields.building_id, state.fields.date) = (Some("B1".into()), Some(day));

        let mut first = store.begin_ingest().await.unwrap();
        first.lock_keys(&[&key]).await.unwrap();
        let record = NewRecord { key: key.clone(), state, created_at: chrono::Utc::now() };
        assert!(first.insert_absent(&[record]).await.unwrap()[0].is_some());

        let second = tokio::spawn({
            let (store, key) = (Arc::clone(&store), key.clone());
            async move {
                let mut second = store.begin_ingest().await.unwrap();
                second.lock_keys(&[&key]).await.unwrap();
                let found = second.load_keys(&[key]).await.unwrap().len();
                second.commit().await.unwrap();
                found
            }
        });
        // Until the second chunk waits for the first one's lock (not merely has not started), or
        // has finished without waiting, which the assertion below reports.
        waits_or_finishes(&test, &second).await;
        first.commit().await.unwrap();
        assert_eq!(second.await.unwrap(), 1, "the second chunk read the key the first one committed");
    }
}
