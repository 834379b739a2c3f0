//! The page a link-share recipient lands on (#22): `GET /links/{token}`,
//! the address the emails give. Before a multi-gigabyte download starts it
//! says who sent what (the sharing agency, the case title), what the
//! package holds (files, sizes, total), until when, and the manifest's
//! SHA-256 to verify it by, with a download button (`/v1/downloads/{token}`,
//! which stays the address for programs). An expired, withdrawn or unknown
//! link gets a page saying so (410, 410, 404), not a JSON error.
//!
//! Server-rendered (minijinja, HTML auto-escaped), no scripts; a strict
//! Content-Security-Policy (the stylesheet from this origin, nothing else),
//! `noindex`, no referrer (the token is in the address), not cached.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::LazyLock;

use super::AppState;
use crate::linkshare::{self, Landing};

/// The most files listed on the page; the rest are in the manifest.
const LISTED: usize = 500;

static TEMPLATES: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = crate::templating::environment();
    env.add_template(
        "link_landing.html",
        include_str!("../../templates/link_landing.html"),
    )
    .expect("the landing template parses");
    env
});

const STYLE: &str = include_str!("../../templates/link_landing.css");

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'none'; form-action 'none'; \
                   frame-ancestors 'none'; base-uri 'none'";

#[derive(Serialize, Default)]
struct Page {
    state: &'static str,
    heading: String,
    sharing_org: String,
    case_title: String,
    expires: String,
    expires_iso: String,
    package_label: &'static str,
    download_path: String,
    total: String,
    file_count: usize,
    files: Vec<File>,
    more: usize,
    manifest_sha256: String,
}

#[derive(Serialize)]
struct File {
    path: String,
    size: String,
}

/// Bytes for people: 1.2 MB, 3.4 GB (decimal units, as file managers).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} {}", if bytes == 1 { "byte" } else { "bytes" });
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn when(at: chrono::DateTime<chrono::Utc>) -> (String, String) {
    (
        at.format("%-d %B %Y, %H:%M UTC").to_string(),
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

pub async fn page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let landing = match linkshare::for_page(&s.db, &token).await {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let (status, page) = match landing {
        Landing::Live {
            sharing_org,
            case_title,
            package,
            expires_at,
            manifest_sha256,
            size_bytes,
            files,
        } => {
            let (expires, expires_iso) = when(expires_at);
            let file_count = files.len();
            (
                StatusCode::OK,
                Page {
                    state: "live",
                    heading: format!("{case_title}: a case package from {sharing_org}"),
                    sharing_org,
                    case_title,
                    expires,
                    expires_iso,
                    package_label: match package {
                        linkshare::Package::Zip => "ZIP archive",
                        linkshare::Package::Iso => "ISO disc image",
                    },
                    download_path: format!("/v1/downloads/{token}"),
                    total: human_size(size_bytes.max(0) as u64),
                    file_count,
                    more: file_count.saturating_sub(LISTED),
                    files: files
                        .into_iter()
                        .take(LISTED)
                        .map(|(path, size)| File {
                            path,
                            size: human_size(size),
                        })
                        .collect(),
                    manifest_sha256,
                },
            )
        }
        Landing::Expired {
            sharing_org,
            case_title,
            at,
        } => {
            let (expires, expires_iso) = when(at);
            (
                StatusCode::GONE,
                Page {
                    state: "expired",
                    heading: "This link has expired".into(),
                    sharing_org,
                    case_title,
                    expires,
                    expires_iso,
                    ..Default::default()
                },
            )
        }
        Landing::Revoked {
            sharing_org,
            case_title,
        } => (
            StatusCode::GONE,
            Page {
                state: "revoked",
                heading: "This link was withdrawn".into(),
                sharing_org,
                case_title,
                ..Default::default()
            },
        ),
        Landing::Unknown => (
            StatusCode::NOT_FOUND,
            Page {
                state: "unknown",
                heading: "No package at this link".into(),
                ..Default::default()
            },
        ),
    };
    let html = match TEMPLATES
        .get_template("link_landing.html")
        .and_then(|t| t.render(&page))
    {
        Ok(html) => html,
        Err(e) => return crate::error::Error::Internal(e.into()).into_response(),
    };
    let mut headers = secure_headers();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    (status, headers, html).into_response()
}

/// The page's stylesheet (the only thing its policy lets it load).
pub async fn style() -> Response {
    let mut headers = secure_headers();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    (StatusCode::OK, headers, STYLE).into_response()
}

fn secure_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(1), "1 byte");
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1_500), "1.5 kB");
        assert_eq!(human_size(1_048_576), "1.0 MB");
        assert_eq!(human_size(3_400_000_000), "3.4 GB");
    }
}
