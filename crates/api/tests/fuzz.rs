//! No client input makes the server answer 5xx: random bodies, content types and paths
//! thrown at every route (property test), against a real server on SQLite.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Every route with its methods and a few path shapes.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/records:validate"),
    ("POST", "/api/v1/records"),
    ("GET", "/api/v1/records"),
    ("GET", "/api/v1/records/1"),
    ("PATCH", "/api/v1/records/1"),
    ("DELETE", "/api/v1/records/2"),
    ("GET", "/api/v1/records/1/history"),
    ("GET", "/api/v1/rules"),
    ("GET", "/api/v1/quality/summary"),
    ("GET", "/api/v1/quality/report"),
    ("GET", "/api/v1/quality/timeline"),
    ("GET", "/api/v1/quality/buildings"),
    ("GET", "/api/v1/quality/gaps"),
    ("GET", "/api/v1/duplicates"),
    ("POST", "/api/v1/duplicates/1:resolve"),
    ("POST", "/api/v1/duplicates:resolve"),
    ("GET", "/api/v1/buildings"),
    ("GET", "/api/v1/buildings/B/series"),
    ("GET", "/api/v1/buildings/B/baseline"),
    ("GET", "/api/v1/buildings/B/anomalies"),
    ("POST", "/api/v1/buildings/B/savings"),
    ("GET", "/quality/summary"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/ready"),
    ("GET", "/health"),
    ("POST", "/energy-record"),
    ("POST", "/energy-record:validate"),
    ("GET", "/energy-records"),
    ("GET", "/energy-records/1"),
    ("PATCH", "/energy-records/1"),
    ("DELETE", "/energy-records/3"),
];

const CONTENT_TYPES: &[&str] =
    &["application/json", "application/x-ndjson", "text/csv", "text/plain", "", "application/json; charset=utf-8"];

/// Bodies: JSON-ish fragments, record-like objects with random values, CSV-ish text, bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<f64>().prop_map(|v| format!("{v}")),
        "[a-zA-Z0-9 ,.:+-]{0,12}".prop_map(|s| format!("\"{s}\"")),
        Just("1e999".to_owned()),
        Just("{}".to_owned()),
        Just("[]".to_owned()),
    ];
    let field = prop_oneof![
        Just("building_id"),
        Just("date"),
        Just("consumption"),
        Just("temperature"),
        Just("provider"),
        Just("x")
    ];
    let object = proptest::collection::vec((field, value), 0..6).prop_map(|pairs| {
        let inner: Vec<String> = pairs.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", inner.join(","))
    });
    prop_oneof![
        object.clone().prop_map(String::into_bytes),
        proptest::collection::vec(object, 0..4).prop_map(|objects| format!("[{}]", objects.join(",")).into_bytes()),
        "[ -~\n]{0,200}".prop_map(String::into_bytes),
        "building_id,date,consumption,temperature,provider\n[ -~\n]{0,120}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn no_input_gives_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = runtime.block_on(async { common::start(emdp_testkit::sqlite().await).await });
    // A few records so that ids 1..3 exist for the routes that read, edit and delete.
    runtime.block_on(async {
        for i in 1..=3 {
            server.post_json("/api/v1/records", serde_json::json!({"building_id": "B", "date": format!("2025-01-0{i}"), "consumption": i, "temperature": 1, "provider": "p"})).await;
        }
    });
    let mut runner = TestRunner::new(Config { cases: 400, failure_persistence: None, ..Config::default() });
    let strategy = (0..ROUTES.len(), 0..CONTENT_TYPES.len(), body(), "[a-z_=&0-9%-]{0,30}");
    runner
        .run(&strategy, |(route, content_type, body, query)| {
            let (method, path) = ROUTES[route];
            let url = format!("{}{}?{}", server.base, path, query);
            let status = runtime.block_on(async {
                let request = server
                    .client
                    .request(method.parse().unwrap(), &url)
                    .header("content-type", CONTENT_TYPES[content_type])
                    .body(body.clone());
                request.send().await.unwrap().status().as_u16()
            });
            prop_assert!(status < 500, "{method} {url} with {:?} answered {status}", String::from_utf8_lossy(&body));
            Ok(())
        })
        .unwrap();
}
