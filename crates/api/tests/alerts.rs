//! Alert rules and alerts over HTTP: CRUD, evaluation after `POST /records`, cooldown,
//! resolution, acknowledgement, and the SSE stream (live and resumed with `Last-Event-ID`).

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

/// Reads Server-Sent Events from a response.
struct SseReader {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

/// One event: id, event name, data as JSON.
#[derive(Debug)]
struct SseEvent {
    id: i64,
    event: String,
    data: Value,
}

impl SseReader {
    async fn open(server: &common::Server, last_event_id: Option<i64>) -> SseReader {
        let mut request = server.client.get(server.url("/api/v1/alerts/stream"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
        SseReader { stream: Box::pin(response.bytes_stream()), buffer: String::new() }
    }

    /// The next event (comments skipped), within 10 s.
    async fn next(&mut self) -> SseEvent {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let (mut id, mut event, mut data) = (None, String::new(), String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().parse().ok();
                        } else if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_owned();
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if let Some(id) = id {
                        return SseEvent { id, event, data: serde_json::from_str(&data).unwrap() };
                    }
                    continue;
                }
                let chunk = self.stream.next().await.expect("the stream ended").unwrap();
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("no SSE event within 10 s")
    }
}

fn reading(building: &str, date: &str, consumption: f64) -> Value {
    json!({"building_id": building, "date": date, "consumption": consumption, "temperature": 10, "provider": "acme"})
}

async fn alerts(server: &common::Server, query: &str) -> Vec<Value> {
    let (status, body) = server.get(&format!("/api/v1/alerts{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn alert_rules_crud_and_validation() {
    let server = common::start(emdp_testkit::sqlite().await).await;
    let rule = json!({"name": "high", "kind": "threshold", "params": {"above": 1000}, "severity": "critical"});
    let (status, created) = server.post_json("/api/v1/alert-rules", rule).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "threshold");
    assert_eq!(created["params"]["above"], 1000.0);
    assert_eq!(created["cooldown_seconds"], 300);
    let id = created["id"].as_i64().unwrap();

    for bad in [
        json!({"name": "x", "kind": "threshold", "params": {}}),
        json!({"name": "x", "kind": "nope", "params": {}}),
        json!({"name": "x", "kind": "valid_share", "params": {"scope": "source", "min_percent": 150}}),
        json!({"name": "x", "kind": "stale", "params": {"max_silence_seconds": 60}, "severity": "loud"}),
        json!({"name": "", "kind": "status", "params": {"status": "INCOMPLETE"}}),
    ] {
        let (status, body) = server.post_json("/api/v1/alert-rules", bad.clone()).await;
        assert_eq!(status, 400, "{bad} -> {body}");
    }

    let replacement = json!({"name": "low", "kind": "threshold", "params": {"below": 1, "building": "B9"},
        "severity": "info", "cooldown_seconds": 0, "enabled": false});
    let (status, updated) = server
        .send(reqwest::Method::PUT, &format!("/api/v1/alert-rules/{id}"), "application/json", replacement.to_string())
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "low");
    assert_eq!(updated["enabled"], false);
    let (status, list) = server.get("/api/v1/alert-rules").await;
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    let (status, _) = server.send(reqwest::Method::DELETE, &format!("/api/v1/alert-rules/{id}"), "", "").await;
    assert_eq!(status, 204);
    let (status, _) = server.get(&format!("/api/v1/alert-rules/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_alert_fires_streams_holds_its_cooldown_resolves_and_is_acknowledged() {
    let server = common::start(emdp_testkit::sqlite().await).await;
    let mut live = SseReader::open(&server, None).await;
    let rule = json!({"name": "high consumption", "kind": "threshold", "params": {"above": 1000},
        "severity": "critical", "cooldown_seconds": 3600});
    let (status, rule) = server.post_json("/api/v1/alert-rules", rule).await;
    assert_eq!(status, 201);

    // Fires.
    let (status, _) = server.post_json("/api/v1/records", reading("B1", "2025-01-01", 5000.0)).await;
    assert_eq!(status, 201);
    let fired = live.next().await;
    assert_eq!(fired.event, "fired");
    assert_eq!(fired.data["alert"]["building"], "B1");
    assert_eq!(fired.data["alert"]["severity"], "critical");
    assert_eq!(fired.data["alert"]["rule_id"], rule["id"]);
    let firing = alerts(&server, "?state=firing").await;
    assert_eq!(firing.len(), 1);
    let alert_id = firing[0]["id"].as_i64().unwrap();
    assert_eq!(fired.data["alert"]["id"], alert_id);
    // Another building's normal reading changes nothing.
    server.post_json("/api/v1/records", reading("B2", "2025-01-01", 100.0)).await;

    // Resolves when the condition clears.
    server.post_json("/api/v1/records", reading("B1", "2025-01-02", 100.0)).await;
    let resolved = live.next().await;
    assert_eq!((resolved.event.as_str(), resolved.data["alert"]["id"].as_i64()), ("resolved", Some(alert_id)));
    assert!(resolved.id > fired.id);
    assert_eq!(alerts(&server, "?state=resolved&building=B1").await.len(), 1);

    // The cooldown holds: the same condition does not fire again within it.
    server.post_json("/api/v1/records", reading("B1", "2025-01-03", 7000.0)).await;
    assert_eq!(alerts(&server, "").await.len(), 1);

    // Acknowledge (idempotent).
    let (status, acked) = server.post_json(&format!("/api/v1/alerts/{alert_id}:ack"), json!({})).await;
    assert_eq!(status, 200, "{acked}");
    assert!(acked["acknowledged_at"].is_string());
    let (status, again) = server.post_json(&format!("/api/v1/alerts/{alert_id}:ack"), json!({})).await;
    assert_eq!((status, &again["acknowledged_at"]), (200, &acked["acknowledged_at"]));
    let acknowledged = live.next().await;
    assert_eq!(acknowledged.event, "acknowledged");
    let (status, _) = server.post_json("/api/v1/alerts/999999:ack", json!({})).await;
    assert_eq!(status, 404);
    let (status, _) = server.post_json(&format!("/api/v1/alerts/{alert_id}:nope"), json!({})).await;
    assert_eq!(status, 404);

    // A client that reconnects with Last-Event-ID receives what it missed, in order.
    let mut resumed = SseReader::open(&server, Some(fired.id)).await;
    let first = resumed.next().await;
    let second = resumed.next().await;
    assert_eq!((first.id, first.event.as_str()), (resolved.id, "resolved"));
    assert_eq!((second.id, second.event.as_str()), (acknowledged.id, "acknowledged"));

    // Filters.
    assert_eq!(alerts(&server, "?severity=critical").await.len(), 1);
    assert_eq!(alerts(&server, "?severity=info").await.len(), 0);
    assert_eq!(alerts(&server, &format!("?rule={}", rule["id"])).await.len(), 1);
    let (status, _) = server.get("/api/v1/alerts?state=maybe").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_status_rule_fires_on_a_malformed_record_and_a_zero_cooldown_fires_again() {
    let server = common::start(emdp_testkit::sqlite().await).await;
    let rule = json!({"name": "incomplete from api", "kind": "status",
        "params": {"source": "api", "status": "INCOMPLETE"}, "cooldown_seconds": 0});
    assert_eq!(server.post_json("/api/v1/alert-rules", rule).await.0, 201);
    let incomplete = json!({"building_id": "B7", "date": "2025-01-01", "provider": "acme"});
    server.post_json("/api/v1/records", incomplete).await;
    let firing = alerts(&server, "?state=firing&building=B7").await;
    assert_eq!(firing.len(), 1);
    // Reasons have the one shape every surface gives them: code and message.
    let reason = &firing[0]["details"]["reasons"][0];
    assert_eq!(reason["code"], "missing_consumption", "{reason}");
    assert!(reason["message"].as_str().is_some_and(|m| !m.is_empty()), "{reason}");
    server.post_json("/api/v1/records", reading("B7", "2025-01-02", 10.0)).await;
    assert_eq!(alerts(&server, "?state=resolved").await.len(), 1);
    let again = json!({"building_id": "B7", "date": "2025-01-03", "provider": "acme"});
    server.post_json("/api/v1/records", again).await;
    assert_eq!(alerts(&server, "?state=firing").await.len(), 1);
    assert_eq!(alerts(&server, "").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anomaly_rule_fires_on_a_reading_far_from_the_baseline() {
    let server = common::start(emdp_testkit::sqlite().await).await;
    let config = emdp_datagen::GeneratorConfig {
        buildings: 1,
        days: 400,
        seed: 11,
        fault_rate: 0.0,
        end_date: chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
    };
    let mut csv = Vec::new();
    emdp_datagen::generate(&config, &mut csv).unwrap();
    assert_eq!(server.send(reqwest::Method::POST, "/api/v1/records", "text/csv", csv).await.0, 201);
    let (status, baseline) = server.get("/api/v1/buildings/B00001/baseline").await;
    assert_eq!(status, 200, "{baseline}");
    let model = &baseline["model"];
    let (intercept, rmse) = (model["intercept"].as_f64().unwrap(), model["rmse"].as_f64().unwrap());
    let rule = json!({"name": "B00001 anomaly", "kind": "anomaly", "params": {"building": "B00001", "z": 3.0},
        "cooldown_seconds": 0});
    assert_eq!(server.post_json("/api/v1/alert-rules", rule).await.0, 201);

    // Far above anything the model expects at any temperature: well beyond 3 RMSEs.
    let spike = (intercept * 3.0 + 50.0 * rmse).min(900_000.0);
    let mut record = reading("B00001", "2025-06-02", spike);
    record["provider"] = json!(baseline_provider(&server).await);
    assert_eq!(server.post_json("/api/v1/records", record).await.0, 201);
    let firing = alerts(&server, "?state=firing&building=B00001").await;
    assert_eq!(firing.len(), 1, "{firing:?}");
    assert!(firing[0].to_string().contains("anomaly") || firing[0]["rule_id"].is_i64(), "{:?}", firing[0]);
}

/// The provider the generator gave building B00001.
async fn baseline_provider(server: &common::Server) -> String {
    let (_, page) = server.get("/api/v1/records?building_id=B00001&limit=1").await;
    page["items"][0]["provider"].as_str().unwrap().to_owned()
}
