//! `emdp dead-letters list`: the MQTT messages `emdp serve` gave up on, as text and JSON, paged.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use chrono::{TimeZone, Utc};
use common::{run_json, run_ok, sqlite_url, temp_dir};
use emdp_app::ports::{DeadLetterPayload, NewDeadLetter};

#[test]
fn dead_letters_are_listed_as_text_and_json_with_a_cursor() {
    let dir = temp_dir();
    let url = sqlite_url(&dir, "emdp.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let stores = emdp_storage::open_stores(&url).await.unwrap();
        let at = Utc.timestamp_millis_opt(1_760_000_000_000).unwrap();
        for (topic, bytes) in [("energy/B1/records", &b"{\"a\":1}"[..]), ("energy/B2/records", &[0xff, 0x01][..])] {
            let letter = NewDeadLetter {
                topic: topic.into(),
                payload: DeadLetterPayload::from_bytes(bytes),
                received_at: at,
                error: "database error: boom".into(),
                attempts: 5,
                dead_at: at,
            };
            stores.dead_letters.add_dead_letter(&letter).await.unwrap();
        }
        stores.records.close().await.unwrap();
    });

    let text = run_ok(&["dead-letters", "list", "--database-url", &url]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].contains("energy/B2/records") && lines[1].ends_with("database error: boom"), "{text}");
    assert!(lines[1].contains("2025-10-09 08:53:20"), "{text}");

    let page = run_json(&["dead-letters", "list", "--database-url", &url, "--limit", "1", "--output", "json"]);
    assert_eq!(page["items"][0]["payload_encoding"], "base64");
    assert_eq!(page["items"][0]["payload"], "/wE=");
    assert_eq!(page["items"][0]["attempts"], 5);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = run_json(&["dead-letters", "list", "--database-url", &url, "--output", "json", "--cursor", cursor]);
    assert_eq!(rest["items"][0]["payload"], "{\"a\":1}");
    assert_eq!(rest["items"][0]["payload_encoding"], "utf-8");
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);
}
