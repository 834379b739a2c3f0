//! Storing an evidence item's content (`PUT /v1/evidence/{id}/content`):
//! the bytes behind the files of a link-share package (R40). Streamed into
//! the content store while hashed, refused (nothing kept) when too large or
//! when its SHA-256 or size differs from what the evidence declares, so the
//! SHA-256 a manifest lists is the one the evidence was recorded with; each
//! upload is audited (R39).

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::store::{ContentStore, Object, Upload};
use super::{io_error, store_uri};
use crate::audit::{self, Action};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::principal::UserPrincipal;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredContent {
    pub sha256: String,
    pub size_bytes: i64,
}

/// What an upload's request headers declare.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadHeaders<'a> {
    /// `Content-Length`, refused at once when over the limit.
    pub content_length: Option<u64>,
    /// `Content-Type`, kept and served with the file (R52).
    pub content_type: Option<&'a str>,
}

/// Store the content of `evidence_id` (evidence of a case owned by the
/// caller's org), streamed from `body`: hashed while written, refused (and
/// nothing kept) when larger than `max_upload_bytes` or when its SHA-256 or
/// size differs from what the evidence declares.
pub async fn upload<S, E>(
    db: &PgPool,
    settings: &Settings,
    store: &ContentStore,
    user: &UserPrincipal,
    evidence_id: Uuid,
    headers: UploadHeaders<'_>,
    body: S,
) -> Result<StoredContent>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let owned: Option<Uuid> = sqlx::query_scalar(
        "SELECT e.case_id FROM evidence e JOIN cases c ON c.id = e.case_id
         WHERE e.id = $1 AND c.org_id = $2",
    )
    .bind(evidence_id)
    .bind(user.org_id)
    .fetch_optional(db)
    .await?;
    let Some(case_id) = owned else {
        return Err(Error::NotFound("evidence"));
    };
    // R41: content is added by those who may add evidence to the case.
    crate::access::writable(&mut *db.acquire().await?, user, case_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("evidence"),
            e => e,
        })?;
    let UploadHeaders {
        content_length,
        content_type,
    } = headers;
    let content_type = content_type.map(checked_media_type).transpose()?;
    let max = settings.max_upload_bytes;
    if content_length.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let mut upload = store
        .upload(Object::Evidence(evidence_id))
        .await
        .map_err(|e| io_error("start writing to the content store", e))?;
    let idle = std::time::Duration::from_secs(settings.upload_idle_timeout_secs.max(1));
    match receive(&mut upload, max, idle, body).await {
        Ok((sha256, size)) => {
            let stored = Stored {
                sha256,
                size,
                content_type,
            };
            record_upload(db, user, case_id, evidence_id, upload, stored).await
        }
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}

/// A media type as uploaded (R52: served back as `Content-Type`): `type/subtype`
/// with optional parameters, visible ASCII, at most 255 characters; else 422.
fn checked_media_type(value: &str) -> Result<String> {
    let value = value.trim();
    let essence = value.split(';').next().unwrap_or_default().trim();
    let token = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let valid = value.len() <= 255
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && essence
            .split_once('/')
            .is_some_and(|(t, sub)| token(t) && token(sub));
    if !valid {
        return Err(Error::validation(format!(
            "Content-Type {value:?} is not a media type (type/subtype)"
        )));
    }
    Ok(value.to_string())
}

/// What an upload stored: its SHA-256, size and media type.
struct Stored {
    sha256: String,
    size: u64,
    content_type: Option<String>,
}

fn too_large(max: u64) -> Error {
    Error::PayloadTooLarge(format!(
        "the content is larger than the limit of {max} bytes"
    ))
}

/// Write the body into `upload`, hashing it; returns (SHA-256, size).
async fn receive<S, E>(
    upload: &mut Upload,
    max: u64,
    idle: std::time::Duration,
    mut body: S,
) -> Result<(String, u64)>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    loop {
        // A client that stops sending is not held forever (408).
        let Ok(next) = tokio::time::timeout(idle, body.next()).await else {
            return Err(Error::Timeout(format!(
                "the upload sent nothing for {} s; nothing was kept",
                idle.as_secs()
            )));
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| Error::validation(format!("reading the body: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large(max));
        }
        hasher.update(&chunk);
        upload
            .write(&chunk)
            .await
            .map_err(|e| io_error("write the upload", e))?;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Check the upload against what the evidence declares; commit it to the
/// store and record it on the evidence, or abort it.
async fn record_upload(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    evidence_id: Uuid,
    upload: Upload,
    stored: Stored,
) -> Result<StoredContent> {
    let Stored {
        sha256,
        size,
        content_type,
    } = stored;
    let size_bytes = size as i64;
    let checked = async {
        let mut tx = db.begin().await?;
        let declared: (Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT data->'content'->>'sha256', (data->'content'->>'size_bytes')::bigint
             FROM evidence WHERE id = $1 FOR UPDATE",
        )
        .bind(evidence_id)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(declared) = &declared.0 {
            if !declared.eq_ignore_ascii_case(&sha256) {
                return Err(Error::validation(format!(
                    "the content's SHA-256 {sha256} differs from the declared {declared}"
                )));
            }
        }
        if let Some(declared) = declared.1 {
            if declared != size_bytes {
                return Err(Error::validation(format!(
                    "the content has {size_bytes} bytes, the evidence declares {declared}"
                )));
            }
        }
        Ok(tx)
    }
    .await;
    let mut tx = match checked {
        Ok(tx) => tx,
        Err(e) => {
            upload.abort().await;
            return Err(e);
        }
    };
    // The row stays locked while the object becomes visible, so two uploads
    // of the same evidence are recorded in the order they were stored.
    upload
        .commit()
        .await
        .map_err(|e| io_error("store the upload", e))?;
    crate::cases::write::set_content(
        &mut tx,
        evidence_id,
        serde_json::json!({ "sha256": sha256, "size_bytes": size_bytes, "uri": store_uri(evidence_id),
                            "content_type": content_type }),
    )
    .await?;
    // R53: imported copies of this item made before its file arrived get it
    // now, while their collaboration is live and a live share covers it.
    crate::collaboration::pend_copies_tx(&mut tx, evidence_id).await?;
    audit::record(
        &mut tx,
        Action::ContentUploaded,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            evidence_id: Some(evidence_id),
            details: Some(serde_json::json!({ "size_bytes": size_bytes })),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StoredContent { sha256, size_bytes })
}
