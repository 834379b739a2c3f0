//! Advanced sharing (R13–R17): the share model every sharing capability
//! works on — scope (R13), target and recipients (R14), the share row with its
//! policy snapshot (R12) and status (R15) — and the status events it publishes.
//!
//! One file per capability: `request` accepts and validates a share (R2, R4,
//! R13–R15), `job` is the `ShareCase` worker that completes it (R15, R17),
//! `grants` resolves a scope to folders and evidence and grants them set-based
//! (R13, R17, R21), `fanout` shares evidence added later (R22–R25, R31), and
//! `disclosure` holds the owner's read models: shares, access list (R16) and
//! dissemination log (R45); `recipients` says whom a share notifies (R32,
//! R33) as plain addresses for `notify`; `receipt` who may read a share's
//! custody receipt (R54). The collaboration row a partner share opens is
//! `crate::collaboration`'s.

mod disclosure;
pub mod fanout;
mod grants;
mod job;
mod receipt;
mod recipients;
mod request;

pub use disclosure::{access_list, dissemination, list_for_case, AccessEntry, Dissemination};
pub(crate) use grants::cover_sql;
pub use grants::{govern, grant, ungrant};
pub(crate) use grants::{scope_args, SCOPE_FOLDERS_SQL};
pub use job::ShareCase;
pub use receipt::receipt_for;
pub use recipients::share_recipients;
pub(crate) use request::validate_scope;
pub use request::{create, ShareRequest};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

pub use crate::collaboration::{recipient_schema, Recipient, ShareStatus};
use crate::error::{Error, Result};
use crate::policy::PolicySnapshot;
use crate::principal::UserPrincipal;

/// R13.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    Case,
    Folders { folder_ids: Vec<Uuid> },
    Evidence { evidence_ids: Vec<Uuid> },
}

/// R14.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    Internal {
        #[serde(default)]
        recipients: Vec<Recipient>,
    },
    Partner {
        org_id: Uuid,
        #[serde(default)]
        recipients: Vec<Recipient>,
    },
}

impl Target {
    pub fn recipients(&self) -> &[Recipient] {
        match self {
            Target::Internal { recipients } | Target::Partner { recipients, .. } => recipients,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareView {
    pub id: Uuid,
    pub case_id: Uuid,
    pub status: ShareStatus,
    pub scope: Scope,
    pub target: Target,
    pub message: Option<String>,
    /// R12: the policy recorded with the share (null for internal shares).
    pub policy: Option<PolicySnapshot>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
pub struct ShareRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub org_id: Uuid,
    pub created_by: Option<Uuid>,
    pub target_org_id: Option<Uuid>,
    pub scope: sqlx::types::Json<Scope>,
    pub target: sqlx::types::Json<Target>,
    pub message: Option<String>,
    pub redact_caption_evidence_ids: Vec<Uuid>,
    pub policy: Option<sqlx::types::Json<PolicySnapshot>>,
    pub status: ShareStatus,
    pub failure: Option<String>,
    pub received_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub const SHARE_COLUMNS: &str = "id, case_id, org_id, created_by, target_org_id, scope, target, message,
    redact_caption_evidence_ids, policy, status, failure, received_id, created_at, completed_at, revoked_at";

impl ShareRow {
    pub fn view(self, job_id: Option<Uuid>) -> ShareView {
        ShareView {
            id: self.id,
            case_id: self.case_id,
            status: self.status,
            scope: self.scope.0,
            target: self.target.0,
            message: self.message,
            policy: self.policy.map(|p| p.0),
            created_at: self.created_at,
            completed_at: self.completed_at,
            revoked_at: self.revoked_at,
            failure: self.failure,
            job_id,
        }
    }
}

pub async fn load(db: &mut PgConnection, share_id: Uuid) -> Result<ShareRow> {
    sqlx::query_as(&format!("SELECT {SHARE_COLUMNS} FROM shares WHERE id = $1"))
        .bind(share_id)
        .fetch_optional(db)
        .await?
        .ok_or(Error::NotFound("share"))
}

/// R29: mark the shares among `share_ids` that are not revoked yet revoked
/// (locked in id order first, so concurrent bulk revokes cannot deadlock).
/// Returns the shares revoked now.
pub async fn mark_revoked(tx: &mut PgConnection, share_ids: &[Uuid]) -> Result<Vec<ShareRow>> {
    sqlx::query("SELECT id FROM shares WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(share_ids)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query_as(&format!(
        "UPDATE shares SET status = $2, revoked_at = now()
         WHERE id = ANY($1) AND status <> $2 RETURNING {SHARE_COLUMNS}"
    ))
    .bind(share_ids)
    .bind(ShareStatus::Revoked)
    .fetch_all(tx)
    .await?)
}

/// A share of a case of the user's org that the user sees (R41); 404 for
/// anyone else: ids do not leak.
pub async fn load_owned(
    db: &mut PgConnection,
    user: &UserPrincipal,
    share_id: Uuid,
) -> Result<ShareRow> {
    let share = load(db, share_id).await?;
    if share.org_id != user.org_id {
        return Err(Error::NotFound("share"));
    }
    crate::access::own_case(db, user, share.case_id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => Error::NotFound("share"),
            e => e,
        })?;
    Ok(share)
}

/// The body of a `share.<status>` event (R15): ids and status only (R10).
/// Publish `share.<status>` to the sharer and the receiving org (R15, R59).
pub async fn status_event_tx(
    tx: &mut PgConnection,
    share: &ShareRow,
    status: ShareStatus,
) -> sqlx::Result<()> {
    let orgs: Vec<Uuid> = std::iter::once(share.org_id)
        .chain(share.target_org_id)
        .collect();
    let payload = status_payload(share, status);
    crate::jobs::outbox::status_event_tx(tx, &orgs, status, payload).await
}

fn status_payload(share: &ShareRow, status: ShareStatus) -> serde_json::Value {
    serde_json::json!({
        "type": "share",
        "share_id": share.id,
        "case_id": share.case_id,
        "org_id": share.org_id,
        "target_org_id": share.target_org_id,
        "received_id": share.received_id,
        "status": status,
        "at": chrono::Utc::now(),
    })
}
