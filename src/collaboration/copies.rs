//! R53: a file that reaches an item after the item was copied into an
//! imported copy reaches the copy too. Content upload (`content`) asks for it
//! in its own transaction; the copy itself is the `CopyContent` job of
//! `receiving::files`, whose payload the collaboration owns so that the
//! upload need not reach up into the receiving side.

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::ShareStatus;
use crate::cases::ContentState;
use crate::error::Result;
use crate::jobs::Job;

/// Copy the pending files of an imported case (R53).
#[derive(Debug, Serialize, Deserialize)]
pub struct CopyContent {
    pub case_id: Uuid,
}

/// R53: content uploaded after an item was copied reaches the copies made
/// of it while their collaboration is live and a live share covers the item
/// (a revoked collaboration gets nothing new, R30). Copies that already hold
/// the file are left alone.
pub async fn pend_copies_tx(tx: &mut PgConnection, evidence_id: Uuid) -> Result<()> {
    let cases: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "WITH src AS (SELECT data->'content' AS content FROM evidence WHERE id = $1)
         UPDATE evidence c
            SET content_state = $2,
                data = jsonb_set(c.data, '{content}',
                                 coalesce(c.data->'content', '{}'::jsonb)
                                 || (jsonb_strip_nulls(jsonb_build_object(
                                        'sha256', src.content->'sha256',
                                        'size_bytes', src.content->'size_bytes',
                                        'content_type', src.content->'content_type')))
                                 - 'uri')
           FROM src, received r
          WHERE c.source_evidence_id = $1
            AND c.content_state IS DISTINCT FROM $3
            AND r.imported_case_id = c.case_id AND r.revoked_at IS NULL
            AND EXISTS (SELECT 1 FROM grants g
                         WHERE g.received_id = r.id AND g.evidence_id = $1
                           AND g.covering && ARRAY(SELECT s.id FROM shares s
                                                    WHERE s.received_id = r.id
                                                      AND s.status = ANY($4)))
         RETURNING r.receiver_org_id, c.case_id",
    )
    .bind(evidence_id)
    .bind(ContentState::Pending)
    .bind(ContentState::Match)
    .bind(ShareStatus::LIVE)
    .fetch_all(&mut *tx)
    .await?;
    for (org_id, case_id) in cases {
        CopyContent { case_id }
            .enqueue_about_tx(tx, org_id, case_id)
            .await?;
    }
    Ok(())
}
