//! What the receiving org sees (R18, R23, R24). A shared case appears as an
//! external, read-only case marked with the sharing org, its fields and its
//! granted evidence filtered by the policy (R18); viewing it is audited (R39).
//! The view reads the grants themselves, so auto-shared evidence shows at once
//! (R24), in the receiver's copy of its folder or at the root (R23). The
//! received list gives each collaboration's state. The same filtered evidence
//! is what `import` and `updates` copy into an imported case.

use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{org_ref, OrgRef};
use crate::audit::{self, Action};
use crate::cases::{CaseData, Folder};
use crate::collaboration::{for_case, granted, state_of, ReceivedRow, ReceivedState};
use crate::error::Result;
use crate::evidence::{EvidenceData, EvidenceView};
use crate::policy::{filter, PolicySnapshot};
use crate::principal::UserPrincipal;

#[derive(Debug, Serialize, ToSchema)]
pub struct ExternalMark {
    pub sharing_org: OrgRef,
    pub share_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportedFrom {
    pub received_id: Uuid,
    pub sharing_org: OrgRef,
    pub source_case_id: Uuid,
    pub share_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseView {
    pub id: Uuid,
    #[serde(flatten)]
    pub data: CaseData,
    pub owner_id: Option<Uuid>,
    pub external: Option<ExternalMark>,
    pub imported_from: Option<ImportedFrom>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A case as `org_id` may see it: own/imported in full, external filtered.
/// Viewing an external case is audited (R39).
pub async fn case_view(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<CaseView> {
    let (case, r) = match crate::access::case(db, user, case_id).await? {
        crate::access::Seen::Own { case, .. } => {
            let imported_from = match for_case(db, user.org_id, case_id).await? {
                Some(r) if r.imported_case_id == Some(case_id) => Some(ImportedFrom {
                    received_id: r.id,
                    sharing_org: org_ref(db, r.sharer_org_id).await?,
                    source_case_id: r.case_id,
                    share_id: r.share_id,
                }),
                _ => None,
            };
            return Ok(CaseView {
                id: case.id,
                data: case.data(),
                owner_id: case.owner_id,
                external: None,
                imported_from,
                created_at: case.created_at,
            });
        }
        crate::access::Seen::External { case, received } => (case, received),
    };
    audit_external_read(db, user, &r, "case").await?;
    Ok(CaseView {
        id: case.id,
        data: filter::case(&r.policy.policy, &case.data()),
        owner_id: None,
        external: Some(ExternalMark {
            sharing_org: org_ref(db, r.sharer_org_id).await?,
            share_id: r.share_id,
        }),
        imported_from: None,
        created_at: case.created_at,
    })
}

/// R50: every read of an external case (the case, its evidence, folders,
/// audit trail, import details) is audited with its reader; `what` says which.
pub async fn audit_external_read(
    db: &mut PgConnection,
    user: &UserPrincipal,
    r: &ReceivedRow,
    what: &str,
) -> Result<()> {
    audit::record(
        db,
        Action::AccessExternal,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(r.case_id),
            share_id: Some(r.share_id),
            details: Some(serde_json::json!({ "read": what })),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub(super) struct GrantedEvidence {
    id: Uuid,
    data: sqlx::types::Json<EvidenceData>,
    caption_redacted: bool,
    receiver_folder_id: Option<Uuid>,
    /// R43: the share that first granted the item (its snapshot filters it).
    share_id: Uuid,
}

/// The policy snapshots of a collaboration's shares, by share: read once
/// per view or import rather than once per item. Revoked shares are among
/// them: an item first granted by a share revoked since keeps that share's
/// snapshot while another share covers it (R51).
pub(super) async fn snapshots(
    db: &mut PgConnection,
    received_id: Uuid,
) -> Result<std::collections::HashMap<Uuid, PolicySnapshot>> {
    let rows: Vec<(Uuid, sqlx::types::Json<PolicySnapshot>)> = sqlx::query_as(
        "SELECT id, policy FROM shares WHERE received_id = $1 AND policy IS NOT NULL",
    )
    .bind(received_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id, p)| (id, p.0)).collect())
}

/// Granted evidence of a collaboration (covered by a live share: a share's grants
/// are written in the transaction that completes it, so a `processing` one is
/// seen only by its own job, which must see it to auto-sync what it granted),
/// with the receiver's folder for each (R23: a folder not copied at the
/// initial share means root).
///
/// One page of it, after the item `after`, by keyset in SQL (a page of a
/// 100,000-item external case reads and filters one page); one row more
/// than `limit` is read, so the caller knows whether another page follows.
/// `None` when `after` is not an item of this list.
async fn granted_page(
    db: &mut PgConnection,
    received_id: Uuid,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Option<Vec<GrantedEvidence>>> {
    if let Some(after) = after {
        if !granted(&mut *db, received_id, after).await? {
            return Ok(None);
        }
    }
    Ok(Some(
        sqlx::query_as(&format!(
            "{}
               AND ($3::uuid IS NULL OR (e.created_at, e.id) > (SELECT created_at, id FROM evidence WHERE id = $3))
             ORDER BY e.created_at, e.id LIMIT $4",
            crate::collaboration::granted_sql()
        ))
        .bind(received_id)
        .bind(None::<Vec<Uuid>>)
        .bind(after)
        .bind(limit as i64 + 1)
        .fetch_all(db)
        .await?,
    ))
}

/// R43: each item filtered by its own share's snapshot, so a later, looser
/// share to the same partner never widens what earlier items show. An item
/// whose share has no snapshot (none can: a partner share always has one)
/// would show nothing rather than everything.
pub(super) fn filtered(
    rows: Vec<GrantedEvidence>,
    snapshots: &std::collections::HashMap<Uuid, PolicySnapshot>,
) -> Vec<EvidenceView> {
    rows.into_iter()
        .filter_map(|g| {
            let snapshot = snapshots.get(&g.share_id)?;
            Some(EvidenceView {
                id: g.id,
                folder_id: g.receiver_folder_id,
                data: filter::evidence(&snapshot.policy, &g.data.0, g.caption_redacted),
            })
        })
        .collect()
}

/// R18, R24: a page of the external view's evidence (see `granted_page`),
/// filtered by the policy.
pub async fn external_evidence(
    db: &mut PgConnection,
    r: &ReceivedRow,
    after: Option<Uuid>,
    limit: usize,
) -> Result<Option<Vec<EvidenceView>>> {
    let snapshots = snapshots(&mut *db, r.id).await?;
    Ok(granted_page(db, r.id, after, limit)
        .await?
        .map(|rows| filtered(rows, &snapshots)))
}

pub async fn external_folders(db: &mut PgConnection, received_id: Uuid) -> Result<Vec<Folder>> {
    Ok(sqlx::query_as(
        "SELECT id, name, parent_id FROM received_folders WHERE received_id = $1 ORDER BY name, id",
    )
    .bind(received_id)
    .fetch_all(db)
    .await?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceivedItem {
    pub id: Uuid,
    pub share_id: Uuid,
    pub sharing_org: OrgRef,
    /// The external view (the sharer's case id).
    pub case_id: Uuid,
    pub imported_case_id: Option<Uuid>,
    pub state: ReceivedState,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// The collaborations the user sees (R42), newest first.
pub async fn list(db: &mut PgConnection, user: &UserPrincipal) -> Result<Vec<ReceivedItem>> {
    let rows: Vec<ListRow> = sqlx::query_as(&format!(
        "SELECT r.id, r.share_id, r.case_id, r.imported_case_id, r.received_at, r.revoked_at, r.sharer_org_id,
                o.name AS sharer_name
         FROM received r JOIN orgs o ON o.id = r.sharer_org_id
         WHERE r.receiver_org_id = $2 AND {visible} ORDER BY r.received_at DESC, r.id",
        visible = crate::access::received_visible_sql()
    ))
    .bind(user.user_id)
    .bind(user.org_id)
    .bind(user.role == crate::principal::Role::Admin)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ReceivedItem {
            id: r.id,
            share_id: r.share_id,
            sharing_org: OrgRef {
                id: r.sharer_org_id,
                name: r.sharer_name,
            },
            case_id: r.case_id,
            imported_case_id: r.imported_case_id,
            state: state_of(r.revoked_at.is_some(), r.imported_case_id.is_some()),
            received_at: r.received_at,
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct ListRow {
    id: Uuid,
    share_id: Uuid,
    case_id: Uuid,
    imported_case_id: Option<Uuid>,
    received_at: chrono::DateTime<chrono::Utc>,
    revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    sharer_org_id: Uuid,
    sharer_name: String,
}
