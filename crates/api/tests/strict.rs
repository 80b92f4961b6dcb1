//! Strict and bounded requests (issue 27): a cap on records per request, unknown query
//! parameters refused, every list route paged, every 4xx a problem document, an edit onto
//! another record's key a 409 naming it, and a period whose `from` is after its `to` a 400.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::collections::BTreeSet;

use common::{Server, start, start_with_config};
use emdp_api::ApiConfig;
use reqwest::Method;
use serde_json::{Value, json};

/// Five buildings, each with a gap (day 3 missing), B3 stale; rows of B5 only in January.
const CSV: &str = "building_id,date,consumption,temperature,provider\n\
    B1,2025-01-01,10,5,p\nB1,2025-01-02,11,5,p\nB1,2025-01-04,12,5,p\n\
    B2,2025-01-01,10,5,p\nB2,2025-01-02,11,5,p\nB2,2025-01-04,12,5,p\n\
    B3,2025-01-01,10,5,p\nB3,2025-01-02,11,5,p\nB3,2025-01-04,12,5,p\n\
    B4,2025-01-01,10,5,q\nB4,2025-01-02,11,5,q\nB4,2025-01-04,12,5,q\n\
    B5,2025-01-01,10,5,q\nB5,2025-01-02,11,5,q\nB5,2025-01-04,12,5,q\n";

async fn with_cap(store: emdp_testkit::TestStore, max_records: usize) -> Server {
    start_with_config(store, ApiConfig { max_records, ..ApiConfig::default() }).await
}

fn assert_too_many(status: u16, problem: &Value, cap: usize) {
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["type"], "urn:emdp:problem:too-many-records", "{problem}");
    assert_eq!(problem["field"], "body", "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.starts_with(&format!("at most {cap} records per request")), "{detail}");
}

async fn records_per_request_are_capped(server: Server) {
    let objects = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
    let (status, answer) = server.send(Method::POST, "/api/v1/records:validate", "application/json", objects(3)).await;
    assert_eq!((status, answer["items"].as_array().map(Vec::len)), (200, Some(3)), "{answer}");
    let (status, problem) = server.send(Method::POST, "/api/v1/records:validate", "application/json", objects(4)).await;
    assert_too_many(status, &problem, 3);
    // Every body format of an ingest, refused before anything is stored.
    let csv = "building_id,date,consumption,temperature,provider\n".to_owned() + &"B1,2025-01-01,1,2,p\n".repeat(4);
    let ndjson = "{\"building_id\":\"B1\"}\n".repeat(4);
    for (content_type, body) in [("application/json", objects(4)), ("text/csv", csv), ("application/x-ndjson", ndjson)]
    {
        let (status, problem) = server.send(Method::POST, "/api/v1/records", content_type, body).await;
        assert_too_many(status, &problem, 3);
    }
    let (_, page) = server.get("/api/v1/records").await;
    assert_eq!(page["items"], json!([]), "nothing stored");
    // At the cap, stored and answered record by record.
    let (status, body) = server.send(Method::POST, "/api/v1/records", "application/json", objects(3)).await;
    assert_eq!((status, body["records"].as_array().map(Vec::len)), (201, Some(3)), "{body}");
    // The MVP's routes take one record: an array of two is their 400, as before.
    let (status, problem) = server.send(Method::POST, "/energy-record:validate", "application/json", objects(2)).await;
    assert_eq!((status, problem["detail"].as_str()), (400, Some("send exactly one record object")));
}

async fn the_default_cap_is_ten_thousand(server: Server) {
    let body = format!("[{}]", vec!["{}"; 10_001].join(","));
    let (status, problem) = server.send(Method::POST, "/api/v1/records:validate", "application/json", body).await;
    assert_too_many(status, &problem, ApiConfig::MAX_RECORDS);
    assert_eq!(ApiConfig::MAX_RECORDS, 10_000);
}

async fn unknown_query_parameters_are_refused(server: Server) {
    let (status, problem) = server.get("/api/v1/quality/buildings?limt=2").await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("limt")), "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("unknown query parameter 'limt'") && detail.contains("building_id"), "{detail}");
    assert!(detail.contains("limit") && detail.contains("cursor"), "{detail}");
    for path in ["/api/v1/records/1?verbose=1", "/api/v1/health?x", "/api/v1/records?status=VALID&sort=id"] {
        let (status, problem) = server.get(path).await;
        assert_eq!(status, 400, "{path}: {problem}");
    }
    let (_, problem) = server.get("/api/v1/records/1?verbose=1").await;
    assert_eq!(problem["detail"], "unknown query parameter 'verbose': this route takes no query parameters");
    // Repeatable and documented parameters pass; the MVP's routes keep ignoring the rest.
    assert_eq!(server.get("/api/v1/records?status=VALID&limit=5").await.0, 200);
    let validate = "/api/v1/records:validate?column=consumption=kwh&column=date=day";
    assert_eq!(server.post_json(validate, json!({"kwh": 1})).await.0, 200);
    assert_eq!(server.get("/energy-records?limit=2&whatever=1").await.0, 200);
}

/// Every page of a per-building route, following `next_cursor`: (the buildings of each page,
/// the last page's body).
async fn walk(server: &Server, path: &str, buildings: impl Fn(&Value) -> Vec<String>) -> (Vec<Vec<String>>, Value) {
    let mut pages = Vec::new();
    let mut url = format!("{path}?limit=2");
    loop {
        let (status, body) = server.get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages.push(buildings(&body));
        match body["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}?limit=2&cursor={cursor}"),
            None => return (pages, body),
        }
    }
}

fn ids(items: &Value) -> Vec<String> {
    let set: BTreeSet<String> =
        items.as_array().unwrap().iter().map(|item| item["building_id"].as_str().unwrap().to_owned()).collect();
    set.into_iter().collect()
}

async fn list_routes_are_paged(server: Server) {
    assert_eq!(server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await.0, 201);
    let every: Vec<Vec<String>> =
        vec![vec!["B1".into(), "B2".into()], vec!["B3".into(), "B4".into()], vec!["B5".into()]];

    let (pages, last) = walk(&server, "/api/v1/quality/buildings", |body| ids(&body["buildings"])).await;
    assert_eq!(pages, every);
    assert_eq!(last["totals"]["buildings"], 5, "the totals cover every building: {last}");

    let (pages, _) = walk(&server, "/api/v1/quality/gaps", |body| ids(&body["items"])).await;
    assert_eq!(pages, every);
    let (_, gaps) = server.get("/api/v1/quality/gaps?limit=1").await;
    assert_eq!(gaps["items"], json!([{"building_id": "B1", "start": "2025-01-03", "end": "2025-01-03", "days": 1}]));

    let (pages, last) = walk(&server, "/api/v1/quality/report", |body| {
        let (rows, gaps) = (ids(&body["completeness"]["buildings"]), ids(&body["gaps"]));
        assert_eq!(rows, gaps, "the gaps are the page's buildings'");
        rows
    })
    .await;
    assert_eq!(pages, every);
    assert_eq!(last["records"]["total"], 15, "the figures stay whole: {last}");
    assert_eq!(last["completeness"]["totals"]["buildings"], 5);

    let (_, default) = server.get("/api/v1/quality/buildings").await;
    assert_eq!((default["buildings"].as_array().unwrap().len(), &default["next_cursor"]), (5, &Value::Null));
    for path in
        ["/api/v1/quality/buildings?limit=0", "/api/v1/quality/gaps?limit=1001", "/api/v1/quality/report?limit=x"]
    {
        let (status, problem) = server.get(path).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some("limit")), "{path}: {problem}");
    }
}

async fn every_client_error_is_a_problem(server: Server) {
    // `common::decode` asserts `application/problem+json` on every status >= 400.
    let (status, problem) = server.get("/api/v1/records/%FF").await;
    assert_eq!((status, problem["type"].as_str()), (400, Some("urn:emdp:problem:bad-request")), "{problem}");
    let (status, problem) = server.get("/api/v1/buildings/%FF/series").await;
    assert_eq!(status, 400, "{problem}");
    let (status, problem) = server.get("/docs/no-such-file.js").await;
    assert_eq!((status, problem["type"].as_str()), (404, Some("urn:emdp:problem:not-found")), "{problem}");
    let (status, problem) = server.get(&format!("/api/v1/records?building_id={}", "B".repeat(9000))).await;
    assert_eq!((status, problem["type"].as_str()), (414, Some("urn:emdp:problem:uri-too-long")), "{problem}");
    let response =
        server.client.get(server.url("/api/v1/health")).header("x-padding", "p".repeat(40_000)).send().await.unwrap();
    let (status, problem) = common::decode(response).await;
    assert_eq!((status, problem["type"].as_str()), (431, Some("urn:emdp:problem:headers-too-large")), "{problem}");
    assert_eq!(server.get("/api/v1/health").await.0, 200);
}

async fn an_edit_onto_another_records_key_names_it(server: Server) {
    let record = |building: &str| json!({"building_id": building, "date": "2025-01-01", "consumption": 1, "temperature": 5, "provider": "p"});
    let (_, first) = server.post_json("/api/v1/records", record("B1")).await;
    let (_, second) = server.post_json("/api/v1/records", record("B2")).await;
    let (first, second) = (first["record"]["id"].as_i64().unwrap(), second["record"]["id"].as_i64().unwrap());
    let (status, problem) = server
        .send(Method::PATCH, &format!("/api/v1/records/{second}"), "application/json", r#"{"building_id": "B1"}"#)
        .await;
    assert_eq!((status, problem["type"].as_str()), (409, Some("urn:emdp:problem:conflict")), "{problem}");
    assert_eq!(problem["detail"], format!("another record (id {first}) already holds this key"));
    let (_, unchanged) = server.get(&format!("/api/v1/records/{second}")).await;
    assert_eq!((unchanged["building_id"].as_str(), unchanged["versions"].as_i64()), (Some("B2"), Some(1)));
    // Onto its own key (an edit of another field) is no conflict.
    let path = format!("/api/v1/records/{second}");
    assert_eq!(server.send(Method::PATCH, &path, "application/json", r#"{"consumption": 2}"#).await.0, 200);
}

async fn a_period_ending_before_it_starts_is_refused(server: Server) {
    assert_eq!(server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await.0, 201);
    let inverted = "from=2026-05-01&to=2026-01-01";
    for route in [
        "/api/v1/quality/report",
        "/api/v1/quality/summary",
        "/api/v1/quality/buildings",
        "/api/v1/quality/gaps",
        "/api/v1/quality/timeline",
        "/api/v1/quality/overview",
        "/api/v1/records",
        "/api/v1/duplicates",
        "/api/v1/buildings/B1/series",
        "/api/v1/buildings/B1/anomalies",
    ] {
        let (status, problem) = server.get(&format!("{route}?{inverted}")).await;
        assert_eq!((status, problem["field"].as_str()), (400, Some("from")), "{route}: {problem}");
        assert_eq!(problem["detail"], "from (2026-05-01) is after to (2026-01-01): give a from on or before the to");
    }
    assert_eq!(server.get("/api/v1/quality/report?from=2025-01-02&to=2025-01-02").await.0, 200, "one day");
}

emdp_testkit::every_backend! {
    |store| with_cap(store, 3).await => [records_per_request_are_capped],
    |store| start(store).await => [
        the_default_cap_is_ten_thousand,
        unknown_query_parameters_are_refused,
        list_routes_are_paged,
        every_client_error_is_a_problem,
        an_edit_onto_another_records_key_names_it,
        a_period_ending_before_it_starts_is_refused,
    ],
}
