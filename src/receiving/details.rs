//! Import details (R20, R48) of a received or imported case: the sender
//! (the sharing user and org), the partner org (the sharer, seen from the
//! receiver), the recipients of every live share of the collaboration and
//! those added onward, the received-on date, the access level (external or
//! imported, with the permissions), the sharing policy (name and snapshot)
//! and the updates still available (`updates`).

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::updates::{pending_updates, Updates};
use super::{org_ref, OrgRef};
use crate::cases::ContentState;
use crate::collaboration::{ReceivedState, ShareStatus};
use crate::error::Result;
use crate::policy::{Permissions, PolicySnapshot};
use crate::principal::UserPrincipal;

/// Who shared (R48): the user who opened the collaboration and its org.
#[derive(Debug, Serialize, ToSchema)]
pub struct Sender {
    pub user: Option<OrgRef>,
    pub org: OrgRef,
}

/// How the receiver holds the case (R48).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLevel {
    /// external | imported | revoked
    pub kind: ReceivedState,
    /// What the governing policy allows (R43: the strictest live share's).
    pub permissions: Permissions,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportDetails {
    pub received_id: Uuid,
    pub sender: Sender,
    /// The partner organization: the sharing org, from the receiver's side.
    pub partner_org: OrgRef,
    /// Recipients named by every live share of the collaboration, then those
    /// added onward (R28), each once; a stopped one (R44) is not listed.
    #[schema(value_type = Vec<crate::collaboration::Recipient>)]
    pub recipients: Vec<serde_json::Value>,
    pub received_on: chrono::DateTime<chrono::Utc>,
    pub access_level: AccessLevel,
    /// The governing policy: its name and snapshot.
    pub sharing_policy: PolicySnapshot,
    pub state: ReceivedState,
    pub updates: Updates,
    /// R53: the evidence files of the imported copy by how their copy went;
    /// absent while the case is not imported.
    pub files: Option<FileCounts>,
    /// R54: the custody receipt of the share that opened the collaboration,
    /// once the receiving org acknowledged it.
    pub receipt: Option<ReceiptSummary>,
}

/// What the receiving org signed in its acknowledgement (R54).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptSummary {
    pub share_id: Uuid,
    /// Whether the sharer's manifest signature verified.
    pub manifest_ok: bool,
    /// Manifest items by result.
    pub items: ReceiptItems,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptItems {
    #[serde(rename = "match")]
    pub matched: usize,
    pub mismatch: usize,
    pub missing: usize,
}

/// The imported copy's items with a file, by the state of its copy (R53).
#[derive(Debug, Default, Serialize, ToSchema, sqlx::FromRow)]
pub struct FileCounts {
    /// Being copied.
    pub pending: i64,
    /// Copied; the bytes hash to the SHA-256 the sender recorded.
    #[serde(rename = "match")]
    pub matched: i64,
    /// `content_mismatch`: the sender's stored bytes did not hash to its
    /// recorded SHA-256; no file was kept.
    pub mismatch: i64,
    /// The sender's file was gone.
    pub missing: i64,
}

/// R20, R48: import details of a received or imported case.
pub async fn import_details(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<ImportDetails> {
    let r = crate::access::received(db, user, case_id).await?;
    if r.case_id == case_id && r.revoked_at.is_none() {
        super::audit_external_read(db, user, &r, "import_details").await?;
    }
    let sharing_user: Option<(Uuid, String)> = sqlx::query_as(
        "SELECT u.id, u.name FROM shares s JOIN users u ON u.id = s.created_by WHERE s.id = $1",
    )
    .bind(r.share_id)
    .fetch_optional(&mut *db)
    .await?;
    // Named recipients that still have access, in the order they got it:
    // users, groups (from `case_access`, so a stop is honoured) and email
    // addresses that name no user (from the live shares' targets).
    let recipients: Vec<serde_json::Value> = sqlx::query_scalar(
        "WITH live AS (SELECT * FROM shares WHERE received_id = $1 AND status = ANY($4)),
         named AS (
             SELECT a.added_at AS at, jsonb_build_object(a.principal_kind || '_id', a.principal_id) AS r
               FROM case_access a
              WHERE a.case_id = $2 AND a.org_id = $3 AND a.revoked_at IS NULL
                AND (a.received_id = $1 OR a.share_id IN (SELECT id FROM live))
             UNION ALL
             SELECT s.created_at, jsonb_build_object('email', e.r ->> 'email')
               FROM live s CROSS JOIN LATERAL jsonb_array_elements(s.target -> 'recipients') AS e (r)
              WHERE e.r ? 'email' AND NOT EXISTS (
                    SELECT 1 FROM users u WHERE u.org_id = $3 AND lower(u.email) = lower(e.r ->> 'email')))
         SELECT r FROM (SELECT DISTINCT ON (r) r, at FROM named ORDER BY r, at) d ORDER BY at, r ? 'email'",
    )
    .bind(r.id)
    .bind(r.case_id)
    .bind(r.receiver_org_id)
    .bind(ShareStatus::LIVE)
    .fetch_all(&mut *db)
    .await?;
    let sharer = org_ref(db, r.sharer_org_id).await?;
    let files = match r.imported_case_id {
        Some(copy) => Some(
            sqlx::query_as::<_, FileCounts>(
                "SELECT count(*) FILTER (WHERE content_state = $2) AS pending,
                        count(*) FILTER (WHERE content_state = $3) AS matched,
                        count(*) FILTER (WHERE content_state = $4) AS mismatch,
                        count(*) FILTER (WHERE content_state = $5) AS missing
                   FROM evidence WHERE case_id = $1 AND content_state IS NOT NULL",
            )
            .bind(copy)
            .bind(ContentState::Pending)
            .bind(ContentState::Match)
            .bind(ContentState::ContentMismatch)
            .bind(ContentState::Missing)
            .fetch_one(&mut *db)
            .await?,
        ),
        None => None,
    };
    Ok(ImportDetails {
        received_id: r.id,
        sender: Sender {
            user: sharing_user.map(|(id, name)| OrgRef { id, name }),
            org: org_ref(db, r.sharer_org_id).await?,
        },
        partner_org: sharer,
        recipients,
        received_on: r.received_at,
        access_level: AccessLevel {
            kind: r.state(),
            permissions: r.policy.policy.permissions,
        },
        sharing_policy: r.policy.0.clone(),
        state: r.state(),
        updates: pending_updates(db, &r).await?,
        files,
        receipt: receipt_summary(db, r.share_id).await?,
    })
}

async fn receipt_summary(db: &mut PgConnection, share_id: Uuid) -> Result<Option<ReceiptSummary>> {
    let Some(ack) = crate::custody::acknowledgement(db, share_id).await? else {
        return Ok(None);
    };
    let items = ack.content["items"].as_array().cloned().unwrap_or_default();
    let count = |result: &str| items.iter().filter(|i| i["result"] == result).count();
    Ok(Some(ReceiptSummary {
        share_id,
        manifest_ok: ack.content["manifest_ok"] == serde_json::json!(true),
        items: ReceiptItems {
            matched: count("match"),
            mismatch: count("mismatch"),
            missing: count("missing"),
        },
    }))
}
