//! The receiving side (R18–R28): the read-only external view, import (auto
//! and manual), new evidence for imported copies (auto sync or available
//! updates), case updates offered for review, applying updates, and onward
//! sharing. Everything that leaves the owner's org passes `policy::filter`.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::cases::{self, CaseData, Folder};
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::evidence::{EvidenceData, EvidenceView};
use crate::jobs::{self, Job, JobError};
use crate::notify::{self, NoticeKind};
use crate::orgs::{self, OrgKind};
use crate::policy::{filter, PolicySnapshot};
use crate::principal::UserPrincipal;

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

/// A live external view of `case_id` for `org_id` (R18), or 404.
pub async fn external(db: &mut PgConnection, org_id: Uuid, case_id: Uuid) -> Result<ReceivedRow> {
    match for_case(db, org_id, case_id).await? {
        Some(r) if r.case_id == case_id && r.revoked_at.is_none() => Ok(r),
        _ => Err(Error::NotFound("case")),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrgRef {
    pub id: Uuid,
    pub name: String,
}

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

pub async fn org_ref(db: &mut PgConnection, id: Uuid) -> Result<OrgRef> {
    let org = orgs::get(db, id).await?;
    Ok(OrgRef {
        id: org.id,
        name: org.name,
    })
}

/// A case as `org_id` may see it: own/imported in full, external filtered.
/// Viewing an external case is audited (R39).
pub async fn case_view(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<CaseView> {
    if let Ok(case) = cases::owned(db, user.org_id, case_id).await {
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
    let r = external(db, user.org_id, case_id).await?;
    let case = cases::by_id(db, case_id).await?;
    audit::record(
        db,
        Action::AccessExternal,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            share_id: Some(r.share_id),
            ..Default::default()
        },
    )
    .await?;
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

#[derive(sqlx::FromRow)]
struct GrantedEvidence {
    id: Uuid,
    data: sqlx::types::Json<EvidenceData>,
    caption_redacted: bool,
    receiver_folder_id: Option<Uuid>,
}

/// Granted evidence of a collaboration (live shares only), with the receiver's
/// folder for each (R23: a folder not copied at the initial share means root).
async fn granted(
    db: &mut PgConnection,
    received_id: Uuid,
    only: Option<&[Uuid]>,
) -> Result<Vec<GrantedEvidence>> {
    Ok(sqlx::query_as(
        "SELECT e.id, e.data, g.caption_redacted, rf.id AS receiver_folder_id
         FROM grants g
         JOIN shares s ON s.id = g.share_id AND s.status = 'complete'
         JOIN evidence e ON e.id = g.evidence_id
         LEFT JOIN received_folders rf ON rf.received_id = g.received_id AND rf.source_folder_id = e.folder_id
         WHERE g.received_id = $1 AND ($2::uuid[] IS NULL OR e.id = ANY($2))
         ORDER BY e.created_at, e.id",
    )
    .bind(received_id)
    .bind(only)
    .fetch_all(db)
    .await?)
}

fn filtered(r: &ReceivedRow, rows: Vec<GrantedEvidence>) -> Vec<EvidenceView> {
    rows.into_iter()
        .map(|g| EvidenceView {
            id: g.id,
            folder_id: g.receiver_folder_id,
            data: filter::evidence(&r.policy.policy, &g.data.0, g.caption_redacted),
        })
        .collect()
}

/// R18, R24: the external view's evidence, filtered by the policy.
pub async fn external_evidence(
    db: &mut PgConnection,
    r: &ReceivedRow,
) -> Result<Vec<EvidenceView>> {
    let rows = granted(db, r.id, None).await?;
    Ok(filtered(r, rows))
}

pub async fn external_folders(db: &mut PgConnection, received_id: Uuid) -> Result<Vec<Folder>> {
    Ok(sqlx::query_as(
        "SELECT id, name, parent_id FROM received_folders WHERE received_id = $1 ORDER BY name, id",
    )
    .bind(received_id)
    .fetch_all(db)
    .await?)
}

/// Copy the receiver's folder tree into the imported case (same ids), adding
/// only folders not there yet.
async fn sync_folders_tx(tx: &mut PgConnection, received_id: Uuid, case_id: Uuid) -> Result<()> {
    let added: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO folders (id, case_id, name) SELECT id, $2, name FROM received_folders WHERE received_id = $1
         ON CONFLICT (id) DO NOTHING RETURNING id",
    )
    .bind(received_id)
    .bind(case_id)
    .fetch_all(&mut *tx)
    .await?;
    if !added.is_empty() {
        sqlx::query(
            "UPDATE folders f SET parent_id = rf.parent_id FROM received_folders rf
             WHERE f.id = rf.id AND f.id = ANY($1) AND rf.parent_id IS NOT NULL",
        )
        .bind(&added)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Copy granted evidence into the imported case, filtered, in one statement
/// (UNNEST). Idempotent by (case, source evidence). Returns how many were new.
async fn copy_evidence_tx(
    tx: &mut PgConnection,
    r: &ReceivedRow,
    case_id: Uuid,
    only: Option<&[Uuid]>,
) -> Result<u64> {
    sync_folders_tx(tx, r.id, case_id).await?;
    let rows = granted(tx, r.id, only).await?;
    let views = filtered(r, rows);
    let n = views.len();
    let mut ids = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut folders = Vec::with_capacity(n);
    let mut titles = Vec::with_capacity(n);
    let mut data = Vec::with_capacity(n);
    for v in views {
        ids.push(Uuid::new_v4());
        sources.push(v.id);
        folders.push(v.folder_id);
        titles.push(v.data.title.clone());
        data.push(serde_json::to_value(&v.data).map_err(anyhow::Error::from)?);
    }
    let done = sqlx::query(
        "INSERT INTO evidence (id, case_id, folder_id, title, data, source_evidence_id)
         SELECT i, $1, f, t, d, s FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::jsonb[], $6::uuid[]) AS u(i, f, t, d, s)
         ON CONFLICT (case_id, source_evidence_id) DO NOTHING",
    )
    .bind(case_id)
    .bind(&ids)
    .bind(&folders)
    .bind(&titles)
    .bind(&data)
    .bind(&sources)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
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
    let case_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO cases (id, org_id, owner_id, case_number, title, description, notes, tags)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(case_id)
    .bind(r.receiver_org_id)
    .bind(actor)
    .bind(&data.case_number)
    .bind(&data.title)
    .bind(&data.description)
    .bind(sqlx::types::Json(data.notes.clone().unwrap_or_default()))
    .bind(sqlx::types::Json(data.tags.clone().unwrap_or_default()))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE received SET imported_case_id = $2 WHERE id = $1")
        .bind(r.id)
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
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
    jobs::outbox::status_event(
        tx,
        "import.complete",
        serde_json::json!({ "type": "import", "received_id": r.id, "share_id": r.share_id, "imported_case_id": case_id,
                             "org_id": r.receiver_org_id, "status": ImportStatus::Complete, "at": chrono::Utc::now() }),
    )
    .await?;
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

/// R24, R25: newly granted evidence reaches an external view by the grant
/// itself; an imported copy gets it applied (Justice with auto sync) or
/// offered as an available update (everyone else).
pub async fn deliver_new_evidence_tx(
    tx: &mut PgConnection,
    received_id: Uuid,
    evidence_ids: &[Uuid],
) -> Result<()> {
    if evidence_ids.is_empty() {
        return Ok(());
    }
    let r = lock(tx, received_id).await?;
    deliver_to(tx, &r, evidence_ids).await
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

/// `deliver_new_evidence_tx` for a row the caller has locked already.
pub async fn deliver_to(
    tx: &mut PgConnection,
    r: &ReceivedRow,
    evidence_ids: &[Uuid],
) -> Result<()> {
    if evidence_ids.is_empty() {
        return Ok(());
    }
    let Some(imported) = r.imported_case_id else {
        return Ok(());
    };
    if r.revoked_at.is_some() {
        return Ok(()); // R30: no further updates
    }
    let org = orgs::get(tx, r.receiver_org_id).await?;
    if org.kind == OrgKind::Justice && org.auto_sync {
        copy_evidence_tx(tx, r, imported, Some(evidence_ids)).await?;
    } else {
        let ids: Vec<Uuid> = evidence_ids.iter().map(|_| Uuid::new_v4()).collect();
        sqlx::query(
            "INSERT INTO evidence_updates (id, received_id, evidence_id)
             SELECT i, $1, e FROM unnest($2::uuid[], $3::uuid[]) AS u(i, e)
             ON CONFLICT (received_id, evidence_id, kind) DO NOTHING",
        )
        .bind(r.id)
        .bind(&ids)
        .bind(evidence_ids)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// R26: the sharer changed case fields; every live imported copy is offered
/// the change, never applied automatically.
pub async fn record_case_updates_tx(
    tx: &mut PgConnection,
    case_id: Uuid,
    changed: &[(&'static str, Option<String>)],
) -> Result<()> {
    for (field, new_value) in changed {
        sqlx::query(&format!(
            "INSERT INTO case_updates (id, received_id, field, old_value, new_value)
             SELECT gen_random_uuid(), r.id, $2, c.{field}, $3
             FROM received r JOIN cases c ON c.id = r.imported_case_id
             WHERE r.case_id = $1 AND r.revoked_at IS NULL AND c.{field} IS DISTINCT FROM $3"
        ))
        .bind(case_id)
        .bind(field)
        .bind(new_value)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Where a received case stands for its receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReceivedState {
    External,
    Imported,
    Revoked,
}

/// An import's status, as answered and published (`import.complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    Processing,
    Complete,
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

pub async fn list(db: &mut PgConnection, org_id: Uuid) -> Result<Vec<ReceivedItem>> {
    let rows: Vec<ListRow> = sqlx::query_as(
        "SELECT r.id, r.share_id, r.case_id, r.imported_case_id, r.received_at, r.revoked_at, r.sharer_org_id,
                o.name AS sharer_name
         FROM received r JOIN orgs o ON o.id = r.sharer_org_id WHERE r.receiver_org_id = $1 ORDER BY r.received_at DESC",
    )
    .bind(org_id)
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

fn state_of(revoked: bool, imported: bool) -> ReceivedState {
    if revoked {
        ReceivedState::Revoked
    } else if imported {
        ReceivedState::Imported
    } else {
        ReceivedState::External
    }
}

/// Manual import (R19): checked here so a refusal answers at once; the copy
/// itself is a job.
pub async fn request_import(db: &PgPool, user: &UserPrincipal, received_id: Uuid) -> Result<Uuid> {
    let mut tx = db.begin().await?;
    let r = lock(&mut tx, received_id).await?;
    if r.receiver_org_id != user.org_id {
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
    .enqueue_for_tx(&mut tx, Some(user.org_id))
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

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        import_tx(&mut tx, self.received_id, self.user_id)
            .await
            .map_err(crate::sharing::job_error)?;
        tx.commit().await?;
        Ok(())
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaseUpdate {
    pub id: Uuid,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceUpdate {
    pub id: Uuid,
    pub evidence_id: Uuid,
    pub evidence_title: String,
    pub kind: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Updates {
    pub case: Vec<CaseUpdate>,
    pub evidence: Vec<EvidenceUpdate>,
}

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

async fn pending_updates(db: &mut PgConnection, r: &ReceivedRow) -> Result<Updates> {
    if r.revoked_at.is_some() || r.imported_case_id.is_none() {
        return Ok(Updates {
            case: vec![],
            evidence: vec![],
        });
    }
    let case: Vec<(Uuid, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, field, old_value, new_value FROM case_updates WHERE received_id = $1 AND applied_at IS NULL ORDER BY created_at, id",
    )
    .bind(r.id)
    .fetch_all(&mut *db)
    .await?;
    // Only evidence still granted through a live share is offered (R27).
    let evidence: Vec<(Uuid, Uuid, String, String)> = sqlx::query_as(
        "SELECT u.id, u.evidence_id, e.title, u.kind FROM evidence_updates u
         JOIN evidence e ON e.id = u.evidence_id
         JOIN grants g ON g.received_id = u.received_id AND g.evidence_id = u.evidence_id
         JOIN shares s ON s.id = g.share_id AND s.status = 'complete'
         WHERE u.received_id = $1 AND u.applied_at IS NULL ORDER BY u.created_at, u.id",
    )
    .bind(r.id)
    .fetch_all(&mut *db)
    .await?;
    Ok(Updates {
        case: case
            .into_iter()
            .map(|(id, field, old, new)| CaseUpdate {
                id,
                field,
                old,
                new,
            })
            .collect(),
        evidence: evidence
            .into_iter()
            .map(|(id, evidence_id, evidence_title, kind)| EvidenceUpdate {
                id,
                evidence_id,
                evidence_title,
                kind,
            })
            .collect(),
    })
}

/// R20: import details of a received or imported case.
pub async fn import_details(
    db: &mut PgConnection,
    user: &UserPrincipal,
    case_id: Uuid,
) -> Result<ImportDetails> {
    let r = for_case(db, user.org_id, case_id)
        .await?
        .ok_or(Error::NotFound("case"))?;
    let share = crate::sharing::load(db, r.share_id).await?;
    let mut recipients: Vec<serde_json::Value> = share
        .target
        .0
        .recipients()
        .iter()
        .map(|x| serde_json::to_value(x).unwrap_or_default())
        .collect();
    let onward: Vec<(Option<Uuid>, Option<Uuid>)> =
        sqlx::query_as("SELECT user_id, group_id FROM received_recipients WHERE received_id = $1 ORDER BY added_at")
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    #[serde(default)]
    pub case_update_ids: Vec<Uuid>,
    #[serde(default)]
    pub evidence_update_ids: Vec<Uuid>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplyResult {
    pub applied_case_updates: usize,
    pub applied_evidence_updates: usize,
}

/// R27: apply all or a selection of the offered updates to the imported copy.
pub async fn apply_updates(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    req: ApplyRequest,
) -> Result<ApplyResult> {
    let mut tx = db.begin().await?;
    let found = for_case(&mut tx, user.org_id, case_id)
        .await?
        .ok_or(Error::NotFound("case"))?;
    let r = lock(&mut tx, found.id).await?;
    let Some(imported) = r.imported_case_id.filter(|c| *c == case_id) else {
        return Err(Error::validation(
            "updates apply to an imported case; import it first",
        ));
    };
    if r.revoked_at.is_some() {
        return Err(Error::ShareRevoked);
    }
    let pending = pending_updates(&mut tx, &r).await?;
    let pick = |all_ids: Vec<Uuid>, wanted: &[Uuid]| -> Result<Vec<Uuid>> {
        if req.all {
            return Ok(all_ids);
        }
        if let Some(bad) = wanted.iter().find(|w| !all_ids.contains(w)) {
            return Err(Error::validation(format!(
                "{bad} is not a pending update of this case"
            )));
        }
        Ok(wanted.to_vec())
    };
    let case_ids = pick(
        pending.case.iter().map(|u| u.id).collect(),
        &req.case_update_ids,
    )?;
    let ev_ids = pick(
        pending.evidence.iter().map(|u| u.id).collect(),
        &req.evidence_update_ids,
    )?;

    for u in pending.case.iter().filter(|u| case_ids.contains(&u.id)) {
        let column = match u.field.as_str() {
            "title" => "title",
            "case_number" => "case_number",
            _ => "description",
        };
        sqlx::query(&format!(
            "UPDATE cases SET {column} = $2, updated_at = now() WHERE id = $1"
        ))
        .bind(imported)
        .bind(&u.new)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE case_updates SET applied_at = now() WHERE id = ANY($1)")
        .bind(&case_ids)
        .execute(&mut *tx)
        .await?;
    let evidence_ids: Vec<Uuid> = pending
        .evidence
        .iter()
        .filter(|u| ev_ids.contains(&u.id))
        .map(|u| u.evidence_id)
        .collect();
    copy_evidence_tx(&mut tx, &r, imported, Some(&evidence_ids)).await?;
    sqlx::query("UPDATE evidence_updates SET applied_at = now() WHERE id = ANY($1)")
        .bind(&ev_ids)
        .execute(&mut *tx)
        .await?;
    audit::record(
        &mut tx,
        Action::UpdateApplied,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(imported),
            share_id: Some(r.share_id),
            details: Some(
                serde_json::json!({ "case_update_ids": case_ids, "evidence_update_ids": ev_ids }),
            ),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(ApplyResult {
        applied_case_updates: case_ids.len(),
        applied_evidence_updates: ev_ids.len(),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OnwardRecipient {
    User { user_id: Uuid },
    Group { group_id: Uuid },
}

/// R28: onward sharing within the receiving org, only under `internal_share`
/// of the original share's policy.
pub async fn add_recipient(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    who: OnwardRecipient,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let r = for_case(&mut tx, user.org_id, case_id)
        .await?
        .ok_or(Error::NotFound("case"))?;
    if r.revoked_at.is_some() {
        return Err(Error::ShareRevoked);
    }
    if !r.policy.policy.permissions.internal_share {
        return Err(Error::PolicyForbids(
            "the sharing policy does not allow onward (internal) sharing".into(),
        ));
    }
    let (user_id, group_id) = match who {
        OnwardRecipient::User { user_id } => (Some(user_id), None),
        OnwardRecipient::Group { group_id } => (None, Some(group_id)),
    };
    let belongs: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND org_id = $3)
             OR EXISTS (SELECT 1 FROM groups WHERE id = $2 AND org_id = $3)",
    )
    .bind(user_id)
    .bind(group_id)
    .bind(user.org_id)
    .fetch_one(&mut *tx)
    .await?;
    if !belongs {
        return Err(Error::validation(
            "recipient must be a user or group of your organization",
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO received_recipients (received_id, user_id, group_id, added_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(r.id)
    .bind(user_id)
    .bind(group_id)
    .bind(user.user_id)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() > 0 {
        audit::record(
            &mut tx,
            Action::OnwardShare,
            audit::Entry {
                org_id: Some(user.org_id),
                actor_user_id: Some(user.user_id),
                case_id: Some(case_id),
                share_id: Some(r.share_id),
                details: Some(serde_json::json!({ "user_id": user_id, "group_id": group_id, "received_id": r.id })),
                ..Default::default()
            },
        )
        .await?;
        let emails = notify::principal_emails(&mut tx, user_id, group_id).await?;
        notify::enqueue_tx(
            &mut tx,
            NoticeKind::OnwardShare,
            Some(r.share_id),
            Some(r.id),
            &emails,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
