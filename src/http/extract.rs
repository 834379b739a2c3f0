//! Extractors whose rejections speak the contract's error shape: a body that
//! does not parse is `validation` (422), a malformed id in a path is
//! `not_found` (no such resource).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::Error;

pub struct Json<T>(pub T);

/// A JSON request body. Every body of this API is an object; one that is
/// not (`[null, null]` would fill a struct's fields by position), or that
/// holds a string with a NUL character (PostgreSQL cannot store it), is
/// refused with 422 naming the field, before any handler runs.
impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !json {
            return Err(Error::validation(
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| Error::Validation(r.body_text()))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::validation(format!("the body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(Error::validation("the body must be a JSON object"));
        }
        if let Some(path) = nul_in(&value, "") {
            return Err(Error::validation(format!(
                "{path} must not contain NUL (\\u0000) characters"
            )));
        }
        serde_json::from_value(value)
            .map(Json)
            .map_err(|e| Error::validation(format!("invalid body: {e}")))
    }
}

/// The path (`items[3].title`) of the first string, or object key, holding
/// a NUL character.
fn nul_in(v: &serde_json::Value, at: &str) -> Option<String> {
    let field = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    match v {
        serde_json::Value::String(s) if s.contains('\0') => Some(if at.is_empty() {
            "the body".into()
        } else {
            at.to_string()
        }),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_in(item, &format!("{at}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, item)| {
            if k.contains('\0') {
                Some(format!(
                    "a key of {}",
                    if at.is_empty() { "the body" } else { at }
                ))
            } else {
                nul_in(item, &field(k))
            }
        }),
        _ => None,
    }
}

pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(_) => Err(Error::NotFound("resource")),
        }
    }
}

pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rejection) => Err(Error::Validation(rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nul_in;
    use serde_json::json;

    #[test]
    fn nul_characters_are_found_with_their_field() {
        assert_eq!(nul_in(&json!({ "name": "ok" }), ""), None);
        assert_eq!(
            nul_in(&json!({ "tags": ["a", "b\u{0}c"] }), "").as_deref(),
            Some("tags[1]")
        );
        assert_eq!(
            nul_in(&json!({ "policy": { "name": "x\u{0}" } }), "").as_deref(),
            Some("policy.name")
        );
    }
}
