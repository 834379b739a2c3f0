//! The collaboration (R17, R18, R29, R30, R42, R51, R53): the `received` row
//! that joins a case of the sharing org to a receiving org. Sharing opens and
//! extends it, revocation ends it, import gives it its copy; access asks
//! through it who sees an external case; receiving reads it for every view.
//! It sits below all of them, so that none of them has to reach up into
//! another for it, and it is the one module that writes the row (`write`).
//!
//! This file holds the row, its state, its reads and its row locks; `write`
//! holds every statement that changes it; `recipient` the named recipient
//! (R14, R47) both sides speak of; `copies` what reaches an imported copy
//! when a file arrives later (R53).

mod copies;
mod recipient;
mod write;

pub use copies::{pend_copies_tx, CopyContent};
pub use recipient::{recipient_schema, Recipient};
pub use write::{
    end_without_live_share_tx, mark_imported_tx, open_tx, set_policy_tx, snapshot_sender_audit_tx,
};

use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
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

pub(crate) const RECEIVED_COLUMNS: &str =
    "id, case_id, sharer_org_id, receiver_org_id, policy, share_id, imported_case_id,
    sender_snapshot, received_at, revoked_at";

impl ReceivedRow {
    pub fn state(&self) -> ReceivedState {
        state_of(self.revoked_at.is_some(), self.imported_case_id.is_some())
    }
}

/// A share's status (`share_status` in PostgreSQL, R15). It is here,
/// below sharing, because a collaboration lives while one of its shares is
/// live ([`ShareStatus::LIVE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "share_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ShareStatus {
    Processing,
    Complete,
    Failed,
    Revoked,
}

impl crate::db::PgEnum for ShareStatus {
    const TYPE: &'static str = "share_status";
    fn label(self) -> &'static str {
        match self {
            ShareStatus::Processing => "processing",
            ShareStatus::Complete => "complete",
            ShareStatus::Failed => "failed",
            ShareStatus::Revoked => "revoked",
        }
    }
}

impl crate::jobs::outbox::StatusEvent for ShareStatus {
    const TYPE: &'static str = "share";
    fn label(self) -> &'static str {
        crate::db::PgEnum::label(self)
    }
}

impl ShareStatus {
    /// The statuses of a live share (it grants, R29): bind as `= ANY($n)`.
    pub const LIVE: &'static [ShareStatus] = &[ShareStatus::Processing, ShareStatus::Complete];
}

/// Where a received case stands for its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceivedState {
    External,
    Imported,
    Revoked,
}

pub(crate) fn state_of(revoked: bool, imported: bool) -> ReceivedState {
    if revoked {
        ReceivedState::Revoked
    } else if imported {
        ReceivedState::Imported
    } else {
        ReceivedState::External
    }
}

/// Lock a collaboration row. `FOR NO KEY UPDATE`, not `FOR UPDATE`: inserting
/// grants takes a key-share lock on it (foreign key), and two jobs that both
/// hold one must not deadlock when they then lock the row.
pub async fn lock(tx: &mut PgConnection, received_id: Uuid) -> Result<ReceivedRow> {
    sqlx::query_as(&format!(
        "SELECT {RECEIVED_COLUMNS} FROM received WHERE id = $1 FOR NO KEY UPDATE"
    ))
    .bind(received_id)
    .fetch_optional(tx)
    .await?
    .ok_or(Error::NotFound("received case"))
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

/// The collaboration whose imported copy `case_id` is, if it is one.
pub async fn of_imported_copy(db: &mut PgConnection, case_id: Uuid) -> Result<Option<ReceivedRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RECEIVED_COLUMNS} FROM received WHERE imported_case_id = $1"
    ))
    .bind(case_id)
    .fetch_optional(db)
    .await?)
}

/// A live external view of `case_id` for `org_id` (R18), or 404.
pub async fn external(db: &mut PgConnection, org_id: Uuid, case_id: Uuid) -> Result<ReceivedRow> {
    match for_case(db, org_id, case_id).await? {
        Some(r) if r.case_id == case_id && r.revoked_at.is_none() => Ok(r),
        _ => Err(Error::NotFound("case")),
    }
}

/// The granted evidence of collaboration `$1` (optionally only the ids in
/// `$2`): the items a live share covers (R29: a revoked share's items are
/// gone the moment it commits, before its job takes them back). Its columns
/// are `receiving`'s `GrantedEvidence`. A fragment its callers extend with
/// parameters of their own, so the live statuses are written into it from
/// [`ShareStatus::LIVE`] rather than bound.
pub(crate) fn granted_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT e.id, e.data, g.caption_redacted, rf.id AS receiver_folder_id, g.share_id
             FROM grants g
             JOIN evidence e ON e.id = g.evidence_id
             LEFT JOIN received_folders rf ON rf.received_id = g.received_id AND rf.source_folder_id = e.folder_id
             WHERE g.received_id = $1 AND ($2::uuid[] IS NULL OR e.id = ANY($2))
               AND g.covering && ARRAY(SELECT s.id FROM shares s
                                        WHERE s.received_id = $1 AND s.status IN ({live}))",
            live = crate::db::literals(ShareStatus::LIVE)
        )
    });
    SQL.as_str()
}

/// Whether a live share of collaboration `received_id` covers `evidence_id`
/// (the item is in the external view).
pub async fn granted(db: &mut PgConnection, received_id: Uuid, evidence_id: Uuid) -> Result<bool> {
    Ok(
        sqlx::query_scalar(&format!("SELECT EXISTS ({} AND e.id = $3)", granted_sql()))
            .bind(received_id)
            .bind(None::<Vec<Uuid>>)
            .bind(evidence_id)
            .fetch_one(db)
            .await?,
    )
}
