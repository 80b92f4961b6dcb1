//! The guard in front of every route: request timeout, a cap on concurrent requests, API-key
//! authentication with roles, and per-key (or per-IP) token-bucket rate limiting.
//!
//! - **Who may call a route is declared with the route**, in [`crate::routes::registry`]:
//!   public (no key, no rate limit, no concurrency cap: health and readiness), or a least role:
//!   `reader` for reads, `ingester` to validate and ingest, `admin` for everything else (PATCH,
//!   DELETE, duplicate resolution, alert rules). The documentation pages and the dashboard's
//!   files are outside the guard; `/metrics` is public or `admin` as configured. A request that
//!   matches no declared operation needs a key of any role (it is answered 404 or 405).
//! - A missing, unknown or revoked key is 401 with `WWW-Authenticate: Bearer`; a key whose role
//!   is too low is 403. The key itself is never logged.
//! - The rate limit applies per key, or per client IP for requests without a valid key; a
//!   request over it is 429 with `Retry-After` (seconds).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use emdp_app::ports::Role;
use emdp_app::usecases::keys::{KeyError, Principal};
use tokio::sync::Semaphore;

use crate::error::ApiError;
use crate::routes::{Access, AccessTable};
use crate::state::{AppState, GuardConfig};

/// Whom a rate-limit bucket belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Bucket {
    Key(i64),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Tokens {
    left: f64,
    at: Instant,
}

/// Token buckets, one per key or client IP.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<Bucket, Tokens>>,
}

/// Buckets kept before full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// `rate` requests per second on average, `burst` at once; `rate <= 0` disables it.
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter { rate, burst: f64::from(burst.max(1)), buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token from `bucket`, or says in how many seconds one will be there.
    fn take(&self, bucket: Bucket) -> Result<(), u64> {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            return Ok(());
        }
        let now = Instant::now();
        let (rate, burst) = (self.rate, self.burst);
        let refill = |tokens: &Tokens| (tokens.left + now.duration_since(tokens.at).as_secs_f64() * rate).min(burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, tokens| refill(tokens) < burst);
        }
        let tokens = buckets.entry(bucket).or_insert(Tokens { left: burst, at: now });
        tokens.left = refill(tokens);
        tokens.at = now;
        if tokens.left >= 1.0 {
            tokens.left -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - tokens.left) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// What the guard middleware shares between requests.
#[derive(Clone)]
pub struct Guard {
    state: AppState,
    config: GuardConfig,
    limiter: Arc<RateLimiter>,
    slots: Option<Arc<Semaphore>>,
    access: Arc<AccessTable>,
}

impl Guard {
    /// The guard for `state`, with its settings, letting each route be called as `access`
    /// declares (and `/metrics` as configured).
    pub fn new(state: AppState, mut access: AccessTable) -> Self {
        let config = state.config.guard.clone();
        let metrics = if config.metrics_public { Access::Public } else { Access::Needs(Role::Admin) };
        access.insert(Method::GET, "/metrics", metrics);
        let limiter = Arc::new(RateLimiter::new(config.rate_per_second, config.burst));
        let slots = (config.max_concurrent > 0).then(|| Arc::new(Semaphore::new(config.max_concurrent)));
        Guard { state, config, limiter, slots, access: Arc::new(access) }
    }

    /// Who may make `request`: as declared for its route; a key of any role where no
    /// operation is declared (the answer is then 404 or 405).
    fn access(&self, request: &Request) -> Access {
        request
            .extensions()
            .get::<MatchedPath>()
            .and_then(|route| self.access.get(request.method(), route.as_str()))
            .unwrap_or(Access::Needs(Role::Reader))
    }
}

/// The bearer token of the request, if any (`None` also for another scheme).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn key_error(err: KeyError) -> ApiError {
    match err {
        KeyError::Store(err) => err.into(),
        other => ApiError::Internal(other.to_string()),
    }
}

/// The middleware: timeout, concurrency cap, authentication, rate limit, role check.
pub async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let timeout = guard.config.timeout;
    let work = check_and_run(guard, request, next);
    if timeout.is_zero() {
        return work.await;
    }
    match tokio::time::timeout(timeout, work).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)).into_response(),
    }
}

async fn check_and_run(guard: Guard, mut request: Request, next: Next) -> Response {
    let required = match guard.access(&request) {
        Access::Public => return next.run(request).await,
        Access::Needs(role) => role,
    };
    let _slot = match &guard.slots {
        Some(slots) => match Arc::clone(slots).acquire_owned().await {
            Ok(permit) => Some(permit),
            Err(_) => return ApiError::Unavailable("the server is shutting down".into()).into_response(),
        },
        None => None,
    };

    // Who is calling: a valid key, an invalid one, or nobody.
    let principal: Option<Result<Principal, &'static str>> = if guard.config.auth {
        match bearer(request.headers()) {
            None => None,
            Some(token) => match guard.state.keys.authenticate(token).await {
                Ok(Some(principal)) => Some(Ok(principal)),
                Ok(None) => Some(Err("the API key is unknown or revoked")),
                Err(err) => return key_error(err).into_response(),
            },
        }
    } else {
        None
    };

    let bucket = match &principal {
        Some(Ok(principal)) => Bucket::Key(principal.id),
        _ => Bucket::Ip(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip()),
        ),
    };
    if let Err(retry_after) = guard.limiter.take(bucket) {
        return ApiError::TooManyRequests { retry_after }.into_response();
    }

    if guard.config.auth {
        let principal = match principal {
            None => {
                return ApiError::Unauthorized("an API key is required: send 'Authorization: Bearer <key>'".into())
                    .into_response();
            }
            Some(Err(detail)) => return ApiError::Unauthorized(detail.into()).into_response(),
            Some(Ok(principal)) => principal,
        };
        if principal.role < required {
            return ApiError::Forbidden(format!(
                "the key '{}' has role {}; {} {} needs {}",
                principal.name,
                principal.role,
                request.method(),
                request.uri().path(),
                required
            ))
            .into_response();
        }
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_allow_the_burst_then_refuse() {
        let limiter = RateLimiter::new(1.0, 3);
        let ip = Bucket::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        for _ in 0..3 {
            assert_eq!(limiter.take(ip), Ok(()));
        }
        assert_eq!(limiter.take(ip), Err(1));
        assert_eq!(limiter.take(Bucket::Key(1)), Ok(()));
        assert_eq!(RateLimiter::new(0.0, 0).take(ip), Ok(()));
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(header::AUTHORIZATION, "bearer  emdp_x ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("emdp_x"));
        headers.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }
}
