//! Downloading a link share's package by its token (R40): only while it is
//! complete and unexpired (expired → 410, revoked → 410), every download
//! audited with the bytes served (R39).

use sqlx::PgPool;

use super::{LinkShareRow, LinkShareStatus, COLUMNS};
use crate::audit::{self, Action};
use crate::error::{Error, Result};

/// A token as the service makes them: 64 hex digits (anything else names
/// no link, without a query).
fn well_formed(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The link share behind a download token, if it may be downloaded now:
/// unknown token or no package (yet) → 404, expired → 410 `expired`.
pub async fn for_download(db: &PgPool, token: &str) -> Result<LinkShareRow> {
    if !well_formed(token) {
        return Err(Error::NotFound("download"));
    }
    let row: Option<LinkShareRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM link_shares WHERE token_hash = $1"
    ))
    .bind(&super::token_hash(token)[..])
    .fetch_optional(db)
    .await?;
    if row
        .as_ref()
        .is_some_and(|r| r.status == LinkShareStatus::Revoked)
    {
        return Err(Error::ShareRevoked);
    }
    let row = row
        .filter(|r| r.status == LinkShareStatus::Complete)
        .ok_or(Error::NotFound("download"))?;
    match row.expires_at {
        Some(at) if at > chrono::Utc::now() => Ok(row),
        Some(at) => Err(Error::Expired(format!("this link expired at {at}"))),
        None => Err(Error::NotFound("download")),
    }
}

/// Audit a download (R39): the link share and the bytes served.
pub async fn record_download(
    db: &PgPool,
    row: &LinkShareRow,
    bytes: u64,
    range: Option<(u64, u64)>,
) -> Result<()> {
    let mut conn = db.acquire().await?;
    audit::record(
        &mut conn,
        Action::LinkDownload,
        audit::Entry {
            org_id: Some(row.org_id),
            case_id: Some(row.case_id),
            details: Some(serde_json::json!({
                "link_share_id": row.id,
                "bytes": bytes,
                "range": range.map(|(a, b)| format!("{a}-{b}")),
            })),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// What a link's landing page shows (#22), by the link's state.
pub enum Landing {
    Live {
        sharing_org: String,
        case_title: String,
        package: super::Package,
        expires_at: chrono::DateTime<chrono::Utc>,
        manifest_sha256: String,
        size_bytes: i64,
        /// (path, size) of each file, as the manifest lists them.
        files: Vec<(String, u64)>,
    },
    Expired {
        sharing_org: String,
        case_title: String,
        at: chrono::DateTime<chrono::Utc>,
    },
    Revoked {
        sharing_org: String,
        case_title: String,
    },
    /// No link with this token (or one not built yet: none is emailed
    /// before its package is complete).
    Unknown,
}

/// The landing page's view of the link with `token`: one statement.
pub async fn for_page(db: &PgPool, token: &str) -> Result<Landing> {
    if !well_formed(token) {
        return Ok(Landing::Unknown);
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        status: LinkShareStatus,
        package: super::Package,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        manifest_sha256: Option<String>,
        size_bytes: Option<i64>,
        contents: Option<serde_json::Value>,
        case_title: String,
        sharing_org: String,
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT l.status, l.package, l.expires_at, l.manifest_sha256, l.size_bytes, l.contents,
                c.title AS case_title, o.name AS sharing_org
           FROM link_shares l JOIN cases c ON c.id = l.case_id JOIN orgs o ON o.id = l.org_id
          WHERE l.token_hash = $1",
    )
    .bind(&super::token_hash(token)[..])
    .fetch_optional(db)
    .await?;
    let Some(r) = row else {
        return Ok(Landing::Unknown);
    };
    Ok(match (r.status, r.expires_at) {
        (LinkShareStatus::Revoked, _) => Landing::Revoked {
            sharing_org: r.sharing_org,
            case_title: r.case_title,
        },
        (LinkShareStatus::Complete, Some(at)) if at <= chrono::Utc::now() => Landing::Expired {
            sharing_org: r.sharing_org,
            case_title: r.case_title,
            at,
        },
        (LinkShareStatus::Complete, Some(expires_at)) => Landing::Live {
            sharing_org: r.sharing_org,
            case_title: r.case_title,
            package: r.package,
            expires_at,
            manifest_sha256: r.manifest_sha256.unwrap_or_default(),
            size_bytes: r.size_bytes.unwrap_or_default(),
            files: r
                .contents
                .as_ref()
                .and_then(serde_json::Value::as_array)
                .map(|files| {
                    files
                        .iter()
                        .map(|f| {
                            (
                                f["path"].as_str().unwrap_or_default().to_string(),
                                f["size_bytes"].as_u64().unwrap_or_default(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        _ => Landing::Unknown,
    })
}
