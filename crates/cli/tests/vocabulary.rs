//! One vocabulary with the API: a policy is `keep_latest` (`keep-latest` read too), a page
//! takes `--cursor` and prints `next_cursor` (JSON) or a `next page: --cursor N` hint (text, on
//! standard error), reasons are `[{code, message}]` and a version is `{batch_id, line}`.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{emdp, fails_with_2, ingest_rows, run_json, sqlite_url, temp_dir, write_file};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Two conflict groups: B1 on 01-02 (both VALID) and B2 on 01-01 (INCONSISTENT, then VALID).
const ROWS: &str = "B1,2025-01-01,10,5,p\nB1,2025-01-02,11,5,p\nB1,2025-01-02,15,5,p\n\
                    B2,2025-01-01,-1,5,q\nB2,2025-01-01,7,5,q\n";

/// A database holding [`ROWS`], ingested with `extra` flags.
fn seeded(extra: &[&str]) -> (TempDir, String, Value) {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    let summary = ingest_rows(&dir, &url, "in.csv", ROWS, extra);
    (dir, url, summary)
}

/// `emdp ARGS` exits 0; its standard output and standard error.
fn run_both(args: &[&str]) -> (String, String) {
    let output = emdp().args(args).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

/// The shown consumption of B1 on 2025-01-02.
fn b1_consumption(url: &str) -> Value {
    let page = run_json(&["records", "list", "--building", "B1", "--output", "json", "--database-url", url]);
    page["items"].as_array().unwrap().iter().find(|r| r["date"] == "2025-01-02").unwrap()["consumption"].clone()
}

#[test]
fn policies_are_read_in_either_spelling_and_named_in_snake_case() {
    for policy in ["keep-first", "keep_first"] {
        let (_dir, url, _) = seeded(&["--policy", policy]);
        assert_eq!(b1_consumption(&url), 11.0, "ingest --policy {policy}");
    }
    let (_dir, url, _) = seeded(&[]);
    assert_eq!(b1_consumption(&url), 15.0, "prefer_valid by default: the latest VALID");
    for (policy, consumption) in
        [("keep_first", 11.0), ("keep-latest", 15.0), ("keep-first", 11.0), ("keep_latest", 15.0)]
    {
        run_json(&["duplicates", "resolve", "--all", "--policy", policy, "--output", "json", "--database-url", &url]);
        assert_eq!(b1_consumption(&url), consumption, "duplicates resolve --policy {policy}");
    }
    let decisions = run_json(&["duplicates", "list", "--building", "B1", "--output", "json", "--database-url", &url]);
    let id = decisions["items"][0]["record_id"].to_string();
    let decisions = run_json(&["duplicates", "decisions", &id, "--output", "json", "--database-url", &url]);
    assert_eq!(decisions.as_array().unwrap().last().unwrap()["policy"], "keep_latest", "{decisions}");

    let stderr = fails_with_2(&["duplicates", "resolve", "--all", "--policy", "newest", "--database-url", &url]);
    assert!(stderr.contains("[possible values: prefer_valid, keep_first, keep_latest, manual]"), "{stderr}");
    let (help, _) = run_both(&["ingest", "--help"]);
    assert!(help.contains("[default: prefer_valid]") && help.contains("keep_latest:"), "{help}");
    assert!(!help.contains("keep-latest:"), "{help}");
}

#[test]
fn lists_page_with_cursor_and_next_cursor_in_json_and_text() {
    let (dir, url, _) = seeded(&[]);
    ingest_rows(&dir, &url, "more.csv", "B3,2025-01-01,1,5,p\n", &[]);
    let lists: [(&[&str], &str, &str); 3] = [
        (&["records", "list"], "id", "--after"),
        (&["batches", "list"], "id", "--before"),
        (&["duplicates", "list"], "record_id", "--after"),
    ];
    for (command, id, old_flag) in lists {
        let page_of = |limit: &str, extra: &[&str]| {
            let mut args = command.to_vec();
            args.extend(["--limit", limit, "--output", "json", "--database-url", &url]);
            args.extend(extra);
            run_json(&args)
        };
        let page = |extra: &[&str]| page_of("1", extra);
        let first = page(&[]);
        assert!(first.get("next_after").is_none() && first.get("next_before").is_none(), "{command:?}: {first}");
        let cursor = first["next_cursor"].as_str().unwrap_or_else(|| panic!("{command:?}: a string cursor: {first}"));
        assert_eq!(cursor, first["items"][0][id].to_string(), "{command:?}: the last id, as the API's");
        let second = page(&["--cursor", cursor]);
        assert_ne!(second["items"][0][id], first["items"][0][id], "{command:?}");
        assert_eq!(page(&[old_flag, cursor]), second, "{command:?}: {old_flag} still works");

        let mut args = command.to_vec();
        args.extend(["--limit", "1", "--database-url", &url]);
        let (stdout, stderr) = run_both(&args);
        assert_eq!(stderr, format!("next page: --cursor {cursor}\n"), "{command:?}");
        assert!(!stdout.contains("--cursor") && !stdout.contains("more:"), "{command:?}: the table alone: {stdout}");
        let mut args = command.to_vec();
        args.extend(["--database-url", &url]);
        assert_eq!(run_both(&args).1, "", "{command:?}: no hint after the last page");
        let all = page_of("100", &[]);
        assert_eq!(all["next_cursor"], Value::Null, "{command:?}: {all}");
    }
}

#[test]
fn reasons_are_code_and_message_in_every_json_output() {
    let (dir, url, summary) = seeded(&[]);
    assert_eq!(summary["reasons"]["consumption_non_positive"], 1, "the tally stays a map of counts");
    let explained = |reasons: &Value, context: &str| {
        let reasons = reasons.as_array().unwrap_or_else(|| panic!("{context}: {reasons}"));
        assert!(!reasons.is_empty(), "{context}");
        for reason in reasons {
            assert_eq!(reason.as_object().unwrap().len(), 2, "{context}: {reason}");
            assert!(reason["code"].is_string() && reason["message"].is_string(), "{context}: {reason}");
        }
        reasons[0]["message"].as_str().unwrap().to_owned()
    };
    let groups = run_json(&["duplicates", "list", "--building", "B2", "--output", "json", "--database-url", &url]);
    let version = groups["items"][0]["versions"].as_array().unwrap().iter().find(|v| v["status"] == "INCONSISTENT");
    explained(&version.unwrap()["reasons"], "duplicates list");
    let id = groups["items"][0]["record_id"].to_string();
    let history = run_json(&["records", "history", &id, "--output", "json", "--database-url", &url]);
    assert_eq!(explained(&history[0]["reasons"], "records history"), "consumption is at or below 0");

    ingest_rows(&dir, &url, "hot.csv", "B4,2025-01-01,5,70,p\n", &[]);
    let listed = run_json(&["records", "list", "--building", "B4", "--output", "json", "--database-url", &url]);
    assert_eq!(explained(&listed["items"][0]["reasons"], "records list"), "temperature is outside [-20, 55] °C");
    let rules = write_file(&dir, "rules.toml", "[temperature]\nmin = -40\nmax = 60\n");
    let id = listed["items"][0]["id"].to_string();
    let args = ["records", "get", &id, "--output", "json", "--database-url", &url, "--rules", rules.to_str().unwrap()];
    let record = run_json(&args);
    assert_eq!(explained(&record["reasons"], "records get --rules"), "temperature is outside [-40, 60] °C");
}

#[test]
fn versions_are_batch_id_and_line_in_every_json_output() {
    let (_dir, url, summary) = seeded(&["--policy", "manual"]);
    let batch = summary["batch_id"].as_i64().unwrap();
    let groups = run_json(&["duplicates", "list", "--building", "B1", "--output", "json", "--database-url", &url]);
    let group = &groups["items"][0];
    let winner = group["winner"].clone();
    assert_eq!(winner["batch_id"], batch, "{group}");
    assert_eq!(winner.as_object().unwrap().len(), 2, "{group}");
    let id = group["record_id"].to_string();
    let record = run_json(&["records", "get", &id, "--output", "json", "--database-url", &url]);
    assert_eq!(record["winner"], winner, "records and duplicates agree");
    let loser = group["versions"].as_array().unwrap().iter().find(|v| v["winner"] == false).unwrap();
    let version = format!("{batch}:{}", loser["line"]);
    run_json(&[
        "duplicates",
        "resolve",
        "--record",
        &id,
        "--version",
        &version,
        "--output",
        "json",
        "--database-url",
        &url,
    ]);
    let decisions = run_json(&["duplicates", "decisions", &id, "--output", "json", "--database-url", &url]);
    assert_eq!(decisions[0]["winner"], json!({"batch_id": batch, "line": loser["line"]}), "{decisions}");
    assert_eq!(decisions[0]["previous"], winner, "{decisions}");
}
