//! The one error type that domain code returns and the HTTP layer maps to the
//! contract's shape `{"error": code, "message": text}` (API.md, Conventions).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Also what another org's ids answer, so that ids do not leak.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Conflict(String),
    #[error("advanced sharing has not been set up by an admin of this organization")]
    AdvancedSharingNotSetUp,
    #[error("this partner only accepts classic (link) sharing")]
    ClassicSharingRequired,
    #[error("the target organization is not a partner of this organization")]
    NotAPartner,
    #[error("{0}")]
    PolicyForbids(String),
    #[error("the share has been revoked")]
    ShareRevoked,
    /// A link whose validity ended (R40): 410 `expired`.
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A dependency (e.g. the content store) cannot be reached: 503, try again.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, e.g. `validation`, `not_found`.
    pub error: &'static str,
    pub message: String,
}

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
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
            Error::Unavailable(_) => "unavailable",
            Error::Database(_) | Error::Internal(_) => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) | Error::PolicyForbids(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::Validation(_) | Error::NotAPartner => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Conflict(_) | Error::AdvancedSharingNotSetUp | Error::ClassicSharingRequired => {
                StatusCode::CONFLICT
            }
            Error::ShareRevoked | Error::Expired(_) => StatusCode::GONE,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        Error::Validation(msg.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            // Logged once here; the client gets no internals.
            tracing::error!(error = %self, "request failed");
            "internal error".to_string()
        } else {
            self.to_string()
        };
        (
            status,
            axum::Json(ErrorBody {
                error: self.code(),
                message,
            }),
        )
            .into_response()
    }
}
