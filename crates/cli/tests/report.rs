//! End-to-end tests of `emdp report` and `emdp duplicates`: the real binary on a SQLite file.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{
    TODAY, arg, fails_with, fails_with_2, generate_file, ingest_rows, manifest_today, run_json, run_ok, sqlite_url,
    temp_dir,
};
use serde_json::{Value, json};

/// Building A: June 1-15 with days 4, 12, 13 missing, day 5 invalid, days 6-10 stuck at 50;
/// building B: June 25-29 complete; building C: one INCOMPLETE record.
const DATA: &str = "A,2025-06-01,10,5,p\nA,2025-06-02,11,5,p\nA,2025-06-03,12,5,p\nA,2025-06-05,-1,5,p\n\
                    A,2025-06-06,50,5,p\nA,2025-06-07,50,5,p\nA,2025-06-08,50,5,p\nA,2025-06-09,50,5,p\n\
                    A,2025-06-10,50,5,p\nA,2025-06-11,51,5,p\nA,2025-06-14,52,5,p\nA,2025-06-14,53,5,p\n\
                    A,2025-06-15,54,5,p\nA,2025-06-15,54,5,p\nB,2025-06-25,1,5,q\nB,2025-06-26,2,5,q\n\
                    B,2025-06-27,3,5,q\nB,2025-06-28,4,5,q\nB,2025-06-29,5,5,q\nC,2025-06-10,,5,p\n";

fn report(url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["report", "--database-url", url, "--today", TODAY, "--output", "json"];
    args.extend_from_slice(extra);
    run_json(&args)
}

#[test]
fn report_prints_json_csv_and_text() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    ingest_rows(&dir, &url, "data.csv", DATA, &[]);

    let json = report(&url, &[]);
    assert_eq!(json["records"]["total"], 18);
    assert_eq!(json["records"]["valid"], 16);
    assert_eq!(json["records"]["conflict_groups"], 1);
    assert_eq!(json["rows"]["total"], 20);
    assert_eq!(json["rows"]["duplicates"], json!({"exact": 1, "conflicting": 1}));
    assert_eq!(json["rows"]["reasons"]["missing_consumption"], 1);
    assert_eq!(
        json["completeness"]["totals"],
        json!({"buildings": 3, "expected_days": 21, "valid_days": 16, "gap_days": 5, "gaps": 3,
               "longest_gap_days": 2, "stale": 2})
    );
    assert_eq!(json["gaps"][0], json!({"building_id": "A", "start": "2025-06-04", "end": "2025-06-05", "days": 2}));
    assert_eq!(json["stale"].as_array().unwrap().len(), 2);
    assert_eq!(
        json["flatlines"],
        json!([{"building_id": "A", "provider": "p", "consumption": 50.0, "start": "2025-06-06",
                "end": "2025-06-10", "days": 5}])
    );
    assert_eq!(
        json["breakdowns"]["providers"][0],
        json!({"key": "p", "total": 13, "valid": 11, "incomplete": 1, "inconsistent": 1})
    );
    assert!(json["breakdowns"]["batches"][0]["source"].as_str().unwrap().ends_with("data.csv"));

    // Thresholds and filters.
    let lenient = report(&url, &["--stale-days", "20", "--flatline-days", "6"]);
    assert_eq!(lenient["completeness"]["totals"]["stale"], 1, "only C, without any VALID record");
    assert_eq!(lenient["flatlines"], json!([]));
    let b = report(&url, &["--building", "B"]);
    assert_eq!(b["records"]["total"], 5);
    assert_eq!(b["completeness"]["totals"]["gap_days"], 0);

    let csv = run_ok(&["report", "--database-url", &url, "--today", TODAY, "--output", "csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("building_id,records,valid,incomplete,inconsistent,first_day,last_day,expected_days"));
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[1],
        "A,12,11,0,1,2025-06-01,2025-06-15,15,11,0.7333,4,2,2025-06-04,2025-06-05,2,2025-06-15,15,true"
    );

    let text = run_ok(&["report", "--database-url", &url, "--today", TODAY]);
    for expected in
        ["Data quality report: all data", "Completeness (3 buildings)", "STALE", "Flatlines (1)", "Per batch"]
    {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// The acceptance check in small: on a generated data set, the report's row counts and
/// duplicates equal the generator's manifest, and its gap days over the clean date range
/// equal the manifest's `gaps`.
#[test]
fn report_reconciles_with_the_generator_manifest() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let (file, manifest) = generate_file(&dir, "gen.csv", 30, 90, 7);
    let today = manifest_today(&manifest);
    run_json(&["ingest", arg(&file), "--database-url", &url, "--today", &today, "--output", "json"]);
    let from = manifest["clean_dates"]["first"].as_str().unwrap();
    let to = manifest["clean_dates"]["last"].as_str().unwrap();
    let all = run_json(&["report", "--database-url", &url, "--today", &today, "--output", "json"]);
    let expected = &manifest["expected"];
    for status in ["total", "valid", "incomplete", "inconsistent"] {
        assert_eq!(all["rows"][status], expected[status], "{status}");
    }
    assert_eq!(all["rows"]["duplicates"], expected["duplicates"]);
    assert_eq!(all["rows"]["reasons"], expected["reasons"]);
    let clean = run_json(&[
        "report",
        "--database-url",
        &url,
        "--today",
        &today,
        "--from",
        from,
        "--to",
        to,
        "--output",
        "json",
    ]);
    assert_eq!(clean["completeness"]["totals"]["gap_days"], manifest["gaps"]);
    assert_eq!(clean["completeness"]["totals"]["buildings"], 30);
    let gap_sum: u64 = clean["gaps"].as_array().unwrap().iter().map(|g| g["days"].as_u64().unwrap()).sum();
    assert_eq!(json!(gap_sum), manifest["gaps"]);
}

#[test]
fn duplicates_are_listed_resolved_and_recorded() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    ingest_rows(
        &dir,
        &url,
        "m.csv",
        "M,2025-01-01,1,5,p\nM,2025-01-01,2,5,p\nN,2025-01-01,-1,5,p\nN,2025-01-01,3,5,p\n",
        &["--policy", "manual"],
    );

    let page = run_json(&["duplicates", "list", "--database-url", &url, "--pending", "--output", "json"]);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(page["next_cursor"], Value::Null);
    let m = items[0]["record_id"].as_i64().unwrap().to_string();
    assert_eq!(items[0]["versions"].as_array().unwrap().len(), 2);
    assert_eq!(items[0]["versions"][0]["winner"], true);
    assert_eq!(items[0]["pending"], true);
    let text = run_ok(&["duplicates", "list", "--database-url", &url]);
    assert!(text.contains("PENDING") && text.contains("* "), "{text}");

    let done = run_json(&[
        "duplicates",
        "resolve",
        "--record",
        &m,
        "--version",
        "1:3",
        "--database-url",
        &url,
        "--output",
        "json",
    ]);
    assert_eq!(done, json!({"groups": 1, "changed": 1, "unchanged": 0, "decisions": 1}));
    let decisions = run_json(&["duplicates", "decisions", &m, "--database-url", &url, "--output", "json"]);
    assert_eq!(decisions[0]["decided_by"], "cli");
    assert_eq!(decisions[0]["method"], "explicit");
    assert_eq!(decisions[0]["winner"], json!({"batch_id": 1, "line": 3}));

    let all = run_json(&[
        "duplicates",
        "resolve",
        "--all",
        "--policy",
        "prefer-valid",
        "--by",
        "ops",
        "--database-url",
        &url,
        "--output",
        "json",
    ]);
    assert_eq!(all, json!({"groups": 2, "changed": 1, "unchanged": 1, "decisions": 1}));
    let report = report(&url, &[]);
    assert_eq!(report["records"]["pending"], 0);
    assert_eq!(report["records"]["conflict_groups"], 2);
    assert_eq!(report["records"]["valid"], 2);
    assert_eq!(report["rows"]["duplicates"]["conflicting"], 2);

    // Refusals: usage errors exit 2 and record nothing.
    let stderr = fails_with_2(&["duplicates", "resolve", "--record", &m, "--version", "7:7", "--database-url", &url]);
    assert!(stderr.contains("no version from batch 7 line 7"), "{stderr}");
    fails_with_2(&["duplicates", "resolve", "--record", "999", "--policy", "keep-first", "--database-url", &url]);
    assert_eq!(
        run_json(&["duplicates", "decisions", &m, "--database-url", &url, "--output", "json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn usage_errors_exit_2_and_database_errors_exit_3() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let stderr = fails_with_2(&["report", "--database-url", &url, "--from", "2025-02-01", "--to", "2025-01-01"]);
    assert!(stderr.contains("--from 2025-02-01 is after --to 2025-01-01"), "{stderr}");
    // The same rule wherever a command takes --from and --to.
    for command in [&["records", "list"][..], &["duplicates", "list"]] {
        let inverted = [command, &["--database-url", &url, "--from", "2025-02-01", "--to", "2025-01-01"]].concat();
        let stderr = fails_with_2(&inverted);
        assert!(stderr.contains("--from 2025-02-01 is after --to 2025-01-01"), "{command:?}: {stderr}");
    }
    fails_with_2(&["report", "--database-url", &url, "--from", "2025-13-01"]);
    fails_with_2(&["report", "--database-url", &url, "--output", "xml"]);
    fails_with_2(&["duplicates", "resolve", "--all", "--version", "1:2", "--database-url", &url]);
    fails_with_2(&["duplicates", "resolve", "--record", "1", "--database-url", &url]);
    fails_with_2(&["duplicates", "resolve", "--policy", "keep-first", "--database-url", &url]);
    fails_with_2(&["duplicates", "resolve", "--record", "1", "--version", "x", "--database-url", &url]);
    // A URL that names no database emdp knows is a usage error; one it cannot reach, a database error.
    fails_with_2(&["report", "--database-url", "mysql://nowhere/db"]);
    fails_with_2(&["duplicates", "list", "--database-url", "mysql://nowhere/db"]);
    fails_with(3, &["report", "--database-url", "postgres://postgres@127.0.0.1:1/x"]);
    fails_with(3, &["duplicates", "list", "--database-url", "postgres://postgres@127.0.0.1:1/x"]);
}
