//! New evidence after a share (R22–R25, R31): the evidence-added job grants
//! the new item to every collaboration whose live share covers it (whole case,
//! or a shared folder or one of its subfolders; never an evidence-subset
//! share), then hands it to the receiving side (external view at once, auto
//! sync, or an available update).
//!
//! Race with revocation (R31): the live shares are read `FOR SHARE`, and a
//! revoke updates the share row, so the two serialize on that row. If the
//! revoke committed first, the share is no longer live here; if this job
//! locked first, the revoke waits for it and is acknowledged after it.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

use super::Scope;
use crate::jobs::{Job, JobContext, JobError, JobKind};
use crate::receiving;

#[derive(Debug, Serialize, Deserialize)]
pub struct EvidenceAdded {
    pub evidence_id: Uuid,
}

impl Job for EvidenceAdded {
    const KIND: JobKind = JobKind::EvidenceAdded;

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        let evidence: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
            "SELECT case_id, folder_id FROM evidence WHERE id = $1 AND source_evidence_id IS NULL",
        )
        .bind(self.evidence_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((case_id, folder_id)) = evidence else {
            return Err(JobError::Permanent(format!(
                "evidence {} does not exist",
                self.evidence_id
            )));
        };
        crate::jobs::record_case(case_id);
        // Shares still `processing` are locked too: if their job is running
        // right now we wait for it and then see it complete (its grant
        // statement may have run before this evidence committed). If it has
        // not started, its grant statement will find this evidence itself.
        let shares: Vec<(Uuid, Uuid, sqlx::types::Json<Scope>, bool)> = sqlx::query_as::<_, (Uuid, Option<Uuid>, sqlx::types::Json<Scope>, bool, String)>(
            "SELECT id, received_id, scope, $2 = ANY(redact_caption_evidence_ids), status::text FROM shares
             WHERE case_id = $1 AND status IN ('processing', 'complete') AND target_kind = 'partner'
             ORDER BY created_at FOR SHARE",
        )
        .bind(case_id)
        .bind(self.evidence_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .filter_map(|(id, received, scope, redact, status)| match (status.as_str(), received) {
            ("complete", Some(r)) => Some((id, r, scope, redact)),
            _ => None,
        })
        .collect();
        if shares.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        // The folder and its ancestors: a share of any of them covers it.
        let ancestors: Vec<Uuid> = match folder_id {
            None => vec![],
            Some(f) => {
                sqlx::query_scalar(
                    "WITH RECURSIVE up AS (SELECT id, parent_id FROM folders WHERE id = $1
                        UNION SELECT f.id, f.parent_id FROM folders f JOIN up ON f.id = up.parent_id)
                     SELECT id FROM up",
                )
                .bind(f)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        // One grant per collaboration (R17), from its first covering share.
        let mut covering: HashMap<Uuid, (Uuid, bool)> = HashMap::new();
        for (share_id, received_id, scope, redact) in shares {
            let covers = match &scope.0 {
                Scope::Case => true,
                Scope::Folders { folder_ids } => folder_ids.iter().any(|f| ancestors.contains(f)),
                Scope::Evidence { .. } => false, // R22
            };
            if covers {
                covering.entry(received_id).or_insert((share_id, redact));
            }
        }
        let received_ids: Vec<Uuid> = covering.keys().copied().collect();
        // Lock the collaborations in one order, shared: revokes and imports
        // wait for us, other evidence-added jobs do not.
        let rows = receiving::share_lock(&mut tx, &received_ids)
            .await
            .map_err(super::job_error)?;
        let share_ids: Vec<Uuid> = received_ids.iter().map(|r| covering[r].0).collect();
        let redacted: Vec<bool> = received_ids.iter().map(|r| covering[r].1).collect();
        let granted: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO grants (received_id, evidence_id, share_id, caption_redacted)
             SELECT r, $1, s, c FROM unnest($2::uuid[], $3::uuid[], $4::bool[]) AS t(r, s, c)
             ON CONFLICT (received_id, evidence_id) DO NOTHING
             RETURNING received_id",
        )
        .bind(self.evidence_id)
        .bind(&received_ids)
        .bind(&share_ids)
        .bind(&redacted)
        .fetch_all(&mut *tx)
        .await?;
        for r in rows.iter().filter(|r| granted.contains(&r.id)) {
            receiving::deliver_to(&mut tx, r, &[self.evidence_id])
                .await
                .map_err(super::job_error)?;
        }
        tx.commit().await?;
        Ok(())
    }
}
