//! Turning the domain's [`Error`] into the contract's answer: a status code
//! and `{"error": code, "message": text}` (API.md, Conventions). Server errors
//! are logged once, here, and the client gets no internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Error;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `validation`, `not_found`.
    pub error: &'static str,
    pub message: String,
    /// The request's id (also the `x-request-id` header and in the logs),
    /// to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

tokio::task_local! {
    /// The id of the request being answered (set by `http::request_id`).
    pub static REQUEST_ID: String;
}

/// The current request's id, when inside a request.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// The contract's error code of `e`.
pub fn code(e: &Error) -> &'static str {
    match e {
        Error::Unauthorized(_) => "unauthorized",
        Error::Forbidden(_) => "forbidden",
        Error::NotFound(_) => "not_found",
        Error::Validation(_) => "validation",
        Error::Conflict(_) => "conflict",
        Error::AdvancedSharingNotSetUp => "advanced_sharing_not_set_up",
        Error::ClassicSharingRequired => "classic_sharing_required",
        Error::NotAPartner => "not_a_partner",
        Error::PolicyForbids(_) => "policy_forbids",
        Error::ShareRevoked => "share_revoked",
        Error::Expired(_) => "expired",
        Error::PayloadTooLarge(_) => "payload_too_large",
        Error::Timeout(_) => "timeout",
        Error::RateLimited(_) => "rate_limited",
        Error::Unavailable(_) => "unavailable",
        Error::Database(_) | Error::Internal(_) => "internal",
    }
}

/// The status code `e` answers with.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::Forbidden(_) | Error::PolicyForbids(_) => StatusCode::FORBIDDEN,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::Validation(_) | Error::NotAPartner => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Conflict(_) | Error::AdvancedSharingNotSetUp | Error::ClassicSharingRequired => {
            StatusCode::CONFLICT
        }
        Error::ShareRevoked | Error::Expired(_) => StatusCode::GONE,
        Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        Error::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status(&self);
        let retry_after = match &self {
            Error::RateLimited(secs) => Some(*secs),
            _ => None,
        };
        let message = if status.is_server_error() {
            // Logged once here; the client gets no internals.
            tracing::error!(error = %self, "request failed");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        let mut response = (
            status,
            axum::Json(ErrorBody {
                error: code(&self),
                message,
                request_id: request_id(),
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        response
    }
}

/// A response of the OpenAPI document in the error schema (`ErrorBody`).
pub fn error_response(description: &str) -> utoipa::openapi::Response {
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
