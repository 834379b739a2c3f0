//! Revocation (R29–R31). The request itself makes the share `revoked` in its
//! transaction, so automatic sharing stops the moment the API answers; the
//! `RevokeShare` job then removes the grants, notifies the receiver and
//! publishes the status event. Imported copies stay, without further updates.

mod stop;

pub use stop::{
    remove_onward, stop_sharing, RecipientKind, StopAccepted, StopKind, StopSharing, StopSharingJob,
};

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access;
use crate::audit::{self, Action};
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::jobs::{Job, JobError};
use crate::notify::{self, NoticeKind};
use crate::principal::UserPrincipal;
use crate::sharing::{self, ShareRow, ShareStatus, ShareView, SHARE_COLUMNS};

/// Revoke one share; idempotent (a second call changes nothing).
pub async fn revoke(db: &PgPool, user: &UserPrincipal, share_id: Uuid) -> Result<ShareView> {
    let mut tx = crate::db::begin(db).await?;
    let share = sharing::load_owned(&mut tx, user, share_id).await?;
    access::managed(&mut tx, user, share.case_id, access::not_manager).await?;
    let (mut revoked, job_id) = revoke_tx(&mut tx, user, &[share_id]).await?;
    tx.commit().await?;
    Ok(revoked.pop().unwrap_or(share).view(job_id))
}

/// Which shares a bulk revoke names (API.md `POST /v1/shares/revoke`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum BulkRevoke {
    Shares { share_ids: Vec<Uuid> },
    Case { case_id: Uuid },
    Partner { org_id: Uuid },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRevoked {
    /// The one job that cleans up after every revoked share (null when none was live).
    pub job_id: Option<Uuid>,
    /// How many shares this request revoked (already revoked ones are not counted).
    pub count: usize,
}

/// Revoke many shares at once: the listed ones, all of a case, or all to a
/// partner org. Each is revoked idempotently; one job does the follow-up.
pub async fn revoke_many(
    db: &PgPool,
    user: &UserPrincipal,
    req: BulkRevoke,
) -> Result<BulkRevoked> {
    let mut tx = crate::db::begin(db).await?;
    let found: Vec<(Uuid, Uuid)> = match &req {
        BulkRevoke::Shares { share_ids } => {
            if share_ids.is_empty() {
                return Err(Error::validation("share_ids must not be empty"));
            }
            let rows: Vec<(Uuid, Uuid)> =
                sqlx::query_as("SELECT id, case_id FROM shares WHERE id = ANY($1) AND org_id = $2")
                    .bind(share_ids)
                    .bind(user.org_id)
                    .fetch_all(&mut *tx)
                    .await?;
            let distinct: std::collections::HashSet<_> = share_ids.iter().collect();
            if rows.len() != distinct.len() {
                return Err(Error::NotFound("share"));
            }
            rows
        }
        BulkRevoke::Case { case_id } => {
            access::own_case(&mut tx, user, *case_id).await?;
            sqlx::query_as("SELECT id, case_id FROM shares WHERE case_id = $1 AND status = ANY($2)")
                .bind(case_id)
                .bind(ShareStatus::LIVE)
                .fetch_all(&mut *tx)
                .await?
        }
        BulkRevoke::Partner { org_id } => {
            if user.role != crate::principal::Role::Admin {
                return Err(Error::Forbidden(
                    "only an admin may revoke every share to a partner".into(),
                ));
            }
            sqlx::query_as(
                "SELECT id, case_id FROM shares
             WHERE org_id = $1 AND target_org_id = $2 AND status = ANY($3)",
            )
            .bind(user.org_id)
            .bind(org_id)
            .bind(ShareStatus::LIVE)
            .fetch_all(&mut *tx)
            .await?
        }
    };
    let case_ids: Vec<Uuid> = found.iter().map(|(_, c)| *c).collect();
    authorize(&mut tx, user, &case_ids).await?;
    let share_ids: Vec<Uuid> = found.iter().map(|(s, _)| *s).collect();
    let (revoked, job_id) = revoke_tx(&mut tx, user, &share_ids).await?;
    tx.commit().await?;
    Ok(BulkRevoked {
        job_id,
        count: revoked.len(),
    })
}

/// R29, R41: the owner of every case, or an admin; a case the user does not
/// see answers 404 like an unknown share.
async fn authorize(tx: &mut PgConnection, user: &UserPrincipal, case_ids: &[Uuid]) -> Result<()> {
    access::managed_all(tx, user, case_ids, "share").await
}

/// Mark the live shares among `share_ids` revoked, end collaborations that
/// have no live share left, audit, and record the follow-up job and status
/// events, all in the caller's transaction. Returns the shares revoked now.
async fn revoke_tx(
    tx: &mut PgConnection,
    user: &UserPrincipal,
    share_ids: &[Uuid],
) -> Result<(Vec<ShareRow>, Option<Uuid>)> {
    let revoked = sharing::mark_revoked(tx, share_ids).await?;
    if revoked.is_empty() {
        return Ok((revoked, None));
    }
    let ids: Vec<Uuid> = revoked.iter().map(|s| s.id).collect();
    // R29: those the shares named see the external view no more.
    crate::access::revoke_shares_tx(tx, &ids).await?;
    let received: Vec<Uuid> = revoked.iter().filter_map(|s| s.received_id).collect();
    // A collaboration ends when no live share of it remains.
    crate::collaboration::end_without_live_share_tx(tx, &received).await?;
    // R51, R57: onward recipients of a collaboration that ended lose the
    // external view with it; a later share to the same partner does not
    // bring them back (an imported copy stays with them, R30).
    crate::access::end_onward_tx(tx, &received).await?;
    for share in &revoked {
        audit::record(
            tx,
            Action::Revoke,
            audit::Entry {
                org_id: Some(user.org_id),
                actor_user_id: Some(user.user_id),
                case_id: Some(share.case_id),
                share_id: Some(share.id),
                ..Default::default()
            },
        )
        .await?;
        sharing::status_event_tx(tx, share, ShareStatus::Revoked).await?;
    }
    let job_id = RevokeShare { share_ids: ids }
        .enqueue_for_tx(tx, Some(user.org_id))
        .await?;
    Ok((revoked, Some(job_id)))
}

/// The follow-up of one or more revocations; each share is handled
/// idempotently, so a rerun changes nothing.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevokeShare {
    pub share_ids: Vec<Uuid>,
}

impl Job for RevokeShare {
    const NAME: &'static str = "revoke-share";
    type Context = JobContext;

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        let shares: Vec<ShareRow> = sqlx::query_as(&format!(
            "SELECT {SHARE_COLUMNS} FROM shares WHERE id = ANY($1) ORDER BY id FOR UPDATE"
        ))
        .bind(&self.share_ids)
        .fetch_all(&mut *tx)
        .await?;
        for share in &shares {
            if share.status != ShareStatus::Revoked {
                return Err(JobError::permanent(format!(
                    "share {} is not revoked",
                    share.id
                )));
            }
            let Some(received_id) = share.received_id else {
                continue;
            };
            // R29, R51: what only this share covered is taken back; nothing
            // is re-granted from the other shares' scopes.
            sharing::ungrant(&mut tx, received_id, share.id)
                .await
                .map_err(JobError::from)?;
            // R43: the governing policy is the strictest of the shares left.
            sharing::govern(&mut tx, received_id)
                .await
                .map_err(JobError::from)?;
            let mut recipients = sharing::share_recipients(&mut tx, share).await?;
            // R57: when the collaboration ends with this share, the
            // recipients its receiver added onward lose the external view
            // too, and are told.
            recipients.extend(notify::onward_emails_if_ended(&mut tx, received_id).await?);
            recipients.sort();
            recipients.dedup();
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
