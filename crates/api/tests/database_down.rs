//! The database going away while the server runs: readiness and every database route answer
//! 503 at once (not after the pool's wait for a connection), saying why in words.
//!
//! The shared PostgreSQL cannot be stopped, so the server reaches it through a TCP proxy the
//! test owns; stopping the proxy closes every connection and refuses new ones, as a stopped
//! server does.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap fails the test")]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// A proxy on a free local port that forwards every connection to `upstream`, until the
/// returned task is aborted: then its port refuses connections and the forwarded ones close.
async fn proxy(upstream: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        // Dropped with the task: every forwarded connection is aborted with it.
        let mut connections = JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (address, task)
}

/// `postgres://USER@HOST:PORT/DB` as its server's address and the same URL through `via`.
fn through(url: &str, via: SocketAddr) -> (SocketAddr, String) {
    let (head, rest) = url.split_once('@').unwrap();
    let (authority, database) = rest.split_once('/').unwrap();
    let authority = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:5432") };
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&authority).unwrap().next().unwrap();
    (upstream, format!("{head}@{via}/{database}"))
}

emdp_testkit::needs_postgres! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_that_goes_away_is_503_within_two_seconds_saying_why() {
        let fixture = emdp_testkit::postgres().await;
        let (upstream, _) = through(&fixture.url, "127.0.0.1:1".parse().unwrap());
        let (address, forwarding) = proxy(upstream).await;
        let (_, url) = through(&fixture.url, address);
        // The server's defaults: what `emdp serve` runs with.
        let server = common::start_with_settings(fixture, common::settings(&url)).await;
        assert_eq!(server.get("/api/v1/ready").await.0, 200);
        let (status, body) = server.get("/api/v1/records").await;
        assert_eq!(status, 200, "{body}");

        forwarding.abort();
        assert!(forwarding.await.unwrap_err().is_cancelled());
        // Twice each: the first requests find the pool's dead connections, the next ones none.
        for path in ["/api/v1/ready", "/api/v1/records", "/api/v1/quality/report", "/api/v1/ready", "/api/v1/records"] {
            let started = Instant::now();
            let (status, body) = server.get(path).await;
            let took = started.elapsed();
            assert_eq!(status, 503, "{path}: {body}");
            assert!(took < Duration::from_secs(2), "{path} answered after {took:?} (the pool waited 30 s before)");
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains(&format!("cannot connect to 127.0.0.1:{}: connection refused", address.port())),
                "{path}: {detail}"
            );
        }
    }
}
