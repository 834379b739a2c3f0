//! Bearer-token authentication: service tokens from configuration, user
//! tokens looked up by their SHA-256 (the token itself is never stored).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use subtle_eq::constant_time_eq;
use uuid::Uuid;

use super::AppState;
use crate::error::Error;
use crate::orgs::hash_token;
pub use crate::principal::{Principal, Role, UserPrincipal};

mod subtle_eq {
    /// Compare without an early exit, so timing does not reveal a prefix.
    pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn bearer(parts: &Parts) -> Result<&str, Error> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("missing Authorization: Bearer token".into()))?;
    let value = header
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed Authorization header".into()))?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unauthorized("expected Authorization: Bearer <token>".into()))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let hash = hash_token(token);
        if let Some((_, scope)) = state
            .service_token_hashes
            .iter()
            .find(|(h, _)| constant_time_eq(h, &hash))
        {
            return Ok(Principal::Service(scope.clone()));
        }
        let row: Option<(Uuid, Uuid, Role)> =
            sqlx::query_as("SELECT id, org_id, role FROM users WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(&state.db)
                .await?;
        match row {
            Some((user_id, org_id, role)) => Ok(Principal::User(UserPrincipal {
                user_id,
                org_id,
                role,
            })),
            None => Err(Error::Unauthorized("unknown token".into())),
        }
    }
}

/// Any user of an organization.
pub struct User(pub UserPrincipal);

impl FromRequestParts<AppState> for User {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::User(u) => Ok(User(u)),
            Principal::Service(_) => Err(Error::Forbidden(
                "this endpoint is for users of an organization".into(),
            )),
        }
    }
}

/// A user with role `admin`.
pub struct Admin(pub UserPrincipal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let User(u) = User::from_request_parts(parts, state).await?;
        if u.role != Role::Admin {
            return Err(Error::Forbidden("this endpoint is for admins".into()));
        }
        Ok(Admin(u))
    }
}

/// The service principal (bootstrap and upstream systems), with its scope.
pub struct Service(pub crate::principal::ServiceScope);

impl Service {
    /// Provisioning orgs and partnerships is for unbound tokens.
    pub fn unbound(&self) -> Result<(), Error> {
        if self.0.unbound() {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "this service token is bound to some organizations; provisioning needs an unbound one".into(),
            ))
        }
    }

    /// Acting for `org` (its users and groups).
    pub fn for_org(&self, org: Uuid) -> Result<(), Error> {
        if self.0.may_act_for(org) {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "this service token does not act for this organization".into(),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Service {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match Principal::from_request_parts(parts, state).await? {
            Principal::Service(scope) => Ok(Service(scope)),
            Principal::User(_) => Err(Error::Forbidden(
                "this endpoint is for the service principal".into(),
            )),
        }
    }
}
