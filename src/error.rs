//! The one error type that domain code returns. It knows nothing of HTTP:
//! `http/error.rs` maps it to the contract's status codes and its shape
//! `{"error": code, "message": text}` (API.md, Conventions).

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
    /// Too many requests for this token: 429 `rate_limited`, retry after
    /// this many seconds.
    #[error("too many requests: retry after {0} s")]
    RateLimited(u64),
    /// The client stopped sending (a stalled upload): 408 `timeout`.
    #[error("{0}")]
    Timeout(String),
    /// A dependency (e.g. the content store) cannot be reached: 503, try again.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn validation(msg: impl Into<String>) -> Self {
        Error::Validation(msg.into())
    }
}
