//! Fixtures for the API tests: the real application on a random port against a fresh
//! database, and a client that speaks to it as any HTTP client would.
#![allow(dead_code)] // Each test binary uses its own subset of the fixtures.

use std::sync::Arc;

use chrono::NaiveDate;
use emdp_api::ApiConfig;
use emdp_api::server::{Auth, Settings};
use emdp_app::ports::FixedClock;
use emdp_app::usecases::keys::KeyService;
use emdp_testkit::TestStore;

/// A running server and what keeps it alive.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The API keys of the server's database (to create keys in tests).
    pub keys: KeyService,
    /// The database (to check what was stored).
    pub store: TestStore,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// "Today" for every API test.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).unwrap()
}

/// Starts the application on `store` with a body limit of `body_limit` bytes.
pub async fn start_with(store: TestStore, body_limit: usize) -> Server {
    start_with_config(store, ApiConfig { body_limit, ..ApiConfig::default() }).await
}

/// Starts the application on `store` with `config` (auth, limits, ...).
pub async fn start_with_config(store: TestStore, config: ApiConfig) -> Server {
    let auth = if config.guard.auth { Auth::Required } else { Auth::Disabled };
    let settings = Settings { auth, http: config, ..settings(&store.url) };
    start_with_settings(store, settings).await
}

/// The settings every test starts from: the defaults on `database_url`, with "today" pinned
/// to [`today`].
pub fn settings(database_url: &str) -> Settings {
    Settings { clock: Arc::new(FixedClock(today())), ..Settings::new(database_url) }
}

/// Starts the application as `emdp serve` builds it ([`emdp_api::server::Server::build`]) from
/// `settings`, on a random port.
pub async fn start_with_settings(store: TestStore, settings: Settings) -> Server {
    let server = emdp_api::server::Server::build(settings).await.expect("build the server");
    let keys = server.state().keys.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = signal.await;
            })
            .await
            .map_err(std::io::Error::other)
    });
    Server { base, client: client(), keys, store, shutdown: Some(shutdown), serving: Some(serving) }
}

/// Starts the application with the default 10 MB body limit.
pub async fn start(store: TestStore) -> Server {
    start_with(store, 10 * 1024 * 1024).await
}

impl Server {
    /// Signals a graceful shutdown (as SIGTERM does) without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits until the server has stopped (after [`Server::begin_shutdown`]).
    pub async fn stopped(&mut self) -> std::io::Result<()> {
        match self.serving.take() {
            Some(serving) => serving.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GET `path`, returning the status and the body as JSON (`Null` when not JSON).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        decode(response).await
    }

    /// Sends `body` with `content_type` by `method`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        decode(response).await
    }

    /// POSTs `body` as `content_type` with the header `Content-Encoding: encoding`.
    pub async fn post_encoded(
        &self,
        path: &str,
        content_type: &str,
        encoding: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .header("content-encoding", encoding)
            .body(body)
            .send()
            .await
            .unwrap();
        decode(response).await
    }

    /// POSTs JSON.
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, "application/json", body.to_string()).await
    }
}

/// Status and JSON body; problem responses must carry `application/problem+json`.
pub async fn decode(response: reqwest::Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let text = response.text().await.unwrap();
    if status >= 400 {
        assert_eq!(content_type, "application/problem+json", "error {status} without problem details: {text}");
    }
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// An HTTP client. reqwest may be built with rustls but no crypto provider (the webhook
/// notifier installs `ring` at start-up), so the tests install the same provider first.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// `text` compressed with gzip.
pub fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).expect("compress in memory");
    encoder.finish().expect("compress in memory")
}
