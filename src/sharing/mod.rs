//! Advanced sharing (R13–R17): the share request, its validation and refusals
//! (R2, R4), the `ShareCase` job that materializes grants set-based, and the
//! case's access list (R16).

pub mod fanout;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::cases;
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::jobs::{self, Job, JobError, Reopened};
use crate::notify::{self, NoticeKind};
use crate::orgs::{self, OrgKind};
use crate::policy::{self, PolicySnapshot};
use crate::principal::UserPrincipal;
use crate::receiving;

/// R13.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    Case,
    Folders { folder_ids: Vec<Uuid> },
    Evidence { evidence_ids: Vec<Uuid> },
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Recipient {
    User { user_id: Uuid },
    Group { group_id: Uuid },
    Email { email: String },
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    pub scope: Scope,
    pub target: Target,
    pub message: Option<String>,
    /// R11: evidence whose community-request caption the receiver gets redacted.
    #[serde(default)]
    pub redact_caption_evidence_ids: Vec<Uuid>,
}

/// A share's status (`share_status` in PostgreSQL, R15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "share_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ShareStatus {
    Processing,
    Complete,
    Failed,
    Revoked,
}

impl ShareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareStatus::Processing => "processing",
            ShareStatus::Complete => "complete",
            ShareStatus::Failed => "failed",
            ShareStatus::Revoked => "revoked",
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

/// A share of a case owned by `org_id` (404 for anyone else: ids do not leak).
pub async fn load_owned(db: &mut PgConnection, org_id: Uuid, share_id: Uuid) -> Result<ShareRow> {
    let share = load(db, share_id).await?;
    if share.org_id != org_id {
        return Err(Error::NotFound("share"));
    }
    Ok(share)
}

pub async fn list_for_case(db: &mut PgConnection, case_id: Uuid) -> Result<Vec<ShareView>> {
    let rows: Vec<ShareRow> = sqlx::query_as(&format!(
        "SELECT {SHARE_COLUMNS} FROM shares WHERE case_id = $1 ORDER BY created_at, id"
    ))
    .bind(case_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| r.view(None)).collect())
}

/// Accept a share request: validate, record the share with its policy
/// snapshot (R12) and its job in one transaction; a worker does the rest (R15).
pub async fn create(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    req: ShareRequest,
) -> Result<ShareView> {
    let mut tx = db.begin().await?;
    cases::owned(&mut tx, user.org_id, case_id).await?;
    let org = orgs::get(&mut tx, user.org_id).await?;
    // R2: nothing advanced before an admin completed setup.
    if org.default_policy_id.is_none() {
        return Err(Error::AdvancedSharingNotSetUp);
    }
    validate_scope(&mut tx, case_id, &req.scope).await?;
    if !req.redact_caption_evidence_ids.is_empty() {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT id) FROM evidence WHERE case_id = $1 AND id = ANY($2)",
        )
        .bind(case_id)
        .bind(&req.redact_caption_evidence_ids)
        .fetch_one(&mut *tx)
        .await?;
        if n as usize != distinct(&req.redact_caption_evidence_ids) {
            return Err(Error::validation(
                "redact_caption_evidence_ids must name evidence of this case",
            ));
        }
    }
    if let Some(m) = &req.message {
        if m.len() > 10_000 {
            return Err(Error::validation("message is longer than 10000 characters"));
        }
    }
    let (target_kind, target_org, snapshot) = match &req.target {
        Target::Internal { recipients } => {
            if recipients.is_empty() {
                return Err(Error::validation(
                    "an internal share names at least one user or group",
                ));
            }
            validate_recipients(&mut tx, user.org_id, recipients, false).await?;
            ("internal", None, None)
        }
        Target::Partner { org_id, recipients } => {
            if *org_id == user.org_id || !orgs::are_partners(&mut tx, user.org_id, *org_id).await? {
                return Err(Error::NotAPartner); // R4
            }
            let partner = orgs::get(&mut tx, *org_id).await?;
            if partner.kind == OrgKind::Fpp {
                return Err(Error::ClassicSharingRequired); // R4, R40
            }
            validate_recipients(&mut tx, *org_id, recipients, true).await?;
            let snapshot = policy::effective(&mut tx, user.org_id, *org_id)
                .await?
                .ok_or(Error::AdvancedSharingNotSetUp)?;
            ("partner", Some(*org_id), Some(snapshot))
        }
    };
    let id = Uuid::new_v4();
    let row: ShareRow = sqlx::query_as(&format!(
        "INSERT INTO shares (id, case_id, org_id, created_by, target_kind, target_org_id, scope, target, message,
                             redact_caption_evidence_ids, policy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {SHARE_COLUMNS}"
    ))
    .bind(id)
    .bind(case_id)
    .bind(user.org_id)
    .bind(user.user_id)
    .bind(target_kind)
    .bind(target_org)
    .bind(sqlx::types::Json(&req.scope))
    .bind(sqlx::types::Json(&req.target))
    .bind(&req.message)
    .bind(&req.redact_caption_evidence_ids)
    .bind(snapshot.as_ref().map(sqlx::types::Json))
    .fetch_one(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Action::Share,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            share_id: Some(id),
            details: Some(
                serde_json::json!({ "target_kind": target_kind, "target_org_id": target_org }),
            ),
            ..Default::default()
        },
    )
    .await?;
    let job_id = ShareCase { share_id: id }
        .enqueue_for_tx(&mut tx, Some(user.org_id))
        .await?;
    jobs::outbox::status_event(
        &mut tx,
        "share.processing",
        status_payload(&row, ShareStatus::Processing),
    )
    .await?;
    tx.commit().await?;
    Ok(row.view(Some(job_id)))
}

fn distinct(ids: &[Uuid]) -> usize {
    ids.iter().collect::<std::collections::HashSet<_>>().len()
}

pub(crate) async fn validate_scope(
    db: &mut PgConnection,
    case_id: Uuid,
    scope: &Scope,
) -> Result<()> {
    let (table, ids) = match scope {
        Scope::Case => return Ok(()),
        Scope::Folders { folder_ids } => ("folders", folder_ids),
        Scope::Evidence { evidence_ids } => ("evidence", evidence_ids),
    };
    if ids.is_empty() {
        return Err(Error::validation(format!("scope lists no {table}")));
    }
    let n: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT id) FROM {table} WHERE case_id = $1 AND id = ANY($2)"
    ))
    .bind(case_id)
    .bind(ids)
    .fetch_one(db)
    .await?;
    if n as usize != distinct(ids) {
        return Err(Error::validation(format!(
            "scope names {table} that are not in this case"
        )));
    }
    Ok(())
}

/// Users and groups must belong to `org_id`; emails must parse.
async fn validate_recipients(
    db: &mut PgConnection,
    org_id: Uuid,
    recipients: &[Recipient],
    emails_ok: bool,
) -> Result<()> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    for r in recipients {
        match r {
            Recipient::User { user_id } => users.push(*user_id),
            Recipient::Group { group_id } => groups.push(*group_id),
            Recipient::Email { email } => {
                if !emails_ok {
                    return Err(Error::validation(
                        "internal shares name users or groups, not email addresses",
                    ));
                }
                if !orgs::valid_email(email) {
                    return Err(Error::validation(format!(
                        "{email:?} is not a valid email address"
                    )));
                }
            }
        }
    }
    let (nu, ng): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(DISTINCT id) FROM users WHERE org_id = $1 AND id = ANY($2)),
                (SELECT count(DISTINCT id) FROM groups WHERE org_id = $1 AND id = ANY($3))",
    )
    .bind(org_id)
    .bind(&users)
    .bind(&groups)
    .fetch_one(db)
    .await?;
    if nu as usize != distinct(&users) || ng as usize != distinct(&groups) {
        return Err(Error::validation(
            "recipients must be users or groups of the target organization",
        ));
    }
    Ok(())
}

/// The body of a `share.<status>` event (R15): ids and status only (R10).
pub fn status_payload(share: &ShareRow, status: ShareStatus) -> serde_json::Value {
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

/// The worker half of a share (R15–R17, R21).
#[derive(Debug, Serialize, Deserialize)]
pub struct ShareCase {
    pub share_id: Uuid,
}

impl Job for ShareCase {
    const NAME: &'static str = "share-case";
    type Context = JobContext;

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> Result<(), JobError> {
        let mut tx = ctx.db.begin().await?;
        let share: Option<ShareRow> = sqlx::query_as(&format!(
            "SELECT {SHARE_COLUMNS} FROM shares WHERE id = $1 FOR UPDATE"
        ))
        .bind(self.share_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut share) = share else {
            return Err(JobError::permanent(format!(
                "share {} does not exist",
                self.share_id
            )));
        };
        crate::jobs::record_case(share.case_id);
        if share.status != ShareStatus::Processing {
            return Ok(()); // done before, or revoked meanwhile: nothing to do
        }
        let notice_kind = match share.target_org_id {
            None => NoticeKind::InternalShare,
            Some(partner) => {
                let received_id = materialize(&mut tx, &share, partner)
                    .await
                    .map_err(job_error)?;
                share.received_id = Some(received_id);
                NoticeKind::Share
            }
        };
        sqlx::query("UPDATE shares SET status = 'complete', completed_at = now(), received_id = $2 WHERE id = $1")
            .bind(share.id)
            .bind(share.received_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            Action::ShareComplete,
            audit::Entry {
                org_id: Some(share.org_id),
                case_id: Some(share.case_id),
                share_id: Some(share.id),
                ..Default::default()
            },
        )
        .await?;
        jobs::outbox::status_event(
            &mut tx,
            "share.complete",
            status_payload(&share, ShareStatus::Complete),
        )
        .await?;
        let recipients = notify::share_recipients(&mut tx, &share).await?;
        notify::enqueue_tx(
            &mut tx,
            notice_kind,
            Some(share.id),
            share.received_id,
            &recipients,
        )
        .await?;
        // R19: auto-import once the grants exist, in the same transaction.
        if let Some(received_id) = share.received_id {
            receiving::auto_import_tx(&mut tx, received_id)
                .await
                .map_err(job_error)?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn on_dead(&self, ctx: &JobContext, reason: &str) {
        if let Err(e) = fail(&ctx.db, self.share_id, reason).await {
            tracing::error!(error = %e, share_id = %self.share_id, "cannot mark share failed");
        }
    }

    /// A failed share goes back to `processing` (failure cleared), with a
    /// `share.processing` status event.
    async fn on_requeue(&self, tx: &mut PgConnection) -> sqlx::Result<Reopened> {
        let share: Option<ShareRow> = sqlx::query_as(&format!(
            "UPDATE shares SET status = 'processing', failure = NULL
             WHERE id = $1 AND status = 'failed' RETURNING {SHARE_COLUMNS}"
        ))
        .bind(self.share_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(share) = share else {
            return Ok(Reopened {
                subject: None,
                share_id: Some(self.share_id),
            });
        };
        jobs::outbox::status_event(
            tx,
            "share.processing",
            status_payload(&share, ShareStatus::Processing),
        )
        .await?;
        Ok(Reopened {
            subject: Some(format!("share {}: failed -> processing", share.id)),
            share_id: Some(share.id),
        })
    }
}

pub fn job_error(e: Error) -> JobError {
    match e {
        Error::Database(e) => e.into(),
        Error::Internal(e) => JobError::transient(e.to_string()),
        other => JobError::permanent(other.to_string()),
    }
}

async fn fail(db: &PgPool, share_id: Uuid, reason: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    let share: Option<ShareRow> = sqlx::query_as(&format!(
        "UPDATE shares SET status = 'failed', failure = $2 WHERE id = $1 AND status = 'processing' RETURNING {SHARE_COLUMNS}"
    ))
    .bind(share_id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(share) = share {
        jobs::outbox::status_event(
            &mut tx,
            "share.failed",
            status_payload(&share, ShareStatus::Failed),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Create or extend the collaboration with `partner` (R17), copy the folder
/// tree once (R21) and grant the scope set-based. Returns the received id.
async fn materialize(tx: &mut PgConnection, share: &ShareRow, partner: Uuid) -> Result<Uuid> {
    let policy = share
        .policy
        .as_ref()
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("partner share without policy")))?;
    let (received_id, received_at): (Uuid, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "INSERT INTO received (id, case_id, sharer_org_id, receiver_org_id, policy, share_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (case_id, receiver_org_id) DO UPDATE
            SET policy = EXCLUDED.policy, share_id = EXCLUDED.share_id, revoked_at = NULL
         RETURNING id, received_at",
    )
    .bind(Uuid::new_v4())
    .bind(share.case_id)
    .bind(share.org_id)
    .bind(partner)
    .bind(policy)
    .bind(share.id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE shares SET received_id = $2 WHERE id = $1")
        .bind(share.id)
        .bind(received_id)
        .execute(&mut *tx)
        .await?;

    copy_folders(tx, received_id, received_at, share).await?;
    let new_evidence = grant(tx, received_id, share).await?;
    receiving::deliver_new_evidence_tx(tx, received_id, &new_evidence).await?;

    // R7: a snapshot of the case's and its evidence's audit trail, if allowed.
    let snapshot = if policy.policy.permissions.sender_audit_trail {
        let items = audit::for_case(tx, share.org_id, share.case_id).await?;
        Some(serde_json::json!({ "taken_at": chrono::Utc::now(), "items": items }))
    } else {
        None
    };
    sqlx::query("UPDATE received SET sender_snapshot = $2 WHERE id = $1")
        .bind(received_id)
        .bind(snapshot)
        .execute(&mut *tx)
        .await?;
    Ok(received_id)
}

/// The owner's folders in scope: all of them (case), the selected ones with
/// their subfolders (folders), or the ancestors of the selected evidence.
pub(crate) const SCOPE_FOLDERS_SQL: &str = "
    WITH RECURSIVE sub AS (
        SELECT id FROM folders WHERE case_id = $1 AND ($2 = 'case' OR id = ANY($3))
        UNION
        SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id WHERE $2 = 'folders'
    ),
    up AS (
        SELECT f.id, f.parent_id FROM folders f
        WHERE f.case_id = $1 AND f.id IN (SELECT folder_id FROM evidence WHERE id = ANY($4))
        UNION
        SELECT f.id, f.parent_id FROM folders f JOIN up ON f.id = up.parent_id
    )
    SELECT id FROM sub WHERE $2 <> 'evidence'
    UNION SELECT id FROM up WHERE $2 = 'evidence'";

pub(crate) fn scope_args(scope: &Scope) -> (&'static str, Vec<Uuid>, Vec<Uuid>) {
    match scope {
        Scope::Case => ("case", vec![], vec![]),
        Scope::Folders { folder_ids } => ("folders", folder_ids.clone(), vec![]),
        Scope::Evidence { evidence_ids } => ("evidence", vec![], evidence_ids.clone()),
    }
}

/// R21: copy in-scope folders that existed when the collaboration began and
/// are not copied yet. Renames and moves later never touch these copies.
async fn copy_folders(
    tx: &mut PgConnection,
    received_id: Uuid,
    received_at: chrono::DateTime<chrono::Utc>,
    share: &ShareRow,
) -> Result<()> {
    let (kind, folder_ids, evidence_ids) = scope_args(&share.scope.0);
    let copied: Vec<Uuid> = sqlx::query_scalar(&format!(
        "INSERT INTO received_folders (id, received_id, source_folder_id, name)
         SELECT gen_random_uuid(), $5, f.id, f.name FROM folders f
         WHERE f.id IN ({SCOPE_FOLDERS_SQL}) AND f.created_at <= $6
         ON CONFLICT (received_id, source_folder_id) DO NOTHING
         RETURNING source_folder_id"
    ))
    .bind(share.case_id)
    .bind(kind)
    .bind(&folder_ids)
    .bind(&evidence_ids)
    .bind(received_id)
    .bind(received_at)
    .fetch_all(&mut *tx)
    .await?;
    if !copied.is_empty() {
        sqlx::query(
            "UPDATE received_folders rf SET parent_id = rp.id
             FROM folders f JOIN received_folders rp ON rp.source_folder_id = f.parent_id
             WHERE rf.received_id = $1 AND rp.received_id = $1 AND rf.source_folder_id = f.id
               AND rf.source_folder_id = ANY($2)",
        )
        .bind(received_id)
        .bind(&copied)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Grant every in-scope evidence item in one statement. Returns the ids that
/// were not granted before (R17: a repeated share adds no duplicate).
pub async fn grant(
    tx: &mut PgConnection,
    received_id: Uuid,
    share: &ShareRow,
) -> Result<Vec<Uuid>> {
    let (kind, folder_ids, evidence_ids) = scope_args(&share.scope.0);
    let new: Vec<Uuid> = sqlx::query_as::<_, (Uuid, bool)>(&format!(
        "INSERT INTO grants (received_id, evidence_id, share_id, caption_redacted)
         SELECT $5, e.id, $6, e.id = ANY($7) FROM evidence e
         WHERE e.case_id = $1 AND (
             $2 = 'case'
             OR ($2 = 'folders' AND e.folder_id IN ({SCOPE_FOLDERS_SQL}))
             OR ($2 = 'evidence' AND e.id = ANY($4)))
         ON CONFLICT (received_id, evidence_id) DO UPDATE
            SET share_id = EXCLUDED.share_id,
                caption_redacted = grants.caption_redacted OR EXCLUDED.caption_redacted
         RETURNING evidence_id, (xmax = 0) AS inserted"
    ))
    .bind(share.case_id)
    .bind(kind)
    .bind(&folder_ids)
    .bind(&evidence_ids)
    .bind(received_id)
    .bind(share.id)
    .bind(&share.redact_caption_evidence_ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .filter_map(|(id, inserted)| inserted.then_some(id))
    .collect();
    Ok(new)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessEntry {
    /// user | group | org | email
    pub kind: String,
    pub id: Option<Uuid>,
    pub name: String,
    pub owner: bool,
}

/// R16: everyone with access to the case, the owner marked.
pub async fn access_list(db: &mut PgConnection, case: &cases::CaseRow) -> Result<Vec<AccessEntry>> {
    let mut items = Vec::new();
    if let Some(owner) = case.owner_id {
        let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
            .bind(owner)
            .fetch_one(&mut *db)
            .await?;
        items.push(AccessEntry {
            kind: "user".into(),
            id: Some(owner),
            name,
            owner: true,
        });
    }
    let shares: Vec<ShareRow> = sqlx::query_as(&format!(
        "SELECT {SHARE_COLUMNS} FROM shares WHERE case_id = $1 AND status IN ('processing', 'complete')
         ORDER BY created_at"
    ))
    .bind(case.id)
    .fetch_all(&mut *db)
    .await?;
    let mut seen = std::collections::HashSet::new();
    for share in shares {
        if let Some(org_id) = share.target_org_id {
            if seen.insert(("org", org_id.to_string())) {
                let org = orgs::get(db, org_id).await?;
                items.push(AccessEntry {
                    kind: "org".into(),
                    id: Some(org_id),
                    name: org.name,
                    owner: false,
                });
            }
        }
        for r in share.target.0.recipients() {
            let entry = match r {
                Recipient::User { user_id } => {
                    let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *db)
                        .await?;
                    AccessEntry {
                        kind: "user".into(),
                        id: Some(*user_id),
                        name,
                        owner: false,
                    }
                }
                Recipient::Group { group_id } => {
                    let name: String = sqlx::query_scalar("SELECT name FROM groups WHERE id = $1")
                        .bind(group_id)
                        .fetch_one(&mut *db)
                        .await?;
                    AccessEntry {
                        kind: "group".into(),
                        id: Some(*group_id),
                        name,
                        owner: false,
                    }
                }
                Recipient::Email { email } => AccessEntry {
                    kind: "email".into(),
                    id: None,
                    name: email.clone(),
                    owner: false,
                },
            };
            let key = (
                if entry.kind == "email" {
                    "email"
                } else {
                    "principal"
                },
                entry
                    .id
                    .map(|i| i.to_string())
                    .unwrap_or(entry.name.clone()),
            );
            if Some(&entry.id) != Some(&case.owner_id) && seen.insert(key) {
                items.push(entry);
            }
        }
    }
    // Onward recipients added by receivers (R28).
    let onward: Vec<(String, Uuid, String)> = sqlx::query_as(
        "SELECT CASE WHEN rr.user_id IS NOT NULL THEN 'user' ELSE 'group' END,
                coalesce(rr.user_id, rr.group_id), coalesce(u.name, g.name)
         FROM received_recipients rr JOIN received r ON r.id = rr.received_id
         LEFT JOIN users u ON u.id = rr.user_id LEFT JOIN groups g ON g.id = rr.group_id
         WHERE r.case_id = $1 AND r.revoked_at IS NULL ORDER BY rr.added_at",
    )
    .bind(case.id)
    .fetch_all(&mut *db)
    .await?;
    for (kind, id, name) in onward {
        if seen.insert(("principal", id.to_string())) {
            items.push(AccessEntry {
                kind,
                id: Some(id),
                name,
                owner: false,
            });
        }
    }
    Ok(items)
}

/// One onward share (R28) as the owning org sees it: the secondary
/// dissemination of its case by a receiver.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct Dissemination {
    pub received_id: Uuid,
    /// The share the collaboration is governed by.
    pub share_id: Uuid,
    pub receiving_org_id: Uuid,
    pub receiving_org_name: String,
    pub added_by: Uuid,
    pub added_by_name: String,
    /// user | group
    pub recipient_kind: String,
    pub recipient_id: Uuid,
    pub recipient_name: String,
    pub added_at: chrono::DateTime<chrono::Utc>,
}

pub async fn dissemination(db: &mut PgConnection, case_id: Uuid) -> Result<Vec<Dissemination>> {
    Ok(sqlx::query_as(
        "SELECT r.id AS received_id, r.share_id, o.id AS receiving_org_id, o.name AS receiving_org_name,
                rr.added_by, a.name AS added_by_name,
                CASE WHEN rr.user_id IS NOT NULL THEN 'user' ELSE 'group' END AS recipient_kind,
                coalesce(rr.user_id, rr.group_id) AS recipient_id, coalesce(u.name, g.name) AS recipient_name,
                rr.added_at
         FROM received_recipients rr
         JOIN received r ON r.id = rr.received_id
         JOIN orgs o ON o.id = r.receiver_org_id
         JOIN users a ON a.id = rr.added_by
         LEFT JOIN users u ON u.id = rr.user_id
         LEFT JOIN groups g ON g.id = rr.group_id
         WHERE r.case_id = $1 ORDER BY rr.added_at",
    )
    .bind(case_id)
    .fetch_all(db)
    .await?)
}
