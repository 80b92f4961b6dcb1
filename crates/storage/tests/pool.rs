//! A busy PostgreSQL pool is waited for: a short acquire timeout (how long a request waits
//! while the database is down) does not fail requests that only wait behind others.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

use std::time::Duration;

use emdp_app::ports::RecordFilter;
use emdp_storage::{DatabaseUrl, OpenOptions};

emdp_testkit::needs_postgres! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_pool_is_waited_for_not_reported_unavailable() {
        let fixture = emdp_testkit::postgres().await;
        let url = DatabaseUrl::parse(&fixture.url).unwrap();
        let options = OpenOptions { acquire_timeout: Duration::from_millis(200), ..OpenOptions::default() };
        let store = emdp_storage::open_stores_with(&url, &options).await.unwrap().records;
        // Every one of the pool's 10 connections held by an open transaction.
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(store.begin_ingest().await.unwrap());
        }
        let mut reading = tokio::spawn({
            let store = store.clone();
            async move { store.list_records(&RecordFilter::default(), None, 10).await }
        });
        // Three acquire timeouts later the read still waits: it did not fail as unavailable.
        let early = tokio::time::timeout(Duration::from_millis(600), &mut reading).await;
        assert!(early.is_err(), "the read did not wait for a connection: {early:?}");
        // Readiness: the database answers, the pool is only busy.
        store.ping().await.unwrap();
        drop(held);
        assert!(reading.await.unwrap().unwrap().is_empty(), "the read ran once a connection was free");
    }
}
