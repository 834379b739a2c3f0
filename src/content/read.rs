//! Reading an evidence file (R52): `GET /v1/evidence/{id}/content` for every
//! principal who may see the item. In the owner org per R41 (its own cases
//! and its imported copies, whose files R53 copied); at a receiver, from the
//! external case only while a live share covers the item and the
//! collaboration's snapshot allows copy/download (R7, R43). Every read is
//! audited with its actor, the item and the byte range, on the owner's case
//! for a read of an external case (R50).

use sqlx::PgConnection;
use uuid::Uuid;

use super::store_uri;
use crate::access::{self, Seen};
use crate::audit::{self, Action};
use crate::cases::EvidenceData;
use crate::error::{Error, Result};
use crate::principal::UserPrincipal;

/// A file the user may read, and where its reads are audited.
#[derive(Debug)]
pub struct Readable {
    pub evidence_id: Uuid,
    /// The SHA-256 recorded at upload (the `ETag`).
    pub sha256: String,
    pub size: u64,
    pub content_type: Option<String>,
    /// The item's title, for the file name.
    pub title: String,
    /// The case the read is audited on: the owner's for an external read.
    audit_case_id: Uuid,
    /// The collaboration's share, for an external read.
    share_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct Row {
    case_id: Uuid,
    folder_id: Option<Uuid>,
    data: sqlx::types::Json<EvidenceData>,
    content_state: Option<String>,
}

/// The file of `evidence_id` if `user` may read it: 404 for an item it does
/// not see (or one without a stored file), 403 `policy_forbids` for an
/// external case without copy/download, 409 while an imported copy's file
/// is being copied or when it did not match what the sender recorded.
pub async fn readable(
    db: &mut PgConnection,
    user: &UserPrincipal,
    evidence_id: Uuid,
) -> Result<Readable> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT case_id, folder_id, data, content_state::text AS content_state FROM evidence WHERE id = $1",
    )
    .bind(evidence_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some(row) = row else {
        return Err(Error::NotFound("evidence"));
    };
    let not_found = |e: Error| match e {
        Error::NotFound(_) => Error::NotFound("evidence"),
        e => e,
    };
    let (audit_case_id, share_id) = match access::case(db, user, row.case_id)
        .await
        .map_err(not_found)?
    {
        // R55: a user given folders or a subset reads the files of those.
        Seen::Own {
            scope: Some(shares),
            ..
        } => {
            let scope = access::item_scope(db, &shares).await?;
            if !scope.evidence_ids.contains(&evidence_id)
                && !row.folder_id.is_some_and(|f| scope.folder_ids.contains(&f))
            {
                return Err(Error::NotFound("evidence"));
            }
            (row.case_id, None)
        }
        Seen::Own { .. } => (row.case_id, None),
        Seen::External { received, .. } => {
            if !crate::collaboration::granted(db, received.id, evidence_id).await? {
                return Err(Error::NotFound("evidence"));
            }
            if !received.policy.policy.permissions.copy_download {
                return Err(Error::PolicyForbids(
                    "the sharing policy does not allow copy/download, so the file cannot be read"
                        .into(),
                ));
            }
            (received.case_id, Some(received.share_id))
        }
    };
    match row.content_state.as_deref() {
        Some("pending") => {
            return Err(Error::Conflict(
                "the file is still being copied into this case; retry shortly".into(),
            ))
        }
        Some("content_mismatch") => {
            return Err(Error::Conflict(
                "content_mismatch: at import the sender's stored bytes did not hash to the SHA-256 it recorded, so no file was kept".into(),
            ))
        }
        _ => {}
    }
    let data = row.data.0;
    let content = data.content.unwrap_or_default();
    let stored = content.uri.as_deref() == Some(store_uri(evidence_id).as_str());
    match (stored, content.sha256, content.size_bytes) {
        (true, Some(sha256), Some(size)) => Ok(Readable {
            evidence_id,
            sha256,
            size: size.max(0) as u64,
            content_type: content.content_type,
            title: data.title,
            audit_case_id,
            share_id,
        }),
        _ => Err(Error::NotFound("content")),
    }
}

/// Audit a read (R50, R52): who, which item, which bytes.
pub async fn record_read(
    db: &mut PgConnection,
    user: &UserPrincipal,
    file: &Readable,
    bytes: u64,
    range: Option<(u64, u64)>,
) -> Result<()> {
    audit::record(
        db,
        Action::ContentRead,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(file.audit_case_id),
            evidence_id: Some(file.evidence_id),
            share_id: file.share_id,
            details: Some(serde_json::json!({
                "bytes": bytes,
                "range": range.map(|(a, b)| format!("{a}-{b}")),
            })),
        },
    )
    .await?;
    Ok(())
}

/// A file name safe in a `Content-Disposition` header and on every file
/// system: the title's letters, digits and `-_.() `, then the item's id.
pub fn file_name(file: &Readable) -> String {
    let title: String = file
        .title
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.() ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let title = title.trim_matches(|c: char| c == '.' || c == ' ');
    if title.is_empty() {
        file.evidence_id.to_string()
    } else {
        format!("{title}-{}", file.evidence_id)
    }
}
