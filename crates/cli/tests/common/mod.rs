//! Shared fixtures for the end-to-end tests of the `emdp` binary: temporary files, running
//! the binary, and building the expected `--output json` summary.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// Every reason code, in the order docs/src/quality-rules.md lists them.
pub const REASON_CODES: [&str; 14] = [
    "missing_building_id",
    "missing_date",
    "missing_consumption",
    "missing_temperature",
    "missing_provider",
    "unparsable_date",
    "unparsable_consumption",
    "unparsable_temperature",
    "consumption_non_positive",
    "consumption_too_high",
    "temperature_out_of_range",
    "date_in_future",
    "invalid_identifier",
    "malformed_row",
];

/// The day the fixtures treat as "today" (`--today`).
pub const TODAY: &str = "2025-06-30";

/// The header of the per-row report.
pub const REPORT_HEADER: &str = "line,building_id,date,consumption,temperature,provider,status,duplicate,reasons";

/// The `emdp` binary built by Cargo for this package.
pub fn emdp() -> Command {
    Command::cargo_bin("emdp").expect("the emdp binary is built")
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write_file(dir: &TempDir, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).expect("the fixture is written");
    path
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Parses a JSON document, with the text in the panic message when it is not JSON.
pub fn parse_json(text: &[u8]) -> Value {
    serde_json::from_slice(text).unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(text)))
}

/// Runs `emdp validate FILE --output json --today TODAY EXTRA...`, asserts exit code 0 and
/// returns the parsed summary.
pub fn validate_json(file: &Path, extra: &[&str]) -> Value {
    let output = emdp()
        .args(["validate", arg(file), "--output", "json", "--today", TODAY])
        .args(extra)
        .output()
        .expect("emdp runs");
    assert_eq!(output.status.code(), Some(0), "emdp validate failed: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert_eq!(stdout.lines().count(), 1, "--output json prints exactly one line: {stdout}");
    parse_json(stdout.as_bytes())
}

/// Runs `emdp ARGS...` expecting exit code 2, and returns standard error.
pub fn fails_with_2(args: &[&str]) -> String {
    fails_with(2, args)
}

/// Runs `emdp ARGS...` expecting exit code `code` and nothing on standard output, and returns
/// standard error.
pub fn fails_with(code: i32, args: &[&str]) -> String {
    let output = emdp().args(args).output().expect("emdp runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "args {args:?}: stderr {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on error: {}", String::from_utf8_lossy(&output.stdout));
    stderr
}

/// Runs `emdp ARGS...`, asserts exit code 0 and returns standard output.
pub fn run_ok(args: &[&str]) -> String {
    let output = emdp().args(args).output().expect("emdp runs");
    assert_eq!(output.status.code(), Some(0), "args {args:?}: stderr {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs `emdp ARGS...`, asserts exit code 0 and one JSON document on standard output, and
/// returns it.
pub fn run_json(args: &[&str]) -> Value {
    let stdout = run_ok(args);
    assert_eq!(stdout.lines().count(), 1, "--output json prints exactly one line: {stdout}");
    parse_json(stdout.as_bytes())
}

/// `sqlite://DIR/NAME`: a database file in a test's directory (created on first use).
pub fn sqlite_url(dir: &TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}

/// The size of the write-ahead log beside the SQLite file `DIR/NAME` (0 when there is none):
/// a command that ended cleanly leaves every commit in the file itself.
pub fn wal_bytes(dir: &TempDir, name: &str) -> u64 {
    std::fs::metadata(dir.path().join(format!("{name}-wal"))).map_or(0, |m| m.len())
}

/// Runs `emdp generate --buildings B --days D --seed S --out DIR/NAME` and returns the file
/// and its parsed manifest.
pub fn generate_file(dir: &TempDir, name: &str, buildings: u32, days: u32, seed: u64) -> (PathBuf, Value) {
    let out = dir.path().join(name);
    let (buildings, days, seed) = (buildings.to_string(), days.to_string(), seed.to_string());
    let output = emdp()
        .args(["generate", "--buildings", &buildings, "--days", &days, "--seed", &seed, "--out", arg(&out)])
        .output()
        .expect("emdp runs");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let manifest = std::fs::read(format!("{}.manifest.json", arg(&out))).expect("the manifest is written");
    (out, parse_json(&manifest))
}

/// A manifest's first valid `--today` (every later day up to `today.last` gives the same summary).
pub fn manifest_today(manifest: &Value) -> String {
    manifest["today"]["first"].as_str().expect("the manifest names a today range").to_owned()
}

/// Duplicate counts of a summary.
pub struct Dups {
    pub exact: u64,
    pub conflicting: u64,
}

/// The exact `--output json` object for the given counts; reasons not listed are zero.
pub fn summary(
    total: u64,
    valid: u64,
    incomplete: u64,
    inconsistent: u64,
    dups: Dups,
    reasons: &[(&str, u64)],
) -> Value {
    let mut map = Map::new();
    for code in REASON_CODES {
        map.insert(code.to_owned(), json!(0));
    }
    for (code, count) in reasons {
        assert!(REASON_CODES.contains(code), "unknown reason code {code}");
        map.insert((*code).to_owned(), json!(count));
    }
    json!({
        "total": total,
        "valid": valid,
        "incomplete": incomplete,
        "inconsistent": inconsistent,
        "duplicates": {"exact": dups.exact, "conflicting": dups.conflicting},
        "reasons": Value::Object(map),
    })
}

/// An identifier of 129 characters: one more than the default limit.
pub fn long_id() -> String {
    "x".repeat(129)
}

/// Writes `rows` (after the standard header) to `dir/name` and ingests it into `url` with
/// `--today TODAY` and the given extra arguments (e.g. `--policy manual`); returns the summary.
pub fn ingest_rows(dir: &TempDir, url: &str, name: &str, rows: &str, extra: &[&str]) -> Value {
    let file = write_file(dir, name, format!("building_id,date,consumption,temperature,provider\n{rows}"));
    let mut args = vec!["ingest", arg(&file), "--database-url", url, "--today", TODAY, "--output", "json"];
    args.extend_from_slice(extra);
    run_json(&args)
}

/// `bytes` compressed with gzip, as `gzip` writes a file.
pub fn gzip(bytes: impl AsRef<[u8]>) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes.as_ref()).expect("compress in memory");
    encoder.finish().expect("compress in memory")
}
