//! The thin intake API (axum): parse, authorize, call the domain, map errors.
//! Every route is listed in the OpenAPI document generated from this code
//! (`ApiDoc`, here beside the route table that lists the same handlers;
//! `openapi` finishes and serves it). Here: the state every handler gets,
//! the document and the routers; the layers every request passes are
//! `middleware`.

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
mod middleware;
pub mod openapi;
pub mod ops;
pub mod page;
pub mod receiving;
pub mod server;
pub mod sharing;

use axum::middleware as layer;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::sync::Arc;
use utoipa::OpenApi;

use crate::amqp::Topology;
use crate::config::Settings;
use idempotency::IdempotencyHeader;
pub use middleware::RateLimit;
use middleware::{deadline, panicked, rate_limited, request_context, track};
use openapi::{BearerAuth, ErrorStatuses};

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

/// The API's document: every operation (the route table below lists the
/// same handlers), finished by `openapi`'s modifiers and served cleaned.
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
        .layer(layer::from_fn_with_state(state.clone(), track))
        .layer(layer::from_fn_with_state(state.clone(), deadline))
        .layer(layer::from_fn_with_state(
            state.clone(),
            idempotency::idempotent,
        ))
        .layer(layer::from_fn_with_state(state.clone(), rate_limited))
        .layer(layer::from_fn(request_context))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
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
