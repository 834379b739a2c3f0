//! The receiving side (R18–R28, R30): what a receiving org sees of a case
//! shared with it, and what it may do with it. Everything that leaves the
//! owner's org passes `policy::filter`.
//!
//! One file per capability:
//! - `view`: the read-only external view and the received list (R18, R23, R24);
//! - `import`: manual and automatic import, the `ImportCase` job (R19, R21);
//! - `updates`: new evidence and case changes for imported copies, and
//!   applying them (R25–R27, R30);
//! - `details`: import details (R20);
//! - `onward`: onward sharing within the receiving org (R28);
//! - `files`: the evidence files an import carries, the `CopyContent` job (R53).
//!
//! This file holds what they share: the collaboration row (`ReceivedRow`) and
//! its state, the row locks, and the org reference. Every public item stays
//! reachable as `receiving::…`.

mod details;
pub mod files;
mod import;
mod onward;
mod updates;
mod view;

pub use details::{import_details, ImportDetails};
pub use import::{auto_import_tx, import_tx, request_import, ImportCase, ImportStatus};
pub use onward::{add_recipient, check_onward, Onward, OnwardRecipient};
pub use updates::{
    apply_updates, deliver_new_evidence_tx, deliver_to, record_case_updates_tx, ApplyRequest,
    ApplyResult, CaseUpdate, EvidenceUpdate, Updates,
};
pub use view::{
    audit_external_read, case_view, external, external_evidence, external_folders, granted, list,
    CaseView, ExternalMark, ImportedFrom, ReceivedItem,
};

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::orgs;
use crate::policy::PolicySnapshot;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceivedRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub sharer_org_id: Uuid,
    pub receiver_org_id: Uuid,
    pub policy: sqlx::types::Json<PolicySnapshot>,
    pub share_id: Uuid,
    pub imported_case_id: Option<Uuid>,
    pub sender_snapshot: Option<serde_json::Value>,
    pub received_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

const RECEIVED_COLUMNS: &str =
    "id, case_id, sharer_org_id, receiver_org_id, policy, share_id, imported_case_id,
    sender_snapshot, received_at, revoked_at";

impl ReceivedRow {
    pub fn state(&self) -> ReceivedState {
        state_of(self.revoked_at.is_some(), self.imported_case_id.is_some())
    }
}

/// Lock a collaboration row. `FOR NO KEY UPDATE`, not `FOR UPDATE`: inserting
/// grants takes a key-share lock on it (foreign key), and two jobs that both
/// hold one must not deadlock when they then lock the row.
async fn lock(tx: &mut PgConnection, received_id: Uuid) -> Result<ReceivedRow> {
    sqlx::query_as(&format!(
        "SELECT {RECEIVED_COLUMNS} FROM received WHERE id = $1 FOR NO KEY UPDATE"
    ))
    .bind(received_id)
    .fetch_optional(tx)
    .await?
    .ok_or(Error::NotFound("received case"))
}

/// The collaboration through which `org_id` sees `case_id`: either the
/// external view (the owner's case id) or its imported copy.
pub async fn for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
) -> Result<Option<ReceivedRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RECEIVED_COLUMNS} FROM received
         WHERE receiver_org_id = $1 AND (case_id = $2 OR imported_case_id = $2)"
    ))
    .bind(org_id)
    .bind(case_id)
    .fetch_optional(db)
    .await?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgRef {
    pub id: Uuid,
    pub name: String,
}

pub async fn org_ref(db: &mut PgConnection, id: Uuid) -> Result<OrgRef> {
    let org = orgs::get(db, id).await?;
    Ok(OrgRef {
        id: org.id,
        name: org.name,
    })
}

/// Lock collaborations `FOR SHARE`, in id order: enough to keep a revoke or an
/// import out while new evidence is delivered, and concurrent evidence-added
/// jobs do not wait for each other (their writes are keyed).
pub async fn share_lock(tx: &mut PgConnection, received_ids: &[Uuid]) -> Result<Vec<ReceivedRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RECEIVED_COLUMNS} FROM received WHERE id = ANY($1) ORDER BY id FOR SHARE"
    ))
    .bind(received_ids)
    .fetch_all(tx)
    .await?)
}

/// Where a received case stands for its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceivedState {
    External,
    Imported,
    Revoked,
}

fn state_of(revoked: bool, imported: bool) -> ReceivedState {
    if revoked {
        ReceivedState::Revoked
    } else if imported {
        ReceivedState::Imported
    } else {
        ReceivedState::External
    }
}
