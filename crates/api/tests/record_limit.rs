//! Request bodies are read by the same sources as files: a record over the 1 MiB record limit
//! is one `malformed_row` whose stored payload keeps its first MiB, and the records after it
//! are read as usual.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{Server, start};
use reqwest::Method;

const HEADER: &str = "building_id,date,consumption,temperature,provider\n";

/// The stored payload of the record `id`'s first version.
async fn first_payload(server: &Server, id: &serde_json::Value) -> String {
    let (status, history) = server.get(&format!("/api/v1/records/{id}/history")).await;
    assert_eq!(status, 200, "{history}");
    history[0]["payload"].as_str().unwrap().to_owned()
}

async fn bodies_with_a_record_over_the_limit(server: Server) {
    let limit = emdp_app::ports::RECORD_LIMIT;
    let long = "x".repeat(2 * limit);
    let csv = format!("{HEADER}{long},2025-01-01,1,2,p\nB1,2025-01-01,1,2,p\n");
    let (status, body) = server.send(Method::POST, "/api/v1/records", "text/csv", csv).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!((body["summary"]["total"].as_i64(), body["summary"]["valid"].as_i64()), (Some(2), Some(1)));
    assert_eq!(body["summary"]["reasons"]["malformed_row"], 1);
    assert_eq!(body["records"][1]["quality_status"], "VALID", "the row after it is read as usual");
    let payload = first_payload(&server, &body["records"][0]["id"]).await;
    assert_eq!(payload.len(), limit, "the stored payload keeps the first MiB");
    let (_, record) = server.get(&format!("/api/v1/records/{}", body["records"][0]["id"])).await;
    assert!(record["building_id"].is_null(), "no field of a cut record is read: {}", record["building_id"]);

    let ndjson = format!("{{\"building_id\":\"{long}\"}}\n{{\"building_id\":\"B2\"}}\n");
    let (status, body) = server.send(Method::POST, "/api/v1/records", "application/x-ndjson", ndjson).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["summary"]["reasons"]["malformed_row"], 1);
    assert_eq!(first_payload(&server, &body["records"][0]["id"]).await.len(), limit);
}

emdp_testkit::every_backend! {
    |store| start(store).await => [bodies_with_a_record_over_the_limit],
}
