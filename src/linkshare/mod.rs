//! Classic link sharing (R40): the content store (evidence bytes on the local
//! filesystem under `content_dir`), link shares (a ZIP or ISO 9660 package of
//! the case or of selected folders/evidence, with a manifest of every file's
//! SHA-256), the `BuildLinkShare` job that builds the package, and downloads
//! by token.
//!
//! A link share is a snapshot: the package is built once from the evidence in
//! scope when the job runs; evidence added later is never added to it.

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::path::Path;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::audit::{self, Action};
use crate::cases;
use crate::config::Settings;
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::jobs::{Job, JobError, Reopened};
use crate::notify::{self, NoticeKind};
use crate::orgs;
use crate::policy::{self, PolicySnapshot};
use crate::principal::UserPrincipal;
use crate::sharing::{self, Scope};
use crate::store::{ContentStore, Object, Upload};

pub mod iso9660;
mod package;

pub use package::Package;
use package::{BuildError, Built, Plan, PlannedEvidence};

/// The longest validity a link may be given: one year.
pub const MAX_DURATION_HOURS: i32 = 24 * 365;

// ---------------------------------------------------------------- content store

/// The `content.uri` of evidence whose bytes are in the store.
pub fn store_uri(evidence_id: Uuid) -> String {
    format!("store://{evidence_id}")
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StoredContent {
    pub sha256: String,
    pub size_bytes: i64,
}

/// Store the content of `evidence_id` (evidence of a case owned by the
/// caller's org), streamed from `body`: hashed while written, refused (and
/// nothing kept) when larger than `max_upload_bytes` or when its SHA-256 or
/// size differs from what the evidence declares.
pub async fn upload<S, E>(
    db: &PgPool,
    settings: &Settings,
    store: &ContentStore,
    user: &UserPrincipal,
    evidence_id: Uuid,
    content_length: Option<u64>,
    body: S,
) -> Result<StoredContent>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let owned: Option<Uuid> = sqlx::query_scalar(
        "SELECT e.case_id FROM evidence e JOIN cases c ON c.id = e.case_id
         WHERE e.id = $1 AND c.org_id = $2",
    )
    .bind(evidence_id)
    .bind(user.org_id)
    .fetch_optional(db)
    .await?;
    let Some(case_id) = owned else {
        return Err(Error::NotFound("evidence"));
    };
    let max = settings.max_upload_bytes;
    if content_length.is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let mut upload = store
        .upload(Object::Evidence(evidence_id))
        .await
        .map_err(|e| io_error("start writing to the content store", e))?;
    match receive(&mut upload, max, body).await {
        Ok((sha256, size)) => {
            record_upload(db, user, case_id, evidence_id, upload, sha256, size).await
        }
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}

fn too_large(max: u64) -> Error {
    Error::PayloadTooLarge(format!(
        "the content is larger than the limit of {max} bytes"
    ))
}

/// The content store failed (unreachable, full): 503, the client may retry;
/// nothing was recorded.
fn io_error(what: &str, e: std::io::Error) -> Error {
    tracing::warn!(error = %e, "content store: cannot {what}");
    Error::Unavailable(format!("the content store cannot {what} now: {e}"))
}

/// Write the body into `upload`, hashing it; returns (SHA-256, size).
async fn receive<S, E>(upload: &mut Upload, max: u64, mut body: S) -> Result<(String, u64)>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::validation(format!("reading the body: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large(max));
        }
        hasher.update(&chunk);
        upload
            .write(&chunk)
            .await
            .map_err(|e| io_error("write the upload", e))?;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Check the upload against what the evidence declares; commit it to the
/// store and record it on the evidence, or abort it.
async fn record_upload(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    evidence_id: Uuid,
    upload: Upload,
    sha256: String,
    size: u64,
) -> Result<StoredContent> {
    let size_bytes = size as i64;
    let checked = async {
        let mut tx = db.begin().await?;
        let declared: (Option<String>, Option<i64>) = sqlx::query_as(
            "SELECT data->'content'->>'sha256', (data->'content'->>'size_bytes')::bigint
             FROM evidence WHERE id = $1 FOR UPDATE",
        )
        .bind(evidence_id)
        .fetch_one(&mut *tx)
        .await?;
        if let Some(declared) = &declared.0 {
            if !declared.eq_ignore_ascii_case(&sha256) {
                return Err(Error::validation(format!(
                    "the content's SHA-256 {sha256} differs from the declared {declared}"
                )));
            }
        }
        if let Some(declared) = declared.1 {
            if declared != size_bytes {
                return Err(Error::validation(format!(
                    "the content has {size_bytes} bytes, the evidence declares {declared}"
                )));
            }
        }
        Ok(tx)
    }
    .await;
    let mut tx = match checked {
        Ok(tx) => tx,
        Err(e) => {
            upload.abort().await;
            return Err(e);
        }
    };
    // The row stays locked while the object becomes visible, so two uploads
    // of the same evidence are recorded in the order they were stored.
    upload
        .commit()
        .await
        .map_err(|e| io_error("store the upload", e))?;
    sqlx::query(
        "UPDATE evidence SET data = jsonb_set(data, '{content}', coalesce(data->'content', '{}'::jsonb) || $2)
         WHERE id = $1",
    )
    .bind(evidence_id)
    .bind(serde_json::json!({ "sha256": sha256, "size_bytes": size_bytes, "uri": store_uri(evidence_id) }))
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Action::ContentUploaded,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            evidence_id: Some(evidence_id),
            details: Some(serde_json::json!({ "size_bytes": size_bytes })),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(StoredContent { sha256, size_bytes })
}

/// What `caseshare content verify` found.
#[derive(Debug, Default)]
pub struct ContentReport {
    pub checked: u64,
    pub bytes: u64,
    pub problems: Vec<ContentProblem>,
}

#[derive(Debug)]
pub struct ContentProblem {
    pub case_id: Uuid,
    pub evidence_id: Uuid,
    pub reason: String,
}

impl ContentReport {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} stored item(s), {} bytes re-hashed; {} problem(s)\n",
            self.checked,
            self.bytes,
            self.problems.len()
        );
        for p in &self.problems {
            out.push_str(&format!(
                "case {} evidence {}: {}\n",
                p.case_id, p.evidence_id, p.reason
            ));
        }
        out
    }
}

/// Chain of custody: re-hash every stored evidence content (of one case, or
/// all) and compare it with the SHA-256 recorded at upload. Each case checked
/// gets a `content_verified` audit entry with the counts and the evidence
/// that failed, so the trail shows when integrity was last proven.
pub async fn verify_content(
    db: &PgPool,
    store: &ContentStore,
    case_id: Option<Uuid>,
) -> Result<ContentReport> {
    let items: Vec<(Uuid, Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT e.case_id, c.org_id, e.id, e.data->'content'->>'sha256' FROM evidence e
         JOIN cases c ON c.id = e.case_id
         WHERE e.data->'content'->>'uri' = 'store://' || e.id::text
           AND ($1::uuid IS NULL OR e.case_id = $1)
         ORDER BY e.case_id, e.id",
    )
    .bind(case_id)
    .fetch_all(db)
    .await?;
    let mut report = ContentReport::default();
    let mut per_case: Vec<(Uuid, Uuid, u64, Vec<Uuid>)> = Vec::new();
    for (case_id, org_id, evidence_id, recorded) in items {
        if per_case.last().is_none_or(|(c, ..)| *c != case_id) {
            per_case.push((case_id, org_id, 0, Vec::new()));
        }
        let outcome = rehash(store, evidence_id).await;
        report.checked += 1;
        let problem = match (outcome, recorded) {
            (Ok((sha, n)), Some(recorded)) => {
                report.bytes += n;
                (!sha.eq_ignore_ascii_case(&recorded))
                    .then(|| format!("SHA-256 {sha}, recorded {recorded}"))
            }
            (Ok(_), None) => Some("no SHA-256 recorded".to_string()),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => {
                Some("missing from the store".to_string())
            }
            (Err(e), _) => return Err(io_error("read the content store", e)),
        };
        let case = per_case.last_mut().expect("pushed above");
        case.2 += 1;
        if let Some(reason) = problem {
            case.3.push(evidence_id);
            report.problems.push(ContentProblem {
                case_id,
                evidence_id,
                reason,
            });
        }
    }
    let mut tx = db.begin().await?;
    for (case_id, org_id, checked, failed) in per_case {
        audit::record(
            &mut tx,
            Action::ContentVerified,
            audit::Entry {
                org_id: Some(org_id),
                case_id: Some(case_id),
                details: Some(serde_json::json!({ "checked": checked, "failed": failed })),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// The SHA-256 and size of what the store holds for `evidence_id`.
async fn rehash(store: &ContentStore, evidence_id: Uuid) -> std::io::Result<(String, u64)> {
    let object = Object::Evidence(evidence_id);
    let size = store.size(object).await?;
    let mut stream = store.read_range(object, 0, size).await?;
    let mut hasher = Sha256::new();
    let mut n = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        n += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((hex::encode(hasher.finalize()), n))
}

// ------------------------------------------------------------------ link shares

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LinkRecipient {
    /// A user of the sharer's org or of a partner org (e.g. an `fpp` partner, R4).
    User {
        user_id: Uuid,
    },
    Email {
        email: String,
    },
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Attachments {
    #[serde(default)]
    pub audit_trails: bool,
    #[serde(default)]
    pub transcripts: bool,
    #[serde(default)]
    pub table_of_contents: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkShareRequest {
    pub scope: Scope,
    pub recipient: LinkRecipient,
    #[serde(default)]
    pub attachments: Attachments,
    #[serde(default)]
    pub retain_folder_structure: bool,
    pub package: Package,
    /// How long the link stays valid once the package is built (1..=8760).
    pub duration_hours: i32,
    pub message: Option<String>,
}

/// A link share's status (`link_share_status` in PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[sqlx(type_name = "link_share_status", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum LinkShareStatus {
    Processing,
    Complete,
    Failed,
    Revoked,
}

impl LinkShareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkShareStatus::Processing => "processing",
            LinkShareStatus::Complete => "complete",
            LinkShareStatus::Failed => "failed",
            LinkShareStatus::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkShareAccepted {
    pub id: Uuid,
    /// Always `processing`.
    pub status: LinkShareStatus,
    pub job_id: Uuid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkShareView {
    pub id: Uuid,
    pub case_id: Uuid,
    pub package: Package,
    pub status: LinkShareStatus,
    /// Set once the package is built.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// SHA-256 of the package's `manifest.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkShareList {
    pub items: Vec<LinkShareView>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct LinkShareRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub org_id: Uuid,
    pub scope: sqlx::types::Json<Scope>,
    pub attachments: sqlx::types::Json<Attachments>,
    pub retain_folder_structure: bool,
    pub package: Package,
    pub duration_hours: i32,
    pub status: LinkShareStatus,
    pub failure: Option<String>,
    pub token: String,
    pub manifest_sha256: Option<String>,
    pub size_bytes: Option<i64>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub package_key: Option<String>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The policy that governed the request (see `governing_policy`).
    pub policy: Option<sqlx::types::Json<PolicySnapshot>>,
}

const COLUMNS: &str =
    "id, case_id, org_id, scope, attachments, retain_folder_structure, package, duration_hours,
    status, failure, token, manifest_sha256, size_bytes, expires_at, created_at, completed_at,
    package_key, revoked_at, policy";

/// The store key of a link share's package: recorded at completion, or
/// `<id>.zip` for packages built before keys were recorded.
pub fn package_key(id: Uuid, recorded: Option<&str>) -> String {
    recorded.map_or_else(|| format!("{id}.zip"), str::to_string)
}

impl LinkShareRow {
    pub fn package_key(&self) -> String {
        package_key(self.id, self.package_key.as_deref())
    }

    pub fn view(self, settings: &Settings) -> LinkShareView {
        let download_url = (self.status == LinkShareStatus::Complete).then(|| {
            format!(
                "{}/v1/downloads/{}",
                settings.public_url.trim_end_matches('/'),
                self.token
            )
        });
        LinkShareView {
            id: self.id,
            case_id: self.case_id,
            package: self.package,
            status: self.status,
            expires_at: self.expires_at,
            download_url,
            manifest_sha256: self.manifest_sha256,
            size_bytes: self.size_bytes,
            failure: self.failure,
            created_at: self.created_at,
            completed_at: self.completed_at,
            revoked_at: self.revoked_at,
        }
    }
}

/// Accept a link share: validate, record it and its job in one transaction.
/// Classic sharing needs no advanced-sharing setup.
pub async fn create(
    db: &PgPool,
    user: &UserPrincipal,
    case_id: Uuid,
    req: LinkShareRequest,
) -> Result<LinkShareAccepted> {
    let mut tx = db.begin().await?;
    cases::owned(&mut tx, user.org_id, case_id).await?;
    sharing::validate_scope(&mut tx, case_id, &req.scope).await?;
    if !(1..=MAX_DURATION_HOURS).contains(&req.duration_hours) {
        return Err(Error::validation(format!(
            "duration_hours must be between 1 and {MAX_DURATION_HOURS}"
        )));
    }
    if req.message.as_ref().is_some_and(|m| m.len() > 10_000) {
        return Err(Error::validation("message is longer than 10000 characters"));
    }
    let mut recipient_org = None;
    let recipient_kind = match &req.recipient {
        LinkRecipient::Email { email } => {
            if !orgs::valid_email(email) {
                return Err(Error::validation(format!(
                    "{email:?} is not a valid email address"
                )));
            }
            "email"
        }
        LinkRecipient::User { user_id } => {
            let org: Option<Uuid> = sqlx::query_scalar(
                "SELECT u.org_id FROM users u WHERE u.id = $1 AND (u.org_id = $2 OR EXISTS (
                     SELECT 1 FROM partnerships p
                     WHERE (p.org_a = $2 AND p.org_b = u.org_id) OR (p.org_b = $2 AND p.org_a = u.org_id)))",
            )
            .bind(user_id)
            .bind(user.org_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(org) = org else {
                return Err(Error::validation(
                    "recipient user_id must be a user of this organization or of a partner organization",
                ));
            };
            recipient_org = Some(org);
            "user"
        }
    };
    let policy = governing_policy(&mut tx, user.org_id, recipient_org).await?;
    check_attachments(&req.attachments, policy.as_ref())?;
    let id = Uuid::new_v4();
    let token = hex::encode(rand::random::<[u8; 32]>());
    sqlx::query(
        "INSERT INTO link_shares (id, case_id, org_id, created_by, scope, recipient, attachments,
                                  retain_folder_structure, package, duration_hours, message, token,
                                  policy)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(id)
    .bind(case_id)
    .bind(user.org_id)
    .bind(user.user_id)
    .bind(sqlx::types::Json(&req.scope))
    .bind(sqlx::types::Json(&req.recipient))
    .bind(sqlx::types::Json(&req.attachments))
    .bind(req.retain_folder_structure)
    .bind(req.package)
    .bind(req.duration_hours)
    .bind(&req.message)
    .bind(&token)
    .bind(policy.as_ref().map(sqlx::types::Json))
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        Action::LinkShare,
        audit::Entry {
            org_id: Some(user.org_id),
            actor_user_id: Some(user.user_id),
            case_id: Some(case_id),
            details: Some(serde_json::json!({
                "link_share_id": id,
                "recipient_kind": recipient_kind,
                "package": req.package.as_str(),
                "duration_hours": req.duration_hours,
                "policy_id": policy.as_ref().map(|p| p.policy_id),
            })),
            ..Default::default()
        },
    )
    .await?;
    let job_id = BuildLinkShare { link_share_id: id }
        .enqueue_for_tx(&mut tx, Some(user.org_id))
        .await?;
    status_event_tx(
        &mut tx,
        id,
        user.org_id,
        case_id,
        LinkShareStatus::Processing,
    )
    .await?;
    tx.commit().await?;
    Ok(LinkShareAccepted {
        id,
        status: LinkShareStatus::Processing,
        job_id,
    })
}

/// The sharing policy that governs what a link share may carry (R10, R40):
/// for a user of a partner org, the policy for that partner (its override or
/// the default); for an email address, the default policy; for a user of the
/// sharer's own org, none (nothing leaves the org). `None` also when the org
/// has set up no policy: classic sharing does not require one.
async fn governing_policy(
    db: &mut PgConnection,
    org_id: Uuid,
    recipient_org: Option<Uuid>,
) -> Result<Option<PolicySnapshot>> {
    match recipient_org {
        Some(org) if org == org_id => Ok(None),
        // No partner_policies row has the nil id: the default applies.
        other => policy::effective(db, org_id, other.unwrap_or(Uuid::nil())).await,
    }
}

/// Attachments that would carry what the governing policy excludes are
/// refused, naming the policy (R10: an excluded field never leaves).
fn check_attachments(attachments: &Attachments, policy: Option<&PolicySnapshot>) -> Result<()> {
    let Some(p) = policy else { return Ok(()) };
    if attachments.transcripts && !p.policy.evidence_terms.transcript {
        return Err(Error::validation(format!(
            "the sharing policy {:?} for this recipient excludes transcripts; \
             set attachments.transcripts to false",
            p.policy.name
        )));
    }
    if attachments.audit_trails && !p.policy.permissions.sender_audit_trail {
        return Err(Error::validation(format!(
            "the sharing policy {:?} for this recipient does not allow the audit trail; \
             set attachments.audit_trails to false",
            p.policy.name
        )));
    }
    Ok(())
}

async fn load(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<LinkShareRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM link_shares WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A link share of `org_id` (404 for anyone else).
pub async fn get_owned(db: &mut PgConnection, org_id: Uuid, id: Uuid) -> Result<LinkShareRow> {
    match load(db, id).await? {
        Some(row) if row.org_id == org_id => Ok(row),
        _ => Err(Error::NotFound("link share")),
    }
}

// -------------------------------------------------------------------- downloads

/// The link shares of a case the caller's org owns, newest first.
pub async fn list_for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
) -> Result<Vec<LinkShareRow>> {
    cases::owned(&mut *db, org_id, case_id).await?;
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM link_shares WHERE case_id = $1 AND org_id = $2
         ORDER BY created_at DESC, id"
    ))
    .bind(case_id)
    .bind(org_id)
    .fetch_all(db)
    .await?)
}

/// Withdraw a link share (a link sent to the wrong address, say): from the
/// commit on, downloads are refused (410) and a build still running discards
/// its package; the sweep deletes a built package within a minute. Audited,
/// with a `link_share.revoked` status event. Revoking twice changes nothing.
pub async fn revoke(db: &PgPool, user: &UserPrincipal, id: Uuid) -> Result<LinkShareRow> {
    let mut tx = db.begin().await?;
    let row = get_owned(&mut tx, user.org_id, id).await?;
    let revoked: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "UPDATE link_shares SET status = 'revoked', revoked_at = now()
         WHERE id = $1 AND status IN ('processing', 'complete') RETURNING revoked_at",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if revoked.is_some() {
        audit::record(
            &mut tx,
            Action::LinkShareRevoked,
            audit::Entry {
                org_id: Some(user.org_id),
                actor_user_id: Some(user.user_id),
                case_id: Some(row.case_id),
                details: Some(serde_json::json!({ "link_share_id": id, "was": row.status })),
                ..Default::default()
            },
        )
        .await?;
        status_event_tx(
            &mut tx,
            id,
            row.org_id,
            row.case_id,
            LinkShareStatus::Revoked,
        )
        .await?;
    }
    let row = get_owned(&mut tx, user.org_id, id).await?;
    tx.commit().await?;
    Ok(row)
}

/// The link share behind a download token, if it may be downloaded now:
/// unknown token or no package (yet) → 404, expired → 410 `expired`.
pub async fn for_download(db: &PgPool, token: &str) -> Result<LinkShareRow> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::NotFound("download"));
    }
    let row: Option<LinkShareRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM link_shares WHERE token = $1"
    ))
    .bind(token)
    .fetch_optional(db)
    .await?;
    if row
        .as_ref()
        .is_some_and(|r| r.status == LinkShareStatus::Revoked)
    {
        return Err(Error::ShareRevoked);
    }
    let row = row
        .filter(|r| r.status == LinkShareStatus::Complete)
        .ok_or(Error::NotFound("download"))?;
    match row.expires_at {
        Some(at) if at > chrono::Utc::now() => Ok(row),
        Some(at) => Err(Error::Expired(format!("this link expired at {at}"))),
        None => Err(Error::NotFound("download")),
    }
}

/// Delete the packages of expired link shares from the store (R40); the rows
/// stay, with their manifest hash, as the record of what was sent. Safe to run
/// from several processes at once: each package is claimed by its row lock.
/// Returns how many packages were deleted.
pub async fn sweep_expired(db: &PgPool, store: &ContentStore) -> Result<u64> {
    let mut tx = db.begin().await?;
    let expired: Vec<(Uuid, Uuid, Uuid, Option<String>)> = sqlx::query_as(
        "SELECT id, org_id, case_id, package_key FROM link_shares
         WHERE package_deleted_at IS NULL
           AND ((status = 'complete' AND expires_at < now()) OR status = 'revoked')
         ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, org_id, case_id, key) in &expired {
        let key = package_key(*id, key.as_deref());
        store
            .delete(Object::Package(&key))
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("deleting package {id}: {e}")))?;
        sqlx::query("UPDATE link_shares SET package_deleted_at = now() WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            Action::LinkPackageDeleted,
            audit::Entry {
                org_id: Some(*org_id),
                case_id: Some(*case_id),
                details: Some(serde_json::json!({ "link_share_id": id })),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(expired.len() as u64)
}

/// The address a link share is emailed to: the given one, or the user's.
async fn recipient(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT coalesce(l.recipient->>'email', u.email) FROM link_shares l
         LEFT JOIN users u ON u.id = (l.recipient->>'user_id')::uuid WHERE l.id = $1",
    )
    .bind(id)
    .fetch_one(db)
    .await
}

/// Publish `link_share.<status>` on the status exchange (ids and status only).
pub async fn status_event_tx(
    tx: &mut PgConnection,
    id: Uuid,
    org_id: Uuid,
    case_id: Uuid,
    status: LinkShareStatus,
) -> sqlx::Result<()> {
    crate::jobs::outbox::status_event(
        tx,
        &format!("link_share.{}", status.as_str()),
        serde_json::json!({
            "type": "link_share",
            "link_share_id": id,
            "case_id": case_id,
            "org_id": org_id,
            "status": status,
            "at": chrono::Utc::now(),
        }),
    )
    .await
}

/// Queue the expiry reminder (R40) of every link whose expiry is within
/// `link_reminder_hours` and that lived longer than that (a link valid for
/// less than the reminder window would be reminded as soon as it is sent).
/// Once per link share; safe to run from several processes at once. Returns
/// how many reminders were queued.
pub async fn queue_reminders(db: &PgPool, settings: &Settings) -> Result<u64> {
    if settings.link_reminder_hours == 0 {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let due: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE link_shares SET reminder_queued_at = now()
         WHERE id IN (
             SELECT id FROM link_shares
             WHERE status = 'complete' AND reminder_queued_at IS NULL AND package_deleted_at IS NULL
               AND expires_at > now()
               AND expires_at - make_interval(hours => $1) <= now()
               AND duration_hours > $1
             ORDER BY expires_at LIMIT 500 FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(settings.link_reminder_hours as i32)
    .fetch_all(&mut *tx)
    .await?;
    for id in &due {
        if let Some(to) = recipient(&mut tx, *id).await? {
            notify::enqueue_link_share_tx(&mut tx, NoticeKind::LinkShareReminder, *id, &to).await?;
        }
    }
    tx.commit().await?;
    Ok(due.len() as u64)
}

/// Audit a download (R39): the link share and the bytes served.
pub async fn record_download(
    db: &PgPool,
    row: &LinkShareRow,
    bytes: u64,
    range: Option<(u64, u64)>,
) -> Result<()> {
    let mut conn = db.acquire().await?;
    audit::record(
        &mut conn,
        Action::LinkDownload,
        audit::Entry {
            org_id: Some(row.org_id),
            case_id: Some(row.case_id),
            details: Some(serde_json::json!({
                "link_share_id": row.id,
                "bytes": bytes,
                "range": range.map(|(a, b)| format!("{a}-{b}")),
            })),
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------- the job

/// Build the package of a link share.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuildLinkShare {
    pub link_share_id: Uuid,
}

impl Job for BuildLinkShare {
    const NAME: &'static str = "build-link-share";
    type Context = JobContext;

    async fn run(&self, _job_id: Uuid, ctx: &JobContext) -> std::result::Result<(), JobError> {
        let mut conn = ctx.db.acquire().await?;
        let Some(row) = load(&mut conn, self.link_share_id).await? else {
            return Err(JobError::permanent(format!(
                "link share {} does not exist",
                self.link_share_id
            )));
        };
        crate::jobs::record_case(row.case_id);
        if row.status != LinkShareStatus::Processing {
            return Ok(()); // built (or failed) before: nothing to do
        }
        let plan = plan(&mut conn, &row, &ctx.store).await?;
        drop(conn);
        let output = plan.output.clone();
        let started = std::time::Instant::now();
        let built = tokio::task::spawn_blocking(move || package::build(&plan))
            .await
            .map_err(|e| JobError::transient(format!("package builder panicked: {e}")))?;
        if let Ok(b) = &built {
            tracing::info!(
                bytes = b.size_bytes,
                build_ms = started.elapsed().as_millis() as u64,
                "package built"
            );
        }
        match built {
            Ok(built) => complete(ctx, &row, &output, built).await,
            Err(BuildError::Content {
                evidence_id,
                reason,
            }) => fail(&ctx.db, row.id, &reason, evidence_id)
                .await
                .map_err(sharing::job_error),
            Err(BuildError::Io(e)) => Err(JobError::transient(format!("building package: {e}"))),
        }
    }

    async fn on_dead(&self, ctx: &JobContext, reason: &str) {
        if let Err(e) = fail(&ctx.db, self.link_share_id, reason, None).await {
            tracing::error!(error = %e, link_share_id = %self.link_share_id, "cannot mark link share failed");
        }
    }

    /// A failed link share goes back to `processing` (failure cleared), with
    /// a `link_share.processing` status event.
    async fn on_requeue(&self, tx: &mut PgConnection) -> sqlx::Result<Reopened> {
        let reopened: Option<(Uuid, Uuid)> = sqlx::query_as(
            "UPDATE link_shares SET status = 'processing', failure = NULL
             WHERE id = $1 AND status = 'failed' RETURNING org_id, case_id",
        )
        .bind(self.link_share_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((org_id, case_id)) = reopened else {
            return Ok(Reopened::default());
        };
        status_event_tx(
            tx,
            self.link_share_id,
            org_id,
            case_id,
            LinkShareStatus::Processing,
        )
        .await?;
        Ok(Reopened {
            subject: Some(format!(
                "link share {}: failed -> processing",
                self.link_share_id
            )),
            share_id: None,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EvidenceItem {
    id: Uuid,
    folder_id: Option<Uuid>,
    title: String,
    transcript: Option<String>,
    sha256: Option<String>,
    size_bytes: Option<i64>,
    uri: Option<String>,
}

/// A file or folder name made safe as one path component of an archive, at
/// most `max` characters long.
fn component(name: &str, max: usize) -> String {
    let cleaned: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(max)
        .collect();
    match cleaned.trim() {
        "" | "." | ".." => "_".into(),
        s => s.to_string(),
    }
}

async fn plan(
    conn: &mut PgConnection,
    row: &LinkShareRow,
    store: &ContentStore,
) -> std::result::Result<Plan, JobError> {
    // The policy recorded with the request is applied again here, so that
    // nothing it excludes can reach the package whatever the row says.
    let allowed = Attachments {
        transcripts: row.attachments.transcripts
            && row
                .policy
                .as_ref()
                .is_none_or(|p| p.policy.evidence_terms.transcript),
        audit_trails: row.attachments.audit_trails
            && row
                .policy
                .as_ref()
                .is_none_or(|p| p.policy.permissions.sender_audit_trail),
        table_of_contents: row.attachments.table_of_contents,
    };
    let (kind, folder_ids, evidence_ids) = sharing::scope_args(&row.scope.0);
    let items: Vec<EvidenceItem> = sqlx::query_as(&format!(
        "SELECT e.id, e.folder_id, e.title, e.data->>'transcript' AS transcript,
                e.data->'content'->>'sha256' AS sha256, e.data->'content'->>'uri' AS uri,
                (e.data->'content'->>'size_bytes')::bigint AS size_bytes
         FROM evidence e
         WHERE e.case_id = $1 AND (
             $2 = 'case'
             OR ($2 = 'folders' AND e.folder_id IN ({}))
             OR ($2 = 'evidence' AND e.id = ANY($4)))
         ORDER BY e.created_at, e.id",
        sharing::SCOPE_FOLDERS_SQL
    ))
    .bind(row.case_id)
    .bind(kind)
    .bind(&folder_ids)
    .bind(&evidence_ids)
    .fetch_all(&mut *conn)
    .await?;
    let folders: HashMap<Uuid, (Option<Uuid>, String)> =
        sqlx::query_as::<_, (Uuid, Option<Uuid>, String)>(
            "SELECT id, parent_id, name FROM folders WHERE case_id = $1",
        )
        .bind(row.case_id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, parent, name)| (id, (parent, name)))
        .collect();
    // ISO 9660 (Joliet) names have at most 64 characters: a title keeps 27,
    // followed by "-" and the evidence id.
    let (title_max, folder_max) = match row.package {
        Package::Zip => (100, 100),
        Package::Iso => (27, 64),
    };
    let folder_path = |mut id: Option<Uuid>| {
        let mut parts = Vec::new();
        // The depth bound guards against a cycle that the schema does not rule out.
        while let Some((parent, name)) = id.and_then(|i| folders.get(&i)) {
            parts.push(component(name, folder_max));
            id = *parent;
            if parts.len() > 64 {
                break;
            }
        }
        parts.reverse();
        parts
    };

    let mut evidence = Vec::new();
    let mut extras = Vec::new();
    let mut toc = String::new();
    let (case_number, case_title): (String, String) =
        sqlx::query_as("SELECT case_number, title FROM cases WHERE id = $1")
            .bind(row.case_id)
            .fetch_one(&mut *conn)
            .await?;
    toc.push_str(&format!(
        "Case {case_number}: {case_title}\nLink share {} created {}\n\n",
        row.id, row.created_at
    ));
    for item in items {
        let mut parts = vec!["evidence".to_string()];
        if row.retain_folder_structure {
            parts.extend(folder_path(item.folder_id));
        }
        parts.push(format!("{}-{}", component(&item.title, title_max), item.id));
        let path = parts.join("/");
        let stored = item.uri.as_deref() == Some(store_uri(item.id).as_str());
        let stored_sha256 = if stored { item.sha256.clone() } else { None };
        toc.push_str(&format!(
            "{}\t{}\n",
            if stored_sha256.is_some() {
                path.as_str()
            } else {
                "(no content)"
            },
            item.title
        ));
        if allowed.transcripts {
            if let Some(t) = &item.transcript {
                extras.push((
                    format!("transcripts/{}.txt", item.id),
                    t.clone().into_bytes(),
                ));
            }
        }
        evidence.push(PlannedEvidence {
            id: item.id,
            title: item.title,
            path,
            stored_sha256,
            stored_size: item.size_bytes.filter(|_| stored).map(|n| n as u64),
        });
    }
    if allowed.audit_trails {
        let items = audit::for_case(&mut *conn, row.org_id, row.case_id).await?;
        let bytes = serde_json::to_vec_pretty(&serde_json::json!({ "items": items }))
            .map_err(|e| JobError::permanent(e.to_string()))?;
        extras.push(("audit.json".into(), bytes));
    }
    if allowed.table_of_contents {
        extras.push(("toc.txt".into(), toc.into_bytes()));
    }
    let output = store
        .temp_path(&format!("{}-{}.partial", row.id, Uuid::new_v4()))
        .await
        .map_err(|e| JobError::transient(format!("scratch space: {e}")))?;
    Ok(Plan {
        link_share_id: row.id,
        case_id: row.case_id,
        package: row.package,
        store: store.clone(),
        output,
        evidence,
        extras,
    })
}

/// Put the package into the store under a key of its own, then mark the
/// link share complete with that key: a concurrent builder of the same link
/// share waits on the row, finds it complete, and deletes its own package.
async fn complete(
    ctx: &JobContext,
    row: &LinkShareRow,
    output: &Path,
    built: Built,
) -> std::result::Result<(), JobError> {
    let key = format!("{}-{}.{}", row.id, Uuid::new_v4(), row.package.extension());
    let started = std::time::Instant::now();
    let stored = ctx.store.put_file(output, Object::Package(&key)).await;
    tracing::info!(
        store_ms = started.elapsed().as_millis() as u64,
        ok = stored.is_ok(),
        "package put into the store"
    );
    if let Err(e) = stored {
        let _ = tokio::fs::remove_file(output).await;
        return Err(JobError::transient(format!(
            "putting the package into the store: {e}"
        )));
    }
    let result = async {
        let mut tx = ctx.db.begin().await?;
        let done: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "UPDATE link_shares SET status = 'complete', manifest_sha256 = $2, size_bytes = $3,
                    package_key = $4, completed_at = now(),
                    expires_at = now() + make_interval(hours => duration_hours)
             WHERE id = $1 AND status = 'processing' RETURNING expires_at",
        )
        .bind(row.id)
        .bind(&built.manifest_sha256)
        .bind(built.size_bytes as i64)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(expires_at) = done else {
            return Ok(false);
        };
        audit::record(
            &mut tx,
            Action::LinkShareComplete,
            audit::Entry {
                org_id: Some(row.org_id),
                case_id: Some(row.case_id),
                details: Some(serde_json::json!({
                    "link_share_id": row.id,
                    "manifest_sha256": built.manifest_sha256,
                    "size_bytes": built.size_bytes,
                    "expires_at": expires_at,
                })),
                ..Default::default()
            },
        )
        .await?;
        // R40: the recipient gets the link by email, once.
        if let Some(to) = recipient(&mut tx, row.id).await? {
            notify::enqueue_link_share_tx(&mut tx, NoticeKind::LinkShare, row.id, &to).await?;
        }
        status_event_tx(
            &mut tx,
            row.id,
            row.org_id,
            row.case_id,
            LinkShareStatus::Complete,
        )
        .await?;
        tx.commit().await?;
        Ok::<bool, JobError>(true)
    }
    .await;
    if !matches!(result, Ok(true)) {
        if let Err(e) = ctx.store.delete(Object::Package(&key)).await {
            tracing::warn!(error = %e, key, "cannot delete an unused package");
        }
    }
    result.map(|_| ())
}

async fn fail(db: &PgPool, id: Uuid, reason: &str, evidence_id: Option<Uuid>) -> Result<()> {
    let mut tx = db.begin().await?;
    let failed: Option<(Uuid, Uuid)> = sqlx::query_as(
        "UPDATE link_shares SET status = 'failed', failure = $2
         WHERE id = $1 AND status = 'processing' RETURNING org_id, case_id",
    )
    .bind(id)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some((org_id, case_id)) = failed {
        status_event_tx(&mut tx, id, org_id, case_id, LinkShareStatus::Failed).await?;
        // Ids only in the trail; the reason (with the title) is on the link share.
        audit::record(
            &mut tx,
            Action::LinkShareFailed,
            audit::Entry {
                org_id: Some(org_id),
                case_id: Some(case_id),
                evidence_id,
                details: Some(serde_json::json!({ "link_share_id": id })),
                ..Default::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::component;

    #[test]
    fn components_cannot_escape_or_nest() {
        assert_eq!(component("../etc/passwd", 100), ".._etc_passwd");
        assert_eq!(component("..", 100), "_");
        assert_eq!(component("  ", 100), "_");
        assert_eq!(component("a\\b:c", 100), "a_b_c");
        assert_eq!(component("Scene 1", 100), "Scene 1");
        assert_eq!(component("Scene 1", 3), "Sce");
    }
}
