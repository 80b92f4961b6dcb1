//! The alert store's contract: one suite, run unchanged against SQLite and PostgreSQL (each
//! test on a fresh database), covering every method of the port: rules CRUD, firing,
//! resolving and acknowledging alerts, the event log replayed after a sequence number, and
//! webhook delivery attempts. A last test runs the same script on both backends and compares
//! everything they return.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use emdp_app::ports::{
    AlertFilter, AlertState, AlertStore, DeliveryAttempt, EventKind, NewAlert, RuleKind, RuleSpec, Severity,
    ShareScope, StoreError,
};

/// A time with millisecond precision (what both schemas keep).
fn at(seconds: i64, millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_750_000_000_000 + seconds * 1000 + millis).unwrap()
}

async fn alerts_of(url: &str) -> Arc<dyn AlertStore> {
    emdp_storage::open_stores(url).await.expect("open stores").alerts
}

fn threshold(name: &str) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        kind: RuleKind::Threshold { building: Some("B1".into()), above: Some(500.5), below: None },
        severity: Severity::Warning,
        cooldown_seconds: 300,
        enabled: true,
    }
}

fn every_kind() -> Vec<RuleSpec> {
    let kinds = vec![
        RuleKind::Threshold { building: None, above: None, below: Some(0.25) },
        RuleKind::Anomaly { building: Some("B2".into()), z: 2.5 },
        RuleKind::ValidShare { scope: ShareScope::Provider, value: Some("p1".into()), min_percent: 90.0, window: 50 },
        RuleKind::Stale { building: None, max_silence_seconds: 86_400 },
        RuleKind::Status { source: Some("mqtt:energy/gw1/records".into()), status: None, reason: Some("x".into()) },
    ];
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, kind)| RuleSpec {
            name: format!("rule {i} é \u{1F600}"),
            kind,
            severity: [Severity::Info, Severity::Critical][i % 2],
            cooldown_seconds: i as u64 * 60,
            enabled: i % 2 == 0,
        })
        .collect()
}

fn new_alert(rule_id: i64, subject: &str, building: Option<&str>, second: i64) -> NewAlert {
    NewAlert {
        rule_id,
        rule_name: format!("rule {rule_id}"),
        severity: if building.is_some() { Severity::Critical } else { Severity::Info },
        subject: subject.into(),
        building: building.map(str::to_owned),
        fired_at: at(second, 123),
        message: format!("{subject}: consumption 612.5 above 500.5 \u{2014} \"quoted\"\n2nd line"),
        details: serde_json::json!({ "value": 612.5, "threshold": 500.5, "subject": subject, "nested": [1, null] }),
    }
}

fn attempt(event_seq: i64, alert_id: i64, n: u32, success: bool) -> DeliveryAttempt {
    DeliveryAttempt {
        event_seq,
        alert_id,
        url: format!("http://127.0.0.1:9/hook?n={n}"),
        attempt: n,
        at: at(100 + i64::from(n), 7),
        status: if success {
            Some(204)
        } else if n == 1 {
            None
        } else {
            Some(503)
        },
        success,
        error: (!success).then(|| format!("attempt {n} failed: connection refused")),
        duration_ms: u64::from(n) * 11,
    }
}

async fn rules_crud(store: Arc<dyn AlertStore>) -> Vec<String> {
    let mut log = Vec::new();
    assert!(store.list_rules().await.unwrap().is_empty());
    assert_eq!(store.get_rule(1).await.unwrap(), None);

    let first = store.create_rule(&threshold("high"), at(0, 1)).await.unwrap();
    assert_eq!(first.spec, threshold("high"));
    assert_eq!((first.created_at, first.updated_at), (at(0, 1), at(0, 1)));
    let mut created = vec![first.clone()];
    for (i, spec) in every_kind().iter().enumerate() {
        let rule = store.create_rule(spec, at(1 + i as i64, 999)).await.unwrap();
        assert_eq!(&rule.spec, spec, "every kind and its parameters round-trip");
        assert!(rule.id > created.last().unwrap().id, "ids increase");
        created.push(rule);
    }
    assert_eq!(store.list_rules().await.unwrap(), created, "listed by id, as created");
    assert_eq!(store.get_rule(first.id).await.unwrap().as_ref(), Some(&first));
    log.push(format!("{created:?}"));

    let mut changed = threshold("high, renamed");
    changed.kind = RuleKind::Threshold { building: None, above: Some(1e6), below: Some(-1.5) };
    changed.severity = Severity::Critical;
    changed.cooldown_seconds = 0;
    changed.enabled = false;
    let updated = store.update_rule(first.id, &changed, at(50, 500)).await.unwrap();
    assert_eq!(updated.id, first.id);
    assert_eq!(updated.spec, changed);
    assert_eq!((updated.created_at, updated.updated_at), (at(0, 1), at(50, 500)), "created_at is kept");
    assert_eq!(store.get_rule(first.id).await.unwrap(), Some(updated.clone()));
    log.push(format!("{updated:?}"));

    let missing = store.update_rule(9_999, &changed, at(51, 0)).await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    assert!(store.delete_rule(first.id).await.unwrap());
    assert!(!store.delete_rule(first.id).await.unwrap(), "deleting twice");
    assert!(!store.delete_rule(9_999).await.unwrap());
    assert_eq!(store.get_rule(first.id).await.unwrap(), None);
    let rest = store.list_rules().await.unwrap();
    assert_eq!(rest, created[1..]);
    let again = store.create_rule(&threshold("high"), at(60, 0)).await.unwrap();
    assert!(again.id > created.last().unwrap().id, "ids are not reused");
    log.push(format!("{:?}", store.list_rules().await.unwrap()));
    log
}

async fn alert_lifecycle_and_events(store: Arc<dyn AlertStore>) -> Vec<String> {
    let mut log = Vec::new();
    assert!(store.events_after(0, 100).await.unwrap().is_empty());
    assert!(store.firing_alerts().await.unwrap().is_empty());
    assert_eq!(store.get_alert(1).await.unwrap(), None);

    let rule = store.create_rule(&threshold("high"), at(0, 0)).await.unwrap();
    let fired_a = store.fire(&new_alert(rule.id, "B1", Some("B1"), 10)).await.unwrap();
    let fired_b = store.fire(&new_alert(rule.id + 1, "source:api", None, 11)).await.unwrap();
    let fired_c = store.fire(&new_alert(rule.id, "B2", Some("B2"), 12)).await.unwrap();
    for (event, subject) in [(&fired_a, "B1"), (&fired_b, "source:api"), (&fired_c, "B2")] {
        assert_eq!(event.kind, EventKind::Fired);
        assert_eq!(event.alert.subject, subject);
        assert_eq!(event.alert.state, AlertState::Firing);
        assert_eq!(event.at, event.alert.fired_at);
        assert_eq!((event.alert.resolved_at, event.alert.acknowledged_at), (None, None));
        assert_eq!(store.get_alert(event.alert.id).await.unwrap().as_ref(), Some(&event.alert));
    }
    assert!(fired_a.seq < fired_b.seq && fired_b.seq < fired_c.seq, "event sequence numbers increase");
    assert!(fired_a.alert.id < fired_b.alert.id && fired_b.alert.id < fired_c.alert.id);
    let a = fired_a.alert.clone();
    assert_eq!(a.rule_name, format!("rule {}", rule.id));
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.building.as_deref(), Some("B1"));
    assert_eq!(a.fired_at, at(10, 123));
    assert_eq!(a.message, new_alert(rule.id, "B1", Some("B1"), 10).message);
    assert_eq!(a.details["nested"], serde_json::json!([1, null]));
    assert_eq!(fired_b.alert.building, None);
    assert_eq!(
        store.firing_alerts().await.unwrap(),
        [fired_a.alert.clone(), fired_b.alert.clone(), fired_c.alert.clone()],
        "firing alerts by id"
    );

    // Resolve: once only.
    let resolved = store.resolve(a.id, at(20, 5)).await.unwrap();
    assert_eq!(resolved.kind, EventKind::Resolved);
    assert_eq!(resolved.at, at(20, 5));
    assert_eq!(resolved.alert.state, AlertState::Resolved);
    assert_eq!(resolved.alert.resolved_at, Some(at(20, 5)));
    assert_eq!(resolved.alert.fired_at, a.fired_at);
    assert!(resolved.seq > fired_c.seq);
    assert_eq!(store.get_alert(a.id).await.unwrap().as_ref(), Some(&resolved.alert));
    assert!(matches!(store.resolve(a.id, at(21, 0)).await, Err(StoreError::NotFound)), "resolving twice");
    assert!(matches!(store.resolve(9_999, at(21, 0)).await, Err(StoreError::NotFound)));
    assert_eq!(
        store.firing_alerts().await.unwrap(),
        [fired_b.alert.clone(), fired_c.alert.clone()],
        "a resolved alert is no longer firing"
    );

    // Acknowledge: logged the first time only, the first time is kept; a resolved alert too.
    let (acked, event) = store.acknowledge(fired_b.alert.id, at(30, 0)).await.unwrap();
    let event = event.expect("the first acknowledgement is an event");
    assert_eq!(event.kind, EventKind::Acknowledged);
    assert_eq!(event.alert, acked);
    assert_eq!(acked.acknowledged_at, Some(at(30, 0)));
    assert_eq!(acked.state, AlertState::Firing, "acknowledging does not resolve");
    let (again, none) = store.acknowledge(fired_b.alert.id, at(31, 0)).await.unwrap();
    assert_eq!(none, None, "acknowledging twice logs nothing");
    assert_eq!(again, acked, "the first acknowledgement is kept");
    let (acked_a, event_a) = store.acknowledge(a.id, at(32, 0)).await.unwrap();
    assert!(event_a.is_some());
    assert_eq!((acked_a.state, acked_a.acknowledged_at), (AlertState::Resolved, Some(at(32, 0))));
    assert!(matches!(store.acknowledge(9_999, at(33, 0)).await, Err(StoreError::NotFound)));

    // The event log, replayed from the start and after any sequence number.
    let events = store.events_after(0, 100).await.unwrap();
    assert_eq!(
        events.iter().map(|e| (e.kind, e.alert.id)).collect::<Vec<_>>(),
        [
            (EventKind::Fired, a.id),
            (EventKind::Fired, fired_b.alert.id),
            (EventKind::Fired, fired_c.alert.id),
            (EventKind::Resolved, a.id),
            (EventKind::Acknowledged, fired_b.alert.id),
            (EventKind::Acknowledged, a.id),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(events[0], fired_a, "events carry the alert as it was after the event");
    assert_eq!(events[3], resolved);
    assert_eq!(events[4], event);
    for (i, event) in events.iter().enumerate() {
        assert_eq!(store.events_after(event.seq, 100).await.unwrap(), events[i + 1..], "after {}", event.seq);
    }
    assert_eq!(store.events_after(events[1].seq, 2).await.unwrap(), events[2..4], "at most limit");
    assert_eq!(store.events_after(-1, 1).await.unwrap(), events[..1]);
    assert!(store.events_after(events[5].seq + 1000, 10).await.unwrap().is_empty());
    log.push(format!("{events:?}"));

    // Listing: newest first, each filter, keyset pagination.
    let ids = |alerts: Vec<emdp_app::ports::Alert>| alerts.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let (ida, idb, idc) = (a.id, fired_b.alert.id, fired_c.alert.id);
    let all = store.list_alerts(&AlertFilter::default(), None, 100).await.unwrap();
    assert_eq!(ids(all.clone()), [idc, idb, ida]);
    assert_eq!(all[2], acked_a, "listed as stored now");
    log.push(format!("{all:?}"));
    let cases = [
        (AlertFilter { state: Some(AlertState::Firing), ..Default::default() }, vec![idc, idb]),
        (AlertFilter { state: Some(AlertState::Resolved), ..Default::default() }, vec![ida]),
        (AlertFilter { severity: Some(Severity::Critical), ..Default::default() }, vec![idc, ida]),
        (AlertFilter { severity: Some(Severity::Warning), ..Default::default() }, vec![]),
        (AlertFilter { building: Some("B2".into()), ..Default::default() }, vec![idc]),
        (AlertFilter { rule_id: Some(rule.id + 1), ..Default::default() }, vec![idb]),
        (AlertFilter { rule_id: Some(rule.id), state: Some(AlertState::Firing), ..Default::default() }, vec![idc]),
        (
            AlertFilter {
                state: Some(AlertState::Resolved),
                severity: Some(Severity::Critical),
                building: Some("B1".into()),
                rule_id: Some(rule.id),
            },
            vec![ida],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(ids(store.list_alerts(&filter, None, 100).await.unwrap()), expected, "{filter:?}");
    }
    assert_eq!(ids(store.list_alerts(&AlertFilter::default(), None, 2).await.unwrap()), [idc, idb]);
    assert_eq!(ids(store.list_alerts(&AlertFilter::default(), Some(idb), 2).await.unwrap()), [ida]);
    assert_eq!(ids(store.list_alerts(&AlertFilter::default(), Some(ida), 2).await.unwrap()), Vec::<i64>::new());
    assert!(store.list_alerts(&AlertFilter::default(), None, 0).await.unwrap().is_empty());

    // Deleting a rule keeps its alerts; the same subject can fire again after a resolution.
    assert!(store.delete_rule(rule.id).await.unwrap());
    assert_eq!(store.get_alert(ida).await.unwrap(), Some(acked_a));
    let refired = store.fire(&new_alert(rule.id, "B1", Some("B1"), 40)).await.unwrap();
    assert!(refired.alert.id > idc && refired.seq > events[5].seq);
    log.push(format!("{:?}", store.firing_alerts().await.unwrap()));
    log
}

async fn delivery_attempts(store: Arc<dyn AlertStore>) -> Vec<String> {
    let rule = store.create_rule(&threshold("high"), at(0, 0)).await.unwrap();
    let one = store.fire(&new_alert(rule.id, "B1", Some("B1"), 1)).await.unwrap();
    let two = store.fire(&new_alert(rule.id, "B2", Some("B2"), 2)).await.unwrap();
    assert!(store.attempts(one.alert.id).await.unwrap().is_empty());

    let tries = [attempt(one.seq, one.alert.id, 1, false), attempt(one.seq, one.alert.id, 2, false)];
    for a in &tries {
        store.record_attempt(a).await.unwrap();
    }
    store.record_attempt(&attempt(two.seq, two.alert.id, 1, true)).await.unwrap();
    let resolved = store.resolve(one.alert.id, at(5, 0)).await.unwrap();
    let last = attempt(one.seq, one.alert.id, 3, true);
    store.record_attempt(&last).await.unwrap();
    let on_resolve = attempt(resolved.seq, one.alert.id, 1, true);
    store.record_attempt(&on_resolve).await.unwrap();

    let of_one = store.attempts(one.alert.id).await.unwrap();
    assert_eq!(of_one, [tries[0].clone(), tries[1].clone(), last, on_resolve], "every attempt, in order, exactly");
    assert_eq!(of_one[0].status, None);
    assert_eq!(of_one[1].status, Some(503));
    assert_eq!(of_one[1].error.as_deref(), Some("attempt 2 failed: connection refused"));
    assert_eq!(store.attempts(two.alert.id).await.unwrap(), [attempt(two.seq, two.alert.id, 1, true)]);
    assert!(store.attempts(9_999).await.unwrap().is_empty());
    vec![format!("{of_one:?}")]
}

/// Texts are returned exactly as given, NUL (which PostgreSQL's TEXT cannot hold) and the
/// private-use character PostgreSQL's adapter escapes it with included, and filters match them.
async fn texts_round_trip_exactly(store: Arc<dyn AlertStore>) -> Vec<String> {
    let odd = "B\0X \u{E000}e \u{E000}0 \u{1F600}";
    let mut spec = threshold(odd);
    spec.kind = RuleKind::Threshold { building: Some(odd.into()), above: Some(1.0), below: None };
    let rule = store.create_rule(&spec, at(0, 0)).await.unwrap();
    assert_eq!(rule.spec, spec);
    assert_eq!(store.get_rule(rule.id).await.unwrap().unwrap().spec, spec);
    let updated = store.update_rule(rule.id, &spec, at(1, 0)).await.unwrap();
    assert_eq!(updated.spec, spec);

    let mut alert = new_alert(rule.id, odd, Some(odd), 2);
    alert.rule_name = odd.into();
    alert.message = format!("{odd} is above");
    let fired = store.fire(&alert).await.unwrap();
    assert_eq!(
        (fired.alert.subject.as_str(), fired.alert.building.as_deref(), fired.alert.rule_name.as_str()),
        (odd, Some(odd), odd)
    );
    assert_eq!(fired.alert.message, alert.message);
    assert_eq!(store.get_alert(fired.alert.id).await.unwrap().as_ref(), Some(&fired.alert));
    let other = store.fire(&new_alert(rule.id, "B\0Y", Some("B\0Y"), 3)).await.unwrap();
    let filter = AlertFilter { building: Some(odd.into()), ..Default::default() };
    assert_eq!(store.list_alerts(&filter, None, 10).await.unwrap(), std::slice::from_ref(&fired.alert));
    let filter = AlertFilter { building: Some("B\0Y".into()), ..Default::default() };
    assert_eq!(store.list_alerts(&filter, None, 10).await.unwrap(), std::slice::from_ref(&other.alert));
    let resolved = store.resolve(fired.alert.id, at(4, 0)).await.unwrap();
    assert_eq!(resolved.alert.building.as_deref(), Some(odd));
    let (acked, _) = store.acknowledge(fired.alert.id, at(5, 0)).await.unwrap();
    assert_eq!(acked.subject, odd);
    assert_eq!(store.firing_alerts().await.unwrap(), std::slice::from_ref(&other.alert));
    let events = store.events_after(0, 10).await.unwrap();
    assert_eq!(events[0], fired);
    assert_eq!(events[2], resolved);

    let mut tried = attempt(fired.seq, fired.alert.id, 1, false);
    tried.url = format!("http://127.0.0.1:9/{odd}");
    tried.error = Some(format!("error {odd}"));
    store.record_attempt(&tried).await.unwrap();
    assert_eq!(store.attempts(fired.alert.id).await.unwrap(), [tried]);
    vec![format!("{events:?}")]
}

/// Two alert stores firing concurrently get distinct ids and sequence numbers, each event
/// logged once.
async fn concurrent_fires_get_distinct_sequence_numbers(store: Arc<dyn AlertStore>) -> Vec<String> {
    let rule = store.create_rule(&threshold("high"), at(0, 0)).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.fire(&new_alert(rule.id, &format!("B{i}"), None, i)).await.unwrap() })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().seq);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 20);
    let events = store.events_after(0, 100).await.unwrap();
    assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(store.firing_alerts().await.unwrap().len(), 20);
    vec![]
}

emdp_testkit::every_backend! {
    |fixture| alerts_of(&fixture.url).await => [
        rules_crud,
        alert_lifecycle_and_events,
        delivery_attempts,
        texts_round_trip_exactly,
        concurrent_fires_get_distinct_sequence_numbers,
    ],
}

emdp_testkit::needs_postgres! {
    /// The same scripts on both backends (fresh databases) return the same rules, alerts, events
    /// and attempts, ids and sequence numbers included.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_and_postgres_return_equal_results() {
        for script in 0..4 {
            let mut both = Vec::new();
            for fixture in [emdp_testkit::sqlite().await, emdp_testkit::postgres().await] {
                let store = alerts_of(&fixture.url).await;
                both.push(match script {
                    0 => rules_crud(store).await,
                    1 => alert_lifecycle_and_events(store).await,
                    2 => delivery_attempts(store).await,
                    _ => texts_round_trip_exactly(store).await,
                });
            }
            assert_eq!(both[0], both[1], "script {script}");
        }
    }
}
