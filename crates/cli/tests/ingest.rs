//! End-to-end tests of storage through the `emdp` binary: `ingest`, `records`, `migrate`,
//! `import-mongo`, their exit codes, and a kill in the middle of an ingest.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    TODAY, arg, emdp, fails_with, generate_file, gzip, manifest_today, run_json, run_ok, sqlite_url, temp_dir,
    wal_bytes, write_file,
};
use emdp_app::ports::{RecordFilter, RecordStore, StoredRecord};
use serde_json::{Value, json};

const HEADER: &str = "building_id,date,consumption,temperature,provider\n";

/// Rows per ingest transaction.
const CHUNK_ROWS: u64 = emdp_app::usecases::ingest::CHUNK_ROWS as u64;

/// `emdp ingest FILE --database-url URL --today TODAY --output json`.
fn ingest(file: &str, url: &str, today: &str) -> Value {
    run_json(&["ingest", file, "--database-url", url, "--today", today, "--output", "json"])
}

/// The `validate`-shaped part of an ingest summary.
fn quality(summary: &Value) -> Value {
    let mut quality = summary.clone();
    let object = quality.as_object_mut().unwrap();
    object.remove("stored");
    object.remove("batch_id");
    quality
}

fn count(value: &Value, path: &str) -> u64 {
    value.pointer(path).and_then(Value::as_u64).unwrap_or_else(|| panic!("no count at {path} in {value}"))
}

/// Every record, as `emdp records list --output json` prints it (in pages).
fn list_all(url: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = vec!["records", "list", "--limit", "100000", "--output", "json", "--database-url", url];
        if let Some(cursor) = &cursor {
            args.extend(["--cursor", cursor]);
        }
        let page = run_json(&args);
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

#[test]
fn ingest_matches_the_manifest_and_a_second_ingest_changes_nothing() {
    let dir = temp_dir();
    let (file, manifest) = generate_file(&dir, "energy.csv", 10, 60, 3);
    let url = sqlite_url(&dir, "emdp.db");
    let today = manifest_today(&manifest);
    let report = || run_json(&["report", "--output", "json", "--today", &today, "--database-url", &url]);

    let first = ingest(arg(&file), &url, &today);
    let report_first = report();
    assert_eq!(quality(&first), manifest["expected"], "the stored classification is validate's");
    let total = count(&first, "/total");
    assert_eq!(total, 600);
    let stored = count(&first, "/stored/inserted")
        + count(&first, "/stored/duplicates_skipped")
        + count(&first, "/stored/conflicts")
        + count(&first, "/stored/redelivered");
    assert_eq!(stored, total, "every row is inserted, skipped as a duplicate or kept as a conflict");
    assert_eq!(count(&first, "/stored/duplicates_skipped"), count(&first, "/duplicates/exact"));
    assert_eq!(count(&first, "/stored/conflicts"), count(&first, "/duplicates/conflicting"));
    let records = list_all(&url);
    assert_eq!(records.len() as u64, count(&first, "/stored/inserted"), "one record per new key");

    let second = ingest(arg(&file), &url, &today);
    assert_eq!(second["duplicates"], json!({"exact": 0, "conflicting": 0}), "a re-delivery is no duplicate");
    assert_eq!(
        second["stored"],
        json!({"inserted": 0, "duplicates_skipped": 0, "conflicts": 0, "redelivered": total}),
        "every row re-delivered"
    );
    // The report's duplicate figures are the file's, however often it was delivered.
    let report_second = report();
    assert_eq!(report_second["rows"]["redelivered"], total, "{}", report_second["rows"]);
    assert_eq!(report_first["rows"]["redelivered"], 0);
    for figure in ["/rows/duplicates", "/rows/total", "/rows/valid", "/rows/reasons", "/records"] {
        assert_eq!(report_second.pointer(figure), report_first.pointer(figure), "{figure}");
    }
    assert_eq!(report_first["rows"]["duplicates"], manifest["expected"]["duplicates"], "validate's figures");
    let text = run_ok(&["report", "--today", &today, "--database-url", &url]);
    assert!(text.contains(&format!("{:<28} {total:>12}", "redelivered (not counted)")), "{text}");
    for status in ["valid", "incomplete", "inconsistent"] {
        assert_eq!(second[status], first[status], "rows are classified the same way");
    }
    assert_ne!(second["batch_id"], first["batch_id"], "a second raw batch");
    let after = list_all(&url);
    let strip = |records: &[Value]| -> Vec<Value> {
        records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.as_object_mut().unwrap().remove("exact_duplicates");
                r
            })
            .collect()
    };
    assert_eq!(strip(&after), strip(&records), "the curated store is unchanged");
    let exact_before: u64 = records.iter().map(|r| r["exact_duplicates"].as_u64().unwrap()).sum();
    let exact_after: u64 = after.iter().map(|r| r["exact_duplicates"].as_u64().unwrap()).sum();
    assert_eq!(exact_after, exact_before, "a re-sent row is linked, and is no exact duplicate");
}

#[test]
fn records_get_and_history_show_a_record_and_every_payload() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let file = write_file(
        &dir,
        "in.csv",
        format!("{HEADER}B1,2025-01-01,10,5,p\nB1,2025-01-01,10.0,5,p\nB1,2025-01-01,12,5,p\nB2,2025-01-01,-1,5,p\n"),
    );
    let summary = ingest(arg(&file), &url, TODAY);
    assert_eq!(summary["stored"], json!({"inserted": 2, "duplicates_skipped": 1, "conflicts": 1, "redelivered": 0}));

    let list = run_json(&["records", "list", "--building", "B1", "--output", "json", "--database-url", &url]);
    let id = list["items"][0]["id"].as_i64().unwrap();
    let record = run_json(&["records", "get", &id.to_string(), "--output", "json", "--database-url", &url]);
    assert_eq!(record["building_id"], "B1");
    assert_eq!(record["consumption"], 12.0, "prefer_valid: both VALID, the latest wins");
    assert_eq!(record["quality_status"], "VALID");
    assert_eq!((record["versions"].as_i64(), record["exact_duplicates"].as_i64()), (Some(2), Some(1)));
    assert_eq!(record["winner"], json!({"batch_id": summary["batch_id"].as_i64().unwrap(), "line": 4}));

    let history = run_json(&["records", "history", &id.to_string(), "--output", "json", "--database-url", &url]);
    let history = history.as_array().unwrap();
    let payloads: Vec<&str> = history.iter().map(|h| h["payload"].as_str().unwrap()).collect();
    assert_eq!(payloads, ["B1,2025-01-01,10,5,p", "B1,2025-01-01,10.0,5,p", "B1,2025-01-01,12,5,p"]);
    let admissions: Vec<&str> = history.iter().map(|h| h["admission"].as_str().unwrap()).collect();
    assert_eq!(admissions, ["new", "exact", "conflicting"]);
    assert_eq!(history.iter().map(|h| h["winner"].as_bool().unwrap()).collect::<Vec<_>>(), [false, false, true]);
    assert_eq!(history[0]["source"], arg(&file));
    assert_eq!(history[0]["header"], HEADER.trim_end());
    assert_eq!(history[0]["line"], 2);
    assert_eq!(history[0]["original_id"], Value::Null, "files have no original id");

    let text = run_ok(&["records", "history", &id.to_string(), "--database-url", &url]);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.contains("[winner]"), "{text}");
    let table = run_ok(&["records", "list", "--database-url", &url]);
    assert!(table.contains("B2") && table.contains("consumption_non_positive"), "{table}");
    let shown = run_ok(&["records", "get", &id.to_string(), "--database-url", &url]);
    let field = |name: &str| shown.lines().find_map(|line| line.strip_prefix(name).map(str::trim)).map(str::to_owned);
    assert_eq!(field("consumption").as_deref(), Some("12"), "{shown}");
    assert_eq!(field("versions").as_deref(), Some("2"), "{shown}");
    assert_eq!(field("exact_duplicates").as_deref(), Some("1"), "{shown}");
    assert_eq!(field("reasons").as_deref(), Some("-"), "{shown}");
    let winner = format!("batch {} line 4", summary["batch_id"].as_i64().unwrap());
    assert_eq!(field("winner"), Some(winner), "{shown}");

    let missing = fails_with(2, &["records", "get", "999999", "--database-url", &url]);
    assert!(missing.contains("no record with id 999999"), "{missing}");
}

#[test]
fn text_tables_keep_one_line_per_record_whatever_the_values_hold() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    // An unbalanced quote carries the next line, newline included, into the building id.
    let file = write_file(&dir, "in.csv", format!("{HEADER}\"B1,2025-01-01,10,5,p\nB2,2025-01-01,11,5,p\n"));
    ingest(arg(&file), &url, TODAY);
    let stored = list_all(&url);
    assert_eq!(stored[0]["building_id"], "B1,2025-01-01,10,5,p\nB2,2025-01-01,11,5,p");
    let id = stored[0]["id"].to_string();

    let table = run_ok(&["records", "list", "--database-url", &url]);
    assert_eq!(table.lines().count(), 2, "a header and one record: {table}");
    assert!(table.contains(r"B1,2025-01-01,10,5,p\nB2"), "{table}");
    let history = run_ok(&["records", "history", &id, "--database-url", &url]);
    assert_eq!(history.lines().count(), 1, "{history}");
}

#[test]
fn a_gzip_file_is_ingested_like_the_plain_one() {
    let dir = temp_dir();
    let (plain, manifest) = generate_file(&dir, "plain.csv", 20, 60, 9);
    let today = manifest_today(&manifest);
    let compressed = write_file(&dir, "readings.csv.gz", gzip(std::fs::read(&plain).unwrap()));
    let summary = ingest(arg(&compressed), &sqlite_url(&dir, "emdp.db"), &today);
    assert_eq!(quality(&summary), manifest["expected"]);
    let reference = ingest(arg(&plain), &sqlite_url(&dir, "plain.db"), &today);
    assert_eq!(summary["stored"], reference["stored"]);
    let history =
        run_json(&["records", "history", "1", "--output", "json", "--database-url", &sqlite_url(&dir, "emdp.db")]);
    assert_eq!(history[0]["source"], arg(&compressed), "the batch is named after the file as given");
}

#[test]
fn an_export_with_its_own_column_names_is_ingested_with_column() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let file = write_file(&dir, "export.csv", "meter;x,day,kwh,temperature,provider\nB1,2025-01-01,10.5,4,acme\n");
    let mapped = ["--column", "building_id=meter;x", "--column", "date=day", "--column", "consumption=kwh"];
    let args = ["ingest", arg(&file), "--database-url", &url, "--today", TODAY, "--output", "json"];
    let summary = run_json(&[&args[..], &mapped].concat());
    assert_eq!((summary["valid"].as_u64(), summary["stored"]["inserted"].as_u64()), (Some(1), Some(1)));
    let record = &list_all(&url)[0];
    assert_eq!((record["building_id"].as_str(), record["consumption"].as_f64()), (Some("B1"), Some(10.5)));
    let history = run_json(&["records", "history", "1", "--output", "json", "--database-url", &url]);
    assert_eq!(history[0]["header"], "meter;x,day,kwh,temperature,provider", "the export's own header is kept");
    assert_eq!(
        history[0]["columns"],
        "building_id=meter;x, date=day, consumption=kwh, temperature=temperature, provider=provider",
        "and the mapping it was read by"
    );
    let listed = run_ok(&["batches", "list", "--database-url", &url]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].split_whitespace().eq(["batch", "started", "finished", "rows", "stored", "format", "source"]));
    assert!(
        lines[1].trim_start().starts_with("1 ") && lines[1].ends_with(&format!("1  csv     {}", arg(&file))),
        "{listed}"
    );
    let stderr = fails_with(2, &["ingest", arg(&file), "--database-url", &url, "--column", "date"]);
    assert!(stderr.contains("--column: 'date' is not FIELD=NAME"), "{stderr}");
}

/// A file saved with classic Mac line ends (`\r` only, Excel's "CSV (Macintosh)"): every
/// record on its own line number, so the raw rows keep distinct (batch, line) keys.
async fn classic_mac_line_ends_are_lines(store: emdp_testkit::TestStore) {
    let dir = temp_dir();
    let rows: String = (1..=5).map(|i| format!("B{i},2025-01-01,{i}.5,5,p\r")).collect();
    let file = write_file(&dir, "mac.csv", format!("building_id,date,consumption,temperature,provider\r{rows}"));
    let summary = ingest(arg(&file), &store.url, TODAY);
    assert_eq!((summary["valid"].as_u64(), summary["stored"]["inserted"].as_u64()), (Some(5), Some(5)));
    let again = ingest(arg(&file), &store.url, TODAY);
    assert_eq!(again["stored"]["redelivered"], 5);
    let records = all_records(&store.store).await;
    let mut lines = Vec::new();
    for record in &records {
        for version in store.store.record_history(record.id).await.unwrap() {
            lines.push(version.line);
        }
    }
    lines.sort_unstable();
    assert_eq!(lines, [2, 2, 3, 3, 4, 4, 5, 5, 6, 6], "two batches, one line each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_mac_line_ends_are_lines_sqlite() {
    classic_mac_line_ends_are_lines(emdp_testkit::sqlite().await).await;
}

emdp_testkit::needs_postgres! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn classic_mac_line_ends_are_lines_postgres() {
        let store = emdp_testkit::postgres().await;
        classic_mac_line_ends_are_lines(store).await;
    }
}

#[test]
fn migrate_creates_and_reports_the_schema() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "fresh.db");
    let first = run_ok(&["migrate", "--database-url", &url]);
    assert!(first.contains("schema up to date") && first.contains(&url), "{first}");
    assert!(dir.path().join("fresh.db").exists(), "the SQLite file is created");
    let again = run_ok(&["migrate", "--database-url", &url]);
    assert_eq!(again, first, "migrating twice changes nothing");
}

#[test]
fn a_database_that_cannot_be_opened_exits_3() {
    let dir = temp_dir();
    let file = write_file(&dir, "in.csv", format!("{HEADER}B1,2025-01-01,10,5,p\n"));
    let stderr = fails_with(3, &["ingest", arg(&file), "--database-url", "sqlite:///nonexistent-dir/x.db"]);
    assert!(stderr.contains("database unavailable") && stderr.contains("/nonexistent-dir/x.db"), "{stderr}");
    let started = Instant::now();
    let stderr = fails_with(3, &["records", "list", "--database-url", "postgres://postgres@127.0.0.1:1/x"]);
    assert!(stderr.contains("database unavailable") && stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "an unreachable server fails fast");
    // Not a database URL at all: a usage error (exit 2), before anything is opened.
    let stderr = fails_with(2, &["migrate", "--database-url", "mysql://localhost/x"]);
    assert!(stderr.contains("'mysql://localhost/x' is not a database URL emdp knows"), "{stderr}");
}

#[test]
fn a_bad_input_file_exits_2_naming_it() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let missing = dir.path().join("missing.csv");
    let stderr = fails_with(2, &["ingest", arg(&missing), "--database-url", &url]);
    assert!(stderr.contains(arg(&missing)) && stderr.contains("cannot open"), "{stderr}");
    let unknown = write_file(&dir, "data.txt", "x");
    let stderr = fails_with(2, &["ingest", arg(&unknown), "--database-url", &url]);
    assert!(stderr.contains(arg(&unknown)), "{stderr}");
    // Every file is checked before the first is stored, and before the database is opened.
    let good = write_file(&dir, "good.csv", format!("{HEADER}B1,2025-01-01,1.5,5,p\n"));
    let stderr = fails_with(2, &["ingest", arg(&good), arg(&missing), "--database-url", &sqlite_url(&dir, "new.db")]);
    assert!(stderr.contains(arg(&missing)) && stderr.contains("cannot open"), "{stderr}");
    assert!(!dir.path().join("new.db").exists(), "the database was created for an ingest that could not start");
}

#[test]
fn a_file_that_fails_part_way_leaves_nothing_of_it_written() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let good = write_file(&dir, "good.csv", format!("{HEADER}B1,2025-01-01,10,5,p\nB2,2025-01-01,10,5,p\n"));
    let bad_header = write_file(&dir, "bad.csv", "building_id,date,consumption,temperature\nB3,2025-01-01,1,2\n");
    let broken = write_file(
        &dir,
        "broken.json",
        r#"[{"building_id":"B4","date":"2025-01-01","consumption":1,"temperature":2,"provider":"p"},
           {"building_id":"B5","date":"2025-01-01","consumption":1,"temperature":2,"provider":"p"}, {"#,
    );

    // The first file is stored (its own batch); the second stops the command.
    let output = emdp()
        .args(["ingest", arg(&good), arg(&bad_header), "--database-url", &url, "--output", "json", "--today", TODAY])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(arg(&bad_header)) && stderr.contains("provider"), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 1, "the first file's summary");

    let stderr = fails_with(2, &["ingest", arg(&broken), "--database-url", &url, "--today", TODAY]);
    assert!(stderr.contains(arg(&broken)) && stderr.contains("line 2"), "{stderr}");

    let buildings: Vec<Value> = list_all(&url).iter().map(|r| r["building_id"].clone()).collect();
    assert_eq!(buildings, [json!("B1"), json!("B2")], "nothing of the failed files");
}

#[test]
fn an_input_that_cannot_be_sorted_exits_2_naming_the_temporary_directory() {
    // SQLite stores a file of more than one chunk in key order, sorted through temporary files.
    let dir = temp_dir();
    let (file, manifest) = generate_file(&dir, "big.csv", 60, 1000, 5);
    assert!(count(&manifest, "/expected/total") > CHUNK_ROWS);
    let url = sqlite_url(&dir, "emdp.db");
    let missing = dir.path().join("no-such-dir");
    let output = emdp()
        .env("TMPDIR", &missing)
        .args(["ingest", arg(&file), "--database-url", &url, "--today", &manifest_today(&manifest)])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(arg(&missing)) && stderr.contains("sorting the input by key"), "{stderr}");
    assert!(list_all(&url).is_empty(), "nothing stored");
}

// --- import-mongo -------------------------------------------------------------------------

const MONGO_DOCS: [&str; 6] = [
    r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"},"building_id":"B1","date":{"$date":{"$numberLong":"1705276800000"}},"consumption":{"$numberDouble":"12.5"},"temperature":{"$numberInt":"21"},"provider":"acme","data_quality":"invalid","created_at":{"$date":{"$numberLong":"1705312800000"}}}"#,
    r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4c"},"building_id":"B2","date":{"$date":"2024-01-15T00:00:00Z"},"consumption":7,"temperature":-3.5,"provider":"acme","data_quality":"valid","quality_status":"INVALID","is_duplicate":true,"created_at":{"$date":"2024-01-15T11:00:00Z"}}"#,
    r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4d"},"building_id":"B3","date":"2024-01-16","consumption":{"$numberDecimal":"-3"},"temperature":20,"provider":"acme"}"#,
    r#"[1,2]"#,
    r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4e"},"building_id":"B4"}"#,
    r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4f"},"building_id":"B1","date":"2024-01-15","consumption":12.50,"temperature":21,"provider":"acme","created_at":{"$date":"2024-01-16T09:00:00Z"}}"#,
];

fn import_mongo(file: &str, url: &str) -> Value {
    run_json(&["import-mongo", file, "--database-url", url, "--today", TODAY, "--output", "json"])
}

#[test]
fn import_mongo_recomputes_quality_and_keeps_original_ids() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let dump = write_file(&dir, "energy_records.json", MONGO_DOCS.join("\n") + "\n");
    let summary = import_mongo(arg(&dump), &url);
    assert_eq!(
        (count(&summary, "/total"), count(&summary, "/valid"), count(&summary, "/incomplete")),
        (6, 3, 2),
        "{summary}"
    );
    assert_eq!(count(&summary, "/inconsistent"), 1);
    assert_eq!(summary["duplicates"], json!({"exact": 1, "conflicting": 0}), "the re-sent B1 reading");
    assert_eq!(count(&summary, "/reasons/malformed_row"), 1);
    assert_eq!(count(&summary, "/reasons/consumption_non_positive"), 1);
    assert_eq!(summary["stored"], json!({"inserted": 5, "duplicates_skipped": 1, "conflicts": 0, "redelivered": 0}));

    let list = run_json(&["records", "list", "--building", "B1", "--output", "json", "--database-url", &url]);
    let b1 = &list["items"][0];
    assert_eq!((b1["date"].as_str(), b1["consumption"].as_f64()), (Some("2024-01-15"), Some(12.5)));
    let history = run_json(&["records", "history", &b1["id"].to_string(), "--output", "json", "--database-url", &url]);
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["payload"], MONGO_DOCS[0], "the document exactly as exported");
    assert_eq!(history[0]["original_id"], "65a1b2c3d4e5f60718293a4b");
    assert_eq!(history[0]["original_created_at"], "2024-01-15T10:00:00Z");
    assert_eq!(history[0]["source"], "mongo:energy_records.json");
    assert_eq!(history[1]["original_id"], "65a1b2c3d4e5f60718293a4f");
    assert_eq!(history[1]["original_created_at"], "2024-01-16T09:00:00Z");
    assert_eq!(history[1]["admission"], "exact");

    // Importing the same dump again adds nothing, as for `emdp ingest`.
    let again = import_mongo(arg(&dump), &url);
    assert_eq!(again["stored"], json!({"inserted": 0, "duplicates_skipped": 0, "conflicts": 0, "redelivered": 6}));

    // The same documents as a JSON array (`mongoexport --jsonArray`) give the same result.
    let array = write_file(&dir, "array.json", format!("[\n{}\n]\n", MONGO_DOCS.join(",\n")));
    let from_array = import_mongo(arg(&array), &sqlite_url(&dir, "other.db"));
    assert_eq!(quality(&from_array), quality(&summary));

    let stderr = fails_with(2, &["import-mongo", arg(&dir.path().join("none.json")), "--database-url", &url]);
    assert!(stderr.contains("none.json") && stderr.contains("cannot open"), "{stderr}");
    let broken = write_file(&dir, "broken.json", "[{\"building_id\":\"B1\"},\n{");
    let stderr = fails_with(2, &["import-mongo", arg(&broken), "--database-url", &url]);
    assert!(stderr.contains("broken.json") && stderr.contains("line 2"), "{stderr}");
}

#[test]
fn import_mongo_reads_pretty_printed_dumps_like_one_document_per_line() {
    let dir = temp_dir();
    let pretty: Vec<String> = MONGO_DOCS
        .iter()
        .map(|doc| serde_json::to_string_pretty(&serde_json::from_str::<Value>(doc).unwrap()).unwrap())
        .collect();
    let lines = write_file(&dir, "lines.json", MONGO_DOCS.join("\n") + "\n");
    let expected = import_mongo(arg(&lines), &sqlite_url(&dir, "lines.db"));
    // `mongoexport --pretty`: each document over several lines; and `--jsonArray --pretty`.
    let dump = write_file(&dir, "pretty.json", pretty.join("\n") + "\n");
    let url = sqlite_url(&dir, "pretty.db");
    let summary = import_mongo(arg(&dump), &url);
    assert_eq!(quality(&summary), quality(&expected), "{summary}");
    assert_eq!(summary["stored"], expected["stored"]);
    let array = write_file(&dir, "array.json", format!("[{}]\n", pretty.join(",\n")));
    assert_eq!(quality(&import_mongo(arg(&array), &sqlite_url(&dir, "array.db"))), quality(&expected));

    let list = run_json(&["records", "list", "--building", "B1", "--output", "json", "--database-url", &url]);
    let id = list["items"][0]["id"].to_string();
    let history = run_json(&["records", "history", &id, "--output", "json", "--database-url", &url]);
    assert_eq!(history[0]["payload"], pretty[0], "the document exactly as exported");
    assert_eq!(history[0]["line"], 1);
    assert_eq!(history[0]["original_id"], "65a1b2c3d4e5f60718293a4b");
}

#[test]
fn a_gzip_bomb_stores_one_cut_record_and_the_rows_after_it() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    // 3 MiB of zeros without a line break, compressed to a few KiB.
    let mut text = HEADER.as_bytes().to_vec();
    text.resize(text.len() + (3 << 20), 0);
    text.extend_from_slice(b"\nB1,2025-01-01,10,5,p\n");
    let bomb = write_file(&dir, "bomb.csv.gz", gzip(&text));
    let output = emdp()
        .args(["ingest", arg(&bomb), "--database-url", &url, "--today", TODAY, "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "emdp: warning: {}: line 2: the record is 3145728 bytes, over the limit of 1 MiB (1048576 bytes): \
             read as malformed_row, only its first 1048576 bytes kept\n",
            arg(&bomb)
        )
    );
    let summary = common::parse_json(&output.stdout);
    assert_eq!((count(&summary, "/total"), count(&summary, "/valid")), (2, 1));
    assert_eq!(count(&summary, "/reasons/malformed_row"), 1);
    assert_eq!(summary["stored"], json!({"inserted": 2, "duplicates_skipped": 0, "conflicts": 0, "redelivered": 0}));

    let records = list_all(&url);
    let cut = records.iter().find(|r| r["building_id"].is_null()).unwrap();
    let history = run_json(&["records", "history", &cut["id"].to_string(), "--output", "json", "--database-url", &url]);
    let payload = history[0]["payload"].as_str().unwrap();
    assert_eq!(payload.len(), 1 << 20, "the payload keeps the first MiB");
    assert_eq!(history[0]["line"], 2);
    let b1 = records.iter().find(|r| r["building_id"] == "B1").unwrap();
    assert_eq!(b1["winner"]["line"], 3, "the row after it, on its own line");
}

#[test]
fn empty_and_header_only_files_say_they_hold_no_records() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    for (name, text) in [("empty.csv", ""), ("header.csv", HEADER)] {
        let file = write_file(&dir, name, text);
        let output = emdp()
            .args(["ingest", arg(&file), "--database-url", &url, "--today", TODAY, "--output", "json"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert_eq!(stderr, format!("emdp: no records in {}\n", arg(&file)));
        let summary = common::parse_json(&output.stdout);
        assert_eq!((count(&summary, "/total"), &summary["batch_id"]), (0, &Value::Null), "{summary}");
    }
}

// --- kill in the middle of an ingest ------------------------------------------------------

/// Every record of a store, read in pages.
async fn all_records(store: &Arc<dyn RecordStore>) -> Vec<StoredRecord> {
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_records(&RecordFilter::default(), after, 100_000).await.expect("list records");
        let Some(last) = page.last() else { return records };
        after = Some(last.id);
        records.extend(page);
    }
}

/// Raw rows linked to stored records: each record has one raw row per version plus one per
/// exact duplicate (within one batch: a re-delivery is neither).
fn linked_raw_rows(records: &[StoredRecord]) -> u64 {
    records.iter().map(|r| (r.state.versions + r.exact_duplicates) as u64).sum()
}

/// Every raw row received, as the report counts them: the rows of the sources plus the
/// re-delivered ones.
fn received_rows(url: &str, today: &str) -> u64 {
    let report = run_json(&["report", "--output", "json", "--today", today, "--database-url", url]);
    count(&report, "/rows/total") + count(&report, "/rows/redelivered")
}

type Reading = (String, String, String);

/// Asserts that an ingest stopped at a chunk boundary: chunks hold whole buildings in key
/// order and commit in order, so the buildings of `partial` are the first ones of `complete`
/// (in byte order) and each has all its records of `complete`.
fn assert_whole_buildings(partial: &[StoredRecord], complete: &[StoredRecord]) {
    let per_building = |records: &[StoredRecord]| {
        let mut counts = std::collections::HashMap::new();
        for (building, _, _) in records.iter().filter_map(|r| shown(r).0) {
            *counts.entry(building).or_insert(0) += 1;
        }
        counts
    };
    let (partial, complete) = (per_building(partial), per_building(complete));
    assert!(!partial.is_empty() && partial.len() < complete.len(), "{} of {} buildings", partial.len(), complete.len());
    for (building, records) in &partial {
        assert_eq!(Some(records), complete.get(building), "records of {building}: the stop split a chunk");
    }
    let mut first: Vec<&String> = complete.keys().collect();
    first.sort_unstable();
    first.truncate(partial.len());
    assert!(
        first.iter().all(|building| partial.contains_key(*building)),
        "a later chunk committed before an earlier one"
    );
}

/// A record's key (`None` for records identified by their content) and what it shows.
fn shown(record: &StoredRecord) -> (Option<Reading>, String) {
    let f = &record.state.fields;
    let key = record.keyed.then(|| {
        (
            f.building_id.clone().unwrap_or_default(),
            f.date.map(|d| d.to_string()).unwrap_or_default(),
            f.provider.clone().unwrap_or_default(),
        )
    });
    let state = format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {} {} {}",
        f.building_id,
        f.date,
        f.provider,
        f.consumption,
        f.temperature,
        record.state.status,
        record.state.reasons.bits(),
        record.state.versions,
        record.state.pending
    );
    (key, state)
}

fn status_counts(records: &[StoredRecord]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for record in records {
        *counts.entry(record.state.status.as_str().to_owned()).or_default() += 1;
    }
    counts
}

/// Starts an ingest of a ~300,000-row file, SIGKILLs it once a chunk is committed, checks the
/// stores are at a chunk boundary and consistent, re-runs the ingest and compares the result
/// with a clean ingest of the same file into `clean`.
async fn killed_ingest_resumes_to_a_clean_result(killed: emdp_testkit::TestStore, clean: emdp_testkit::TestStore) {
    let dir = temp_dir();
    let (file, manifest) = generate_file(&dir, "big.csv", 300, 1000, 3);
    let today = manifest_today(&manifest);
    let total = count(&manifest, "/expected/total");
    assert_eq!(total, 300_000);
    let args = ["ingest", arg(&file), "--database-url", &killed.url, "--today", &today, "--output", "json"];

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("emdp"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("emdp starts");
    let started = Instant::now();
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the ingest finished before a kill: use a larger file");
        let page = killed.store.list_records(&RecordFilter::default(), None, 1).await.expect("poll the store");
        if !page.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(180), "no chunk committed within 180 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();

    // Consistent after the kill: whole chunks, every raw row linked to a record that exists,
    // at most one record per key.
    let partial = all_records(&killed.store).await;
    let raw = linked_raw_rows(&partial);
    assert!(raw > 0, "a chunk was committed before the kill");
    let keys: Vec<Reading> = partial.iter().filter_map(|r| shown(r).0).collect();
    let distinct: HashSet<&Reading> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len(), "one record per key");
    assert!(partial.iter().all(|r| r.state.versions >= 1));
    // The batch cut short is listed as such, with the rows its committed chunks stored.
    let unfinished = ["batches", "list", "--unfinished", "--output", "json", "--database-url", &killed.url];
    let listed = run_json(&unfinished);
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");
    let cut = &listed["items"][0];
    assert_eq!((cut["source"].as_str(), cut["finished_at"].is_null()), (Some(arg(&file)), true), "{cut}");
    assert_eq!(cut["rows_stored"].as_u64(), Some(raw), "{cut}");

    // Re-running the same ingest completes it.
    let resumed = run_json(&args);
    assert_eq!(count(&resumed, "/total"), total);

    let reference = ingest(arg(&file), &clean.url, &today);
    assert_eq!(quality(&reference), manifest["expected"]);
    for status in ["valid", "incomplete", "inconsistent"] {
        assert_eq!(resumed[status], reference[status], "{status}");
    }
    let expected = all_records(&clean.store).await;
    let finished = all_records(&killed.store).await;
    assert_whole_buildings(&partial, &expected);
    assert!(partial.len() <= expected.len(), "no more records than distinct keys");
    assert_eq!(
        count(&resumed, "/stored/inserted"),
        (expected.len() - partial.len()) as u64,
        "the re-run inserts exactly the missing records"
    );
    assert_eq!(finished.len(), expected.len(), "no duplicates created");
    assert_eq!(status_counts(&finished), status_counts(&expected));
    let mut finished_shown: Vec<_> = finished.iter().map(shown).collect();
    let mut expected_shown: Vec<_> = expected.iter().map(shown).collect();
    finished_shown.sort();
    expected_shown.sort();
    assert!(finished_shown == expected_shown, "the same records with the same values and classifications");
    let expected_keys: HashSet<Reading> = expected_shown.into_iter().filter_map(|(key, _)| key).collect();
    assert!(distinct.iter().all(|key| expected_keys.contains(*key)), "records after the kill are real keys");
    assert_eq!(received_rows(&killed.url, &today), raw + total, "the killed batch's rows plus a whole new batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ingest_resumes_without_duplicates_sqlite() {
    killed_ingest_resumes_to_a_clean_result(emdp_testkit::sqlite().await, emdp_testkit::sqlite().await).await;
}

emdp_testkit::needs_postgres! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_killed_ingest_resumes_without_duplicates_postgres() {
        let (killed, clean) = (emdp_testkit::postgres().await, emdp_testkit::postgres().await);
        killed_ingest_resumes_to_a_clean_result(killed, clean).await;
    }
}

/// A small tmpfs mounted on a test's directory, unmounted when dropped: a disk that fills.
struct SmallDisk {
    path: std::path::PathBuf,
    /// Through `sudo -n` rather than as root.
    sudo: bool,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes` on `DIR/disk`, or returns `None` (with a notice) when
    /// `EMDP_TEST_SMALL_DISK` is unset. `scripts/test` sets it to `root` or `sudo` once it has
    /// mounted one itself (and under CI=true fails when it cannot).
    fn mount(dir: &tempfile::TempDir, megabytes: u32) -> Option<SmallDisk> {
        let Some(how) = std::env::var_os("EMDP_TEST_SMALL_DISK") else {
            eprintln!("NOTICE: EMDP_TEST_SMALL_DISK is not set: skipping a full-disk test");
            return None;
        };
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let disk = SmallDisk { path, sudo: how == "sudo" };
        let size = format!("size={megabytes}m");
        disk.run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs"]);
        Some(disk)
    }

    /// Gives the disk more room, keeping its files.
    fn grow(&self, megabytes: u32) {
        self.run("mount", &["-o", &format!("remount,size={megabytes}m")]);
    }

    /// Runs `PROGRAM ARGS... PATH` as root and checks that it succeeded.
    fn run(&self, program: &str, args: &[&str]) {
        let status = self.command(program).args(args).arg(&self.path).status();
        assert!(status.is_ok_and(|s| s.success()), "{program} {args:?} {}", self.path.display());
    }

    /// `PROGRAM`, as root.
    fn command(&self, program: &str) -> std::process::Command {
        if self.sudo {
            let mut command = std::process::Command::new("sudo");
            command.args(["-n", program]);
            command
        } else {
            std::process::Command::new(program)
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // No assertion here: a panic while the test is already panicking would abort the run.
        let _ = self.command("umount").arg("-l").arg(&self.path).status();
    }
}

/// A disk that fills during an ingest: exit 3 saying so, the stores at a chunk boundary, read
/// commands still answer, and once there is room the same ingest completes without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_an_ingest_at_a_chunk_and_the_rerun_completes_it() {
    let dir = temp_dir();
    let Some(disk) = SmallDisk::mount(&dir, 40) else { return };
    // 150,000 rows need about 55 MB; the first chunk with its WAL about 32 MB.
    let (file, manifest) = generate_file(&dir, "big.csv", 150, 1000, 5);
    let today = manifest_today(&manifest);
    let url = format!("sqlite://{}", disk.path.join("emdp.db").display());
    let args = ["ingest", arg(&file), "--database-url", &url, "--today", &today, "--output", "json"];

    let stderr = fails_with(3, &args);
    assert!(stderr.contains("disk is full"), "{stderr}");

    let store = emdp_storage::open(&url).await.expect("a full disk still opens");
    let partial = all_records(&store).await;
    let raw = linked_raw_rows(&partial);
    assert!(raw > 0, "a chunk was committed before the disk filled");
    let told = format!("{}: stopped after {raw} of its rows were stored: ", arg(&file));
    assert!(stderr.contains(&told) && stderr.contains("the same command again stores the rest"), "{stderr}");
    let keys: Vec<Reading> = partial.iter().filter_map(|r| shown(r).0).collect();
    assert_eq!(keys.iter().collect::<HashSet<_>>().len(), keys.len(), "one record per key");
    assert_eq!(list_all(&url).len(), partial.len(), "records list answers on a full disk");
    run_ok(&["report", "--today", &today, "--database-url", &url]);

    disk.grow(200);
    let resumed = run_json(&args);
    assert_eq!(count(&resumed, "/total"), count(&manifest, "/expected/total"));
    let distinct = count(&manifest, "/expected/total")
        - count(&manifest, "/expected/duplicates/exact")
        - count(&manifest, "/expected/duplicates/conflicting");
    let finished = all_records(&store).await;
    assert_whole_buildings(&partial, &finished);
    assert_eq!(finished.len() as u64, distinct, "every key once");
    assert_eq!(count(&resumed, "/stored/inserted"), distinct - partial.len() as u64, "only the missing records");
    assert_eq!(received_rows(&url, &today), raw + count(&manifest, "/expected/total"));
    store.close().await.expect("close");
}

#[test]
fn the_summary_is_printed_as_a_table_by_default() {
    let dir = temp_dir();
    let file = write_file(&dir, "in.csv", format!("{HEADER}B1,2025-01-01,10,5,p\n"));
    let text = run_ok(&["ingest", arg(&file), "--database-url", &sqlite_url(&dir, "emdp.db"), "--today", TODAY]);
    assert!(text.contains("inserted") && text.contains("batch "), "{text}");
}

/// The batch id is a number, as every other batch id; a file without rows opens no batch.
#[test]
fn the_batch_id_is_a_number_and_absent_when_nothing_was_stored() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let file = write_file(&dir, "in.csv", format!("{HEADER}B1,2025-01-01,10,5,p\n"));
    let summary = ingest(arg(&file), &url, TODAY);
    let batch = summary["batch_id"].as_i64().unwrap_or_else(|| panic!("a number: {summary}"));
    let listed = run_json(&["batches", "list", "--output", "json", "--database-url", &url]);
    assert_eq!(listed["items"][0]["id"], batch, "{listed}");
    assert_eq!(listed["items"][0]["summary"]["batch_id"], batch, "the stored summary too: {listed}");

    let empty = write_file(&dir, "empty.csv", HEADER);
    let summary = ingest(arg(&empty), &url, TODAY);
    assert_eq!(summary["batch_id"], Value::Null, "{summary}");
    let text = run_ok(&["ingest", arg(&empty), "--database-url", &url, "--today", TODAY]);
    assert!(text.contains("no batch") && !text.contains("batch \n"), "{text}");
}

/// After `emdp ingest` the SQLite file alone holds every record: the write-ahead log is
/// copied back and emptied before the process ends, so a copy of the file misses nothing.
#[test]
fn an_ingested_sqlite_file_holds_everything_without_its_wal() {
    let dir = temp_dir();
    let rows: String = (0..500).map(|i| format!("B{i},2025-01-01,{i}.5,5,p\n")).collect();
    let file = write_file(&dir, "in.csv", format!("{HEADER}{rows}"));
    let summary = ingest(arg(&file), &sqlite_url(&dir, "emdp.db"), TODAY);
    assert_eq!(count(&summary, "/stored/inserted"), 500);
    let wal = wal_bytes(&dir, "emdp.db");
    assert_eq!(wal, 0, "the WAL holds {wal} bytes after the process ended");
    std::fs::copy(dir.path().join("emdp.db"), dir.path().join("copy.db")).unwrap();
    assert_eq!(list_all(&sqlite_url(&dir, "copy.db")).len(), 500);
}
