//! Reading the trail (R39, R48): a case's entries as its org recorded them,
//! whole or a page at a time, never an entry the sealer refused.

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// SQL condition over `audit_log a`: the entry was not refused by the sealer
/// (written outside the service). Every read of the trail carries it.
pub const GENUINE: &str = "NOT EXISTS (SELECT 1 FROM audit_refused r WHERE r.id = a.id)";

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
    /// What the action concerned, by action (ids, counts, the actor when it
    /// is a job or the service; never evidence field values, R10).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub details: serde_json::Value,
}

/// Entries about `case_id` recorded by `org_id` (each org sees its own trail).
/// The columns of an [`AuditItem`], for queries over `audit_log a`.
pub const ITEM_COLUMNS: &str =
    "a.id, a.at, a.org_id, a.actor_user_id, a.action, a.case_id, a.evidence_id, a.share_id, a.details";

pub async fn for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
) -> sqlx::Result<Vec<AuditItem>> {
    sqlx::query_as(
        &format!("SELECT {ITEM_COLUMNS} FROM audit_log a WHERE a.case_id = $1 AND a.org_id = $2 AND {GENUINE} ORDER BY a.id"),
    )
    .bind(case_id)
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// One page of `for_case`, after the entry `after` (keyset on the id, so a
/// page of a long trail reads one page); one row more than `limit` is read,
/// so the caller knows whether another page follows.
pub async fn page_for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
    after: Option<i64>,
    limit: usize,
) -> sqlx::Result<Vec<AuditItem>> {
    sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM audit_log a
         WHERE a.case_id = $1 AND a.org_id = $2 AND ($3::bigint IS NULL OR a.id > $3) AND {GENUINE}
         ORDER BY a.id LIMIT $4"
    ))
    .bind(case_id)
    .bind(org_id)
    .bind(after)
    .bind(limit as i64 + 1)
    .fetch_all(db)
    .await
}
