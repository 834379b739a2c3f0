//! The thin intake API (axum): parse, authorize, call the domain, map errors.
//! Every route is listed in the OpenAPI document generated from this code.

pub mod admin;
pub mod auth;
pub mod bootstrap;
pub mod cases;
pub mod directory;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod landing;
pub mod links;
pub mod openapi;
pub mod ops;
pub mod page;
pub mod receiving;
pub mod server;
pub mod sharing;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;
use utoipa::OpenApi;

use crate::amqp::Topology;
use crate::config::Settings;
use idempotency::IdempotencyHeader;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    pub topology: Topology,
    /// Service tokens (their hashes) and what each may act for.
    pub service_token_hashes: Arc<Vec<(Vec<u8>, crate::principal::ServiceScope)>>,
    pub metrics: PrometheusHandle,
    pub probe: Arc<ops::BrokerProbe>,
    pub store: crate::content::store::ContentStore,
    pub rate_limit: Option<RateLimit>,
    /// Recently seen user tokens (`auth::TokenCache`).
    pub token_cache: Arc<auth::TokenCache>,
}

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
async fn rate_limited(State(s): State<AppState>, req: Request, next: Next) -> Response {
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

#[derive(OpenApi)]
#[openapi(
    info(title = "caseshare", description = include_str!("api.md")),
    paths(
        bootstrap::create_org, bootstrap::create_user, bootstrap::create_group, bootstrap::create_partnership,
        cases::create_case, cases::list_cases, cases::get_case, cases::patch_case, cases::create_folder,
        cases::list_folders, cases::patch_folder, cases::add_evidence, cases::add_evidence_batch, cases::list_evidence, cases::case_audit,
        admin::get_setup, admin::complete_setup, admin::get_settings, admin::put_settings, admin::create_policy,
        admin::get_policy, admin::put_policy, admin::list_partners, admin::assign_partner_policy,
        admin::remove_partner_policy, admin::get_partner_policy,
        sharing::create_share, sharing::get_share, sharing::list_shares, sharing::access_list, sharing::revoke_share,
        sharing::share_notices, sharing::revoke_many, sharing::dissemination, sharing::get_receipt, sharing::org_keys, sharing::stop_sharing,
        receiving::list_received, receiving::import, receiving::import_details, receiving::apply_updates,
        receiving::add_recipient, receiving::remove_recipient, directory::search,
        links::put_content, links::get_content, links::create_link_share, links::get_link_share, links::download,
        links::list_link_shares, links::revoke_link_share,
        ops::healthz, ops::readyz, ops::metrics, ops::get_job,
    ),
    // Schemas only a path parameter refers to (utoipa collects those of
    // bodies by itself).
    components(schemas(crate::revocation::RecipientKind)),
    modifiers(&BearerAuth, &ErrorStatuses, &IdempotencyHeader),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// A response of the OpenAPI document in the error schema (`ErrorBody`).
fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Statuses any API operation can answer, listed on every operation with the
/// error schema: 401 (a missing or unknown token, where a token is needed),
/// 429 (the token's rate), 500 and 503 (a dependency down, or the request's
/// deadline); with a request body also 413 and 422.
struct ErrorStatuses;

impl utoipa::Modify for ErrorStatuses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let anonymous = op.security.as_ref().is_some_and(|s| {
                    s.iter()
                        .all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
                });
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(description).into());
                };
                if !anonymous {
                    add("401", "missing or unknown bearer token");
                }
                add("429", "too many requests for this token (Retry-After)");
                add("500", "internal error");
                add(
                    "503",
                    "a dependency is unavailable, or the request took too long",
                );
                if op.request_body.is_some() {
                    add("413", "the body is larger than the limit");
                    add("422", "the body is invalid (the message names the field)");
                }
            }
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/v1/jobs/{job_id}", get(ops::get_job))
        .route("/v1/orgs", post(bootstrap::create_org))
        .route("/v1/orgs/{org_id}/users", post(bootstrap::create_user))
        .route("/v1/orgs/{org_id}/groups", post(bootstrap::create_group))
        .route("/v1/partnerships", post(bootstrap::create_partnership))
        .route("/v1/cases", post(cases::create_case).get(cases::list_cases))
        .route(
            "/v1/cases/{case_id}",
            get(cases::get_case).patch(cases::patch_case),
        )
        .route(
            "/v1/cases/{case_id}/folders",
            post(cases::create_folder).get(cases::list_folders),
        )
        .route("/v1/folders/{folder_id}", patch(cases::patch_folder))
        .route(
            "/v1/cases/{case_id}/evidence",
            post(cases::add_evidence).get(cases::list_evidence),
        )
        .route(
            "/v1/cases/{case_id}/evidence:batch",
            post(cases::add_evidence_batch),
        )
        .route("/v1/cases/{case_id}/audit", get(cases::case_audit))
        .route(
            "/v1/sharing/setup",
            get(admin::get_setup).post(admin::complete_setup),
        )
        .route(
            "/v1/sharing/settings",
            get(admin::get_settings).put(admin::put_settings),
        )
        .route("/v1/policies", post(admin::create_policy))
        .route(
            "/v1/policies/{policy_id}",
            get(admin::get_policy).put(admin::put_policy),
        )
        .route("/v1/partners", get(admin::list_partners))
        .route("/v1/directory", get(directory::search))
        .route(
            "/v1/partners/{org_id}/policy",
            put(admin::assign_partner_policy)
                .delete(admin::remove_partner_policy)
                .get(admin::get_partner_policy),
        )
        .route(
            "/v1/cases/{case_id}/shares",
            post(sharing::create_share).get(sharing::list_shares),
        )
        .route("/v1/shares/revoke", post(sharing::revoke_many))
        .route("/v1/shares/{share_id}", get(sharing::get_share))
        .route("/v1/shares/{share_id}/revoke", post(sharing::revoke_share))
        .route("/v1/shares/{share_id}/notices", get(sharing::share_notices))
        .route("/v1/shares/{share_id}/receipt", get(sharing::get_receipt))
        .route("/v1/orgs/{org_id}/keys", get(sharing::org_keys))
        .route("/v1/cases/{case_id}/access", get(sharing::access_list))
        .route(
            "/v1/cases/{case_id}/access/revoke",
            post(sharing::stop_sharing),
        )
        .route(
            "/v1/cases/{case_id}/dissemination",
            get(sharing::dissemination),
        )
        .route("/v1/received", get(receiving::list_received))
        .route("/v1/received/{received_id}/import", post(receiving::import))
        .route(
            "/v1/cases/{case_id}/import-details",
            get(receiving::import_details),
        )
        .route(
            "/v1/cases/{case_id}/updates/apply",
            post(receiving::apply_updates),
        )
        .route(
            "/v1/cases/{case_id}/recipients",
            post(receiving::add_recipient),
        )
        .route(
            "/v1/cases/{case_id}/recipients/{kind}/{id}",
            delete(receiving::remove_recipient),
        )
        .route(
            "/v1/evidence/{evidence_id}/content",
            put(links::put_content).get(links::get_content),
        )
        .route(
            "/v1/cases/{case_id}/link-shares",
            post(links::create_link_share).get(links::list_link_shares),
        )
        .route("/v1/link-shares/{id}", get(links::get_link_share))
        .route(
            "/v1/link-shares/{id}/revoke",
            post(links::revoke_link_share),
        )
        .route("/v1/downloads/{token}", get(links::download))
        .route("/links/{token}", get(landing::page))
        .route("/links/assets/style.css", get(landing::style))
        .fallback(|| async { crate::error::Error::NotFound("route") })
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), rate_limited))
        .layer(middleware::from_fn(request_context))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// A handler that panicked answers 500 in the contract's shape (and the
/// process goes on); the panic is logged.
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
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
async fn request_context(req: Request, next: Next) -> Response {
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
async fn deadline(State(s): State<AppState>, req: Request, next: Next) -> Response {
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

/// What a process without the API (`worker`) serves on
/// `CASESHARE_METRICS_ADDR`: liveness, readiness and metrics, nothing else.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { crate::error::Error::NotFound("route") })
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// HTTP request counts and latency by route and status.
async fn track(State(_): State<AppState>, req: Request, next: Next) -> Response {
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
