//! Graceful shutdown: a request in flight when the shutdown signal arrives finishes, and every
//! record it was told about is stored.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::time::{Duration, Instant};

use emdp_app::ports::RecordFilter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_finishes_and_nothing_it_accepted_is_lost() {
    // A body of 30,000 records, over the default cap per request: a long request to be in.
    let config = emdp_api::ApiConfig { max_records: 30_000, ..emdp_api::ApiConfig::default() };
    let mut server = common::start_with_config(emdp_testkit::sqlite().await, config).await;
    let mut csv = String::from("building_id,date,consumption,temperature,provider\n");
    for building in 0..300 {
        for day in 1..=100 {
            let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(day);
            csv.push_str(&format!("S{building},{date},{},5,p\n", 10 + day));
        }
    }
    let client = server.client.clone();
    let url = server.url("/api/v1/records");
    let request = tokio::spawn(async move {
        let response = client.post(url).header("content-type", "text/csv").body(csv).send().await.unwrap();
        (response.status().as_u16(), response.json::<serde_json::Value>().await.unwrap())
    });

    // Wait until the server is inside the request: its first 20,000-row chunk is committed.
    let store = server.store.store.clone();
    let started = Instant::now();
    while store.get_record(1).await.unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(120), "the ingest never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.begin_shutdown();

    let (status, body) = request.await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["summary"]["total"], 30_000);
    assert_eq!(body["summary"]["stored"]["inserted"], 30_000);
    server.stopped().await.unwrap();
    let stored = store.list_records(&RecordFilter::default(), None, 100_000).await.unwrap();
    assert_eq!(stored.len(), 30_000, "every record the response reported is stored");
    assert!(server.client.get(server.url("/api/v1/health")).send().await.is_err(), "the server no longer accepts");
}
