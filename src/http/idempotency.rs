//! The `Idempotency-Key` header of POST requests (API.md, Conventions): the
//! same key with the same request answers the first answer again (with
//! `Idempotent-Replayed: true`), with another request 422, and 409 while the
//! first answer is not recorded. How the key is kept with the effect is
//! `crate::idempotency`.
//!
//! The handler of a keyed request runs in a task of its own: a client that
//! hangs up (the case the header is for) does not cancel it between its
//! commit and the recording of its answer.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use super::AppState;
use crate::error::Error;
use crate::idempotency::{self, Answer, Claim, ClaimState};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED: &str = "idempotent-replayed";

/// The largest request body a keyed request may carry (axum's default body
/// limit, which every JSON extractor of this API applies too).
const MAX_BODY: usize = 2 * 1024 * 1024;
/// The largest answer recorded (every answer of a POST is a small JSON object).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// A valid key: 1 to 255 visible ASCII characters (a UUID is the usual choice).
fn valid(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

pub async fn idempotent(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k) if valid(k) => k.to_string(),
        _ => {
            return Error::validation("Idempotency-Key must be 1 to 255 visible ASCII characters")
                .into_response()
        }
    };
    // Keys belong to a token; without one the handler answers 401 anyway.
    let Some(token) = req.headers().get(header::AUTHORIZATION).cloned() else {
        return next.run(req).await;
    };
    let scope: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Error::PayloadTooLarge(format!("the body is larger than {MAX_BODY} bytes"))
            .into_response();
    };
    let request_hash: [u8; 32] = {
        let mut h = Sha256::new();
        h.update(parts.method.as_str());
        h.update([0]);
        h.update(parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or(""));
        h.update([0]);
        h.update(&bytes);
        h.finalize().into()
    };
    match idempotency::find(&s.db, &scope, &key).await {
        Err(e) => return e.into_response(),
        Ok(Some(found)) if found.request_hash != request_hash => {
            return Error::validation(
                "this Idempotency-Key was used for another request (method, path or body); use a new key",
            )
            .into_response()
        }
        Ok(Some(found)) => {
            return match found.answer {
                Some(mut answer) => {
                    match idempotency::sealing::open(
                        token.as_bytes(),
                        &key,
                        &request_hash,
                        &answer.body,
                    ) {
                        Some(body) => {
                            answer.body = body;
                            replay(answer)
                        }
                        None => Error::Conflict(
                            "the request with this Idempotency-Key was applied, but its answer cannot be replayed: read the resource instead of sending it again"
                                .into(),
                        )
                        .into_response(),
                    }
                }
                None => Error::Conflict(
                    "the request with this Idempotency-Key was applied, but its answer is not recorded yet (or was lost): read the resource instead of sending it again"
                        .into(),
                )
                .into_response(),
            }
        }
        Ok(None) => {}
    }

    let claim = Arc::new(Claim::new(scope, key.clone(), request_hash));
    let req = Request::from_parts(parts, Body::from(bytes));
    let request_id = super::error::REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_default();
    let span = tracing::Span::current();
    let db = s.db.clone();
    let work = async move {
        let response = idempotency::CLAIM
            .scope(
                claim.clone(),
                super::error::REQUEST_ID.scope(request_id, next.run(req)),
            )
            .await;
        let (parts, body) = response.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_ANSWER).await else {
            return Error::Internal(anyhow::anyhow!("the answer could not be read"))
                .into_response();
        };
        let status = parts.status;
        // A taken claim means the effect committed: its answer is kept
        // unless it is a server error (then a retry learns, with 409, that
        // the effect happened). Without a claim, only successes are kept.
        let keep = match claim.state() {
            ClaimState::Taken => !status.is_server_error(),
            ClaimState::Open => status.is_success(),
            ClaimState::Lost => false,
        };
        if keep {
            let answer = Answer {
                status: status.as_u16(),
                content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                // R60: sealed under the requester's token (N6).
                body: idempotency::sealing::seal(token.as_bytes(), &key, &request_hash, &bytes),
            };
            if let Err(e) = idempotency::record(&db, &claim, &answer).await {
                tracing::warn!(error = %e, "cannot record the answer of an idempotent request");
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    };
    match tokio::spawn(tracing::Instrument::instrument(work, span)).await {
        Ok(response) => response,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Error::Internal(anyhow::anyhow!("the request's task ended: {e}")).into_response(),
    }
}

fn replay(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Bytes::from(answer.body)).into_response();
    if let Some(ct) = answer
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    response
        .headers_mut()
        .insert(REPLAYED, HeaderValue::from_static("true"));
    response
}

/// Lists the `Idempotency-Key` header on every POST operation of the
/// OpenAPI document, with the 409 it can answer.
pub struct IdempotencyHeader;

impl utoipa::Modify for IdempotencyHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::Required;
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(op) = item.post.as_mut().filter(|_| path.starts_with("/v1/")) else {
                continue;
            };
            op.parameters.get_or_insert_with(Vec::new).push(
                ParameterBuilder::new()
                    .name("Idempotency-Key")
                    .parameter_in(ParameterIn::Header)
                    .required(Required::False)
                    .description(Some(
                        "1 to 255 visible ASCII characters, unique per command (e.g. a UUID). \
                         The same key with the same request (method, path, body) within 24 h \
                         answers the first answer again, with `Idempotent-Replayed: true`; \
                         with another request, 422; while the first answer is not recorded, 409.",
                    ))
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .min_length(Some(1))
                            .max_length(Some(255)),
                    ))
                    .build(),
            );
            op.responses.responses.entry("422".into()).or_insert_with(|| {
                super::error::error_response(
                    "the body is invalid, or the Idempotency-Key is malformed or was used for another request",
                )
                .into()
            });
            op.responses.responses.entry("409".into()).or_insert_with(|| {
                super::error::error_response(
                    "a conflict, or the request with this Idempotency-Key was applied but its answer is not recorded",
                )
                .into()
            });
        }
    }
}
