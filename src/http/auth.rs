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
    bearer_token(value)
        .ok_or_else(|| Error::Unauthorized("expected Authorization: Bearer <token>".into()))
}

/// The token of an `Authorization: Bearer <token>` value, as authentication
/// reads it (the rate limit keys on the same string).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
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
        if let Some(user) = state.token_cache.get(&hash) {
            return Ok(Principal::User(user));
        }
        let row: Option<(Uuid, Uuid, Role)> =
            sqlx::query_as("SELECT id, org_id, role FROM users WHERE token_hash = $1")
                .bind(&hash)
                .fetch_optional(&state.db)
                .await?;
        match row {
            Some((user_id, org_id, role)) => {
                let user = UserPrincipal {
                    user_id,
                    org_id,
                    role,
                };
                state.token_cache.put(hash, user.clone());
                Ok(Principal::User(user))
            }
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

/// Known user tokens (by hash) for a few seconds, so a busy integration's
/// requests skip the token lookup (one statement fewer per request). A
/// user's org and role change rarely and the entry lives `TTL`; unknown
/// tokens are never cached.
#[derive(Default)]
pub struct TokenCache {
    entries:
        std::sync::Mutex<std::collections::HashMap<Vec<u8>, (std::time::Instant, UserPrincipal)>>,
}

impl TokenCache {
    pub const TTL: std::time::Duration = std::time::Duration::from_secs(5);
    const MAX: usize = 10_000;

    fn get(&self, hash: &[u8]) -> Option<UserPrincipal> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(hash)
            .filter(|(at, _)| at.elapsed() < Self::TTL)
            .map(|(_, u)| u.clone())
    }

    fn put(&self, hash: Vec<u8>, user: UserPrincipal) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= Self::MAX {
            entries.retain(|_, (at, _)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::MAX {
                entries.clear();
            }
        }
        entries.insert(hash, (std::time::Instant::now(), user));
    }
}

#[cfg(test)]
mod tests {
    use super::{Role, TokenCache, UserPrincipal};
    use uuid::Uuid;

    #[test]
    fn cached_tokens_answer_until_they_expire() {
        let cache = TokenCache::default();
        let user = UserPrincipal {
            user_id: Uuid::new_v4(),
            org_id: Uuid::new_v4(),
            role: Role::User,
        };
        assert!(cache.get(b"h").is_none());
        cache.put(b"h".to_vec(), user.clone());
        assert_eq!(cache.get(b"h").map(|u| u.user_id), Some(user.user_id));
        cache
            .entries
            .lock()
            .unwrap()
            .get_mut(b"h".as_slice())
            .unwrap()
            .0 -= TokenCache::TTL;
        assert!(cache.get(b"h").is_none(), "expired");
    }
}
