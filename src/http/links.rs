//! Classic link sharing endpoints (R40): content upload, link shares and
//! downloads. Thin wrappers over `linkshare`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::auth::User;
use super::error::ErrorBody;
use super::extract::{Json, Path, Query};
use super::page::PageQuery;
use super::AppState;
use crate::content::store::Object;
use crate::error::{Error, Result};
use crate::linkshare::{
    self, LinkShareAccepted, LinkShareList, LinkShareRequest, LinkShareView, StoredContent,
};

#[utoipa::path(put, path = "/v1/evidence/{evidence_id}/content", tag = "link sharing",
    request_body(content = String, content_type = "application/octet-stream", description = "the file's bytes, streamed"),
    responses((status = 200, body = StoredContent), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 408, body = ErrorBody, description = "the upload stopped sending for longer than the idle timeout"),
              (status = 413, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "the SHA-256 differs from the declared one")))]
pub async fn put_content(
    User(u): User,
    State(s): State<AppState>,
    Path(evidence_id): Path<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<axum::Json<StoredContent>> {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stored = linkshare::upload(
        &s.db,
        &s.settings,
        &s.store,
        &u,
        evidence_id,
        length,
        body.into_data_stream(),
    )
    .await?;
    Ok(axum::Json(stored))
}

#[utoipa::path(post, path = "/v1/cases/{case_id}/link-shares", tag = "link sharing", request_body = LinkShareRequest,
    responses((status = 202, body = LinkShareAccepted), (status = 403, body = ErrorBody, description = "`policy_forbids`: an external case (R45)"), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_link_share(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Json(body): Json<LinkShareRequest>,
) -> Result<(StatusCode, axum::Json<LinkShareAccepted>)> {
    let accepted = linkshare::create(&s.db, &s.settings, &u, case_id, body).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)))
}

#[utoipa::path(get, path = "/v1/link-shares/{id}", tag = "link sharing",
    responses((status = 200, body = LinkShareView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_link_share(
    User(u): User,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<LinkShareView>> {
    let row = linkshare::get_owned(&mut *s.db.acquire().await?, &u, id).await?;
    Ok(axum::Json(row.view(&s.settings)))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/link-shares", tag = "link sharing", params(PageQuery),
    responses((status = 200, body = LinkShareList), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list_link_shares(
    User(u): User,
    State(s): State<AppState>,
    Path(case_id): Path<Uuid>,
    Query(page): Query<PageQuery>,
) -> Result<axum::Json<LinkShareList>> {
    let rows = linkshare::list_for_case(&mut *s.db.acquire().await?, &u, case_id).await?;
    let views = rows.into_iter().map(|r| r.view(&s.settings)).collect();
    let (items, next_cursor) = super::page::page(views, &page, |l| l.id.to_string())?;
    Ok(axum::Json(LinkShareList { items, next_cursor }))
}

#[utoipa::path(post, path = "/v1/link-shares/{id}/revoke", tag = "link sharing",
    responses((status = 200, body = LinkShareView, description = "revoked (at once; again: unchanged)"), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody)))]
pub async fn revoke_link_share(
    User(u): User,
    State(s): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<LinkShareView>> {
    let row = linkshare::revoke(&s.db, &u, id).await?;
    Ok(axum::Json(row.view(&s.settings)))
}

/// One `Range: bytes=...` header against a file of `total` bytes: `None` to
/// ignore it (malformed or several ranges: the whole file is sent),
/// `Some(None)` when unsatisfiable, else the inclusive range.
fn parse_range(value: &str, total: u64) -> Option<Option<(u64, u64)>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || total == 0 {
            return Some(None);
        }
        return Some(Some((total.saturating_sub(n), total - 1)));
    }
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().ok()?
    };
    if end < start {
        return None;
    }
    if start >= total {
        return Some(None);
    }
    Some(Some((start, end.min(total - 1))))
}

#[utoipa::path(get, path = "/v1/downloads/{token}", tag = "link sharing", security(()),
    responses((status = 200, description = "the package", content(("application/zip"), ("application/x-iso9660-image"))),
              (status = 206, description = "the requested byte range of the package", content(("application/zip"), ("application/x-iso9660-image"))),
              (status = 404, body = ErrorBody), (status = 410, body = ErrorBody, description = "the link expired"),
              (status = 416, description = "the range is outside the package")))]
pub async fn download(
    method: axum::http::Method,
    State(s): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let row = linkshare::for_download(&s.db, &token).await?;
    let key = row.package_key();
    let package = Object::Package(&key);
    let total = match s.store.size(package).await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound("download"))
        }
        Err(e) => {
            return Err(Error::Unavailable(format!(
                "the content store cannot serve the package now: {e}"
            )))
        }
    };
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, total));
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(row.package.content_type()),
    );
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"linkshare-{}.{}\"",
        row.id,
        row.package.extension()
    )) {
        response_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    let (status, start, len) = match range {
        None => (StatusCode::OK, 0, total),
        Some(None) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{total}")).expect("ascii"),
            );
            response_headers.remove(header::CONTENT_TYPE);
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, response_headers).into_response());
        }
        Some(Some((a, b))) => {
            response_headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes {a}-{b}/{total}")).expect("ascii"),
            );
            (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
        }
    };
    // A HEAD request learns the size; it downloads nothing and is not audited.
    if method == axum::http::Method::HEAD {
        response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        return Ok((status, response_headers).into_response());
    }
    let stream = s.store.read_range(package, start, len).await.map_err(|e| {
        Error::Unavailable(format!(
            "the content store cannot serve the package now: {e}"
        ))
    })?;
    response_headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    let range_audit = (status == StatusCode::PARTIAL_CONTENT).then(|| (start, start + len - 1));
    linkshare::record_download(&s.db, &row, len, range_audit).await?;
    Ok((status, response_headers, Body::from_stream(stream)).into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=90-200", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Some((90, 99))));
        assert_eq!(parse_range("bytes=-200", 100), Some(Some((0, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(None));
        assert_eq!(parse_range("bytes=-0", 100), Some(None));
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }
}
