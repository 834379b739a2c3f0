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
    /// R22, R50: new evidence granted to a collaboration by the fan-out job.
    AutoShare,
    /// R25, R50: new evidence applied to a Justice partner's imported copy.
    AutoSync,
    /// R44: sharing with one principal stopped.
    AccessRevoked,
    AccessExternal,
    /// An operator put a dead-lettered job back to work (`caseshare dead-letters requeue`).
    DeadLetterRequeued,
    /// R40: evidence content stored (`PUT /v1/evidence/{id}/content`).
    ContentUploaded,
    LinkShare,
    LinkShareComplete,
    LinkShareFailed,
    LinkDownload,
    LinkPackageDeleted,
    LinkShareRevoked,
    /// Stored evidence content re-hashed against its recorded SHA-256
    /// (`caseshare content verify`), one entry per case.
    ContentVerified,
    /// R50: admin changes, with the admin as actor.
    SetupCompleted,
    SettingsChanged,
    PolicyCreated,
    PolicyUpdated,
    PartnerPolicyAssigned,
    PartnerPolicyRemoved,
    /// R50: bootstrap by the service principal (no user actor;
    /// `details.actor = "service"`).
    OrgCreated,
    UserCreated,
    GroupCreated,
    PartnershipCreated,
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
            Action::AutoShare => "auto_share",
            Action::AutoSync => "auto_sync",
            Action::AccessRevoked => "access_revoked",
            Action::AccessExternal => "access_external",
            Action::DeadLetterRequeued => "dead_letter_requeued",
            Action::ContentUploaded => "content_uploaded",
            Action::LinkShare => "link_share",
            Action::LinkShareComplete => "link_share_complete",
            Action::LinkShareFailed => "link_share_failed",
            Action::LinkDownload => "link_download",
            Action::LinkPackageDeleted => "link_package_deleted",
            Action::LinkShareRevoked => "link_share_revoked",
            Action::ContentVerified => "content_verified",
            Action::SetupCompleted => "setup_completed",
            Action::SettingsChanged => "settings_changed",
            Action::PolicyCreated => "policy_created",
            Action::PolicyUpdated => "policy_updated",
            Action::PartnerPolicyAssigned => "partner_policy_assigned",
            Action::PartnerPolicyRemoved => "partner_policy_removed",
            Action::OrgCreated => "org_created",
            Action::UserCreated => "user_created",
            Action::GroupCreated => "group_created",
            Action::PartnershipCreated => "partnership_created",
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

/// R50: from here to the end of the transaction, audit entries without a
/// user actor are the job's (`details.actor = {"job": id}`).
pub async fn act_as_job(tx: &mut PgConnection, job_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT set_config('caseshare.job_id', $1, true)")
        .bind(job_id.to_string())
        .execute(tx)
        .await?;
    Ok(())
}

/// R50: an admin change (`actor` = the admin) or, with no actor, a bootstrap
/// action of the service principal, in the caller's transaction.
pub async fn admin(
    db: &mut PgConnection,
    action: Action,
    org_id: Uuid,
    actor: Option<Uuid>,
    details: serde_json::Value,
) -> sqlx::Result<()> {
    let mut details = details;
    if actor.is_none() {
        details["actor"] = serde_json::json!("service");
    }
    record(
        db,
        action,
        Entry {
            org_id: Some(org_id),
            actor_user_id: actor,
            details: Some(details),
            ..Default::default()
        },
    )
    .await
}

/// Record an entry in the caller's transaction. An entry with no user actor
/// written by a job that declared itself (`act_as_job`) names that job as its
/// actor (R50: automatic actions are audited with the job as actor).
pub async fn record(db: &mut PgConnection, action: Action, e: Entry) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor_user_id, action, case_id, evidence_id, share_id, details)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, '{}'::jsonb)
                 || CASE WHEN $2::uuid IS NULL AND coalesce(current_setting('caseshare.job_id', true), '') <> ''
                         THEN jsonb_build_object('actor', jsonb_build_object('job', current_setting('caseshare.job_id', true)))
                         ELSE '{}'::jsonb END)",
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

/// Many entries of one action in one statement (UNNEST), with `record`'s
/// job-actor rule: batched intake audits each item without a round trip each.
pub async fn record_many(
    db: &mut PgConnection,
    action: Action,
    entries: &[Entry],
) -> sqlx::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Entry) -> Option<Uuid>| entries.iter().map(f).collect::<Vec<_>>();
    let details: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| e.details.clone().unwrap_or_else(|| serde_json::json!({})))
        .collect();
    sqlx::query(
        "INSERT INTO audit_log (org_id, actor_user_id, action, case_id, evidence_id, share_id, details)
         SELECT o, u, $1, c, e, s, d
                || CASE WHEN u IS NULL AND coalesce(current_setting('caseshare.job_id', true), '') <> ''
                        THEN jsonb_build_object('actor', jsonb_build_object('job', current_setting('caseshare.job_id', true)))
                        ELSE '{}'::jsonb END
         FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[], $7::jsonb[]) AS x (o, u, c, e, s, d)",
    )
    .bind(action.as_str())
    .bind(col(|e| e.org_id))
    .bind(col(|e| e.actor_user_id))
    .bind(col(|e| e.case_id))
    .bind(col(|e| e.evidence_id))
    .bind(col(|e| e.share_id))
    .bind(&details)
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
/// The columns of an [`AuditItem`], for queries over `audit_log a`.
pub const ITEM_COLUMNS: &str =
    "a.id, a.at, a.org_id, a.actor_user_id, a.action, a.case_id, a.evidence_id, a.share_id, a.details";

pub async fn for_case(
    db: &mut PgConnection,
    org_id: Uuid,
    case_id: Uuid,
) -> sqlx::Result<Vec<AuditItem>> {
    sqlx::query_as(
        &format!("SELECT {ITEM_COLUMNS} FROM audit_log a WHERE a.case_id = $1 AND a.org_id = $2 ORDER BY a.id"),
    )
    .bind(case_id)
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// Seal unsealed entries into the hash chain, in id order, continuing from
/// the last sealed one. One sealer at a time (an advisory lock); returns how
/// many entries were sealed. Chain order is `seq`, assigned here, so an entry
/// that commits late is still sealed, just further along the chain.
pub async fn seal(db: &sqlx::PgPool) -> sqlx::Result<u64> {
    let mut tx = db.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7243601)")
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(0);
    }
    let sealed = sqlx::query(
        "WITH last AS (SELECT seq, hash FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1),
              todo AS (SELECT id, (SELECT coalesce(max(seq), 0) FROM last) + row_number() OVER (ORDER BY id) AS seq
                       FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT 5000)
         UPDATE audit_log a SET seq = todo.seq FROM todo WHERE a.id = todo.id",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if sealed > 0 {
        // Hashes depend on the previous entry: walk the newly sealed ones in order.
        sqlx::query(
            "DO $$
             DECLARE prev bytea; e audit_log;
             BEGIN
                 SELECT hash INTO prev FROM audit_log WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1;
                 FOR e IN SELECT * FROM audit_log WHERE seq IS NOT NULL AND hash IS NULL ORDER BY seq LOOP
                     UPDATE audit_log SET prev_hash = prev, hash = audit_entry_hash(prev, e) WHERE id = e.id;
                     prev := audit_entry_hash(prev, e);
                 END LOOP;
             END $$",
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(sealed)
}

/// The first place where the chain is broken, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub id: i64,
    pub reason: String,
}

#[derive(sqlx::FromRow)]
struct ChainRow {
    seq: i64,
    id: i64,
    prev_hash: Option<Vec<u8>>,
    hash: Option<Vec<u8>>,
    content_ok: bool,
}

/// Walk the sealed chain and report the first broken link: an entry whose
/// content no longer matches its hash, or whose `prev_hash` is not the hash of
/// the entry before it (an edit, a deletion or an insertion behind the
/// service's back). Returns the number of entries checked.
pub async fn verify(db: &sqlx::PgPool) -> sqlx::Result<Result<i64, BrokenLink>> {
    let rows: Vec<ChainRow> = sqlx::query_as(
        "SELECT seq, id, prev_hash, hash, hash IS NOT DISTINCT FROM audit_entry_hash(prev_hash, a) AS content_ok
         FROM audit_log a WHERE seq IS NOT NULL ORDER BY seq",
    )
    .fetch_all(db)
    .await?;
    let mut previous: Option<Vec<u8>> = None;
    for (i, row) in rows.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let reason = if row.seq != expected_seq {
            Some("sequence gap: an entry before this one is missing")
        } else if !row.content_ok {
            Some("entry content does not match its hash")
        } else if row.prev_hash != previous {
            Some("previous hash does not match the entry before")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Ok(Err(BrokenLink {
                seq: row.seq,
                id: row.id,
                reason: reason.into(),
            }));
        }
        previous = row.hash.clone();
    }
    Ok(Ok(rows.len() as i64))
}
