//! Shared fixtures for the end-to-end tests of the `emdp` binary: temporary files, running
//! the binary, and building the expected `--output json` summary.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// Every reason code, in the order the README lists them.
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
    let output = emdp().args(args).output().expect("emdp runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "args {args:?}: stderr {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout on error: {}", String::from_utf8_lossy(&output.stdout));
    stderr
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
