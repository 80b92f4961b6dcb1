//! End-to-end tests of `emdp generate`, reconciled against `emdp validate`.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use common::{REASON_CODES, arg, emdp, fails_with_2, parse_json, temp_dir};
use serde_json::Value;

const HEADER: &str = "building_id,date,consumption,temperature,provider";

/// Runs `emdp generate --buildings 20 --days 30 --seed SEED EXTRA... --out DIR/NAME` and
/// returns the CSV path, its bytes and the parsed manifest.
fn generate(dir: &Path, name: &str, seed: u64, extra: &[&str]) -> (PathBuf, Vec<u8>, Value) {
    let out = dir.join(name);
    let seed = seed.to_string();
    let output = emdp()
        .args(["generate", "--buildings", "20", "--days", "30", "--seed", &seed, "--out", arg(&out)])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(output.stdout.is_empty(), "the CSV goes to the file, not stdout");
    let manifest_path = PathBuf::from(format!("{}.manifest.json", arg(&out)));
    assert!(stderr.contains(arg(&out)) && stderr.contains(arg(&manifest_path)), "{stderr}");
    let manifest = parse_json(&std::fs::read(&manifest_path).expect("the manifest is written next to the CSV"));
    let bytes = std::fs::read(&out).unwrap();
    (out, bytes, manifest)
}

fn date(value: &Value) -> NaiveDate {
    value.as_str().unwrap().parse().unwrap()
}

/// `emdp validate FILE --output json --today TODAY`.
fn validate(file: &Path, today: NaiveDate) -> Value {
    let output =
        emdp().args(["validate", arg(file), "--output", "json", "--today", &today.to_string()]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    parse_json(&output.stdout)
}

#[test]
fn generated_file_validates_to_the_manifest_expectation() {
    let dir = temp_dir();
    let (file, bytes, manifest) = generate(dir.path(), "energy.csv", 7, &[]);

    assert_eq!(manifest["rows"], 600);
    assert_eq!(manifest["buildings"], 20);
    assert_eq!(manifest["days"], 30);
    assert_eq!(manifest["seed"], 7);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.lines().next(), Some(HEADER));
    assert_eq!(text.lines().count(), 601, "header + rows");

    let expected = &manifest["expected"];
    assert_eq!(expected["reasons"].as_object().unwrap().len(), REASON_CODES.len());
    assert_eq!(expected["total"], 600);
    assert!(expected["valid"].as_u64().unwrap() < 600, "the default fault rate injects faults");

    let end = date(&manifest["clean_dates"]["last"]);
    assert_eq!(end, NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(), "the default --end-date");
    let actual = validate(&file, end + Days::new(1));
    assert_eq!(&actual, expected);

    // Any day of the manifest's `today` range gives the same summary.
    assert_eq!(&validate(&file, date(&manifest["today"]["first"])), expected);
    assert_eq!(&validate(&file, date(&manifest["today"]["last"])), expected);
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_does_not() {
    let dir = temp_dir();
    let (_, first, first_manifest) = generate(dir.path(), "a.csv", 7, &[]);
    let (_, second, second_manifest) = generate(dir.path(), "b.csv", 7, &[]);
    let (_, other, other_manifest) = generate(dir.path(), "c.csv", 8, &[]);
    assert!(first == second, "same arguments, same bytes");
    assert_eq!(first_manifest, second_manifest);
    assert!(first != other, "another seed gives another file");
    assert_ne!(first_manifest, other_manifest);
    assert_eq!(other_manifest["seed"], 8);
}

#[test]
fn no_faults_gives_an_all_valid_file() {
    let dir = temp_dir();
    let (file, _, manifest) = generate(dir.path(), "clean.csv", 7, &["--faults", "0"]);
    assert_eq!(manifest["fault_rate"], 0.0);
    assert_eq!(manifest["expected"]["valid"], 600);
    assert!(manifest["injected"].as_object().unwrap().values().all(|n| n == 0), "{}", manifest["injected"]);
    let end = date(&manifest["clean_dates"]["last"]);
    let actual = validate(&file, end + Days::new(1));
    assert_eq!(actual["total"], 600);
    assert_eq!(actual["valid"], 600);
    assert_eq!(actual, manifest["expected"]);
    emdp()
        .args(["validate", arg(&file), "--today", &(end + Days::new(1)).to_string(), "--fail-on-invalid"])
        .assert()
        .code(0);
}

#[test]
fn end_date_and_manifest_path_are_honoured() {
    let dir = temp_dir();
    let out = dir.path().join("data.csv");
    let manifest_path = dir.path().join("custom.json");
    emdp()
        .args(["generate", "--buildings", "3", "--days", "10", "--end-date", "2024-03-05"])
        .args(["--out", arg(&out), "--manifest", arg(&manifest_path)])
        .assert()
        .success();
    assert!(!PathBuf::from(format!("{}.manifest.json", arg(&out))).exists());
    let manifest = parse_json(&std::fs::read(&manifest_path).unwrap());
    assert_eq!(manifest["rows"], 30);
    assert_eq!(manifest["clean_dates"]["first"], "2024-02-25");
    assert_eq!(manifest["clean_dates"]["last"], "2024-03-05");
    assert_eq!(validate(&out, NaiveDate::from_ymd_opt(2024, 3, 6).unwrap()), manifest["expected"]);
}

#[test]
fn out_dash_writes_csv_to_stdout_and_the_manifest_to_stderr() {
    let dir = temp_dir();
    let (_, file_bytes, file_manifest) = generate(dir.path(), "energy.csv", 7, &[]);
    let output =
        emdp().args(["generate", "--buildings", "20", "--days", "30", "--seed", "7", "--out", "-"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout == file_bytes, "stdout holds exactly the CSV the file run wrote");
    assert_eq!(parse_json(&output.stderr), file_manifest, "stderr holds only the manifest");

    // The default --out is standard output too; the CSV read from stdin validates the same.
    let output = emdp().args(["generate", "--buildings", "20", "--days", "30", "--seed", "7"]).output().unwrap();
    assert!(output.stdout == file_bytes);
    let today = date(&file_manifest["clean_dates"]["last"]) + Days::new(1);
    let validated = emdp()
        .args(["validate", "-", "--format", "csv", "--output", "json", "--today", &today.to_string()])
        .write_stdin(output.stdout)
        .output()
        .unwrap();
    assert_eq!(validated.status.code(), Some(0));
    assert_eq!(parse_json(&validated.stdout), file_manifest["expected"]);
}

#[test]
fn bad_arguments_exit_2_with_a_clear_message() {
    let stderr = fails_with_2(&["generate", "--buildings", "0", "--out", "-"]);
    assert_eq!(stderr, "emdp: error: the number of buildings must be at least 1\n");
    let stderr = fails_with_2(&["generate", "--days", "0"]);
    assert_eq!(stderr, "emdp: error: the number of days must be at least 1\n");
    let stderr = fails_with_2(&["generate", "--faults=-1"]);
    assert!(stderr.contains("fault rate") && stderr.contains("-1"), "{stderr}");
    let stderr = fails_with_2(&["generate", "--faults", "NaN"]);
    assert!(stderr.contains("fault rate"), "{stderr}");
    let stderr = fails_with_2(&["generate", "--buildings", "many"]);
    assert!(stderr.contains("--buildings") && stderr.contains("many"), "{stderr}");
    let stderr = fails_with_2(&["generate", "--end-date", "2025-02-30"]);
    assert!(stderr.contains("--end-date") && stderr.contains("YYYY-MM-DD"), "{stderr}");
}

#[test]
fn bad_arguments_write_no_file() {
    let dir = temp_dir();
    let out = dir.path().join("never.csv");
    let stderr = fails_with_2(&["generate", "--buildings", "0", "--out", arg(&out)]);
    assert!(stderr.contains("buildings"), "{stderr}");
    assert!(!out.exists(), "no CSV for a rejected configuration");
    assert!(!PathBuf::from(format!("{}.manifest.json", arg(&out))).exists());
}

#[test]
fn unwritable_output_exits_2_naming_the_file() {
    let dir = temp_dir();
    let out = dir.path().join("missing/dir/data.csv");
    let stderr = fails_with_2(&["generate", "--buildings", "2", "--days", "2", "--out", arg(&out)]);
    assert!(stderr.starts_with(&format!("emdp: error: {}: cannot write", arg(&out))), "{stderr}");
}
