//! Webhooks: a correctly signed payload reaches a receiver; a failing one is retried with
//! backoff and every attempt is recorded.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use emdp_app::ports::{Clock, RuleKind, RuleSpec, Severity, SourceFormat, SystemClock};
use emdp_app::usecases::alerts::AlertEngine;
use emdp_app::usecases::ingest::Ingestor;
use emdp_domain::{ConflictPolicy, RuleSet};
use emdp_realtime::mqtt::classify_message;
use emdp_realtime::{WebhookConfig, WebhookNotifier};
use hmac::{KeyInit, Mac};
use tokio::sync::mpsc;

const SECRET: &str = "s3cret";

#[tokio::test]
async fn webhooks_are_signed_retried_and_every_attempt_is_recorded() {
    // A receiver that checks the signature, and one that always fails.
    let (received, mut deliveries) = mpsc::unbounded_channel::<(String, bool)>();
    let app = Router::new()
        .route(
            "/ok",
            post(move |headers: HeaderMap, body: String| {
                let received = received.clone();
                async move {
                    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
                    mac.update(body.as_bytes());
                    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    let signed = headers.get("x-emdp-signature").and_then(|v| v.to_str().ok()) == Some(&expected);
                    received.send((body, signed)).unwrap();
                    StatusCode::NO_CONTENT
                }
            }),
        )
        .route("/fail", post(|| async { StatusCode::SERVICE_UNAVAILABLE }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let db = emdp_testkit::sqlite().await;
    let stores = emdp_storage::open_stores(&db.url).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = AlertEngine::new(stores.alerts.clone(), clock.clone());
    let spec = RuleSpec {
        name: "high".into(),
        kind: RuleKind::Threshold { building: None, above: Some(1000.0), below: None },
        severity: Severity::Critical,
        cooldown_seconds: 60,
        enabled: true,
    };
    engine.create_rule(&spec).await.unwrap();
    let mut config = WebhookConfig::new(vec![format!("{base}/ok"), format!("{base}/fail")], SECRET);
    config.max_attempts = 3;
    config.initial_backoff = Duration::from_millis(20);
    let _notifier = WebhookNotifier::spawn(config, stores.alerts.clone(), engine.subscribe()).unwrap();

    let ingestor =
        Ingestor::new(stores.records.clone(), Arc::new(RuleSet::default()), clock, ConflictPolicy::PreferValid);
    let message = br#"{"building_id":"B1","date":"2025-01-01","consumption":5000,"temperature":3,"provider":"acme"}"#;
    let rows = classify_message(&ingestor, message);
    let (_, links) = ingestor.ingest_rows(&rows, "mqtt:test", SourceFormat::Ndjson, None, None).await.unwrap();
    let events = engine.on_ingested("mqtt:test", &rows, &links).await.unwrap();
    assert_eq!(events.len(), 1);
    let alert_id = events[0].alert.id;

    let (body, signed) = tokio::time::timeout(Duration::from_secs(10), deliveries.recv()).await.unwrap().unwrap();
    assert!(signed, "bad signature");
    let payload: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(payload["kind"], "fired");
    assert_eq!(payload["seq"], events[0].seq);
    assert_eq!(payload["alert"]["building"], "B1");

    let started = Instant::now();
    loop {
        let attempts = stores.alerts.attempts(alert_id).await.unwrap();
        let failed: Vec<_> = attempts.iter().filter(|a| a.url.ends_with("/fail")).collect();
        let ok: Vec<_> = attempts.iter().filter(|a| a.url.ends_with("/ok")).collect();
        if failed.len() == 3 {
            assert_eq!(failed.iter().map(|a| a.attempt).collect::<Vec<_>>(), [1, 2, 3]);
            assert!(failed.iter().all(|a| !a.success && a.status == Some(503)));
            assert!(failed[2].at - failed[1].at >= failed[1].at - failed[0].at, "exponential backoff");
            assert_eq!(ok.len(), 1);
            assert!(ok[0].success && ok[0].status == Some(204));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "attempts so far: {attempts:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
