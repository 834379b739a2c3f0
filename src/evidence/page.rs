//! A page of a case's own evidence (R41, R55): keyset-paged, and limited to
//! what the user's scoped internal shares give when they are all it has.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{EvidenceData, EvidenceView};
use crate::error::Result;

#[derive(sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: Uuid,
    pub folder_id: Option<Uuid>,
    pub data: sqlx::types::Json<EvidenceData>,
}

/// One page of the org's own evidence, in (created_at, id) order, after the
/// item `after` (keyset: the cost is the page, not the case's size). One
/// row more than `limit` is read, so the caller knows whether another page
/// follows. `None` when `after` is not evidence of this case.
pub async fn page_owned(
    db: &mut PgConnection,
    case_id: Uuid,
    scope: Option<&crate::access::ItemScope>,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Option<Vec<EvidenceView>>> {
    if let Some(after) = after {
        let known: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM evidence WHERE id = $1 AND case_id = $2)",
        )
        .bind(after)
        .bind(case_id)
        .fetch_one(&mut *db)
        .await?;
        if !known {
            return Ok(None);
        }
    }
    // R55: a user given folders or a subset by internal shares sees those
    // (two arrays: the generic plan stays the unscoped one's).
    let (folders, items) = match scope {
        Some(scope) => (Some(&scope.folder_ids), Some(&scope.evidence_ids)),
        None => (None, None),
    };
    let rows: Vec<EvidenceRow> = sqlx::query_as(
        "SELECT id, folder_id, data FROM evidence
         WHERE case_id = $1
           AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM evidence WHERE id = $2))
           AND ($4::uuid[] IS NULL OR folder_id = ANY($4) OR id = ANY($5))
         ORDER BY created_at, id LIMIT $3",
    )
    .bind(case_id)
    .bind(after)
    .bind(limit as i64 + 1)
    .bind(folders)
    .bind(items)
        .fetch_all(db)
        .await?;
    Ok(Some(
        rows.into_iter()
            .map(|r| EvidenceView {
                id: r.id,
                folder_id: r.folder_id,
                data: r.data.0,
            })
            .collect(),
    ))
}
