//! Revocation (R29–R31). The request itself makes the share `revoked` in its
//! transaction, so automatic sharing stops the moment the API answers; the
//! `RevokeShare` job then removes the grants, notifies the receiver and
//! publishes the status event. Imported copies stay, without further updates.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::cases;
use crate::error::{Error, Result};
use crate::http::auth::UserPrincipal;
use crate::jobs::{self, Job, JobContext, JobError, JobKind};
use crate::notify::{self, NoticeKind};
use crate::sharing::{self, ShareRow, ShareView, SHARE_COLUMNS};

/// Revoke one share; idempotent (a second call changes nothing).
pub async fn revoke(db: &PgPool, user: &UserPrincipal, share_id: Uuid) -> Result<ShareView> {
    let mut tx = db.begin().await?;
    let share = sharing::load_owned(&mut tx, user.org_id, share_id).await?;
    let case = cases::owned(&mut tx, user.org_id, share.case_id).await?;
    if !sharing::may_revoke(user, &case) {
        return Err(Error::Forbidden(
            "only an admin or the case owner may revoke a share".into(),
        ));
    }
    let share: ShareRow = sqlx::query_as(&format!(
        "SELECT {SHARE_COLUMNS} FROM shares WHERE id = $1 FOR UPDATE"
    ))
    .bind(share_id)
    .fetch_one(&mut *tx)
    .await?;
    if share.status == "revoked" {
        return Ok(share.view(None));
    }
    let share: ShareRow = sqlx::query_as(&format!(
        "UPDATE shares SET status = 'revoked', revoked_at = now() WHERE id = $1 RETURNING {SHARE_COLUMNS}"
    ))
    .bind(share_id)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(received_id) = share.received_id {
        // The collaboration ends when no live share of it remains.
        sqlx::query(
            "UPDATE received SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND NOT EXISTS
               (SELECT 1 FROM shares WHERE received_id = $1 AND status IN ('processing', 'complete'))",
        )
        .bind(received_id)
        .execute(&mut *tx)
        .await?;
    }
    audit::record(
        &mut tx,
        Action::Revoke,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(share.case_id),
            share_id: Some(share_id),
            ..Default::default()
        },
    )
    .await?;
    let job_id = RevokeShare { share_id }
        .enqueue_for_tx(&mut tx, Some(user.org_id))
        .await?;
    jobs::status_event_tx(
        &mut tx,
        "share.revoked",
        sharing::status_payload(&share, "revoked"),
    )
    .await?;
    tx.commit().await?;
    Ok(share.view(Some(job_id)))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RevokeShare {
    pub share_id: Uuid,
}

impl Job for RevokeShare {
    const KIND: JobKind = JobKind::RevokeShare;

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        let share: ShareRow = sqlx::query_as(&format!(
            "SELECT {SHARE_COLUMNS} FROM shares WHERE id = $1 FOR UPDATE"
        ))
        .bind(self.share_id)
        .fetch_one(&mut *tx)
        .await?;
        if share.status != "revoked" {
            return Err(JobError::Permanent("share is not revoked".into()));
        }
        if let Some(received_id) = share.received_id {
            sqlx::query("DELETE FROM grants WHERE share_id = $1")
                .bind(share.id)
                .execute(&mut *tx)
                .await?;
            // Other live shares of the same collaboration keep what they cover.
            let others: Vec<ShareRow> = sqlx::query_as(&format!(
                "SELECT {SHARE_COLUMNS} FROM shares WHERE received_id = $1 AND status = 'complete' ORDER BY created_at"
            ))
            .bind(received_id)
            .fetch_all(&mut *tx)
            .await?;
            for other in &others {
                sharing::grant(&mut tx, received_id, other)
                    .await
                    .map_err(sharing::job_error)?;
            }
            let recipients = notify::share_recipients(&mut tx, &share).await?;
            notify::enqueue_tx(
                &mut tx,
                NoticeKind::Revoke,
                Some(share.id),
                Some(received_id),
                &recipients,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
