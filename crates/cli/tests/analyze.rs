//! End-to-end tests of `emdp analyze` on a generated dataset ingested into a SQLite file.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{arg, emdp, parse_json, temp_dir};
use tempfile::TempDir;

/// A temporary directory holding a SQLite database with 5 generated buildings x 400 days.
fn database() -> (TempDir, String) {
    let dir = temp_dir();
    let csv = dir.path().join("data.csv");
    emdp()
        .args(["generate", "--buildings", "5", "--days", "400", "--seed", "1", "--out", arg(&csv)])
        .assert()
        .success();
    let url = format!("sqlite://{}", dir.path().join("emdp.db").display());
    emdp().args(["ingest", arg(&csv), "--today", "2026-01-01", "--database-url", &url]).assert().success();
    (dir, url)
}

/// The first building id of the generated file.
fn first_building(dir: &TempDir) -> String {
    let text = std::fs::read_to_string(dir.path().join("data.csv")).unwrap();
    text.lines().nth(1).unwrap().split(',').next().unwrap().to_owned()
}

#[test]
fn analyze_prints_the_model_as_json_and_plots_it() {
    let (dir, url) = database();
    let building = first_building(&dir);
    let svg = dir.path().join("x.svg");
    let png = dir.path().join("x.png");
    let out = emdp()
        .args(["analyze", &building, "--output", "json", "--plot", arg(&svg), "--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = parse_json(&out.stdout);
    let model = &json["baseline"]["model"];
    assert!(
        ["intercept_only", "heating_only", "cooling_only", "heating_cooling"]
            .contains(&model["model_type"].as_str().unwrap()),
        "{model}"
    );
    assert!(model["n"].as_u64().unwrap() > 300, "{model}");
    assert!(
        model["r2"].as_f64().unwrap() > 0.1,
        "generated loads depend on the weather (weekday/weekend loads add noise): {model}"
    );
    for field in ["adj_r2", "cv_rmse", "nmbe", "intercept", "data_sufficiency"] {
        assert!(model[field].is_number(), "{field}: {model}");
    }
    assert!(model["guideline14"]["passes"].is_boolean());
    assert!(model["warnings"].is_array());
    assert_eq!(json["building"]["building_id"], building.as_str());
    assert!(json["anomalies"]["anomalies"].is_array());
    assert!(json["anomalies"]["level_shifts"].is_array());
    assert!(json["normalized"]["annual_consumption"].as_f64().unwrap() > 0.0);
    assert!(json["savings"].is_null());
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(svg_text.starts_with("<svg") && svg_text.contains("consumption vs temperature"), "an SVG with text");

    // Savings over a reporting period, text output and a PNG.
    let out = emdp()
        .args(["analyze", &building, "--reporting-from", "2025-09-01", "--plot", arg(&png), "--database-url", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "model: ",
        "R²",
        "CV(RMSE)",
        "Guideline 14",
        "anomalies: ",
        "level shifts: ",
        "normalized annual",
        "savings 2025-09-01",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");

    // Every building at once.
    let out = emdp().args(["analyze", "--all", "--output", "json", "--database-url", &url]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let batch = parse_json(&out.stdout);
    assert_eq!((batch["buildings"].as_u64(), batch["fitted"].as_u64()), (Some(5), Some(5)));
}

#[test]
fn analyze_errors_exit_2_with_a_clear_message() {
    let (dir, url) = database();
    let building = first_building(&dir);
    let cases: [(&[&str], &str); 4] = [
        (&["analyze", "NO_SUCH_BUILDING"], "building 'NO_SUCH_BUILDING' not found"),
        (&["analyze", &building, "--from", "2025-06-01", "--to", "2025-05-01"], "before it starts"),
        (&["analyze", &building, "--from", "2025-06-01", "--to", "2025-06-02"], "too little data"),
        (&["analyze", &building, "--plot", "x.gif"], "--plot must name a .svg or .png file"),
    ];
    for (args, message) in cases {
        let out = emdp().args(args).args(["--database-url", &url]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
