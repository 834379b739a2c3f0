//! R44: stop sharing a case with one principal — one entry of "who has
//! access" (R16). An internal user or group, or a named recipient at a
//! partner (by user or group id), loses its access in the request's
//! transaction (so the next read after the answer is a 404); a partner org
//! has all its live shares of the case revoked (R29–R31). Either way it is
//! audited, and a job mails the principal.

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::access::{self, Named};
use crate::audit::{self, Action};
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::jobs::{Job, JobError};
use crate::notify;
use crate::principal::UserPrincipal;
use crate::sharing::ShareStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StopKind {
    /// An internal user (of the case's org).
    User,
    /// An internal group.
    Group,
    /// A named recipient at a partner: a user or group of that org.
    Recipient,
    /// A partner org: all its live shares of the case are revoked.
    Org,
}

/// `POST /v1/cases/{case_id}/access/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StopSharing {
    pub kind: StopKind,
    pub id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StopAccepted {
    pub job_id: Uuid,
}

/// Stop sharing `case_id` with one principal; idempotent (a second call
/// finds nothing to remove and mails no one).
pub async fn stop_sharing(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    req: StopSharing,
) -> Result<StopAccepted> {
    let mut tx = crate::db::begin(db).await?;
    let case = access::managed(&mut tx, user, case_id, access::read_only).await?;
    if req.kind == StopKind::Org {
        if req.id == case.org_id {
            return Err(Error::validation(
                "an organization cannot stop sharing with itself",
            ));
        }
        let shares: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM shares WHERE case_id = $1 AND target_org_id = $2
                AND status = ANY($3)",
        )
        .bind(case_id)
        .bind(req.id)
        .bind(ShareStatus::LIVE)
        .fetch_all(&mut *tx)
        .await?;
        let (_, job) = super::revoke_tx(&mut tx, user, &shares).await?;
        let job_id = match job {
            Some(job_id) => job_id,
            // Nothing live: a job that finds nothing to do, so the answer
            // keeps its shape and a repeat changes nothing.
            None => {
                StopSharingJob {
                    principal: None,
                    share_id: None,
                    by_receiver: false,
                }
                .enqueue_about_tx(&mut tx, user.org_id, case_id)
                .await?
            }
        };
        tx.commit().await?;
        return Ok(StopAccepted { job_id });
    }
    // Whose principal it is: a user or group, of this org for internal
    // entries, of another org for a partner's named recipient.
    let found: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT org_id, 'user' FROM users WHERE id = $1 UNION ALL SELECT org_id, 'group' FROM groups WHERE id = $1",
    )
    .bind(req.id)
    .fetch_optional(&mut *tx)
    .await?;
    let (org_id, kind) = found.ok_or_else(|| Error::validation("id names no user or group"))?;
    let internal = org_id == case.org_id;
    let fits = match req.kind {
        StopKind::User => internal && kind == "user",
        StopKind::Group => internal && kind == "group",
        _ => !internal,
    };
    if !fits {
        return Err(Error::validation(match req.kind {
            StopKind::User => "id must name a user of the case's organization",
            StopKind::Group => "id must name a group of the case's organization",
            _ => "id must name a user or group of a partner organization",
        }));
    }
    if case.owner_id == Some(req.id) {
        return Err(Error::validation(
            "the case owner cannot be removed from the case",
        ));
    }
    let named = if kind == "user" {
        Named::User(req.id)
    } else {
        Named::Group(req.id)
    };
    // Every row that named the principal for this case, whatever its cause
    // (internal or partner shares, onward additions).
    let removed = access::remove_from_case_tx(&mut tx, case_id, org_id, req.id).await?;
    if !removed.is_empty() {
        // The share access was through: the entry stays out of other
        // partners' audit snapshots (R49).
        let details = serde_json::json!({
            "kind": req.kind, "id": req.id, "principal_org_id": org_id, "entries": removed.len(),
        });
        audit_removed(&mut tx, user, case_id, removed.first().copied(), details).await?;
    }
    let job_id = StopSharingJob {
        principal: (!removed.is_empty()).then_some(named),
        share_id: removed.first().copied(),
        by_receiver: false,
    }
    .enqueue_about_tx(&mut tx, user.org_id, case_id)
    .await?;
    tx.commit().await?;
    Ok(StopAccepted { job_id })
}

/// Audit that `user` ended a principal's access to `case_id` (R44, R57).
async fn audit_removed(
    tx: &mut sqlx::PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
    share_id: Option<Uuid>,
    details: serde_json::Value,
) -> Result<()> {
    audit::record(
        tx,
        Action::AccessRevoked,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            share_id,
            details: Some(details),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// The email to the principal sharing stopped with (none when nothing was
/// removed). Keyed by the job's id: a rerun sends nothing twice.
#[derive(Debug, Serialize, Deserialize)]
pub struct StopSharingJob {
    pub principal: Option<Named>,
    /// A share the principal had access through (names case and sharer).
    pub share_id: Option<Uuid>,
    /// R57: the receiving org removed a recipient it had added onward (the
    /// mail says who did it); absent in jobs queued before.
    #[serde(default)]
    pub by_receiver: bool,
}

impl Job for StopSharingJob {
    const NAME: &'static str = "stop-sharing";
    type Context = JobContext;

    async fn run(&self, job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let (Some(principal), Some(share_id)) = (self.principal, self.share_id) else {
            return Ok(());
        };
        let mut tx = ctx.db.begin().await?;
        let (user, group) = match principal {
            Named::User(id) => (Some(id), None),
            Named::Group(id) => (None, Some(id)),
        };
        let emails = notify::principal_emails(&mut tx, user, group).await?;
        let kind = if self.by_receiver {
            notify::NoticeKind::RecipientRemoved
        } else {
            notify::NoticeKind::AccessRevoked
        };
        notify::enqueue_access_revoked_tx(&mut tx, kind, share_id, job_id, &emails).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Which kind of principal a receiver removes (R57).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RecipientKind {
    User,
    Group,
}

/// R57: the receiver's admin, or the user who added them, removes a
/// recipient added onward (R28) to `case_id` (the external case or its
/// imported copy), with R44's guarantees: access ends in this transaction,
/// it is audited, and a job mails the principal. Idempotent: removing one
/// no longer there changes nothing and mails no one. 404 for a principal
/// that is not of the caller's org, 403 for a user who neither is an admin
/// nor added it.
pub async fn remove_onward(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    kind: RecipientKind,
    id: Uuid,
) -> Result<StopAccepted> {
    let mut tx = crate::db::begin(db).await?;
    let r = access::received(&mut tx, user, case_id).await?;
    let exists: bool = sqlx::query_scalar(match kind {
        RecipientKind::User => "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND org_id = $2)",
        RecipientKind::Group => {
            "SELECT EXISTS (SELECT 1 FROM groups WHERE id = $1 AND org_id = $2)"
        }
    })
    .bind(id)
    .bind(user.org_id)
    .fetch_one(&mut *tx)
    .await?;
    if !exists {
        return Err(Error::NotFound("recipient"));
    }
    let added_by: Option<Option<Uuid>> = sqlx::query_scalar(
        "SELECT added_by FROM case_access WHERE received_id = $1 AND principal_id = $2 FOR UPDATE",
    )
    .bind(r.id)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(added_by) = added_by {
        if user.role != crate::principal::Role::Admin && added_by != Some(user.user_id) {
            return Err(Error::Forbidden(
                "only an admin or the user who added a recipient removes it".into(),
            ));
        }
    }
    // The onward row goes, for the external view and the imported copy alike
    // (an explicit removal, unlike a revocation, R30).
    let named = match kind {
        RecipientKind::User => Named::User(id),
        RecipientKind::Group => Named::Group(id),
    };
    let removed = access::remove_onward_tx(&mut tx, r.id, named).await?;
    if removed {
        let details =
            serde_json::json!({ "kind": kind, "id": id, "onward": true, "received_id": r.id });
        audit_removed(&mut tx, user, case_id, Some(r.share_id), details).await?;
    }
    let named = match kind {
        RecipientKind::User => Named::User(id),
        RecipientKind::Group => Named::Group(id),
    };
    let job_id = StopSharingJob {
        principal: removed.then_some(named),
        share_id: removed.then_some(r.share_id),
        by_receiver: true,
    }
    .enqueue_about_tx(&mut tx, user.org_id, case_id)
    .await?;
    tx.commit().await?;
    Ok(StopAccepted { job_id })
}
