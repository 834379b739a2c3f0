//! The `BuildLinkShare` job (R40): plans the package from the evidence in
//! scope when it runs (a snapshot; the governing policy recorded with the
//! request is applied again, R10), builds it, puts it into the content store
//! and marks the link share complete, emailing the link once; or marks it
//! failed. Idempotent (R35): a second run finds it built and does nothing.
//! What goes into the package, and under which names, is `plan`.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::path::Path;
use uuid::Uuid;

use super::lifecycle::{recipients, status_event_tx};
use super::package::{self, BuildError, Built};
use super::plan::plan;
use super::{load, LinkShareRow, LinkShareStatus};
use crate::audit::{self, Action};
use crate::content::store::Object;
use crate::context::JobContext;
use crate::error::Result;
use crate::jobs::{Job, JobError, Reopened};
use crate::notify::{self, NoticeKind};

/// Build the package of a link share.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuildLinkShare {
    pub link_share_id: Uuid,
}

impl Job for BuildLinkShare {
    const NAME: &'static str = "build-link-share";
    type Context = JobContext;

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> std::result::Result<(), JobError> {
        let mut conn = ctx.db.acquire().await?;
        let Some(row) = load(&mut conn, self.link_share_id).await? else {
            return Err(JobError::permanent(format!(
                "link share {} does not exist",
                self.link_share_id
            )));
        };
        crate::jobs::record_subject("case_id", row.case_id);
        if row.status != LinkShareStatus::Processing {
            return Ok(()); // built (or failed) before: nothing to do
        }
        let plan = plan(&mut conn, &row, &ctx.store).await?;
        drop(conn);
        let output = plan.output.clone();
        let started = std::time::Instant::now();
        let built = tokio::task::spawn_blocking(move || package::build(&plan))
            .await
            .map_err(|e| JobError::transient(format!("package builder panicked: {e}")))?;
        if let Ok(b) = &built {
            tracing::info!(
                bytes = b.size_bytes,
                build_ms = started.elapsed().as_millis() as u64,
                "package built"
            );
        }
        match built {
            Ok(built) => complete(ctx, &row, &output, built).await,
            Err(BuildError::Content {
                evidence_id,
                reason,
            }) => fail(&ctx.db, row.id, &reason, evidence_id)
                .await
                .map_err(JobError::from),
            Err(BuildError::Io(e)) => Err(JobError::transient(format!("building package: {e}"))),
        }
    }

    async fn on_dead(&self, ctx: &JobContext, reason: &str) {
        if let Err(e) = fail(&ctx.db, self.link_share_id, reason, None).await {
            tracing::error!(error = %e, link_share_id = %self.link_share_id, "cannot mark link share failed");
        }
    }

    /// A failed link share goes back to `processing` (failure cleared), with
    /// a `link_share.processing` status event.
    async fn on_requeue(&self, tx: &mut PgConnection) -> sqlx::Result<Reopened> {
        let reopened: Option<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE link_shares SET status = $2, failure = NULL
             WHERE id = $1 AND status = $3 RETURNING org_id, case_id",
        )
        .bind(self.link_share_id)
        .bind(LinkShareStatus::Processing)
        .bind(LinkShareStatus::Failed)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((org_id, case_id)) = reopened else {
            return Ok(Reopened::default());
        };
        status_event_tx(
            tx,
            self.link_share_id,
            org_id,
            case_id,
            LinkShareStatus::Processing,
        )
        .await?;
        Ok(Reopened {
            subject: Some(format!(
                "link share {}: failed -> processing",
                self.link_share_id
            )),
            filed_under: Default::default(),
        })
    }
}

/// Put the package into the store under a key of its own, then mark the
/// link share complete with that key: a concurrent builder of the same link
/// share waits on the row, finds it complete, and deletes its own package.
async fn complete(
    ctx: &JobContext,
    row: &LinkShareRow,
    output: &Path,
    built: Built,
) -> std::result::Result<(), JobError> {
    let key = format!("{}-{}.{}", row.id, Uuid::new_v4(), row.package.extension());
    let started = std::time::Instant::now();
    let stored = ctx.store.put_file(output, Object::Package(&key)).await;
    tracing::info!(
        store_ms = started.elapsed().as_millis() as u64,
        ok = stored.is_ok(),
        "package put into the store"
    );
    if let Err(e) = stored {
        let _ = tokio::fs::remove_file(output).await;
        return Err(JobError::transient(format!(
            "putting the package into the store: {e}"
        )));
    }
    let result = async {
        let mut tx = ctx.db.begin().await?;
        let done: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "UPDATE link_shares SET status = $6, manifest_sha256 = $2, size_bytes = $3,
                    package_key = $4, contents = $5, completed_at = now(),
                    expires_at = now() + make_interval(hours => duration_hours)
             WHERE id = $1 AND status = $7 RETURNING expires_at",
        )
        .bind(row.id)
        .bind(&built.manifest_sha256)
        .bind(built.size_bytes as i64)
        .bind(&key)
        .bind(&built.files)
        .bind(LinkShareStatus::Complete)
        .bind(LinkShareStatus::Processing)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(expires_at) = done else {
            return Ok(false);
        };
        audit::record(
            &mut tx,
            Action::LinkShareComplete,
            audit::Entry {
                org_id: Some(row.org_id),
                case_id: Some(row.case_id),
                details: Some(serde_json::json!({
                    "link_share_id": row.id,
                    "manifest_sha256": built.manifest_sha256,
                    "size_bytes": built.size_bytes,
                    "expires_at": expires_at,
                })),
                ..Default::default()
            },
        )
        .await?;
        // R40: the recipient gets the link by email, once.
        for to in recipients(&mut tx, row.id).await? {
            notify::enqueue_link_share_tx(&mut tx, NoticeKind::LinkShare, row.id, &to).await?;
        }
        status_event_tx(
            &mut tx,
            row.id,
            row.org_id,
            row.case_id,
            LinkShareStatus::Complete,
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, JobError>(true)
    }
    .await;
    if !matches!(result, Ok(true)) {
        if let Err(e) = ctx.store.delete(Object::Package(&key)).await {
            tracing::warn!(error = %e, key, "cannot delete an unused package");
        }
    }
    result.map(|_| ())
}

async fn fail(db: &PgPool, id: Uuid, reason: &str, evidence_id: Option<Uuid>) -> Result<()> {
    let mut tx = db.begin().await?;
    let failed: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE link_shares SET status = $3, failure = $2
         WHERE id = $1 AND status = $4 RETURNING org_id, case_id",
    )
    .bind(id)
    .bind(reason)
    .bind(LinkShareStatus::Failed)
    .bind(LinkShareStatus::Processing)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((org_id, case_id)) = failed {
        status_event_tx(&mut tx, id, org_id, case_id, LinkShareStatus::Failed).await?;
        // Ids only in the trail; the reason (with the title) is on the link share.
        audit::record(
            &mut tx,
            Action::LinkShareFailed,
            audit::Entry {
                org_id: Some(org_id),
                case_id: Some(case_id),
                evidence_id,
                details: Some(serde_json::json!({ "link_share_id": id })),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
