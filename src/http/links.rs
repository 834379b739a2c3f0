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
use crate::content::{self, store::Object};
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
        content::upload::UploadHeaders {
            content_length: length,
            content_type: headers
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap_or("\u{fffd}")),
        },
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
    let mut response_headers = HeaderMap::new();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(row.package.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"linkshare-{}.{}\"",
        row.id,
        row.package.extension()
    )) {
        response_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    let served = Served {
        object: Object::Package(&key),
        what: "download",
        method: &method,
        request: &headers,
        headers: response_headers,
    };
    served
        .answer(&s, async |bytes, range| {
            linkshare::record_download(&s.db, &row, bytes, range).await
        })
        .await
}

/// An object of the store answered whole or by one `Range` (206, or 416
/// outside it), with `Accept-Ranges`, `Content-Length` and the caller's
/// `headers` (type, disposition, tag). A `HEAD` answers the same headers,
/// reads nothing and is not audited.
struct Served<'a> {
    object: Object<'a>,
    /// What a missing object is called in the 404.
    what: &'static str,
    method: &'a axum::http::Method,
    request: &'a HeaderMap,
    headers: HeaderMap,
}

impl Served<'_> {
    /// `audit` is given the bytes and the range served before they stream.
    async fn answer(
        self,
        s: &AppState,
        audit: impl AsyncFnOnce(u64, Option<(u64, u64)>) -> Result<()>,
    ) -> Result<Response> {
        let unavailable = |e: std::io::Error| {
            Error::Unavailable(format!("the content store cannot serve it now: {e}"))
        };
        let total = match s.store.size(self.object).await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(self.what))
            }
            Err(e) => return Err(unavailable(e)),
        };
        let range = self
            .request
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_range(v, total));
        let mut headers = self.headers;
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let (status, start, len) = match range {
            None => (StatusCode::OK, 0, total),
            Some(None) => {
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{total}")).expect("ascii"),
                );
                headers.remove(header::CONTENT_TYPE);
                return Ok((StatusCode::RANGE_NOT_SATISFIABLE, headers).into_response());
            }
            Some(Some((a, b))) => {
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes {a}-{b}/{total}")).expect("ascii"),
                );
                (StatusCode::PARTIAL_CONTENT, a, b - a + 1)
            }
        };
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        if self.method == axum::http::Method::HEAD {
            return Ok((status, headers).into_response());
        }
        let stream = s
            .store
            .read_range(self.object, start, len)
            .await
            .map_err(unavailable)?;
        let range = (status == StatusCode::PARTIAL_CONTENT).then(|| (start, start + len - 1));
        audit(len, range).await?;
        Ok((status, headers, Body::from_stream(stream)).into_response())
    }
}

#[utoipa::path(get, path = "/v1/evidence/{evidence_id}/content", tag = "evidence",
    params(("Range" = Option<String>, Header, description = "one byte range, `bytes=a-b`, `bytes=a-` or `bytes=-n`")),
    responses((status = 200, description = "the file, streamed; `ETag` is its SHA-256 recorded at upload, `Content-Type` the one uploaded (`application/octet-stream` when none was)",
                content(("*/*"))),
              (status = 206, description = "the requested byte range", content(("*/*"))),
              (status = 403, body = ErrorBody, description = "`policy_forbids`: an external case whose policy does not allow copy/download"),
              (status = 404, body = ErrorBody, description = "no such item for this user, or no stored file"),
              (status = 409, body = ErrorBody, description = "an imported copy's file is still being copied, or did not match the sender's SHA-256 (`content_mismatch`)"),
              (status = 416, description = "the range is outside the file")))]
pub async fn get_content(
    method: axum::http::Method,
    User(u): User,
    State(s): State<AppState>,
    Path(evidence_id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Response> {
    let file = content::read::readable(&mut *s.db.acquire().await?, &u, evidence_id).await?;
    let mut response_headers = HeaderMap::new();
    let content_type = file
        .content_type
        .as_deref()
        .and_then(|t| HeaderValue::from_str(t).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response_headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", file.sha256.to_ascii_lowercase())) {
        response_headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        content::read::file_name(&file)
    )) {
        response_headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let served = Served {
        object: Object::Evidence(evidence_id),
        what: "content",
        method: &method,
        request: &headers,
        headers: response_headers,
    };
    served
        .answer(&s, async |bytes, range| {
            content::read::record_read(&mut *s.db.acquire().await?, &u, &file, bytes, range).await
        })
        .await
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
