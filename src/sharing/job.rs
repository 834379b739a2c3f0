//! The worker half of a share (R15, R17): the `ShareCase` job locks the
//! share, materializes a partner share's grants (see `grants`), marks it
//! `complete` with its audit entry and status event, enqueues the recipients'
//! notices (R32) and, for a partner with auto-import, imports at once (R19) —
//! all in one transaction, so a rerun finds the share complete and does
//! nothing. A job given up on marks the share `failed` with the reason (R15);
//! an operator's requeue turns it back to `processing`.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::grants::materialize;
use super::{status_event_tx, ShareRow, ShareStatus, SHARE_COLUMNS};
use crate::audit::{self, Action};
use crate::context::JobContext;
use crate::error::Result;
use crate::jobs::{Job, JobError, Reopened};
use crate::notify::{self, NoticeKind};
use crate::receiving;

/// The worker half of a share (R15–R17, R21).
#[derive(Debug, Serialize, Deserialize)]
pub struct ShareCase {
    pub share_id: Uuid,
}

impl Job for ShareCase {
    const NAME: &'static str = "share-case";
    type Context = JobContext;

    async fn run(&self, job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        crate::audit::act_as_job(&mut tx, job_id).await?;
        let share: Option<ShareRow> = sqlx::query_as(&format!(
            "SELECT {SHARE_COLUMNS} FROM shares WHERE id = $1 FOR UPDATE"
        ))
        .bind(self.share_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut share) = share else {
            return Err(JobError::permanent(format!(
                "share {} does not exist",
                self.share_id
            )));
        };
        crate::jobs::record_subject("case_id", share.case_id);
        if share.status != ShareStatus::Processing {
            return Ok(()); // done before, or revoked meanwhile: nothing to do
        }
        let notice_kind = match share.target_org_id {
            None => NoticeKind::InternalShare,
            Some(partner) => {
                let received_id = materialize(&mut tx, &share, partner)
                    .await
                    .map_err(JobError::from)?;
                share.received_id = Some(received_id);
                NoticeKind::Share
            }
        };
        sqlx::query(
            "UPDATE shares SET status = $3, completed_at = now(), received_id = $2 WHERE id = $1",
        )
        .bind(share.id)
        .bind(share.received_id)
        .bind(ShareStatus::Complete)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            Action::ShareComplete,
            audit::Entry {
                org_id: Some(share.org_id),
                case_id: Some(share.case_id),
                share_id: Some(share.id),
                ..Default::default()
            },
        )
        .await?;
        // R54: the sharing org signs what this share grants, before an
        // auto-import (below) can acknowledge it.
        let seal = crate::custody::seal_key(&ctx.settings.audit_key());
        crate::custody::sign_manifest_tx(&mut tx, &seal, share.id)
            .await
            .map_err(JobError::from)?;
        status_event_tx(&mut tx, &share, ShareStatus::Complete).await?;
        let recipients = super::share_recipients(&mut tx, &share).await?;
        notify::enqueue_tx(
            &mut tx,
            notice_kind,
            Some(share.id),
            share.received_id,
            &recipients,
        )
        .await?;
        // R19: auto-import once the grants exist, in the same transaction.
        if let Some(received_id) = share.received_id {
            receiving::auto_import_tx(&mut tx, received_id)
                .await
                .map_err(JobError::from)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn on_dead(&self, ctx: &JobContext, reason: &str) {
        if let Err(e) = fail(&ctx.db, self.share_id, reason).await {
            tracing::error!(error = %e, share_id = %self.share_id, "cannot mark share failed");
        }
    }

    /// A failed share goes back to `processing` (failure cleared), with a
    /// `share.processing` status event.
    async fn on_requeue(&self, tx: &mut PgConnection) -> sqlx::Result<Reopened> {
        let share: Option<ShareRow> = sqlx::query_as(&format!(
            "UPDATE shares SET status = $2, failure = NULL
             WHERE id = $1 AND status = $3 RETURNING {SHARE_COLUMNS}"
        ))
        .bind(self.share_id)
        .bind(ShareStatus::Processing)
        .bind(ShareStatus::Failed)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(share) = share else {
            return Ok(Reopened {
                subject: None,
                filed_under: filed_under(self.share_id),
            });
        };
        status_event_tx(tx, &share, ShareStatus::Processing).await?;
        Ok(Reopened {
            subject: Some(format!("share {}: failed -> processing", share.id)),
            filed_under: filed_under(share.id),
        })
    }
}

async fn fail(db: &PgPool, share_id: Uuid, reason: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    let share: Option<ShareRow> = sqlx::query_as(&format!(
        "UPDATE shares SET status = $3, failure = $2 WHERE id = $1 AND status = $4 RETURNING {SHARE_COLUMNS}"
    ))
    .bind(share_id)
    .bind(reason)
    .bind(ShareStatus::Failed)
    .bind(ShareStatus::Processing)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(share) = share {
        status_event_tx(&mut tx, &share, ShareStatus::Failed).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A requeued share job's audit entry is filed under its share.
fn filed_under(share_id: Uuid) -> crate::audit::Entry {
    crate::audit::Entry {
        share_id: Some(share_id),
        ..Default::default()
    }
}
