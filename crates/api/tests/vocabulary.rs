//! One vocabulary across the API (and the CLI and dashboard, which read the same shapes): a
//! policy is `keep_latest` (`keep-latest` read too), a page takes `cursor` and answers
//! `next_cursor`, a `batch_id` is a number, reasons are `[{code, message}]` and a version is
//! `{batch_id, line}` (`batch` read too). Run against SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use common::{Server, start};
use reqwest::Method;
use serde_json::{Value, json};

/// Two conflict groups (B1 on 01-02, B2 on 01-01) and an INCONSISTENT record.
const CSV: &str = "building_id,date,consumption,temperature,provider\n\
                   B1,2025-01-01,10,5,p\nB1,2025-01-02,11,5,p\nB1,2025-01-02,15,5,p\n\
                   B2,2025-01-01,-1,5,q\nB2,2025-01-01,7,5,q\n";

async fn ingest(server: &Server) -> Value {
    let (status, body) = server.send(Method::POST, "/api/v1/records", "text/csv", CSV).await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Every element of `reasons` is `{code, message}` with both strings; at least one is.
fn assert_explained(reasons: &Value, context: &str) {
    let reasons = reasons.as_array().unwrap_or_else(|| panic!("{context}: reasons is not an array: {reasons}"));
    assert!(!reasons.is_empty(), "{context}: no reasons");
    for reason in reasons {
        let object = reason.as_object().unwrap_or_else(|| panic!("{context}: a reason is not an object: {reason}"));
        assert_eq!(object.len(), 2, "{context}: {reason}");
        assert!(reason["code"].is_string() && reason["message"].is_string(), "{context}: {reason}");
    }
}

/// The conflict group of `building`.
async fn group_of(server: &Server, building: &str) -> Value {
    let (status, page) = server.get(&format!("/api/v1/duplicates?building_id={building}")).await;
    assert_eq!(status, 200, "{page}");
    page["items"][0].clone()
}

async fn policies_are_read_in_either_spelling(server: Server) {
    ingest(&server).await;
    let id = group_of(&server, "B1").await["record_id"].as_i64().unwrap();
    for (policy, consumption) in
        [("keep-first", 11.0), ("keep_latest", 15.0), ("keep_first", 11.0), ("keep-latest", 15.0)]
    {
        let (status, outcome) =
            server.post_json(&format!("/api/v1/duplicates/{id}:resolve"), json!({"policy": policy})).await;
        assert_eq!(status, 200, "{policy}: {outcome}");
        let (_, record) = server.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(record["consumption"], consumption, "{policy}");
    }
    let (status, _) = server.post_json("/api/v1/duplicates:resolve", json!({"policy": "prefer-valid"})).await;
    assert_eq!(status, 200);
    let (status, problem) =
        server.post_json(&format!("/api/v1/duplicates/{id}:resolve"), json!({"policy": "newest"})).await;
    assert_eq!((status, problem["field"].as_str()), (400, Some("policy")), "{problem}");
    assert_eq!(
        problem["detail"], "'newest' is not a policy: expected prefer_valid, keep_first, keep_latest or manual",
        "the snake_case names: {problem}"
    );
}

async fn duplicates_page_with_cursor_and_next_cursor(server: Server) {
    ingest(&server).await;
    let (status, first) = server.get("/api/v1/duplicates?limit=1").await;
    assert_eq!(status, 200, "{first}");
    assert!(first.get("next_after").is_none(), "{first}");
    let cursor = first["next_cursor"].as_str().unwrap_or_else(|| panic!("a string cursor: {first}"));
    assert_eq!(cursor, first["items"][0]["record_id"].to_string(), "the record id, as the other lists");
    let (status, second) = server.get(&format!("/api/v1/duplicates?limit=1&cursor={cursor}")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["items"].as_array().unwrap().len(), 1, "{second}");
    assert_ne!(second["items"][0]["record_id"], first["items"][0]["record_id"]);
    let (_, last) =
        server.get(&format!("/api/v1/duplicates?limit=1&cursor={}", second["next_cursor"].as_str().unwrap())).await;
    assert_eq!((last["items"].clone(), last["next_cursor"].clone()), (json!([]), Value::Null), "{last}");
    let (_, all) = server.get("/api/v1/duplicates").await;
    assert_eq!(all["next_cursor"], Value::Null, "a page that is not full is the last: {all}");
}

async fn batch_ids_are_numbers(server: Server) {
    let body = ingest(&server).await;
    let batch = body["summary"]["batch_id"].as_i64().unwrap_or_else(|| panic!("a number: {}", body["summary"]));
    let (status, created) = server
        .post_json(
            "/api/v1/records",
            json!({"building_id": "B9", "date": "2025-01-01", "consumption": 1, "temperature": 2, "provider": "p"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert!(created["batch_id"].is_i64(), "{created}");
    let (_, batches) = server.get("/api/v1/batches").await;
    let stored = batches["items"].as_array().unwrap().iter().find(|b| b["id"] == batch).unwrap();
    assert_eq!(stored["summary"]["batch_id"], batch, "the stored summary: {stored}");
    let group = group_of(&server, "B1").await;
    assert!(group["versions"].as_array().unwrap().iter().all(|v| v["batch_id"] == batch), "{group}");
}

async fn reasons_are_code_and_message_everywhere(server: Server) {
    let body = ingest(&server).await;
    let inconsistent = &body["records"][3];
    assert_eq!(inconsistent["quality_status"], "INCONSISTENT", "{body}");
    assert_explained(&inconsistent["reasons"], "bulk ingest");
    assert_eq!(inconsistent["reasons"][0]["code"], "consumption_non_positive");
    assert_eq!(body["records"][0]["reasons"], json!([]), "a VALID record has none");
    assert_eq!(body["summary"]["reasons"]["consumption_non_positive"], 1, "the tally stays a map of counts");

    let id = inconsistent["id"].as_i64().unwrap();
    let (_, history) = server.get(&format!("/api/v1/records/{id}/history")).await;
    assert_explained(&history[0]["reasons"], "history");
    let group = group_of(&server, "B2").await;
    let loser = group["versions"].as_array().unwrap().iter().find(|v| v["status"] == "INCONSISTENT").unwrap();
    assert_explained(&loser["reasons"], "duplicates");
    let (_, record) = server.get(&format!("/api/v1/records/{id}")).await;
    assert_eq!(record["reasons"], json!([]), "the VALID version wins: {record}");
    let (_, listed) = server.get("/api/v1/records?status=INCONSISTENT").await;
    assert_eq!(listed["items"], json!([]), "{listed}");
    let (_, verdict) = server.post_json("/api/v1/records:validate", json!({"building_id": "B1"})).await;
    assert_explained(&verdict["reasons"], "records:validate");
}

async fn versions_are_batch_id_and_line(server: Server) {
    let body = ingest(&server).await;
    let batch = body["summary"]["batch_id"].as_i64().unwrap();
    let group = group_of(&server, "B1").await;
    let id = group["record_id"].as_i64().unwrap();
    let versions = group["versions"].as_array().unwrap();
    let line = |winner: bool| versions.iter().find(|v| v["winner"] == winner).unwrap()["line"].as_i64().unwrap();
    assert_eq!(group["winner"], json!({"batch_id": batch, "line": line(true)}), "{group}");
    let (_, record) = server.get(&format!("/api/v1/records/{id}")).await;
    assert_eq!(record["winner"], group["winner"], "records and duplicates agree");
    for version in [json!({"batch": batch, "line": line(false)}), json!({"batch_id": batch, "line": line(true)})] {
        let (status, outcome) =
            server.post_json(&format!("/api/v1/duplicates/{id}:resolve"), json!({"version": version})).await;
        assert_eq!(status, 200, "{version}: {outcome}");
        let (_, record) = server.get(&format!("/api/v1/records/{id}")).await;
        assert_eq!(record["winner"]["line"], version["line"], "{version}");
    }
}

async fn the_document_names_the_same_shapes(server: Server) {
    let (_, spec) = server.get("/openapi.json").await;
    let schemas = &spec["components"]["schemas"];
    let page = &schemas["GroupPageDto"]["properties"];
    assert!(page["next_cursor"].is_object() && page.get("next_after").is_none(), "{page}");
    let arrival = &schemas["Arrival"]["properties"];
    assert!(arrival["batch_id"].is_object() && arrival.get("batch").is_none(), "{arrival}");
    for dto in ["VersionDto", "GroupVersionDto", "IngestedDto", "RecordDto", "ValidationDto"] {
        let text = schemas[dto].to_string();
        assert!(text.contains("#/components/schemas/ReasonDto"), "{dto}: {text}");
    }
}

emdp_testkit::every_backend! {
    |store| start(store).await => [
        policies_are_read_in_either_spelling,
        duplicates_page_with_cursor_and_next_cursor,
        batch_ids_are_numbers,
        reasons_are_code_and_message_everywhere,
        versions_are_batch_id_and_line,
        the_document_names_the_same_shapes,
    ],
}
