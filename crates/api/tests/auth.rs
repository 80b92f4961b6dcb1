//! Authentication, roles, rate limits, request ids and metrics, as a client meets them: a
//! real server on a random port, a fresh database per test, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::time::Duration;

use common::{Server, decode, start_with_config};
use emdp_api::ApiConfig;
use emdp_api::state::GuardConfig;
use emdp_app::ports::Role;
use emdp_testkit::TestStore;
use reqwest::Method;
use serde_json::{Value, json};

fn record(building: &str) -> Value {
    json!({"building_id": building, "date": "2025-01-01", "consumption": 10, "temperature": 5, "provider": "p"})
}

fn guarded(guard: GuardConfig) -> ApiConfig {
    ApiConfig { guard, ..ApiConfig::default() }
}

fn with_auth() -> ApiConfig {
    guarded(GuardConfig { auth: true, ..GuardConfig::default() })
}

/// Sends `body` (JSON, or nothing) by `method` with `key` as the bearer token.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = server.client.request(method, server.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    request.send().await.unwrap()
}

async fn status(server: &Server, method: Method, path: &str, key: Option<&str>, body: Option<Value>) -> u16 {
    decode(call(server, method, path, key, body).await).await.0
}

async fn key(server: &Server, name: &str, role: Role) -> String {
    server.keys.create(name, role).await.unwrap().secret
}

async fn missing_or_invalid_key_is_401(store: TestStore) {
    let server = start_with_config(store, with_auth()).await;
    let response = call(&server, Method::GET, "/api/v1/records", None, None).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"emdp\"");
    let (_, problem) = decode(response).await;
    assert_eq!(problem["type"], "urn:emdp:problem:unauthorized");
    let response = call(&server, Method::GET, "/api/v1/records", Some("emdp_not-a-key"), None).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
    // Another scheme is no key at all.
    let response =
        server.client.get(server.url("/api/v1/records")).header("authorization", "Basic YTpi").send().await.unwrap();
    assert_eq!(response.status(), 401);
}

async fn reader_cannot_ingest(store: TestStore) {
    let server = start_with_config(store, with_auth()).await;
    let reader = key(&server, "dashboard", Role::Reader).await;
    assert_eq!(status(&server, Method::GET, "/api/v1/records", Some(&reader), None).await, 200);
    let response = call(&server, Method::POST, "/api/v1/records", Some(&reader), Some(record("B1"))).await;
    assert_eq!(response.status(), 403);
    let (_, problem) = decode(response).await;
    assert_eq!(problem["type"], "urn:emdp:problem:forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("ingester"), "{problem}");
    assert_eq!(status(&server, Method::POST, "/api/v1/records:validate", Some(&reader), Some(record("B1"))).await, 403);
    assert_eq!(status(&server, Method::POST, "/energy-record", Some(&reader), Some(record("B1"))).await, 403);
    // Nothing was stored.
    let (_, list) = decode(call(&server, Method::GET, "/api/v1/records", Some(&reader), None).await).await;
    assert_eq!(list["items"], json!([]));
}

async fn ingester_ingests_and_admin_deletes(store: TestStore) {
    let server = start_with_config(store, with_auth()).await;
    let ingester = key(&server, "loader", Role::Ingester).await;
    let admin = key(&server, "ops", Role::Admin).await;
    let (code, created) =
        decode(call(&server, Method::POST, "/api/v1/records", Some(&ingester), Some(record("B1"))).await).await;
    assert_eq!(code, 201, "{created}");
    let path = format!("/api/v1/records/{}", created["record"]["id"]);
    assert_eq!(status(&server, Method::GET, &path, Some(&ingester), None).await, 200);
    assert_eq!(status(&server, Method::DELETE, &path, Some(&ingester), None).await, 403);
    assert_eq!(status(&server, Method::PATCH, &path, Some(&ingester), Some(json!({"consumption": 11}))).await, 403);
    assert_eq!(status(&server, Method::DELETE, &path, Some(&admin), None).await, 204);
    assert_eq!(status(&server, Method::GET, &path, Some(&admin), None).await, 404);
    let listed = server.keys.list().await.unwrap();
    assert!(listed.iter().all(|key| key.last_used_at.is_some()), "{listed:?}");
}

async fn revoked_key_is_401(store: TestStore) {
    let server = start_with_config(store, with_auth()).await;
    let secret = key(&server, "old", Role::Admin).await;
    assert_eq!(status(&server, Method::GET, "/api/v1/records", Some(&secret), None).await, 200);
    let revoked = server.keys.revoke("old").await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let response = call(&server, Method::GET, "/api/v1/records", Some(&secret), None).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}

async fn public_routes_need_no_key(store: TestStore) {
    let server = start_with_config(store, with_auth()).await;
    for path in ["/health", "/api/v1/health", "/api/v1/ready", "/openapi.json", "/docs/", "/redoc", "/metrics"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let (_, spec) = server.get("/openapi.json").await;
    assert_eq!(spec["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");
    assert_eq!(spec["security"], json!([{"api_key": []}]));
    assert_eq!(spec["paths"]["/api/v1/health"]["get"]["security"], json!([{}]));
}

async fn metrics_can_require_a_key(store: TestStore) {
    let server =
        start_with_config(store, guarded(GuardConfig { auth: true, metrics_public: false, ..GuardConfig::default() }))
            .await;
    let reader = key(&server, "r", Role::Reader).await;
    let admin = key(&server, "a", Role::Admin).await;
    assert_eq!(status(&server, Method::GET, "/metrics", None, None).await, 401);
    assert_eq!(status(&server, Method::GET, "/metrics", Some(&reader), None).await, 403);
    assert_eq!(status(&server, Method::GET, "/metrics", Some(&admin), None).await, 200);
}

async fn no_auth_serves_everyone(store: TestStore) {
    let server = start_with_config(store, ApiConfig::default()).await;
    key(&server, "exists", Role::Reader).await;
    assert_eq!(status(&server, Method::POST, "/api/v1/records", None, Some(record("B1"))).await, 201);
}

async fn rate_limit_answers_429_after_the_burst(store: TestStore) {
    let config = GuardConfig { auth: true, rate_per_second: 0.2, burst: 3, ..GuardConfig::default() };
    let server = start_with_config(store, guarded(config)).await;
    let first = key(&server, "first", Role::Reader).await;
    let second = key(&server, "second", Role::Reader).await;
    for _ in 0..3 {
        assert_eq!(status(&server, Method::GET, "/api/v1/records", Some(&first), None).await, 200);
    }
    let response = call(&server, Method::GET, "/api/v1/records", Some(&first), None).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry_after), "{retry_after}");
    let (_, problem) = decode(response).await;
    assert_eq!(problem["type"], "urn:emdp:problem:too-many-requests");
    // Buckets are per key; anonymous requests share their IP's bucket; health is not limited.
    assert_eq!(status(&server, Method::GET, "/api/v1/records", Some(&second), None).await, 200);
    for _ in 0..3 {
        assert_eq!(status(&server, Method::GET, "/api/v1/records", None, None).await, 401);
    }
    assert_eq!(status(&server, Method::GET, "/api/v1/records", None, None).await, 429);
    assert_eq!(status(&server, Method::GET, "/api/v1/health", None, None).await, 200);
}

async fn request_ids_are_echoed_or_generated(store: TestStore) {
    let server = start_with_config(store, ApiConfig::default()).await;
    let response =
        server.client.get(server.url("/api/v1/health")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let response = server.client.get(server.url("/api/v1/records")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    let response = server.client.get(server.url("/no/such/route")).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}

/// The value of the metric line starting with `series` (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Metrics do not depend on the database: one run, on SQLite (the recorder is process-wide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_done() {
    let server = start_with_config(emdp_testkit::sqlite().await, ApiConfig::default()).await;
    let scrape = || async { server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    // The MVP's create route is used by this test only, so its count is exact even when other
    // tests share the process's recorder.
    let requests = r#"emdp_http_requests_total{method="POST",route="/energy-record",status="201"}"#;
    let ingested = r#"emdp_records_ingested_total{status="VALID",admission="new"}"#;
    let before = scrape().await;
    for building in ["M1", "M2", "M3"] {
        assert_eq!(status(&server, Method::POST, "/energy-record", None, Some(record(building))).await, 201);
    }
    let after = scrape().await;
    assert_eq!(metric(&after, requests) - metric(&before, requests), 3.0, "{after}");
    assert!(metric(&after, ingested) - metric(&before, ingested) >= 3.0, "{after}");
    assert!(after.contains("emdp_http_request_duration_seconds_bucket"), "{after}");
    assert!(after.contains("emdp_ingest_batch_duration_seconds"), "{after}");
    assert!(after.contains("emdp_db_pool_connections{state=\"max\"}"), "{after}");
}

async fn timeouts_answer_503_problem(store: TestStore) {
    let config = GuardConfig { timeout: Duration::from_nanos(1), ..GuardConfig::default() };
    let server = start_with_config(store, guarded(config)).await;
    let body: Vec<Value> = (0..2000).map(|i| record(&format!("T{i}"))).collect();
    let response = call(&server, Method::POST, "/api/v1/records", None, Some(Value::Array(body))).await;
    assert_eq!(response.status(), 503);
    let (_, problem) = decode(response).await;
    assert_eq!(problem["type"], "urn:emdp:problem:timeout");
}

emdp_testkit::every_backend! {
    |store| store => [
        missing_or_invalid_key_is_401,
        reader_cannot_ingest,
        ingester_ingests_and_admin_deletes,
        revoked_key_is_401,
        public_routes_need_no_key,
        metrics_can_require_a_key,
        no_auth_serves_everyone,
        rate_limit_answers_429_after_the_burst,
        request_ids_are_echoed_or_generated,
        timeouts_answer_503_problem,
    ],
}
