//! `GET /api/v1/dead-letters`: the MQTT messages the subscriber gave up on, newest first, paged
//! like the other lists, each kept exactly as received.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use chrono::{TimeZone, Utc};
use emdp_app::ports::{DeadLetterPayload, NewDeadLetter};
use serde_json::json;

async fn dead_letters_are_listed_newest_first_and_paged(fixture: emdp_testkit::TestStore) {
    let stores = emdp_storage::open_stores(&fixture.url).await.unwrap();
    let at = Utc.timestamp_millis_opt(1_760_000_000_000).unwrap();
    let payloads = [
        DeadLetterPayload::from_bytes(br#"{"building_id":"B1"}"#),
        DeadLetterPayload::from_bytes(&[0xff, 0x00, b'a']),
        DeadLetterPayload::from_bytes("NUL \u{0} and é".as_bytes()),
    ];
    for (n, payload) in payloads.into_iter().enumerate() {
        let letter = NewDeadLetter {
            topic: format!("energy/B{n}/records"),
            payload,
            received_at: at,
            error: "database error: boom".into(),
            attempts: 5,
            dead_at: at + chrono::Duration::seconds(3),
        };
        stores.dead_letters.add_dead_letter(&letter).await.unwrap();
    }
    let server = common::start(fixture).await;

    let (status, page) = server.get("/api/v1/dead-letters?limit=2").await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["topic"], "energy/B2/records", "newest first");
    assert_eq!(items[0]["payload"], "NUL \u{0} and é", "kept exactly");
    assert_eq!(items[0]["payload_encoding"], "utf-8");
    assert_eq!(
        items[1],
        json!({"id": items[1]["id"], "topic": "energy/B1/records", "payload_encoding": "base64", "payload": "/wBh",
            "received_at": "2025-10-09T08:53:20Z", "error": "database error: boom", "attempts": 5,
            "dead_at": "2025-10-09T08:53:23Z"})
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let (status, rest) = server.get(&format!("/api/v1/dead-letters?limit=2&cursor={cursor}")).await;
    assert_eq!(status, 200, "{rest}");
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["payload"], r#"{"building_id":"B1"}"#);
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);

    let (status, problem) = server.get("/api/v1/dead-letters?cursor=x").await;
    assert_eq!(status, 400, "{problem}");
}

emdp_testkit::every_backend! {
    |fixture| fixture => [dead_letters_are_listed_newest_first_and_paged],
}
