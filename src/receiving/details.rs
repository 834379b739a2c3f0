//! Import details (R20) of a received or imported case: sender, partner org,
//! recipients (the share's and those added by onward sharing), received-on
//! date, access level, sharing policy, and the updates still available
//! (`updates`).

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::updates::{pending_updates, Updates};
use super::{org_ref, OrgRef, ReceivedState};
use crate::error::Result;
use crate::policy::PolicySnapshot;
use crate::principal::UserPrincipal;

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportDetails {
    pub received_id: Uuid,
    pub sender: OrgRef,
    pub partner_org: OrgRef,
    pub recipients: Vec<serde_json::Value>,
    pub received_on: chrono::DateTime<chrono::Utc>,
    /// read_only | copy (what `copy_download` allows)
    pub access_level: String,
    pub sharing_policy: PolicySnapshot,
    pub state: ReceivedState,
    pub updates: Updates,
}

/// R20: import details of a received or imported case.
pub async fn import_details(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<ImportDetails> {
    let r = crate::access::received(db, user, case_id).await?;
    if r.case_id == case_id && r.revoked_at.is_none() {
        super::audit_external_read(db, user, &r, "import_details").await?;
    }
    let share = crate::sharing::load(db, r.share_id).await?;
    let mut recipients: Vec<serde_json::Value> = share
        .target
        .0
        .recipients()
        .iter()
        .map(|x| serde_json::to_value(x).unwrap_or_default())
        .collect();
    let onward: Vec<(Option<Uuid>, Option<Uuid>)> = sqlx::query_as(
        "SELECT CASE WHEN principal_kind = 'user' THEN principal_id END,
                               CASE WHEN principal_kind = 'group' THEN principal_id END
                        FROM case_access WHERE received_id = $1 ORDER BY added_at",
    )
    .bind(r.id)
    .fetch_all(&mut *db)
    .await?;
    for (u, g) in onward {
        recipients.push(match (u, g) {
            (Some(u), _) => serde_json::json!({ "user_id": u }),
            (_, g) => serde_json::json!({ "group_id": g }),
        });
    }
    Ok(ImportDetails {
        received_id: r.id,
        sender: org_ref(db, r.sharer_org_id).await?,
        partner_org: org_ref(db, r.receiver_org_id).await?,
        recipients,
        received_on: r.received_at,
        access_level: if r.policy.policy.permissions.copy_download {
            "copy"
        } else {
            "read_only"
        }
        .into(),
        sharing_policy: r.policy.0.clone(),
        state: r.state(),
        updates: pending_updates(db, &r).await?,
    })
}
