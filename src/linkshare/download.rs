//! Downloading a link share's package by its token (R40): only while it is
//! complete and unexpired (expired → 410, revoked → 410), every download
//! audited with the bytes served (R39).

use sqlx::PgPool;

use super::{LinkShareRow, LinkShareStatus, COLUMNS};
use crate::audit::{self, Action};
use crate::error::{Error, Result};

/// The link share behind a download token, if it may be downloaded now:
/// unknown token or no package (yet) → 404, expired → 410 `expired`.
pub async fn for_download(db: &PgPool, token: &str) -> Result<LinkShareRow> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
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
