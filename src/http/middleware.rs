//! The layers every API request passes, outermost last in `router`: a
//! handler's panic answered 500, a request id, the per-token rate limit,
//! (idempotency, in `idempotency`), the request deadline and the request
//! metrics.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

use super::{auth, error, AppState};
use crate::config::Settings;

/// Per-token request rate limit (GCRA, `governor`): `rate_limit_per_second`
/// with a burst of `rate_limit_burst`, keyed by a hash of the bearer token
/// (anonymous requests share one key). Over it: 429 `rate_limited` with
/// `Retry-After`.
#[derive(Clone)]
pub struct RateLimit(Arc<governor::DefaultKeyedRateLimiter<[u8; 32]>>);

impl RateLimit {
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let per_second = std::num::NonZeroU32::new(settings.rate_limit_per_second)?;
        let burst = std::num::NonZeroU32::new(settings.rate_limit_burst).unwrap_or(per_second);
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        Some(RateLimit(Arc::new(governor::RateLimiter::keyed(quota))))
    }

    fn check(&self, key: [u8; 32]) -> Result<(), u64> {
        use governor::clock::Clock;
        if self.0.len() > 100_000 {
            self.0.retain_recent();
        }
        self.0.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// Refuse a request over its token's rate (see [`RateLimit`]).
pub(super) async fn rate_limited(State(s): State<AppState>, req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    use sha2::Digest;
    if let Some(limit) = &s.rate_limit {
        // The token as authentication reads it, so that spacing the
        // header differently does not open a new budget.
        let token = req
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| auth::bearer_token(v).unwrap_or(v))
            .unwrap_or_default();
        let key: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        if let Err(secs) = limit.check(key) {
            metrics::counter!("caseshare_http_rate_limited_total").increment(1);
            return crate::error::Error::RateLimited(secs.max(1)).into_response();
        }
    }
    next.run(req).await
}

/// A handler that panicked answers 500 in the contract's shape (and the
/// process goes on); the panic is logged.
pub(super) fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    use axum::response::IntoResponse;
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    crate::error::Error::Internal(anyhow::anyhow!("a handler panicked: {what}")).into_response()
}

/// Routes that stream a body of any size: no overall deadline (an upload has
/// an idle timeout instead, a download is paced by its client).
fn streams(route: &str) -> bool {
    matches!(
        route,
        "/v1/evidence/{evidence_id}/content" | "/v1/downloads/{token}"
    )
}

/// Every request gets an id (the client's `x-request-id` when it is a sane
/// token, else a new one): in the logs (a span), in the `x-request-id`
/// response header and in every error body.
pub(super) async fn request_context(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!("request", request_id = %id);
    let work = error::REQUEST_ID.scope(id.clone(), next.run(req));
    let mut response = tracing::Instrument::instrument(work, span).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Requests that do not stream get a deadline (`request_timeout_secs`):
/// past it they answer 503 and their work is dropped (its transaction
/// rolled back). It runs inside the idempotency layer, so a keyed request
/// that timed out after its commit is answered 409 on retry, not re-run.
pub(super) async fn deadline(State(s): State<AppState>, req: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let limit = s.settings.request_timeout_secs;
    let streaming = req
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| streams(p.as_str()));
    if limit == 0 || streaming {
        return next.run(req).await;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(limit), next.run(req)).await {
        Ok(response) => response,
        Err(_) => crate::error::Error::Unavailable(format!(
            "the request took longer than {limit} s and was abandoned; nothing it did was kept"
        ))
        .into_response(),
    }
}

/// HTTP request counts and latency by route and status.
pub(super) async fn track(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("caseshare_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("caseshare_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
