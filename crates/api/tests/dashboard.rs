//! The dashboard as served by the application: its files (public, with a content security
//! policy, even when keys are required), and `GET /api/v1/quality/overview`, whose figures must
//! equal the full report's for every filter. Run against SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{Server, start, start_with_config};
use emdp_api::ApiConfig;
use emdp_api::state::GuardConfig;
use reqwest::Method;

const CSV: &str = "building_id,date,consumption,temperature,provider\n\
                   B1,2025-01-01,10,5,p\nB1,2025-01-02,11,5,p\nB1,2025-01-05,12,5,p\n\
                   B1,2025-01-02,15,5,p\nB2,2025-01-01,-1,5,q\nB2,2025-01-01,-1,5,q\n\
                   B3,2025-06-29,7,5,q\nB3,2025-06-30,,5,q\n,2025-06-30,3,5,q\n";

async fn overview_equals_the_report(server: Server) {
    assert_eq!(server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await.0, 201);
    for filters in
        ["", "?provider=q", "?building_id=B1", "?building_id=NOPE", "?from=2025-01-02&to=2025-06-29", "?stale_days=30"]
    {
        let (status, overview) = server.get(&format!("/api/v1/quality/overview{filters}")).await;
        assert_eq!(status, 200, "{filters}: {overview}");
        let (status, report) = server.get(&format!("/api/v1/quality/report{filters}")).await;
        assert_eq!(status, 200, "{filters}: {report}");
        for field in ["today", "records", "shares", "rows"] {
            assert_eq!(overview[field], report[field], "{filters}: {field}");
        }
        // Under a date range the report judges staleness on the range's days, the overview on
        // today's (see `a_filtered_overview_counts_the_filtered_buildings`): here both agree.
        for field in ["buildings", "stale"] {
            assert_eq!(
                overview["completeness"]["totals"][field], report["completeness"]["totals"][field],
                "{filters}: {field}"
            );
        }
        for field in ["providers", "days"] {
            assert_eq!(overview["breakdowns"][field], report["breakdowns"][field], "{filters}: {field}");
        }
        assert_eq!(overview["thresholds"]["stale_days"], report["thresholds"]["stale_days"], "{filters}");
    }
    let (status, problem) = server.get("/api/v1/quality/overview?from=yesterday").await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("from")), "{problem}");
}

/// Under a filter, the overview's buildings, stale buildings and firing alerts are those of
/// the buildings the filter covers; a date range picks the buildings and does not make them
/// stale (their staleness is judged on today's data).
async fn a_filtered_overview_counts_the_filtered_buildings(server: Server) {
    assert_eq!(server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await.0, 201);
    let rule = serde_json::json!({"name": "high", "kind": "threshold", "params": {"above": 1000}});
    assert_eq!(server.post_json("/api/v1/alert-rules", rule).await.0, 201);
    // B1 (provider p) reads 5000 yesterday: an alert about B1, which is fresh.
    let high = "building_id,date,consumption,temperature,provider\nB1,2025-06-29,5000,5,p\n";
    assert_eq!(server.send(Method::POST, "/api/v1/records", "text/csv", high).await.0, 201);
    // B1: fresh, one alert; B2 (q): no VALID day, stale; B3 (q): VALID yesterday, fresh.
    for (filters, buildings, stale, firing) in [
        ("", 3, 1, 1),
        ("?provider=q", 2, 1, 0),
        ("?provider=p", 1, 0, 1),
        ("?building_id=B1", 1, 0, 1),
        ("?building_id=B2", 1, 1, 0),
        ("?building_id=NOPE", 0, 0, 0),
        ("?from=2025-01-01&to=2025-01-05", 2, 1, 1),
        ("?from=2025-06-29", 2, 0, 1),
    ] {
        let (status, overview) = server.get(&format!("/api/v1/quality/overview{filters}")).await;
        assert_eq!(status, 200, "{filters}: {overview}");
        let totals = &overview["completeness"]["totals"];
        assert_eq!(
            (totals["buildings"].as_i64(), totals["stale"].as_i64(), overview["alerts"]["firing"].as_i64()),
            (Some(buildings), Some(stale), Some(firing)),
            "{filters}: {overview}"
        );
    }
}

async fn pages_are_served_and_api_misses_stay_problems(server: Server) {
    for path in ["/", "/ui/buildings", "/ui/buildings/B1", "/ui/upload", "/assets/app.js", "/assets/style.css"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.starts_with("default-src 'self'"), "{path}: {csp}");
    }
    let response = server.client.get(server.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

async fn files_are_public_when_keys_are_required(server: Server) {
    for path in ["/", "/ui/duplicates", "/assets/api.js", "/assets/vendor/uPlot.iife.min.js"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    assert_eq!(server.get("/api/v1/quality/overview").await.0, 401);
}

emdp_testkit::every_backend! {
    |store| start(store).await => [
        overview_equals_the_report,
        a_filtered_overview_counts_the_filtered_buildings,
        pages_are_served_and_api_misses_stay_problems,
    ],
    |store| start_with_config(
        store,
        ApiConfig { guard: GuardConfig { auth: true, ..GuardConfig::default() }, ..ApiConfig::default() },
    )
    .await => [files_are_public_when_keys_are_required],
}
