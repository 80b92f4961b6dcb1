//! End-to-end tests of `emdp validate`: the real binary on real files, as a user runs it.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{
    Dups, REPORT_HEADER, TODAY, arg, emdp, fails_with_2, gzip, long_id, parse_json, summary, temp_dir, validate_json,
    write_file,
};
use predicates::prelude::*;
use serde_json::Value;

/// A CSV violating every rule at least once (line numbers in the comments; header = 1).
fn every_rule_csv() -> String {
    let long = long_id();
    [
        "building_id,date,consumption,temperature,provider".to_owned(),
        "B1,2025-01-01,100.50,10,acme".to_owned(),       // 2  VALID
        "B1,2025-01-01,100.5,10,acme".to_owned(),        // 3  VALID, exact duplicate
        "B1,2025-01-01,200,10,acme".to_owned(),          // 4  VALID, conflicting duplicate
        ",2025-01-02,10,10,acme".to_owned(),             // 5  missing_building_id
        "B2,,10,10,acme".to_owned(),                     // 6  missing_date
        "B2,2025-01-03,,10,acme".to_owned(),             // 7  missing_consumption
        "B2,2025-01-04,10,  ,acme".to_owned(),           // 8  missing_temperature (blank)
        "B2,2025-01-05,10,10,".to_owned(),               // 9  missing_provider
        "B2,2023-02-29,10,10,acme".to_owned(),           // 10 unparsable_date
        "B2,2025-01-06,1e999,10,acme".to_owned(),        // 11 unparsable_consumption
        "B2,2025-01-07,\"12,5\",10,acme".to_owned(),     // 12 unparsable_consumption
        "B2,2025-01-08,10,NaN,acme".to_owned(),          // 13 unparsable_temperature
        "B2,2025-01-09,12 kWh,10,acme".to_owned(),       // 14 unparsable_consumption
        "B2,2025-01-10,0,10,acme".to_owned(),            // 15 consumption_non_positive
        "B2,2025-01-11,-0,10,acme".to_owned(),           // 16 consumption_non_positive
        "B2,2025-01-12,1000000.0001,10,acme".to_owned(), // 17 consumption_too_high
        "B2,2025-01-13,10,-20,acme".to_owned(),          // 18 VALID (lower bound)
        "B2,2025-01-14,10,55,acme".to_owned(),           // 19 VALID (upper bound)
        "B2,2025-01-15,10,-20.1,acme".to_owned(),        // 20 temperature_out_of_range
        "B2,2025-07-01,10,10,acme".to_owned(),           // 21 date_in_future
        format!("{long},2025-01-16,10,10,acme"),         // 22 invalid_identifier
        "B3,2025-01-17,10,10,\"ac\u{1}me\"".to_owned(),  // 23 invalid_identifier
        "B3,2025-01-18,10,10,acme,extra".to_owned(),     // 24 malformed_row
        "B3,2025-01-19".to_owned(),                      // 25 missing consumption, temperature, provider
        "B4,2099-01-01,,99,acme".to_owned(),             // 26 missing + out of range + future
        "B2,2025-01-10,0.0,10.0,acme".to_owned(),        // 27 non_positive, exact duplicate of 15
        "B2,2025-01-11,-0,10.5,acme".to_owned(),         // 28 non_positive, conflicting duplicate of 16
    ]
    .join("\n")
        + "\n"
}

/// What `--output json` must print for [`every_rule_csv`], counted by hand.
fn every_rule_expected() -> Value {
    summary(
        27,
        5,
        7,
        15,
        Dups { exact: 2, conflicting: 2 },
        &[
            ("missing_building_id", 1),
            ("missing_date", 1),
            ("missing_consumption", 3),
            ("missing_temperature", 2),
            ("missing_provider", 2),
            ("unparsable_date", 1),
            ("unparsable_consumption", 3),
            ("unparsable_temperature", 1),
            ("consumption_non_positive", 4),
            ("consumption_too_high", 1),
            ("temperature_out_of_range", 2),
            ("date_in_future", 2),
            ("invalid_identifier", 2),
            ("malformed_row", 1),
        ],
    )
}

#[test]
fn csv_with_every_rule_violated_gives_the_exact_json_summary() {
    let dir = temp_dir();
    let file = write_file(&dir, "data.csv", every_rule_csv());
    let actual = validate_json(&file, &[]);
    assert_eq!(actual, every_rule_expected());
    let reasons = actual["reasons"].as_object().unwrap();
    assert_eq!(reasons.len(), 14);
    assert!(reasons.values().all(|count| count.as_u64().unwrap() > 0), "every reason is used: {reasons:?}");
}

#[test]
fn json_output_keys_are_in_the_documented_order() {
    let dir = temp_dir();
    let file = write_file(&dir, "data.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,1,2,p\n");
    let output = emdp().args(["validate", arg(&file), "--output", "json", "--today", TODAY]).output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(r#"{"total":1,"valid":1,"incomplete":0,"inconsistent":0,"duplicates":{"exact":0,"conflicting":0},"reasons":{"missing_building_id":0,"#),
        "{text}"
    );
    assert!(text.ends_with("}\n"), "{text}");
}

/// The NDJSON counterpart of the CSV fixture, one JSON text per line (kept as text so that
/// `100.50`, `-0` and `1e999` reach emdp exactly as written).
fn every_rule_json_lines() -> Vec<String> {
    let long = long_id();
    let row = |b: &str, d: &str, c: &str, t: &str, p: &str| {
        format!(r#"{{"building_id":{b},"date":{d},"consumption":{c},"temperature":{t},"provider":{p}}}"#)
    };
    vec![
        row(r#""B1""#, r#""2025-01-01""#, "100.50", "10", r#""acme""#), // VALID
        row(r#""B1""#, r#""2025-01-01""#, "100.5", r#""10.0""#, r#""acme""#), // VALID, exact duplicate
        row(r#""B1""#, r#""2025-01-01""#, r#""200""#, "10", r#""acme""#), // VALID, conflicting
        row("null", r#""2025-01-02""#, "10", "10", r#""acme""#),        // missing_building_id
        row(r#""B2""#, r#""""#, "10", "10", r#""acme""#),               // missing_date
        r#"{"building_id":"B2","date":"2025-01-03","temperature":10,"provider":"acme"}"#.to_owned(), // missing_consumption
        row(r#""B2""#, r#""2025-01-04""#, "10", r#""   ""#, r#""acme""#), // missing_temperature
        row(r#""B2""#, r#""2025-01-05""#, "10", "10", "null"),            // missing_provider
        row(r#""B2""#, r#""2023-02-29""#, "10", "10", r#""acme""#),       // unparsable_date
        row(r#""B2""#, r#""2025-01-06""#, "1e999", "10", r#""acme""#),    // unparsable_consumption
        row(r#""B2""#, r#""2025-01-07""#, r#""12,5""#, "10", r#""acme""#), // unparsable_consumption
        row(r#""B2""#, r#""2025-01-08""#, "10", r#""NaN""#, r#""acme""#), // unparsable_temperature
        row(r#""B2""#, r#""2025-01-09""#, "true", "10", r#""acme""#),     // unparsable_consumption
        row(r#""B2""#, r#""2025-01-10""#, "0", "10", r#""acme""#),        // consumption_non_positive
        row(r#""B2""#, r#""2025-01-11""#, "-0", "10", r#""acme""#),       // consumption_non_positive
        row(r#""B2""#, r#""2025-01-12""#, "1000000.0001", "10", r#""acme""#), // consumption_too_high
        row(r#""B2""#, r#""2025-01-13""#, "10", "-20", r#""acme""#),      // VALID
        row(r#""B2""#, r#""2025-01-14""#, "10", "55", r#""acme""#),       // VALID
        row(r#""B2""#, r#""2025-01-15""#, "10", "-20.1", r#""acme""#),    // temperature_out_of_range
        row(r#""B2""#, r#""2025-07-01""#, "10", "10", r#""acme""#),       // date_in_future
        row(&format!("\"{long}\""), r#""2025-01-16""#, "10", "10", r#""acme""#), // invalid_identifier
        row(r#""B3""#, r#""2025-01-17""#, "10", "10", r#""ac\u0001me""#), // invalid_identifier
        row(r#""B3""#, r#""2025-01-18""#, "10", "10", "true"),            // invalid_identifier (not text)
        "[1, 2]".to_owned(),                                              // malformed_row, every field missing
    ]
}

fn every_rule_json_expected() -> Value {
    summary(
        24,
        5,
        6,
        13,
        Dups { exact: 1, conflicting: 1 },
        &[
            ("missing_building_id", 2),
            ("missing_date", 2),
            ("missing_consumption", 2),
            ("missing_temperature", 2),
            ("missing_provider", 2),
            ("unparsable_date", 1),
            ("unparsable_consumption", 3),
            ("unparsable_temperature", 1),
            ("consumption_non_positive", 2),
            ("consumption_too_high", 1),
            ("temperature_out_of_range", 1),
            ("date_in_future", 1),
            ("invalid_identifier", 3),
            ("malformed_row", 1),
        ],
    )
}

#[test]
fn ndjson_with_every_rule_violated_gives_the_expected_counts() {
    let dir = temp_dir();
    let mut text = every_rule_json_lines().join("\n");
    text.push_str("\n\n   \n"); // trailing blank lines are skipped
    let file = write_file(&dir, "data.ndjson", text);
    assert_eq!(validate_json(&file, &[]), every_rule_json_expected());

    let jsonl = write_file(&dir, "data.jsonl", every_rule_json_lines().join("\r\n"));
    assert_eq!(validate_json(&jsonl, &[]), every_rule_json_expected());
}

#[test]
fn json_array_with_every_rule_violated_gives_the_expected_counts() {
    let dir = temp_dir();
    let text = format!("[\n{}\n]\n", every_rule_json_lines().join(",\n"));
    let file = write_file(&dir, "data.json", &text);
    assert_eq!(validate_json(&file, &[]), every_rule_json_expected());

    // The same document under another extension, with --format.
    let other = write_file(&dir, "data.txt", &text);
    assert_eq!(validate_json(&other, &["--format", "json"]), every_rule_json_expected());
}

#[test]
fn json_single_object_is_one_record() {
    let dir = temp_dir();
    let file = write_file(
        &dir,
        "one.json",
        r#"{"building_id":"B1","date":"2025-01-01","consumption":3,"temperature":4,"provider":"p"}"#,
    );
    assert_eq!(validate_json(&file, &[]), summary(1, 1, 0, 0, Dups { exact: 0, conflicting: 0 }, &[]));
}

#[test]
fn ndjson_line_that_is_not_json_is_a_malformed_row() {
    let dir = temp_dir();
    let file = write_file(
        &dir,
        "data.ndjson",
        "{\"building_id\":\"B1\",\"date\":\"2025-01-01\",\"consumption\":1,\"temperature\":2,\"provider\":\"p\"}\nnot json\n",
    );
    let report = dir.path().join("report.csv");
    let actual = validate_json(&file, &["--report", arg(&report)]);
    let missing = [
        ("missing_building_id", 1),
        ("missing_date", 1),
        ("missing_consumption", 1),
        ("missing_temperature", 1),
        ("missing_provider", 1),
        ("malformed_row", 1),
    ];
    assert_eq!(actual, summary(2, 1, 1, 0, Dups { exact: 0, conflicting: 0 }, &missing));
    let report = std::fs::read_to_string(report).unwrap();
    let lines: Vec<_> = report.lines().collect();
    assert_eq!(lines[0], REPORT_HEADER);
    assert_eq!(lines[1], "1,B1,2025-01-01,1,2,p,VALID,,");
    assert_eq!(
        lines[2],
        "2,,,,,,INCOMPLETE,,missing_building_id;missing_date;missing_consumption;missing_temperature;missing_provider;malformed_row"
    );
}

#[test]
fn header_in_any_order_and_case_with_extra_columns_bom_and_crlf() {
    let dir = temp_dir();
    let text = "\u{feff}Provider, DATE ,note,Building_ID,TEMPERATURE,consumption,other\r\n\
                acme,2025-01-01,hello,B1,10,100.50,x\r\n\
                \r\n\
                acme,2025-01-01,again,B1,10,100.5,y\r\n\
                acme,2025-01-02,,B1,99,5,z\r\n\
                ,2025-01-03,n,B2,10,5,z\r\n";
    let file = write_file(&dir, "data.csv", text);
    let report = dir.path().join("report.csv");
    let actual = validate_json(&file, &["--report", arg(&report)]);
    assert_eq!(
        actual,
        summary(
            4,
            2,
            1,
            1,
            Dups { exact: 1, conflicting: 0 },
            &[("temperature_out_of_range", 1), ("missing_provider", 1)]
        )
    );
    let report = std::fs::read_to_string(report).unwrap();
    assert_eq!(
        report,
        format!(
            "{REPORT_HEADER}\n\
             2,B1,2025-01-01,100.50,10,acme,VALID,,\n\
             4,B1,2025-01-01,100.5,10,acme,VALID,exact,\n\
             5,B1,2025-01-02,5,99,acme,INCONSISTENT,,temperature_out_of_range\n\
             6,B2,2025-01-03,5,10,,INCOMPLETE,,missing_provider\n"
        )
    );
}

#[test]
fn report_rows_have_physical_line_numbers_and_fields_as_read() {
    let dir = temp_dir();
    let text = "building_id,date,consumption,temperature,provider,note\n\
                B1,2025-01-01,10,5,acme,x\n\
                \n\
                B1,2025-01-02,-1,5,acme,\"multi\nline note\"\n\
                B1,2025-01-02,-1.0,5,acme,y\n\
                B2,\"2025-01-03\",,99,\"two\nlines\"\n\
                B3,2025-01-04,1,2,p,extra,more\n\
                B4,2025-01-05,7,3,p,\"say \"\"hi\"\"\"\n\
                B1,2025-01-01,11,5,acme,conflict\n";
    let file = write_file(&dir, "data.csv", text);
    let report = dir.path().join("report.csv");
    let actual = validate_json(&file, &["--report", arg(&report)]);
    assert_eq!(actual["total"], 7);
    let report = std::fs::read_to_string(report).unwrap();
    assert_eq!(
        report,
        format!(
            "{REPORT_HEADER}\n\
             2,B1,2025-01-01,10,5,acme,VALID,,\n\
             4,B1,2025-01-02,-1,5,acme,INCONSISTENT,,consumption_non_positive\n\
             6,B1,2025-01-02,-1.0,5,acme,INCONSISTENT,exact,consumption_non_positive\n\
             7,B2,2025-01-03,,99,\"two\nlines\",INCOMPLETE,,missing_consumption;temperature_out_of_range;invalid_identifier\n\
             9,B3,2025-01-04,1,2,p,INCONSISTENT,,malformed_row\n\
             10,B4,2025-01-05,7,3,p,VALID,,\n\
             11,B1,2025-01-01,11,5,acme,VALID,conflicting,\n"
        )
    );
}

#[test]
fn report_of_the_every_rule_file_names_each_row() {
    let dir = temp_dir();
    let file = write_file(&dir, "data.csv", every_rule_csv());
    let report = dir.path().join("report.csv");
    validate_json(&file, &["--report", arg(&report)]);
    let report = std::fs::read_to_string(report).unwrap();
    let lines: Vec<_> = report.lines().collect();
    assert_eq!(lines.len(), 28, "header + 27 rows:\n{report}");
    assert_eq!(lines[0], REPORT_HEADER);
    assert_eq!(lines[1], "2,B1,2025-01-01,100.50,10,acme,VALID,,");
    assert_eq!(lines[2], "3,B1,2025-01-01,100.5,10,acme,VALID,exact,");
    assert_eq!(lines[3], "4,B1,2025-01-01,200,10,acme,VALID,conflicting,");
    assert_eq!(lines[10], "11,B2,2025-01-06,1e999,10,acme,INCONSISTENT,,unparsable_consumption");
    assert_eq!(lines[11], "12,B2,2025-01-07,\"12,5\",10,acme,INCONSISTENT,,unparsable_consumption");
    assert_eq!(lines[23], "24,B3,2025-01-18,10,10,acme,INCONSISTENT,,malformed_row");
    assert_eq!(lines[24], "25,B3,2025-01-19,,,,INCOMPLETE,,missing_consumption;missing_temperature;missing_provider");
    assert_eq!(
        lines[25],
        "26,B4,2099-01-01,,99,acme,INCOMPLETE,,missing_consumption;temperature_out_of_range;date_in_future"
    );
    assert_eq!(lines[27], "28,B2,2025-01-11,-0,10.5,acme,INCONSISTENT,conflicting,consumption_non_positive");
}

#[test]
fn fail_on_invalid_exits_1_with_invalid_rows_and_0_when_all_are_valid() {
    let dir = temp_dir();
    let dirty = write_file(&dir, "dirty.csv", every_rule_csv());
    emdp()
        .args(["validate", arg(&dirty), "--today", TODAY, "--fail-on-invalid"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("27 records"));
    // Without the flag the same file is not a failure.
    emdp().args(["validate", arg(&dirty), "--today", TODAY]).assert().code(0);

    let clean = write_file(
        &dir,
        "clean.csv",
        "building_id,date,consumption,temperature,provider\nB1,2025-01-01,1,2,p\nB2,2025-01-01,1,-20,p\n",
    );
    emdp().args(["validate", arg(&clean), "--today", TODAY, "--fail-on-invalid"]).assert().code(0);

    // A future date is invalid only relative to --today.
    let future =
        write_file(&dir, "future.csv", "building_id,date,consumption,temperature,provider\nB1,2025-07-01,1,2,p\n");
    emdp().args(["validate", arg(&future), "--today", "2025-07-01", "--fail-on-invalid"]).assert().code(0);
    emdp().args(["validate", arg(&future), "--today", TODAY, "--fail-on-invalid"]).assert().code(1);
}

#[test]
fn text_output_prints_the_status_table() {
    let dir = temp_dir();
    let file = write_file(&dir, "dirty.csv", every_rule_csv());
    let output = emdp().args(["validate", arg(&file), "--today", TODAY]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<_> = text.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).collect();
    assert_eq!(lines[0], [&format!("{}:", arg(&file)), "27", "records"]);
    let has = |row: &[&str]| lines.iter().any(|l| l == row);
    assert!(has(&["status", "records", "share"]), "{text}");
    assert!(has(&["VALID", "5", "18.52%"]), "{text}");
    assert!(has(&["INCOMPLETE", "7", "25.93%"]), "{text}");
    assert!(has(&["INCONSISTENT", "15", "55.56%"]), "{text}");
    assert!(has(&["duplicates", "records"]), "{text}");
    assert!(has(&["exact", "2"]), "{text}");
    assert!(has(&["conflicting", "2"]), "{text}");
    assert!(has(&["reason", "records", "share"]), "{text}");
    assert!(has(&["consumption_non_positive", "4", "14.81%"]), "{text}");
    assert!(has(&["malformed_row", "1", "3.70%"]), "{text}");
}

#[test]
fn text_output_of_a_clean_file_lists_no_reasons() {
    let dir = temp_dir();
    let file =
        write_file(&dir, "clean.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,1,2,p\n");
    emdp()
        .args(["validate", arg(&file), "--today", TODAY])
        .assert()
        .success()
        .stdout(predicate::str::contains("VALID").and(predicate::str::contains("100.00%")))
        .stdout(predicate::str::contains("reason").not());
}

#[test]
fn missing_file_exits_2_naming_the_file() {
    let dir = temp_dir();
    let path = dir.path().join("nope.csv");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: cannot open", arg(&path))), "{stderr}");
}

#[test]
fn header_missing_a_column_exits_2_listing_it() {
    let dir = temp_dir();
    let path = write_file(&dir, "data.csv", "building_id,date,consumption,temperature\nB1,2025-01-01,1,2\n");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert_eq!(
        stderr,
        format!("emdp: error: {}: line 1: header is missing required column(s): provider\n", arg(&path))
    );

    let path = write_file(&dir, "kwh.csv", "building_id,date,kwh\n");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert!(stderr.contains("consumption, temperature, provider"), "{stderr}");
}

#[test]
fn duplicate_column_exits_2() {
    let dir = temp_dir();
    let path = write_file(&dir, "data.csv", "building_id,date,consumption,temperature,provider,DATE\n");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert_eq!(
        stderr,
        format!("emdp: error: {}: line 1: column 'date' appears more than once in the header\n", arg(&path))
    );
}

/// Runs `emdp ARGS...` expecting exit code `code`; returns standard output and error.
fn run_with(code: i32, args: &[&str]) -> (String, String) {
    let output = emdp().args(args).output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

#[test]
fn empty_and_header_only_files_say_they_hold_no_records() {
    let dir = temp_dir();
    let empty = summary_of(0, 0, 0, 0, &[]);
    for (name, text) in [("empty.csv", ""), ("header.csv", "building_id,date,consumption,temperature,provider\n")] {
        let path = write_file(&dir, name, text);
        let (stdout, stderr) = run_with(0, &["validate", arg(&path), "--output", "json", "--fail-on-invalid"]);
        assert_eq!(parse_json(stdout.as_bytes()), empty, "{name}");
        assert_eq!(stderr, format!("emdp: no records in {}\n", arg(&path)));
    }
    // A file with records says nothing of the kind.
    let path = write_file(&dir, "one.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,1,2,p\n");
    let (_, stderr) = run_with(0, &["validate", arg(&path), "--today", TODAY]);
    assert_eq!(stderr, "");
}

#[test]
fn report_dash_writes_the_report_to_standard_output_and_the_summary_to_standard_error() {
    let dir = temp_dir();
    let path = write_file(&dir, "data.csv", every_rule_csv());
    let output = emdp()
        .current_dir(dir.path())
        .args(["validate", arg(&path), "--report", "-", "--output", "json", "--today", TODAY])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report = String::from_utf8(output.stdout).unwrap();
    assert_eq!(report.lines().next(), Some(REPORT_HEADER));
    assert_eq!(report.lines().count() as u64, 1 + every_rule_expected()["total"].as_u64().unwrap());
    assert_eq!(parse_json(&output.stderr), every_rule_expected(), "the summary, on standard error");
    assert!(!dir.path().join("-").exists(), "no file named '-'");
}

#[test]
fn a_gzip_bomb_is_one_record_over_the_limit_and_the_rows_after_it_are_read() {
    // 3 MiB of zeros without a line break (compressed to a few KiB), then a valid row.
    let header = "building_id,date,consumption,temperature,provider\n";
    let mut text = header.as_bytes().to_vec();
    text.resize(text.len() + (3 << 20), 0);
    text.extend_from_slice(b"\nB1,2025-01-01,1,2,p\n");
    let dir = temp_dir();
    let bomb = write_file(&dir, "bomb.csv.gz", gzip(&text));
    assert!(std::fs::metadata(&bomb).unwrap().len() < 64 * 1024);
    let report = dir.path().join("report.csv");
    let args = ["validate", arg(&bomb), "--output", "json", "--today", TODAY, "--report", arg(&report)];
    let (stdout, stderr) = run_with(0, &args);
    let reasons = [
        ("missing_building_id", 1),
        ("missing_date", 1),
        ("missing_consumption", 1),
        ("missing_temperature", 1),
        ("missing_provider", 1),
        ("malformed_row", 1),
    ];
    assert_eq!(parse_json(stdout.as_bytes()), summary_of(2, 1, 1, 0, &reasons));
    assert_eq!(
        stderr,
        format!(
            "emdp: warning: {}: line 2: the record is 3145728 bytes, over the limit of 1 MiB (1048576 bytes): \
             read as malformed_row, only its first 1048576 bytes kept\n",
            arg(&bomb)
        )
    );
    let report = std::fs::read_to_string(&report).unwrap();
    let rows: Vec<&str> = report.lines().skip(1).collect();
    assert!(rows[0].starts_with("2,,,,,,INCOMPLETE,") && rows[0].ends_with(";malformed_row"), "{}", rows[0]);
    assert_eq!(rows[1], "3,B1,2025-01-01,1,2,p,VALID,,", "the row after it, on its own line");
    // A file with bad records: exit 1 only with --fail-on-invalid, as for any other.
    run_with(1, &["validate", arg(&bomb), "--fail-on-invalid", "--today", TODAY]);

    // Many short rows and blank lines stream as usual.
    let mut text = header.to_owned();
    text.push_str(&"\n".repeat(100_000));
    text.push_str(&"a,b,c\n".repeat(100_000));
    let junk = write_file(&dir, "junk.csv.gz", gzip(&text));
    let summary = validate_json(&junk, &[]);
    assert_eq!((summary["total"].as_u64(), summary["incomplete"].as_u64()), (Some(100_000), Some(100_000)));
}

#[test]
fn invalid_utf8_exits_2_naming_the_line() {
    let dir = temp_dir();
    let mut bytes = b"building_id,date,consumption,temperature,provider\nB1,2025-01-01,1,2,p\n\n".to_vec();
    bytes.extend_from_slice(b"B\xff,2025-01-02,1,2,p\n");
    let path = write_file(&dir, "data.csv", &bytes);
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert_eq!(stderr, format!("emdp: error: {}: line 4: invalid UTF-8\n", arg(&path)));

    // Inside a quoted field too (the csv-core path).
    let mut bytes = b"building_id,date,consumption,temperature,provider\nB1,2025-01-01,1,2,\"p\n".to_vec();
    bytes.extend_from_slice(b"\xc3\x28\"\n");
    let path = write_file(&dir, "quoted.csv", &bytes);
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert_eq!(stderr, format!("emdp: error: {}: line 2: invalid UTF-8\n", arg(&path)));

    let path = write_file(&dir, "data.ndjson", b"{}\n{}\n{\"provider\":\"\xff\"}\n");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert_eq!(stderr, format!("emdp: error: {}: line 3: invalid UTF-8\n", arg(&path)));
}

#[test]
fn gzip_files_and_pipes_read_like_plain_ones() {
    let dir = temp_dir();
    let csv = write_file(&dir, "data.csv.gz", gzip(every_rule_csv()));
    assert_eq!(validate_json(&csv, &[]), every_rule_expected());
    let ndjson = write_file(&dir, "data.ndjson.gz", gzip(format!("{}\n", every_rule_json_lines().join("\n"))));
    assert_eq!(validate_json(&ndjson, &[]), every_rule_json_expected());
    // Compressed data is recognised by its first bytes, whatever the name or the pipe.
    let misnamed = write_file(&dir, "data.csv", gzip(every_rule_csv()));
    assert_eq!(validate_json(&misnamed, &[]), every_rule_expected());
    let output = emdp()
        .args(["validate", "-", "--format", "csv", "--output", "json", "--today", TODAY])
        .write_stdin(gzip(every_rule_csv()))
        .output()
        .unwrap();
    assert_eq!(parse_json(&output.stdout), every_rule_expected());

    // A truncated download: exit 2, naming the file and how far it was read.
    let rows: String = (0..20_000).map(|i| format!("B{i},2025-01-01,{i}.5,5,p\n")).collect();
    let mut bytes = gzip(format!("building_id,date,consumption,temperature,provider\n{rows}"));
    bytes.truncate(bytes.len() / 2);
    let truncated = write_file(&dir, "cut.csv.gz", bytes);
    let stderr = fails_with_2(&["validate", arg(&truncated)]);
    let prefix = format!("emdp: error: {}: line ", arg(&truncated));
    assert!(stderr.starts_with(&prefix) && stderr.contains(": cannot read input: "), "{stderr}");
    let line: u64 = stderr[prefix.len()..].split(':').next().unwrap().parse().unwrap();
    assert!((2..20_002).contains(&line), "{stderr}");
}

#[test]
fn columns_named_otherwise_are_mapped_with_column() {
    let dir = temp_dir();
    let export = "Site,Day,kWh,Temp_C,Supplier\nB1,2025-01-01,10.5,4,acme\nB1,2025-01-02,-3,4,acme\n";
    let path = write_file(&dir, "export.csv", export);
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert!(stderr.contains("missing required column(s): building_id, date, consumption"), "{stderr}");
    let mapped = ["building_id=site", "date=day", "consumption=kwh", "temperature=temp_c", "provider=supplier"];
    let args: Vec<&str> = mapped.iter().flat_map(|m| ["--column", m]).collect();
    let actual = validate_json(&path, &args);
    assert_eq!(actual["total"], 2);
    assert_eq!((actual["valid"].as_u64(), actual["inconsistent"].as_u64()), (Some(1), Some(1)));
    assert_eq!(actual["reasons"]["consumption_non_positive"], 1);

    let ndjson = write_file(
        &dir,
        "export.ndjson",
        "{\"site\":\"B1\",\"date\":\"2025-01-01\",\"kwh\":1,\"temperature\":2,\"provider\":\"p\"}\n",
    );
    let actual = validate_json(&ndjson, &["--column", "building_id=site", "--column", "consumption=kwh"]);
    assert_eq!(actual["valid"], 1);

    let stderr = fails_with_2(&["validate", arg(&path), "--column", "kwh"]);
    assert_eq!(stderr, "emdp: error: --column: 'kwh' is not FIELD=NAME (e.g. consumption=kwh)\n");
    let stderr = fails_with_2(&["validate", arg(&path), "--column", "energy=kwh"]);
    assert!(stderr.contains("'energy' is not a field"), "{stderr}");
    let stderr = fails_with_2(&["validate", arg(&path), "--column", "consumption=date"]);
    assert!(stderr.contains("date and consumption would both be read from column 'date'"), "{stderr}");
    let stderr = fails_with_2(&["validate", arg(&path), "--column", "building_id=meter"]);
    assert!(stderr.contains("meter (building_id)"), "{stderr}");
}

#[test]
fn unknown_extension_needs_format() {
    let dir = temp_dir();
    let path = write_file(&dir, "data.txt", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,1,2,p\n");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: ", arg(&path))), "{stderr}");
    assert!(stderr.contains("--format"), "{stderr}");
    let actual = validate_json(&path, &["--format", "csv"]);
    assert_eq!(actual, summary(1, 1, 0, 0, Dups { exact: 0, conflicting: 0 }, &[]));
}

#[test]
fn stdin_needs_format() {
    let output = emdp().args(["validate", "-"]).write_stdin("building_id,date\n").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("standard input") && stderr.contains("--format"), "{stderr}");
}

#[test]
fn stdin_with_format_ndjson_works() {
    let input = format!("{}\n", every_rule_json_lines().join("\n"));
    let output = emdp()
        .args(["validate", "-", "--format", "ndjson", "--output", "json", "--today", TODAY])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(parse_json(&output.stdout), every_rule_json_expected());
}

#[test]
fn stdin_with_format_csv_works() {
    emdp()
        .args(["validate", "-", "--format", "csv", "--output", "json", "--today", TODAY, "--fail-on-invalid"])
        .write_stdin(every_rule_csv())
        .assert()
        .code(1)
        .stdout(predicate::function(|out: &str| parse_json(out.as_bytes()) == every_rule_expected()));
}

#[test]
fn broken_json_array_exits_2_naming_the_line() {
    let dir = temp_dir();
    let path = write_file(
        &dir,
        "data.json",
        "[{\"building_id\":\"B1\",\"date\":\"2025-01-01\",\"consumption\":1,\"temperature\":2,\"provider\":\"p\"},\n{",
    );
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: line 2: ", arg(&path))), "{stderr}");

    let path = write_file(&dir, "trailing.json", "[{}] trailing");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: line 1: ", arg(&path))), "{stderr}");

    let path = write_file(&dir, "text.json", "\"just text\"");
    let stderr = fails_with_2(&["validate", arg(&path)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: line 1: ", arg(&path))), "{stderr}");
}

#[test]
fn rules_file_raising_temperature_max_makes_58_degrees_valid() {
    let dir = temp_dir();
    let data =
        write_file(&dir, "hot.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,10,58,p\n");
    let default = validate_json(&data, &[]);
    assert_eq!(default, summary(1, 0, 0, 1, Dups { exact: 0, conflicting: 0 }, &[("temperature_out_of_range", 1)]));

    let rules = write_file(&dir, "rules.toml", "[temperature]\nmax = 60.0\n");
    let relaxed = validate_json(&data, &["--rules", arg(&rules)]);
    assert_eq!(relaxed, summary(1, 1, 0, 0, Dups { exact: 0, conflicting: 0 }, &[]));
    emdp()
        .args(["validate", arg(&data), "--rules", arg(&rules), "--today", TODAY, "--fail-on-invalid"])
        .assert()
        .code(0);
}

#[test]
fn rules_file_changes_every_threshold() {
    let dir = temp_dir();
    let data = write_file(
        &dir,
        "data.csv",
        "building_id,date,consumption,temperature,provider\n\
         ABCDEF,2025-01-01,5,10,p\n\
         B2,2025-01-01,200,10,p\n\
         B3,2025-01-01,50,-6,p\n\
         B4,2025-01-01,50,10,p\n",
    );
    let rules = write_file(
        &dir,
        "rules.toml",
        "[consumption]\nmin_exclusive = 5.0\nmax = 100.0\nunit = \"kWh\"\n\n[temperature]\nmin = -5\nmax = 30\n\n[identifiers]\nmax_length = 5\n",
    );
    let actual = validate_json(&data, &["--rules", arg(&rules)]);
    assert_eq!(
        actual,
        summary(
            4,
            1,
            0,
            3,
            Dups { exact: 0, conflicting: 0 },
            &[
                ("consumption_non_positive", 1),
                ("invalid_identifier", 1),
                ("consumption_too_high", 1),
                ("temperature_out_of_range", 1)
            ]
        )
    );
}

#[test]
fn invalid_rules_files_exit_2_naming_the_file() {
    let dir = temp_dir();
    let data =
        write_file(&dir, "data.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,10,5,p\n");

    let unknown = write_file(&dir, "unknown.toml", "[temperature]\nmaximum = 60\n");
    let stderr = fails_with_2(&["validate", arg(&data), "--rules", arg(&unknown)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: ", arg(&unknown))), "{stderr}");
    assert!(stderr.contains("maximum"), "{stderr}");

    let empty_range = write_file(&dir, "range.toml", "[temperature]\nmin = 10\nmax = 0\n");
    let stderr = fails_with_2(&["validate", arg(&data), "--rules", arg(&empty_range)]);
    assert_eq!(
        stderr,
        format!("emdp: error: {}: temperature.min (10) must be below temperature.max (0)\n", arg(&empty_range))
    );

    let unknown_table = write_file(&dir, "table.toml", "[humidity]\nmax = 1\n");
    let stderr = fails_with_2(&["validate", arg(&data), "--rules", arg(&unknown_table)]);
    assert!(stderr.contains(arg(&unknown_table)) && stderr.contains("humidity"), "{stderr}");

    let bad_type = write_file(&dir, "type.toml", "[temperature]\nmax = \"hot\"\n");
    let stderr = fails_with_2(&["validate", arg(&data), "--rules", arg(&bad_type)]);
    assert!(stderr.contains(arg(&bad_type)) && stderr.contains("line 2"), "{stderr}");

    let missing = dir.path().join("absent.toml");
    let stderr = fails_with_2(&["validate", arg(&data), "--rules", arg(&missing)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: cannot read rules file", arg(&missing))), "{stderr}");
}

#[test]
fn invalid_today_is_a_usage_error() {
    let dir = temp_dir();
    let data =
        write_file(&dir, "data.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,10,5,p\n");
    for bad in ["2025-02-30", "31/12/2025", "tomorrow", ""] {
        let stderr = fails_with_2(&["validate", arg(&data), "--today", bad]);
        assert!(stderr.contains("--today"), "{bad}: {stderr}");
        assert!(stderr.contains("YYYY-MM-DD"), "{bad}: {stderr}");
    }
}

#[test]
fn unknown_flag_and_format_are_usage_errors() {
    let stderr = fails_with_2(&["validate", "x.csv", "--format", "xml"]);
    assert!(stderr.contains("xml"), "{stderr}");
    let stderr = fails_with_2(&["validate"]);
    assert!(stderr.contains("FILE"), "{stderr}");
}

#[test]
fn unwritable_report_exits_2_naming_it() {
    let dir = temp_dir();
    let data =
        write_file(&dir, "data.csv", "building_id,date,consumption,temperature,provider\nB1,2025-01-01,10,5,p\n");
    let report = dir.path().join("no/such/dir/report.csv");
    let stderr = fails_with_2(&["validate", arg(&data), "--report", arg(&report)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: cannot write", arg(&report))), "{stderr}");
}

/// Runs validate with a report and returns (summary, report rows after the header).
fn validate_with_report(name: &str, contents: &[u8]) -> (Value, Vec<String>) {
    let dir = temp_dir();
    let file = write_file(&dir, name, contents);
    let report = dir.path().join("report.csv");
    let summary = validate_json(&file, &["--report", arg(&report)]);
    let report = std::fs::read_to_string(report).unwrap();
    let mut lines = report.lines().map(str::to_owned);
    assert_eq!(lines.next().as_deref(), Some(REPORT_HEADER));
    (summary, lines.collect())
}

#[test]
fn duplicates_match_any_earlier_version_with_trimmed_ids_and_values_by_text() {
    let (summary, rows) = validate_with_report(
        "dups.csv",
        b"building_id,date,consumption,temperature,provider\n\
          B1,2025-01-01,1,2,p\n\
          B1,2025-01-01,2,2,p\n\
          B1,2025-01-01,1,2.0,p\n\
          \" B1 \",2025-01-01,2.00,2,\" p\"\n\
          B1,2025-01-01,3,2,p\n\
          B1,2025-01-01,3,2,q\n\
          B2,2025-01-02,abc,2,p\n\
          B2,2025-01-02, abc ,2,p\n\
          B2,2025-01-02,ABC,2,p\n\
          B3,2025-01-03,-0,,p\n\
          B3,2025-01-03,0,,p\n",
    );
    assert_eq!(summary["duplicates"], serde_json::json!({"exact": 4, "conflicting": 3}));
    let kinds: Vec<_> = rows.iter().map(|row| row.split(',').nth(7).unwrap().to_owned()).collect();
    assert_eq!(
        kinds,
        ["", "conflicting", "exact", "exact", "conflicting", "", "", "exact", "conflicting", "", "exact"],
        "{rows:#?}"
    );
}

#[test]
fn number_and_date_forms() {
    let (summary, rows) = validate_with_report(
        "forms.csv",
        b"building_id,date,consumption,temperature,provider\n\
          B1,2025-01-01,+5.5e2,.5,p\n\
          B1,2025-01-02,1e6,-3.5,p\n\
          B1,2025-01-03,0x10,inf,p\n\
          B1,2025-01-04,1_000,-inf,p\n\
          B1,2024-1-5,1,1,p\n\
          B1,31/12/2023,1,1,p\n\
          B1,2024-13-45,1,1,p\n\
          B1, 2024-01-06 ,\t7\t,  8 ,p\n\
          B1,2024-02-29,1,1,p\n\
          B1,2025-06-30,1,1,p\n",
    );
    let statuses: Vec<_> = rows.iter().map(|row| row.rsplit(',').nth(2).unwrap().to_owned()).collect();
    assert_eq!(
        statuses,
        [
            "VALID",
            "VALID",
            "INCONSISTENT",
            "INCONSISTENT",
            "INCONSISTENT",
            "INCONSISTENT",
            "INCONSISTENT",
            "VALID",
            "VALID",
            "VALID"
        ],
        "{rows:#?}"
    );
    assert_eq!(summary["reasons"]["unparsable_consumption"], 2);
    assert_eq!(summary["reasons"]["unparsable_temperature"], 2);
    assert_eq!(summary["reasons"]["unparsable_date"], 3);
    assert_eq!(summary["reasons"]["date_in_future"], 0, "today itself is not in the future");
}

#[test]
fn identifier_length_counts_characters_not_bytes() {
    let ok = "é".repeat(128);
    let long = "é".repeat(129);
    let text = format!(
        "building_id,date,consumption,temperature,provider\n{ok},2025-01-01,1,2,p\n{long},2025-01-01,1,2,p\nB1,2025-01-01,1,2,{ok}\nB1,2025-01-01,1,2,{long}\n"
    );
    let (summary, _) = validate_with_report("ids.csv", text.as_bytes());
    assert_eq!(summary, summary_of(4, 2, 0, 2, &[("invalid_identifier", 2)]));
}

fn summary_of(total: u64, valid: u64, incomplete: u64, inconsistent: u64, reasons: &[(&str, u64)]) -> Value {
    summary(total, valid, incomplete, inconsistent, Dups { exact: 0, conflicting: 0 }, reasons)
}

#[test]
fn json_keys_match_like_headers_and_duplicate_keys_make_a_malformed_row() {
    let (summary, rows) = validate_with_report(
        "keys.ndjson",
        b"\xef\xbb\xbf{\" Building_ID \":\"B1\",\"DATE\":\"2025-01-01\",\"consumption\":\"1\",\"temperature\":2,\"provider\":\"p\",\"extra\":{\"a\":[1]}}\n\
          {\"date\":\"2025-01-01\",\"Date\":\"2025-01-02\"}\n",
    );
    assert_eq!(rows[0], "1,B1,2025-01-01,1,2,p,VALID,,");
    assert_eq!(
        rows[1],
        "2,,,,,,INCOMPLETE,,missing_building_id;missing_date;missing_consumption;missing_temperature;missing_provider;malformed_row"
    );
    assert_eq!(summary["total"], 2);
}

#[test]
fn json_array_lines_are_element_positions() {
    let (summary, rows) = validate_with_report(
        "pos.json",
        b"[\n\n{\"building_id\":\"B1\",\"date\":\"2025-01-01\",\"consumption\":1,\"temperature\":2,\"provider\":\"p\"},\n\n\n\"x\",{}]",
    );
    assert_eq!(summary["total"], 3);
    let lines: Vec<_> = rows.iter().map(|row| row.split(',').next().unwrap()).collect();
    assert_eq!(lines, ["1", "2", "3"]);
    assert!(rows[1].ends_with(";malformed_row"), "{}", rows[1]);
    assert!(
        rows[2].ends_with(
            ",INCOMPLETE,,missing_building_id;missing_date;missing_consumption;missing_temperature;missing_provider"
        ),
        "{}",
        rows[2]
    );
}

#[test]
fn empty_json_and_ndjson_inputs_have_no_records() {
    let empty = summary_of(0, 0, 0, 0, &[]);
    let dir = temp_dir();
    for (name, text) in [("e.json", "[]"), ("w.json", "  [ ]  \n"), ("e.ndjson", ""), ("b.ndjson", "\n\n")] {
        let file = write_file(&dir, name, text);
        assert_eq!(validate_json(&file, &["--fail-on-invalid"]), empty, "{name}");
    }
}

#[test]
fn large_csv_keeps_line_numbers_across_buffer_refills() {
    // Well over the 256 KiB read buffer, mixing plain, quoted, multi-line, CRLF and blank lines.
    let mut text = String::from("building_id,date,consumption,temperature,provider\n");
    let mut line = 2u64;
    let mut expected = Vec::new();
    for i in 0..30_000u64 {
        let row = match i % 20 {
            0 => format!("B{i},2025-01-01,1,2,\"multi\nline\"\n"),
            1 | 11 => "\n".to_owned(),
            2 => format!("B{i},2025-01-01,1,2,p\r\n"),
            3 => format!("\"B{i}\",2025-01-01,\"1\",2,p\n"),
            _ => format!("B{i},2025-01-01,1,2,p\n"),
        };
        if row != "\n" {
            expected.push(line);
        }
        line += row.matches('\n').count() as u64;
        text.push_str(&row);
    }
    assert!(text.len() > 2 * 256 * 1024);
    let (summary, rows) = validate_with_report("big.csv", text.as_bytes());
    assert_eq!(summary["total"], expected.len());
    assert_eq!(summary["inconsistent"], 1_500, "the multi-line providers hold a control character");
    assert_eq!(summary["valid"], expected.len() as u64 - 1_500);
    let actual: Vec<u64> = rows
        .iter()
        .filter(|row| row.starts_with(|c: char| c.is_ascii_digit()))
        .map(|row| row.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(actual, expected);

    // Invalid UTF-8 near the end is reported with its line.
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"B\xff,2025-01-01,1,2,p\n");
    let dir = temp_dir();
    let file = write_file(&dir, "bad.csv", &bytes);
    let stderr = fails_with_2(&["validate", arg(&file)]);
    assert_eq!(stderr, format!("emdp: error: {}: line {line}: invalid UTF-8\n", arg(&file)));
}
