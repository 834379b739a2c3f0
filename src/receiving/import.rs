//! Import (R19, R21): a received case becomes a new case owned by the
//! receiver, with the policy-filtered case fields and evidence and the folder
//! tree copied at the initial share, only when `copy_download` allows it and
//! the share is live. A manual import is checked at once and copied by the
//! `ImportCase` job; auto import runs when the receiving org has `auto_import`
//! on. The evidence copy here is also how `updates` applies new evidence.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::view::{filtered, snapshots, GrantedEvidence};
use crate::audit::{self, Action};
use crate::cases;
use crate::collaboration::granted_sql;
use crate::collaboration::{lock, ReceivedRow};
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::evidence::EvidenceView;
use crate::jobs::{self, Job, JobError};
use crate::orgs;
use crate::policy::filter;
use crate::principal::UserPrincipal;

/// Copy the receiver's folder tree into the imported case (same ids), adding
/// only folders not there yet (R21). Evidence whose folder has no copy lands
/// at the imported case's root (R23).
async fn sync_folders_tx(tx: &mut PgConnection, received_id: Uuid, case_id: Uuid) -> Result<()> {
    let tree: Vec<cases::Folder> =
        sqlx::query_as("SELECT id, name, parent_id FROM received_folders WHERE received_id = $1")
            .bind(received_id)
            .fetch_all(&mut *tx)
            .await?;
    cases::write::copy_folders(tx, case_id, &tree).await
}

/// How many granted items an import holds in memory at a time.
const COPY_CHUNK: usize = 2_000;

/// Copy granted evidence into the imported case, filtered (R10, R43: in Rust,
/// by the one filter every view uses). The items are read through a cursor
/// and written by UNNEST [`COPY_CHUNK`] at a time, so memory stays flat
/// however large the case. Idempotent by (case, source evidence). Returns
/// how many were new.
pub(super) async fn copy_evidence_tx(
    tx: &mut PgConnection,
    r: &ReceivedRow,
    case_id: Uuid,
    only: Option<&[Uuid]>,
) -> Result<u64> {
    sync_folders_tx(tx, r.id, case_id).await?;
    let snapshots = snapshots(&mut *tx, r.id).await?;
    sqlx::query(&format!(
        "DECLARE granted_copy NO SCROLL CURSOR FOR {}",
        granted_sql()
    ))
    .bind(r.id)
    .bind(only)
    .execute(&mut *tx)
    .await?;
    let fetch = format!("FETCH {COPY_CHUNK} FROM granted_copy");
    let (mut copied, mut files) = (0, 0);
    loop {
        let rows: Vec<GrantedEvidence> = sqlx::query_as(&fetch).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            break;
        }
        let (n, f) = insert_copies(tx, case_id, filtered(rows, &snapshots)).await?;
        copied += n;
        files += f;
    }
    sqlx::query("CLOSE granted_copy").execute(&mut *tx).await?;
    // R53: the files follow, copied and checked by a job of their own,
    // which then acknowledges the receipts (R54): always after an import.
    if files > 0 || only.is_none() {
        super::files::queue_tx(tx, r.receiver_org_id, case_id).await?;
    }
    Ok(copied)
}

/// Insert filtered copies into `case_id` (R10: as the policy shows them),
/// each with its file to copy where the sender stored one (R53). Returns how
/// many were new, and how many of those have a file to copy.
async fn insert_copies(
    tx: &mut PgConnection,
    case_id: Uuid,
    views: Vec<EvidenceView>,
) -> Result<(u64, u64)> {
    let copies = views
        .into_iter()
        .map(|mut view| {
            let content = super::files::detach_content(&mut view);
            cases::write::ItemCopy { view, content }
        })
        .collect();
    cases::write::insert_copies(tx, case_id, copies).await
}

/// R19: import a received case: a new case owned by the receiver, with the
/// filtered evidence and the copied folders. Idempotent: a second call returns
/// the existing copy.
pub async fn import_tx(
    tx: &mut PgConnection,
    received_id: Uuid,
    actor: Option<Uuid>,
) -> Result<Uuid> {
    let r = lock(tx, received_id).await?;
    if r.revoked_at.is_some() {
        return Err(Error::ShareRevoked);
    }
    if let Some(existing) = r.imported_case_id {
        return Ok(existing);
    }
    if !r.policy.policy.permissions.copy_download {
        return Err(Error::PolicyForbids(
            "the sharing policy does not allow copy/download, so the case stays external".into(),
        ));
    }
    let source = cases::by_id(tx, r.case_id).await?;
    let data = filter::case(&r.policy.policy, &source.data());
    let case_id = Uuid::now_v7();
    cases::write::insert_case(tx, case_id, r.receiver_org_id, actor, &data).await?;
    crate::collaboration::mark_imported_tx(tx, r.id, case_id).await?;
    let copied = copy_evidence_tx(tx, &r, case_id, None).await?;
    audit::record(
        tx,
        Action::Import,
        audit::Entry {
            org_id: Some(r.receiver_org_id),
            actor_user_id: actor,
            case_id: Some(case_id),
            share_id: Some(r.share_id),
            details: Some(serde_json::json!({ "received_id": r.id, "source_case_id": r.case_id, "evidence_count": copied })),
            ..Default::default()
        },
    )
    .await?;
    // R59: the receiver learns its new case; the sharer that the share was
    // imported, not the id of the receiver's case.
    let event = serde_json::json!({ "received_id": r.id, "share_id": r.share_id,
                                    "org_id": r.receiver_org_id, "at": chrono::Utc::now() });
    let complete = ImportStatus::Complete;
    jobs::outbox::status_event_tx(tx, &[r.sharer_org_id], complete, event.clone()).await?;
    let mut own = event;
    own["imported_case_id"] = serde_json::json!(case_id);
    jobs::outbox::status_event_tx(tx, &[r.receiver_org_id], complete, own).await?;
    Ok(case_id)
}

/// R19: import at once when the receiver wants it and the policy allows it.
pub async fn auto_import_tx(tx: &mut PgConnection, received_id: Uuid) -> Result<()> {
    let r = lock(tx, received_id).await?;
    let org = orgs::get(tx, r.receiver_org_id).await?;
    if org.auto_import
        && r.policy.policy.permissions.copy_download
        && r.imported_case_id.is_none()
        && r.revoked_at.is_none()
    {
        import_tx(tx, received_id, None).await?;
    }
    Ok(())
}

/// An import's status, as answered and published (`import.complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    Processing,
    Complete,
}

impl jobs::outbox::StatusEvent for ImportStatus {
    const TYPE: &'static str = "import";
    fn label(self) -> &'static str {
        match self {
            ImportStatus::Processing => "processing",
            ImportStatus::Complete => "complete",
        }
    }
}

/// Manual import (R19): checked here so a refusal answers at once; the copy
/// itself is a job.
pub async fn request_import(db: &PgPool, user: &UserPrincipal, received_id: Uuid) -> Result<Uuid> {
    let mut tx = crate::db::begin(db).await?;
    let r = lock(&mut tx, received_id).await?;
    if r.receiver_org_id != user.org_id {
        return Err(Error::NotFound("received case"));
    }
    // R42: only those who see the collaboration may import it.
    if !crate::access::sees_received(&mut tx, user, &r).await? {
        return Err(Error::NotFound("received case"));
    }
    if r.revoked_at.is_some() {
        return Err(Error::ShareRevoked);
    }
    if !r.policy.policy.permissions.copy_download {
        return Err(Error::PolicyForbids(
            "the sharing policy does not allow copy/download, so the case stays external".into(),
        ));
    }
    let job_id = ImportCase {
        received_id,
        user_id: Some(user.user_id),
    }
    .enqueue_about_tx(&mut tx, user.org_id, r.case_id)
    .await?;
    tx.commit().await?;
    Ok(job_id)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ImportCase {
    pub received_id: Uuid,
    pub user_id: Option<Uuid>,
}

impl Job for ImportCase {
    const NAME: &'static str = "import-case";
    type Context = JobContext;

    async fn run(&self, job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        crate::audit::act_as_job(&mut tx, job_id).await?;
        import_tx(&mut tx, self.received_id, self.user_id)
            .await
            .map_err(JobError::from)?;
        tx.commit().await?;
        Ok(())
    }
}
