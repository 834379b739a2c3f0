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
    // The copies whose collaboration is live and covered by a live share,
    // with the org each belongs to (locked, so a revocation waits for us).
    let copies: Vec<(Uuid, Uuid, Uuid)> = sqlx::query_as(
        "SELECT c.id, c.case_id, r.receiver_org_id
           FROM evidence c JOIN received r ON r.imported_case_id = c.case_id
          WHERE c.source_evidence_id = $1 AND r.revoked_at IS NULL
            AND c.content_state IS DISTINCT FROM $2
            AND EXISTS (SELECT 1 FROM grants g
                         WHERE g.received_id = r.id AND g.evidence_id = $1
                           AND g.covering && ARRAY(SELECT s.id FROM shares s
                                                    WHERE s.received_id = r.id
                                                      AND s.status = ANY($3)))
          ORDER BY c.id
          FOR UPDATE OF c",
    )
    .bind(evidence_id)
    .bind(ContentState::Match)
    .bind(ShareStatus::LIVE)
    .fetch_all(&mut *tx)
    .await?;
    if copies.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = copies.iter().map(|(id, _, _)| *id).collect();
    let changed = crate::cases::write::pend_copies(tx, evidence_id, &ids).await?;
    let mut queued = std::collections::HashSet::new();
    for (_, case_id, org_id) in copies {
        if changed.contains(&case_id) && queued.insert(case_id) {
            CopyContent { case_id }
                .enqueue_about_tx(tx, org_id, case_id)
                .await?;
        }
    }
    Ok(())
}
