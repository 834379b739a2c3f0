//! The append-only audit trail (R39): who did what, when, on which
//! case/evidence/share. The table refuses UPDATE and DELETE (a trigger), and
//! entries carry ids and actions only, never evidence field values (R10).

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub enum Action {
    CaseCreated,
    CaseUpdated,
    EvidenceAdded,
    Share,
    ShareComplete,
    Import,
    UpdateApplied,
    OnwardShare,
    Revoke,
    AccessExternal,
    /// An operator put a dead-lettered job back to work (`caseshare dead-letters requeue`).
    DeadLetterRequeued,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CaseCreated => "case_created",
            Action::CaseUpdated => "case_updated",
            Action::EvidenceAdded => "evidence_added",
            Action::Share => "share",
            Action::ShareComplete => "share_complete",
            Action::Import => "import",
            Action::UpdateApplied => "update_applied",
            Action::OnwardShare => "onward_share",
            Action::Revoke => "revoke",
            Action::AccessExternal => "access_external",
            Action::DeadLetterRequeued => "dead_letter_requeued",
        }
    }
}

#[derive(Default)]
pub struct Entry {
    pub org_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub case_id: Option<Uuid>,
    pub evidence_id: Option<Uuid>,
    pub share_id: Option<Uuid>,
    pub details: Option<serde_json::Value>,
}

pub async fn record(db: &mut PgConnection, action: Action, e: Entry) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor_user_id, action, case_id, evidence_id, share_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, '{}'::jsonb))",
    )
    .bind(e.org_id)
    .bind(e.actor_user_id)
    .bind(action.as_str())
    .bind(e.case_id)
    .bind(e.evidence_id)
    .bind(e.share_id)
    .bind(e.details)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow, ToSchema)]
pub struct AuditItem {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub org_id: Option<Uuid>,
    pub actor_user_id: Option<Uuid>,
    pub action: String,
    pub case_id: Option<Uuid>,
    pub evidence_id: Option<Uuid>,
    pub share_id: Option<Uuid>,
    pub details: serde_json::Value,
}

/// Entries about `case_id` recorded by `org_id` (each org sees its own trail).
pub async fn for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
) -> sqlx::Result<Vec<AuditItem>> {
    sqlx::query_as(
        "SELECT id, at, org_id, actor_user_id, action, case_id, evidence_id, share_id, details
         FROM audit_log WHERE case_id = $1 AND org_id = $2 ORDER BY id",
    )
    .bind(case_id)
    .bind(org_id)
    .fetch_all(db)
    .await
}
